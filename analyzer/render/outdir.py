"""`--out-dir`: every format of one report written into one folder."""

from __future__ import annotations

from pathlib import Path

from analyzer.model import Report
from analyzer.render import render

#: files `--out-dir` writes, by format
OUT_FILES = {"json": "report.json", "html": "report.html", "markdown": "report.md", "sarif": "report.sarif",
             "dot": "graph.dot"}


def write_out_dir(report: Report, out_dir: Path) -> list[str]:
    """Write every format into `out_dir`; SVG only when Graphviz's `dot` is installed. Returns notes for stderr."""
    notes: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt, name in OUT_FILES.items():
        (out_dir / name).write_text(render(report, fmt), encoding="utf-8")
    from analyzer.render import dot as dot_render

    svg = dot_render.render_svg(report)
    if svg is not None:
        (out_dir / "graph.svg").write_text(svg, encoding="utf-8")
    else:
        notes.append(
            "note: Graphviz's `dot` is not installed, so graph.svg was not drawn (graph.dot was written). "
            "Install it with `apt-get install graphviz` or `brew install graphviz`."
        )
    return notes
