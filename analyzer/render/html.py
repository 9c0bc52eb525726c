"""The HTML audit report: one self-contained file (inline CSS, inline SVG, no scripts) that opens offline.

Filtering by severity, rule and pipeline is CSS only (radio buttons and `:checked ~` selectors,
in a `<details>` panel), so the page works under a Content-Security-Policy that forbids scripts.

Rendered with jinja2 with autoescape on, so every analysed string is escaped by the template
engine; the only `Markup` is the SVG that `dot` drew from our own escaped DOT source. When
Graphviz is not installed, each pipeline shows a note and its DOT source instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import Edge, Finding, Pipeline, Report, Stage
from ..spans import parts_of
from . import dot

if TYPE_CHECKING:
    from markupsafe import Markup

_SEVERITY_ORDER = {"error": 0, "warning": 1, "note": 2}
KIND_WORDS = {"data": "data", "control": "control", "unknown": "unknown (treated as real)", "order": "coincidental"}


@dataclass(frozen=True, slots=True)
class Diagram:
    svg: Markup | None
    source: str
    error: str = ""


def _diagram(report: Report, pipeline: Pipeline, max_stages: int | None) -> Diagram:
    from markupsafe import Markup

    try:
        svg, source = dot.pipeline_svg(report, pipeline, max_stages)
    except dot.GraphvizError as exc:
        return Diagram(None, dot.render_views([dot.view(report, pipeline, max_stages)], legend=False), str(exc))
    # trusted: drawn by `dot` from DOT whose every analysed string went through dot._html/_plain
    return Diagram(Markup(svg) if svg is not None else None, source)


def _stage_row(stage: Stage, rules: dict[str, list[tuple[str, str]]], groups: dict[str, list[int]]
               ) -> dict[str, Any]:
    flagged = rules.get(stage.id, [])
    worst = min((sev for _, sev in flagged), key=lambda sev: _SEVERITY_ORDER[sev], default="")
    return {
        "stage": stage,
        # one chip per resource, however many calls touch it
        "resources": list(dict.fromkeys(f"{dot.RESOURCE_ABBREV.get(r.kind, r.kind)}: {r.name}"
                                        for r in stage.resources)),
        "rules": list(dict.fromkeys(flagged)),
        "worst": worst,
        "groups": groups.get(stage.id, []),
    }


def _evidence(p: Pipeline, edge: Edge) -> list[dict[str, Any]]:
    """For each target an edge goes through: where the earlier stage touches it and where the later one does."""
    try:
        source, target = p.stage(edge.source), p.stage(edge.target)
    except KeyError:
        return []

    def places(stage: Stage, name: str) -> list[str]:
        return sorted({f"{e.file or stage.file}:{e.line}" for e in (*stage.writes, *stage.reads)
                       if e.target == name and e.line})

    return [{"via": v, "from": places(source, v), "to": places(target, v)} for v in edge.via]


def _pipeline_context(report: Report, p: Pipeline, max_stages: int | None, draw: bool) -> dict[str, Any]:
    findings = sorted(dot.pipeline_findings(report, p), key=lambda f: (_SEVERITY_ORDER[f.severity], f.line))
    rules: dict[str, list[tuple[str, str]]] = {}
    for f in findings:
        for sid in f.stages:
            rules.setdefault(sid, []).append((f.rule, f.severity))
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(p.parallel_groups, start=1):
        for sid in g.stages:
            groups.setdefault(sid, []).append(i)
    names = {s.id: s.name for s in p.stages}
    return {
        "pipeline": p,
        "anchor": dot.stable_id("pipeline", p.id),
        "diagram": _diagram(report, p, max_stages) if draw else None,
        "stages": [_stage_row(s, rules, groups) for s in p.stages],
        "real": [e for e in p.edges if e.kind != "order"],
        "evidence": {(e.source, e.target): _evidence(p, e) for e in p.edges if e.kind != "order"},
        "coincidental": [e for e in p.edges if e.kind == "order"],
        "names": names,
        "groups": [{"number": i, "stages": [names.get(s, s) for s in g.stages], "shared": g.shared_resources,
                    "fill": dot.GROUP_FILLS[(i - 1) % len(dot.GROUP_FILLS)]}
                   for i, g in enumerate(p.parallel_groups, start=1)],
        "findings": findings,
        "counts": Counter(f.severity for f in findings),
    }


def context(report: Report, max_stages: int | None = None, draw: bool = True) -> dict[str, Any]:
    """Everything the template shows, as plain values (the template does no analysis)."""
    assigned = {id(f) for p in report.pipelines for f in dot.pipeline_findings(report, p)}
    findings: list[Finding] = sorted(report.findings,
                                     key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.file, f.line, f.rule))
    counts = Counter(f.severity for f in report.findings)
    anchors = {p.id: dot.stable_id("pipeline", p.id) for p in report.pipelines}
    return {
        "report": report,
        "summary": report.summary,
        "counts": {k: counts.get(k, 0) for k in ("error", "warning", "note")},
        "findings": findings,
        "anchors": anchors,
        # filter keys: CSS-safe ids for every rule and pipeline that has a finding
        "rule_keys": {rule: dot.stable_id("rule", rule) for rule in sorted({f.rule for f in findings})},
        "pipeline_keys": {pid: dot.stable_id("filter", pid) for pid in sorted({f.pipeline for f in findings
                                                                               if f.pipeline in anchors})},
        "unassigned": [f for f in findings if id(f) not in assigned],
        "pipelines": [_pipeline_context(report, p, max_stages, draw) for p in report.pipelines],
        "dot_available": dot.dot_available(),
        "parts_of": parts_of,
        "kind_words": KIND_WORDS,
    }


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader(__package__ or "stagegraph.render", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(report: Report, max_stages: int | None = dot.DEFAULT_MAX_STAGES) -> str:
    """The audit report as one HTML page; diagrams of big pipelines fold to `max_stages` stages."""
    template = _environment().get_template("report.html.j2")
    text: str = template.render(**context(report, max_stages))
    return text
