"""Issue 13, item 22: whether `dot` and Chromium exist is decided once, in conftest.py, for the whole run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import HAVE_DOT

from stagegraph.render import dot

TESTS = Path(__file__).resolve().parent


def test_graphviz_appearing_mid_run_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if HAVE_DOT else f"/opt/new/{name}")
    assert dot.dot_available() is HAVE_DOT


def test_no_test_module_looks_for_the_tools_itself() -> None:
    lookup = re.compile(r"""shutil\.which\(\s*["'](dot|chromium|chromium-browser|google-chrome)["']""")
    offenders = [p.name for p in TESTS.glob("test_*.py") if lookup.search(p.read_text(encoding="utf-8"))]
    assert offenders == [], "gate on the needs_dot / needs_chromium markers or conftest.HAVE_DOT instead"
