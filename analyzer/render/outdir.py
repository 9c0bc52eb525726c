"""`--out-dir`: every format of one report written into one folder.

A large report (see `dot.is_large`) also gets one `.dot` (and `.svg`) per pipeline under
`graphs/`, since a single diagram of 20 pipelines is not readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import Report
from . import FORMATS, render

if TYPE_CHECKING:
    from .dot import GraphvizError

#: files `--out-dir` writes, by format (from the one registry of formats)
OUT_FILES = {fmt: spec.out_file for fmt, spec in FORMATS.items() if spec.out_file}
INSTALL_HINT = ("note: Graphviz's `dot` is not installed, so graph.svg was not drawn (graph.dot was written). "
                "Install it with `apt-get install graphviz` or `brew install graphviz`.")


def out_dir_files(report: Report, max_stages: int | None = None, overrides: Mapping[str, str] | None = None) \
        -> tuple[dict[str, str], list[str]]:
    """Every file `--out-dir` holds, by name relative to the folder, rendered in memory; and notes for stderr.

    `max_stages` folds big pipelines in the formats that draw them; `overrides` replaces named files.
    Every diagram (graph.svg, graphs/*.svg, the HTML report's) is drawn first, all at once (one
    `dot` per diagram, as many at a time as there are cores). A diagram over the size budget is
    drawn folded without starting `dot` on the full one; one `dot` could not lay out in time is
    drawn folded too. Each fold is a note.
    """
    from . import dot as dot_render

    notes: list[str] = []
    pipeline_files: dict[str, str] = {}
    if dot_render.is_large(report):
        pipeline_files = {name: text for name, text in dot_render.render_files(report).items() if name != "graph.dot"}
    if dot_render.find_dot() is None:
        drawn: dict[str, str | dot_render.GraphvizError] = {}
        svgs: dict[str, str] = {}
        notes.append(INSTALL_HINT)
    else:
        svgs, drawn = _draw(report, max_stages, pipeline_files, notes)
    with dot_render.drawings(drawn):
        files = {name: render(report, fmt, max_stages) for fmt, name in OUT_FILES.items()}
    files.update({f"graphs/{name}": text for name, text in pipeline_files.items()})
    files.update(svgs)
    files.update(overrides or {})
    return files, notes


def _draw(report: Report, max_stages: int | None, pipeline_files: Mapping[str, str], notes: list[str]) \
        -> tuple[dict[str, str], dict[str, str | GraphvizError]]:
    """(SVG files by name, every drawing by DOT source for the HTML report), drawn in parallel."""
    from . import dot as dot_render

    fold = dot_render.folded_stages(max_stages)
    pipelines = {dot_render.file_name(i, p)[:-4]: p for i, p in enumerate(report.pipelines, start=1)}

    def folded(name: str) -> str | None:
        """The folded DOT source for one SVG file, or None when it is folded already."""
        if fold is None:
            return None
        if name == "graph.svg":
            return dot_render.render(report, fold)
        stem = name.removeprefix("graphs/").removesuffix(".svg")
        return dot_render.render_views([dot_render.view(report, pipelines[stem], fold)], name=stem)

    wanted = {"graph.svg": dot_render.render(report, max_stages)}
    wanted.update({f"graphs/{name[:-4]}.svg": text for name, text in pipeline_files.items()})
    html_sources = [dot_render.pipeline_source(report, p, max_stages) for p in report.pipelines]
    for name, source in list(wanted.items()):
        if dot_render.over_budget(source) and (alternative := folded(name)) is not None:
            notes.append(f"note: {name} is over Graphviz's size budget; it was drawn folded to {fold} stages "
                         "per pipeline (the .dot files are complete).")
            wanted[name] = alternative
    html_extra = [dot_render.pipeline_source(report, p, fold) for p, source in zip(report.pipelines, html_sources,
                                                                                    strict=True)
                  if fold is not None and dot_render.over_budget(source)]
    drawn = dot_render.draw_all([*wanted.values(), *html_sources, *html_extra])
    # a second round, also in parallel: folded versions of what dot could not lay out in time
    retry = {name: alternative for name, source in wanted.items()
             if isinstance(drawn.get(source), dot_render.GraphvizTimeout) and (alternative := folded(name)) is not None}
    retry_html = [dot_render.pipeline_source(report, p, fold) for p, source in zip(report.pipelines, html_sources,
                                                                                    strict=True)
                  if fold is not None and isinstance(drawn.get(source), dot_render.GraphvizTimeout)]
    if retry or retry_html:
        drawn.update(dot_render.draw_all([*retry.values(), *retry_html]))
        for name, alternative in retry.items():
            notes.append(f"note: dot could not lay out {name} in {dot_render.DOT_TIMEOUT}s; it was drawn folded to "
                         f"{fold} stages per pipeline.")
            wanted[name] = alternative
    svgs: dict[str, str] = {}
    failed: list[str] = []
    for name, source in wanted.items():
        result = drawn.get(source)
        if isinstance(result, str):
            svgs[name] = result
        elif result is not None:
            failed.append(f"{name}: {result}")
    if failed:
        notes.append(f"note: Graphviz could not draw {len(failed)} diagram(s) ({'; '.join(failed[:3])}); "
                     "the .dot files were written.")
    return svgs, drawn


def write_out_dir(report: Report, out_dir: Path, max_stages: int | None = None,
                  overrides: Mapping[str, str] | None = None) -> list[str]:
    """Write every format into `out_dir`, all or nothing (see `output.write_set`). Returns notes for stderr."""
    from ..output import write_set

    files, notes = out_dir_files(report, max_stages, overrides)
    write_set({out_dir / name: text for name, text in files.items()})
    return notes
