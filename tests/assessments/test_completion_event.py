"""Course completion reacts to `assessment.passed` (learning.reactions), so assessments
never imports learning; the end-to-end completion is pinned in test_gradebook."""

from __future__ import annotations

import ast
from pathlib import Path

import lyceum.assessments
from lyceum.kit.events import reactions
from lyceum.kit.jobs import load_task_modules
from lyceum.learning.reactions import complete_after_passing


def test_learning_reacts_to_a_passed_assessment_in_the_emitting_transaction() -> None:
    load_task_modules()
    assert complete_after_passing in reactions("assessment.passed")


def test_assessments_does_not_import_learning() -> None:
    (root,) = lyceum.assessments.__path__
    for path in Path(root).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(name.startswith("lyceum.learning") for name in names), path
