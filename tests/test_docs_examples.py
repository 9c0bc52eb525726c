"""The rendered examples in docs/ are the renderer's current output for the bundled fixture."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from update_docs_examples import featured_report  # noqa: E402

from stagegraph.render import dot  # noqa: E402


def test_readme_diagram_matches_the_renderer() -> None:
    committed = (ROOT / "docs" / "images" / "nightly_orders.dot").read_text(encoding="utf-8")
    assert dot.render(featured_report()) == committed, "docs drifted: run `python tests/update_docs_examples.py`"


def test_readme_shows_the_diagram_and_the_report() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for asset in ("docs/images/nightly_orders.svg", "docs/images/report.png"):
        assert asset in readme
        assert (ROOT / asset).is_file()
