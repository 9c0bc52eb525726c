"""`stagegraph why PIPELINE A B`: why two stages were judged dependent, unknown or independent.

Prints every effect of both stages with where it came from (seen in the code, a catalog model, or the
open-world fallback), then each Bernstein conflict between them and the rule that decided the edge.
It reads the Report and the graph layer's own conflict test, so the explanation can't drift from the
verdict it explains.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from .graph import conflicts
from .model import DEPENDENCY_KINDS, Edge, Effect, Pipeline, Report, Stage

_ORIGIN = {"code": "seen in the code", "model": "catalog model", "fallback": "open-world fallback (assumed)"}
_WHAT = {"raw": "reads what the earlier one writes", "war": "writes what the earlier one reads",
         "waw": "both write it"}


class WhyError(LookupError):
    """The pipeline or a stage named on the command line does not exist (a usage error)."""


def find_pipeline(report: Report, wanted: str) -> Pipeline:
    exact = [p for p in report.pipelines if wanted in (p.id, p.name)]
    loose = [p for p in report.pipelines if p.id.endswith(wanted) or p.name.endswith(wanted)]
    hits = exact or loose
    if len(hits) != 1:
        known = ", ".join(sorted(p.id for p in report.pipelines)[:20]) or "none"
        raise WhyError(f"{'no' if not hits else 'more than one'} pipeline matches {wanted!r} (pipelines: {known})")
    return hits[0]


def find_stage(pipeline: Pipeline, wanted: str) -> Stage:
    for stage in pipeline.stages:
        if wanted in (stage.id, stage.name):
            return stage
    names = ", ".join(s.id for s in pipeline.stages)
    raise WhyError(f"pipeline {pipeline.name} has no stage {wanted!r} (stages: {names})")


def _effect_line(prefix: str, e: Effect) -> str:
    where = f"{e.file}:{e.line}" if e.file else "?"
    what = f"unknown {e.of or 'any'}: {e.target}" if e.kind == "unknown" else f"{e.kind} {e.target}"
    return f"    {prefix} {what}  [{_ORIGIN.get(e.origin, e.origin)}; {where}]"


def _stage_block(stage: Stage) -> Iterable[str]:
    yield f"  {stage.id} ({stage.file}:{stage.line})"
    if not stage.reads and not stage.writes:
        yield "    no effects found"
    for e in stage.reads:
        yield _effect_line("reads ", e)
    for e in stage.writes:
        yield _effect_line("writes", e)


def _edge_between(pipeline: Pipeline, a: str, b: str) -> Edge | None:
    for edge in pipeline.edges:
        if {edge.source, edge.target} == {a, b}:
            return edge
    return None


def explain_pair(report: Report, pipeline_name: str, first: str, second: str) -> str:
    """The explanation as text; raises WhyError for names that don't exist."""
    pipeline = find_pipeline(report, pipeline_name)
    a, b = find_stage(pipeline, first), find_stage(pipeline, second)
    order = [s.id for s in pipeline.stages]
    if order.index(b.id) < order.index(a.id):
        a, b = b, a  # Bernstein's conditions read from the earlier stage to the later one
    lines = [f"pipeline {pipeline.name} ({pipeline.id})", "", "effects:"]
    lines += [*_stage_block(a), *_stage_block(b), "", "conflicts (Bernstein's conditions):"]
    found = conflicts(a, b)
    for c in found:
        certainty = "certain" if c.certain else "possible (unknown, a pattern or an assumed effect)"
        lines.append(f"  {b.id} {_WHAT[c.what]}: {c.label} -- {certainty}")
    if not found:
        lines.append("  none")
    edge = _edge_between(pipeline, a.id, b.id)
    lines.append("")
    if edge is None:
        lines.append("verdict: no direct edge; "
                     + ("ordered through other stages" if _reachable(pipeline, a.id, b.id) else "independent"))
    else:
        meaning = {"data": "a real dependency (a certain conflict)",
                   "unknown": "may depend: independence could not be proven, so it is treated as a dependency",
                   "control": "a real dependency: one runs only depending on the other's outcome",
                   "order": "coincidental: only the code's order or a declaration links them"}[edge.kind]
        via = "; ".join(edge.via)
        lines.append(f"verdict: {edge.source} -> {edge.target} is {edge.kind}: {meaning}" + (f" (via {via})" if via
                                                                                             else ""))
    return "\n".join(lines) + "\n"


def _reachable(pipeline: Pipeline, a: str, b: str) -> bool:
    """Whether real (data/control/unknown) edges order the two stages through others."""
    graph = nx.DiGraph()
    graph.add_nodes_from(s.id for s in pipeline.stages)
    graph.add_edges_from((e.source, e.target) for e in pipeline.edges if e.kind in DEPENDENCY_KINDS)
    return bool(nx.has_path(graph, a, b) or nx.has_path(graph, b, a))
