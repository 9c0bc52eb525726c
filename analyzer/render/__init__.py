"""Renderers: each format is one module with `render(report: Report) -> str`.

Renderers receive only the `Report`; none re-analyses. They are imported lazily so the
pre-commit path does not pay for jinja2 or graphviz.
"""

from __future__ import annotations

import importlib

from analyzer.model import Report

FORMATS: dict[str, str] = {
    "text": "analyzer.render.text",
    "json": "analyzer.render.json",
    "markdown": "analyzer.render.markdown",
    "html": "analyzer.render.html",
    "sarif": "analyzer.render.sarif",
    "dot": "analyzer.render.dot",
    "mermaid": "analyzer.render.mermaid",
}


#: formats people read: they render a copy of the report with control and bidi characters escaped
HUMAN_FORMATS = frozenset({"text", "markdown", "html", "dot", "mermaid"})


def render(report: Report, fmt: str) -> str:
    from analyzer.render.safe import sanitize

    module = importlib.import_module(FORMATS[fmt])
    text: str = module.render(sanitize(report) if fmt in HUMAN_FORMATS else report)
    return text
