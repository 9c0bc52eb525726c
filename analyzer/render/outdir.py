"""`--out-dir`: every format of one report written into one folder.

A large report (see `dot.is_large`) also gets one `.dot` (and `.svg`) per pipeline under
`graphs/`, since a single diagram of 20 pipelines is not readable.
"""

from __future__ import annotations

from pathlib import Path

from analyzer.model import Report
from analyzer.render import FORMATS, render

#: files `--out-dir` writes, by format (from the one registry of formats)
OUT_FILES = {fmt: spec.out_file for fmt, spec in FORMATS.items() if spec.out_file}
INSTALL_HINT = ("note: Graphviz's `dot` is not installed, so graph.svg was not drawn (graph.dot was written). "
                "Install it with `apt-get install graphviz` or `brew install graphviz`.")


def write_out_dir(report: Report, out_dir: Path, max_stages: int | None = None) -> list[str]:
    """Write every format into `out_dir`; SVG only when Graphviz's `dot` is installed. Returns notes for stderr."""
    from analyzer.render import dot as dot_render

    notes: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt, name in OUT_FILES.items():
        (out_dir / name).write_text(render(report, fmt, max_stages), encoding="utf-8")
    pipeline_files = {}
    if dot_render.is_large(report):
        pipeline_files = {name: text for name, text in dot_render.render_files(report).items() if name != "graph.dot"}
        (out_dir / "graphs").mkdir(exist_ok=True)
        for name, text in pipeline_files.items():
            (out_dir / "graphs" / name).write_text(text, encoding="utf-8")
    try:
        svg = dot_render.render_svg(report, max_stages)
        if svg is None:
            notes.append(INSTALL_HINT)
            return notes
        (out_dir / "graph.svg").write_text(svg, encoding="utf-8")
        for name, text in pipeline_files.items():
            drawn = dot_render.svg_from_source(text)
            if drawn is not None:
                (out_dir / "graphs" / (name[:-4] + ".svg")).write_text(drawn, encoding="utf-8")
    except dot_render.GraphvizError as exc:
        notes.append(f"note: Graphviz could not draw the diagram ({exc}); the .dot files were written.")
    return notes
