"""Regenerate the rendered examples in docs/ from the bundled fixture: `python tests/update_docs_examples.py`.

The DOT source is committed beside its SVG so a test can tell when the docs drift from the
renderer (SVG bytes depend on the installed Graphviz version, DOT does not). The HTML screenshot
needs Debian's chromium; without it the old one is kept.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stagegraph.engine import analyze  # noqa: E402
from stagegraph.model import Report  # noqa: E402
from stagegraph.render import dot, render  # noqa: E402

IMAGES = ROOT / "docs" / "images"
EXAMPLE = ROOT / "fixtures" / "legacy_etl"
FEATURED = "jobs/nightly_orders.py::main"


def featured_report() -> Report:
    """The bundled example's nightly pipeline alone, with its findings: the README's picture."""
    report = analyze([EXAMPLE])
    pipeline = next(p for p in report.pipelines if p.id == FEATURED)
    findings = tuple(f for f in report.findings if f.pipeline == FEATURED)
    return Report(report.tool_version, (pipeline,), findings, (), report.summary)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    sub = featured_report()
    (IMAGES / "nightly_orders.dot").write_text(dot.render(sub), encoding="utf-8")
    svg = dot.render_svg(sub)
    if svg is not None:
        (IMAGES / "nightly_orders.svg").write_text(svg, encoding="utf-8")
    full = analyze([EXAMPLE])
    (ROOT / "docs" / "examples").mkdir(exist_ok=True)
    for fmt, name in (("markdown", "report.md"), ("mermaid", "graph.mmd"), ("text", "report.txt")):
        (ROOT / "docs" / "examples" / name).write_text(render(full, fmt), encoding="utf-8")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        with tempfile.TemporaryDirectory() as tmp:
            html = Path(tmp) / "report.html"
            html.write_text(render(full, "html"), encoding="utf-8")
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp}/profile", f"--screenshot={IMAGES / 'report.png'}", "--window-size=1400,1600",
                 html.as_uri()],
                check=True, capture_output=True, timeout=120,
            )


if __name__ == "__main__":
    main()
