"""The house rules of docs/architecture.md, checked from the source tree's syntax.

Each check takes the package directory (`src/lyceum`) and returns the violations as
readable lines, so a test can assert there are none and, on a deliberately broken tree,
that each rule catches its example.

- SQL lives in repositories: outside a domain's `repository.py` (or `repository/`
  package, or a `<topic>_repository.py`), `kit/` and `migrations/`, no module imports SQLAlchemy's statement builders
  (`select`, `insert`, `update`, `delete`, `text`, ...) and nothing calls
  `session.get/execute/scalar/scalars/stream`.
- Domains meet through narrow doors: a domain imports another domain's `permissions`,
  `service`, `schemas` or `events` (public interfaces), never its `repository`,
  `endpoints` or anything else.
- No two domains import each other, directly or through others.
- `kit/` knows no domain; `models/` imports only `kit` and itself (kit may use the
  tables in `models/`, which know no domain logic).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Top-level modules and packages that are not domains.
NOT_DOMAINS = frozenset(
    {"kit", "models", "migrations", "templates", "apidocs", "config", "app", "cli", "__main__"}
)
PUBLIC_MODULES = frozenset({"permissions", "service", "schemas", "events"})
STATEMENT_BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "union",
        "union_all",
        "exists",
        "literal_column",
        "values",
    }
)
SESSION_CALLS = frozenset({"get", "execute", "scalar", "scalars", "stream", "stream_scalars"})


@dataclass(frozen=True)
class Module:
    path: Path
    parts: tuple[str, ...]  # relative to the package, without .py: ("content", "service")
    tree: ast.Module

    @property
    def top(self) -> str:
        return self.parts[0]

    @property
    def is_repository(self) -> bool:
        # repository.py, a repository/ package, or a <topic>_repository.py beside them.
        return any(part == "repository" or part.endswith("_repository") for part in self.parts)

    def where(self, node: ast.AST) -> str:
        return f"{'/'.join(self.parts)}.py:{getattr(node, 'lineno', 0)}"


def modules(package: Path) -> Iterator[Module]:
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).with_suffix("")
        parts = tuple(p for p in relative.parts if p != "__init__") or ("__init__",)
        yield Module(path, parts, ast.parse(path.read_text(), filename=str(path)))


def domains(package: Path) -> set[str]:
    return {
        child.name
        for child in package.iterdir()
        if child.is_dir()
        and child.name not in NOT_DOMAINS
        and not child.name.startswith(("_", "."))
        and any(child.glob("*.py"))
    }


def _imports(module: Module, root: str) -> Iterator[tuple[ast.AST, tuple[str, ...]]]:
    """(node, imported module path under `root`) for every import of `root.*`; a
    `from root.a import b` yields ("a", "b") so that `from lyceum.x import repository`
    counts as importing the repository module."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == root and len(parts) > 1:
                    yield node, tuple(parts[1:])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != root or len(parts) < 2:
                continue
            if len(parts) == 2:  # from lyceum.content import service, repository
                for alias in node.names:
                    yield node, (parts[1], alias.name)
            else:
                yield node, tuple(parts[1:])


def sql_outside_repositories(package: Path) -> list[str]:
    found = []
    for module in modules(package):
        if module.top in {"kit", "migrations", "models"} or module.is_repository:
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                builders = sorted(a.name for a in node.names if a.name in STATEMENT_BUILDERS)
                if builders:
                    found.append(f"{module.where(node)} imports {', '.join(builders)}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SESSION_CALLS
                and _names_a_session(node.func.value)
            ):
                found.append(f"{module.where(node)} calls session.{node.func.attr}()")
    return found


def _names_a_session(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "session" or node.id.endswith("_session")
    if isinstance(node, ast.Attribute):
        return node.attr == "session" or node.attr.endswith("_session")
    return False


def domain_imports(package: Path) -> dict[str, set[str]]:
    """domain -> the other domains it imports (any module)."""
    known = domains(package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for module in modules(package):
        if module.top not in known:
            continue
        for _, target in _imports(module, "lyceum"):
            if target[0] in known and target[0] != module.top:
                graph[module.top].add(target[0])
    return graph


def private_imports(package: Path) -> list[str]:
    known = domains(package)
    found = []
    for module in modules(package):
        if module.top not in known:
            continue
        for node, target in _imports(module, "lyceum"):
            if target[0] not in known or target[0] == module.top:
                continue
            door = target[1] if len(target) > 1 else None
            if door not in PUBLIC_MODULES:
                found.append(
                    f"{module.where(node)} imports lyceum.{'.'.join(target)} "
                    f"(another domain's {door or 'package'}; use its "
                    f"{'/'.join(sorted(PUBLIC_MODULES))})"
                )
    return found


def cycles(package: Path) -> list[str]:
    graph = domain_imports(package)
    found: set[tuple[str, ...]] = set()

    def walk(node: str, path: list[str]) -> None:
        for following in sorted(graph.get(node, ())):
            if following in path:
                loop = path[path.index(following) :]
                start = loop.index(min(loop))
                found.add(tuple(loop[start:] + loop[:start]))
            elif len(path) < len(graph):
                walk(following, [*path, following])

    for name in sorted(graph):
        walk(name, [name])
    return [" -> ".join([*loop, loop[0]]) for loop in sorted(found)]


def layering(package: Path) -> list[str]:
    known = domains(package)
    found = []
    for module in modules(package):
        if module.top not in {"kit", "models"}:
            continue
        # Tables are shared data definitions: kit's own (the mail log) live there too.
        allowed = {"kit", "config", "models"}
        for node, target in _imports(module, "lyceum"):
            if target[0] in known or target[0] not in allowed | {module.top}:
                found.append(f"{module.where(node)} ({module.top}) imports lyceum.{target[0]}")
    return found
