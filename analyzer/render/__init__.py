"""Renderers: one registry of formats, each a module with `render(report: Report, ...) -> str`.

Renderers receive only the `Report` (diff mode's delta, suppressed and unchanged findings are
part of it); none re-analyses. They are imported lazily so the pre-commit path does not pay for
jinja2 or graphviz. `--format`, `--out-dir` and the PR comment all go through `render` here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..model import Report


@dataclass(frozen=True, slots=True)
class Format:
    """One output format: its module, the file `--out-dir` writes (if any), and whether it folds big pipelines."""

    module: str
    out_file: str | None = None
    folds: bool = False


FORMATS: dict[str, Format] = {
    "text": Format(f"{__name__}.text"),
    "json": Format(f"{__name__}.json", "report.json"),
    "markdown": Format(f"{__name__}.markdown", "report.md", folds=True),
    "html": Format(f"{__name__}.html", "report.html", folds=True),
    "sarif": Format(f"{__name__}.sarif", "report.sarif"),
    "dot": Format(f"{__name__}.dot", "graph.dot", folds=True),
    "mermaid": Format(f"{__name__}.mermaid", folds=True),
    "github": Format(f"{__name__}.github"),
}


#: formats people read: they render a copy of the report with control and bidi characters escaped
HUMAN_FORMATS = frozenset({"text", "markdown", "html", "dot", "mermaid", "github"})


def render(report: Report, fmt: str, max_stages: int | None = None) -> str:
    """`report` in format `fmt`; `max_stages` folds big pipelines in the formats that draw them."""
    from .safe import sanitize

    spec = FORMATS[fmt]
    module = importlib.import_module(spec.module)
    if fmt in HUMAN_FORMATS:
        report = sanitize(report)
    text: str = module.render(report, max_stages=max_stages) if spec.folds and max_stages is not None \
        else module.render(report)
    return text
