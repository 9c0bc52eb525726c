"""Layering: checks are graph queries over the model; none reaches into the facts layer or the parser."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHECKS = Path(__file__).resolve().parents[1] / "analyzer" / "checks"
#: modules a check may not import, as paths inside the package (and third-party parsers)
FORBIDDEN = ("facts", "source", "engine", "libcst")


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, resolved against the package (`..facts.signals` -> `facts.signals`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            else:
                base = ["checks"][: max(0, 2 - node.level)]  # checks/x.py: `.` is checks, `..` the package
                if node.module:
                    names = [".".join([*base, node.module])]
                else:
                    names = [".".join([*base, alias.name]) for alias in node.names]
            found.extend(n.removeprefix("stagegraph.").removeprefix("analyzer.") for n in names)
    return found


def reaches_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f"{f}.") for f in FORBIDDEN)


@pytest.mark.parametrize("path", sorted(CHECKS.glob("*.py")), ids=lambda p: p.name)
def test_no_check_imports_the_facts_layer(path: Path) -> None:
    bad = [m for m in imported_modules(path) if reaches_forbidden(m)]
    assert bad == [], f"{path.name} imports {bad}: read the model instead"


@pytest.mark.parametrize(
    ("code", "bad"),
    [
        ("from ..facts.signals import LOGGED_ONLY\n", True),
        ("from .. import facts\n", True),
        ("from stagegraph.facts import roles\n", True),
        ("import libcst as cst\n", True),
        ("from ..model import Signal\nfrom . import Hit\nfrom ._common import later\n", False),
    ],
)
def test_the_layering_test_can_fail(tmp_path: Path, code: str, bad: bool) -> None:
    check = tmp_path / "x.py"
    check.write_text(code, encoding="utf-8")
    assert any(reaches_forbidden(m) for m in imported_modules(check)) is bad
