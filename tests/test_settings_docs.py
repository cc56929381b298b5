"""The README's settings table, `.env.example` and `docker-compose.yml` agree with
`src/lyceum/config.py`, and the README's layout names every package: documentation that
cannot drift from the code it describes."""

from __future__ import annotations

import re

from lyceum.config import Settings
from tests.support.servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
COMPOSE = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def test_the_readme_settings_table_lists_every_setting_and_no_other() -> None:
    table_rows = [line for line in section("Settings").splitlines() if line.startswith("| `")]
    listed = {name for row in table_rows for name in VARIABLE.findall(row.split("|")[1])}
    assert sorted(settings_variables() - listed) == [], "settings missing from the README"
    assert sorted(listed - settings_variables()) == [], "README lists settings that do not exist"


def test_env_example_has_an_example_line_for_every_setting_and_no_other() -> None:
    examples = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, flags=re.M))
    assert sorted(settings_variables() - examples) == [], "settings missing from .env.example"
    assert sorted(examples - settings_variables()) == [], ".env.example has unknown settings"


def test_compose_passes_only_real_settings() -> None:
    block = COMPOSE[COMPOSE.index("x-lyceum-env:") : COMPOSE.index("\nx-lyceum-app:")]
    passed = set(re.findall(r"^  ([A-Z][A-Z0-9_]+):", block, flags=re.M))
    # FORWARDED_ALLOW_IPS is uvicorn's own variable (documented under the README table).
    assert sorted(passed - settings_variables() - {"FORWARDED_ALLOW_IPS"}) == []


def test_the_readme_and_compose_make_env_the_same_way() -> None:
    steps = [
        "cp .env.example .env",
        "echo \"SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\" >> .env",
    ]
    for document in (section("Docker"), COMPOSE, ENV_EXAMPLE):
        for step in steps:
            assert step in document


def test_the_readme_layout_names_every_package() -> None:
    layout = section("Layout")
    package_root = REPO_ROOT / "src" / "lyceum"
    folders = sorted(
        path.name
        for path in package_root.iterdir()
        if path.is_dir() and not path.name.startswith(("_", "."))
    )
    missing = [name for name in folders if not re.search(rf"^  {name}/", layout, flags=re.M)]
    assert missing == []
    modules = sorted(
        path.stem for path in package_root.glob("*.py") if not path.stem.startswith("_")
    )
    assert [name for name in modules if f"  {name}.py" not in layout] == []
    kit = sorted(
        path.stem for path in (package_root / "kit").iterdir() if not path.name.startswith("_")
    )
    kit_text = layout[layout.index("  kit/") : layout.index("  models/")]
    assert [name for name in kit if not re.search(rf"\b{name}\b", kit_text)] == []


def test_the_readme_names_the_system_packages_the_tests_install() -> None:
    script = (REPO_ROOT / "scripts" / "_setup.sh").read_text(encoding="utf-8")
    installed = set(re.findall(r"apt-get install -y -qq ([a-z0-9-]+)", script))
    assert installed == {
        "redis-server",
        "poppler-utils",
        "chromium",
        "kubernetes-client",
        "prometheus",
    }
    tests_section = section("Tests, quality gates and benchmarks")
    for package in installed:
        assert f"`{package}`" in README.split("\n## ", 1)[0]
        assert f"`{package}`" in tests_section
