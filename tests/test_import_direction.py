"""The dependency direction of docs/architecture.md, read from the code's own imports:
core (opsconsole) <- deployments <- backups <- dr, with infrastructure and notifications beside
them on the core alone. Apps plug into the core through its registries, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("deployments", "backups", "dr", "infrastructure", "notifications")
# What each package may import besides the core and itself (the sandbox is a tool, not an app).
MAY_IMPORT = {
    "opsconsole": set(),
    "deployments": set(),
    "infrastructure": set(),
    "notifications": set(),
    "backups": {"deployments"},
    "dr": {"deployments", "backups", "infrastructure"},
}
# The project's URLconf wires every app's pages in: it is the one core module that names apps.
WIRING = {"opsconsole/urls.py"}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules_of(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def forbidden_imports(package: str) -> dict[str, list[str]]:
    allowed = MAY_IMPORT[package] | {package}
    found = {}
    for path in modules_of(package):
        relative = path.relative_to(ROOT).as_posix()
        if relative in WIRING:
            continue
        wrong = sorted((imported_packages(path) & set(APPS)) - allowed)
        if wrong:
            found[relative] = wrong
    return found


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_each_package_imports_only_what_lies_below_it(package):
    assert modules_of(package), f"no modules found under {package}/"
    assert forbidden_imports(package) == {}, f"{package} imports what lies above or beside it"


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from deployments.models import Release\n    import dr.jobs\n")
    assert imported_packages(module) == {"deployments", "dr"}
