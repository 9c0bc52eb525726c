"""Session-wide test setup: the one gate for Graphviz's `dot` and Chromium, decided once.

Whether each tool is present is looked up once, when the test session starts. Tests that need one
carry the `needs_dot` / `needs_chromium` marker and are skipped here when it is missing, and the
renderer sees the same answer for the whole run (`stagegraph.render.dot` is pinned to it), so a
tool installed mid-run can no longer make collection and run time disagree.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

#: the decision, made once per session (each xdist worker imports this module once, at start-up)
DOT: str | None = shutil.which("dot")
CHROMIUM: str | None = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
HAVE_DOT = DOT is not None
HAVE_CHROMIUM = CHROMIUM is not None

_GATES = {
    "needs_dot": (HAVE_DOT, "Graphviz's `dot` is not installed (apt-get install graphviz)"),
    "needs_chromium": (HAVE_CHROMIUM, "no chromium binary on PATH (apt-get install chromium)"),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, (_, reason) in _GATES.items():
        config.addinivalue_line("markers", f"{name}: skipped when {reason.split(' (')[0]}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name, (present, reason) in _GATES.items():
            if not present and item.get_closest_marker(name) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _pinned_tools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The renderer finds `dot` exactly where the session decided it is (or not at all)."""
    from stagegraph.render import dot

    monkeypatch.setattr(dot, "find_dot", lambda: DOT)
    yield


@pytest.fixture(autouse=True)
def _no_shared_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests run without the result cache (a hit would skip the code under test) unless they ask for it,
    and never touch the user's cache folder."""
    monkeypatch.setenv("STAGEGRAPH_NO_CACHE", "1")
    monkeypatch.setenv("STAGEGRAPH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "stagegraph-cache"))
