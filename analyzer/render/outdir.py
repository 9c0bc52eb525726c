"""`--out-dir`: every format of one report written into one folder.

A large report (see `dot.is_large`) also gets one `.dot` (and `.svg`) per pipeline under
`graphs/`, since a single diagram of 20 pipelines is not readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..model import Report
from . import FORMATS, render

#: files `--out-dir` writes, by format (from the one registry of formats)
OUT_FILES = {fmt: spec.out_file for fmt, spec in FORMATS.items() if spec.out_file}
INSTALL_HINT = ("note: Graphviz's `dot` is not installed, so graph.svg was not drawn (graph.dot was written). "
                "Install it with `apt-get install graphviz` or `brew install graphviz`.")


def out_dir_files(report: Report, max_stages: int | None = None, overrides: Mapping[str, str] | None = None) \
        -> tuple[dict[str, str], list[str]]:
    """Every file `--out-dir` holds, by name relative to the folder, rendered in memory; and notes for stderr.

    `max_stages` folds big pipelines in the formats that draw them; `overrides` replaces named files.
    """
    from . import dot as dot_render

    notes: list[str] = []
    files = {name: render(report, fmt, max_stages) for fmt, name in OUT_FILES.items()}
    pipeline_files = {}
    if dot_render.is_large(report):
        pipeline_files = {name: text for name, text in dot_render.render_files(report).items() if name != "graph.dot"}
        files.update({f"graphs/{name}": text for name, text in pipeline_files.items()})
    try:
        svg = dot_render.render_svg(report, max_stages)
        if svg is None:
            notes.append(INSTALL_HINT)
        else:
            files["graph.svg"] = svg
            for name, text in pipeline_files.items():
                drawn = dot_render.svg_from_source(text)
                if drawn is not None:
                    files[f"graphs/{name[:-4]}.svg"] = drawn
    except dot_render.GraphvizError as exc:
        notes.append(f"note: Graphviz could not draw the diagram ({exc}); the .dot files were written.")
    files.update(overrides or {})
    return files, notes


def write_out_dir(report: Report, out_dir: Path, max_stages: int | None = None,
                  overrides: Mapping[str, str] | None = None) -> list[str]:
    """Write every format into `out_dir`, all or nothing (see `output.write_set`). Returns notes for stderr."""
    from ..output import write_set

    files, notes = out_dir_files(report, max_stages, overrides)
    write_set({out_dir / name: text for name, text in files.items()})
    return notes
