"""The house rules (docs/architecture.md) hold for the whole tree, and each check
catches a deliberately broken example of its rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import architecture

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lyceum"


def test_sql_lives_in_repositories() -> None:
    assert architecture.sql_outside_repositories(PACKAGE) == []


def test_domains_meet_only_through_public_modules() -> None:
    assert architecture.private_imports(PACKAGE) == []


def test_no_two_domains_import_each_other() -> None:
    assert architecture.cycles(PACKAGE) == []


def test_kit_and_models_know_no_domain() -> None:
    assert architecture.layering(PACKAGE) == []


def direct_digest_compares(package: Path) -> list[str]:
    """`hmac.compare_digest` on two str raises TypeError for any non-ASCII character,
    and the compared value usually comes from outside (a header, a token): a 500 for
    anyone who sends an accent. Secrets are compared through
    `kit.security.constant_time_equal`, which compares UTF-8 bytes."""
    return [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path != package / "kit" / "security.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "compare_digest(" in line
    ]


def test_secrets_are_compared_through_one_function() -> None:
    assert direct_digest_compares(PACKAGE) == []


def test_the_compare_check_finds_a_direct_compare(tmp_path: Path) -> None:
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "security.py").write_text("hmac.compare_digest(a, b)\n")
    (tmp_path / "tokens.py").write_text("import hmac\nok = hmac.compare_digest(a, b)\n")
    assert direct_digest_compares(tmp_path) == ["tokens.py:2"]


# A broken tree, one violation per rule -------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "lyceum"
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return _tree(
        tmp_path,
        {
            "kit/cache.py": "from lyceum.courses.service import CourseService\n",
            "courses/__init__.py": "",
            "courses/repository.py": "from sqlalchemy import select\n",
            "courses/service.py": (
                "from sqlalchemy import select, func\n"
                "from lyceum.learning.service import progress\n"
            ),
            "courses/endpoints.py": (
                "async def get(session):\n    return await session.get(object, 1)\n"
            ),
            "learning/service.py": (
                "from lyceum.courses import repository\n"
                "from lyceum.courses.permissions import EditableCourse\n"
                "async def progress(self):\n"
                "    return await self.session.execute(1)\n"
            ),
        },
    )


def test_each_rule_catches_its_example(broken: Path) -> None:
    assert architecture.sql_outside_repositories(broken) == [
        "courses/endpoints.py:2 calls session.get()",
        "courses/service.py:1 imports select",
        "learning/service.py:4 calls session.execute()",
    ]
    assert architecture.private_imports(broken) == [
        "learning/service.py:1 imports lyceum.courses.repository (another domain's "
        "repository; use its events/permissions/schemas/service)"
    ]
    assert architecture.cycles(broken) == ["courses -> learning -> courses"]
    assert architecture.layering(broken) == ["kit/cache.py:1 (kit) imports lyceum.courses"]


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "kit/db.py": "from sqlalchemy import text\n",
            "models/courses.py": "from lyceum.kit.db import Base\n",
            "courses/repository.py": (
                "from sqlalchemy import select\n"
                "async def one(session):\n    return await session.get(object, 1)\n"
            ),
            "learning/service.py": "from lyceum.courses.service import CourseService\n",
        },
    )
    assert architecture.sql_outside_repositories(package) == []
    assert architecture.private_imports(package) == []
    assert architecture.cycles(package) == []
    assert architecture.layering(package) == []
