"""Pipelines inside pipelines: a driver stage that runs another driver or a Celery canvas.

`link_nested` points such a stage at the pipeline it runs. `flatten_canvases` then shows a driver
that sends canvases as one pipeline of the canvases' tasks (issue 11's flattened view): the graph
layer relates those tasks across canvases from their own effects, so a hand-over from a task of
one canvas to a task of the next is an edge between the two tasks, not hidden inside two
coarse driver stages.
"""

from __future__ import annotations

from dataclasses import replace

from ..model import MEMORY_KINDS, Link, PipelineFacts, Stage


def link_nested(pipelines: list[PipelineFacts]) -> list[PipelineFacts]:
    """A stage whose callee is itself a driver points at that driver's pipeline.

    A stage whose callee only builds a Celery canvas (`def ingestion(): return chain(a.si(), b.s())`,
    sent by the driver with `.apply_async()`) runs that canvas's tasks: it gets their effects on
    external systems, which its own body (building signatures) does not have. Without them, two
    canvases sent one after the other looked coincidentally ordered however their tasks hand over.
    """
    by_qualname: dict[str, str] = {}
    canvases: dict[str, PipelineFacts] = {}
    for p in pipelines:
        if p.style in ("plain", "class"):
            module_part = p.file
            by_qualname[f"{module_part}::{p.name}"] = p.id
        elif p.style == "celery":
            canvases[f"{p.file}::{p.name}"] = p
    out = []
    for p in pipelines:
        stages = []
        for s in p.stages:
            nested = None
            if s.definition is not None and s.qualname:
                short = s.qualname.rsplit(".", 2)
                candidates = [f"{s.definition.file}::{short[-1]}", f"{s.definition.file}::{'.'.join(short[-2:])}"]
                nested = next((by_qualname[c] for c in candidates if c in by_qualname and by_qualname[c] != p.id), None)
                canvas = next((canvases[c] for c in candidates if c in canvases and canvases[c].id != p.id), None)
                if nested is None and canvas is not None and p.style in ("plain", "class"):
                    s, nested = _running(s, canvas), canvas.id
            stages.append(replace(s, nested_pipeline=nested) if nested else s)
        out.append(replace(p, stages=tuple(stages)))
    return out


def _running(stage: Stage, canvas: PipelineFacts) -> Stage:
    """`stage` with the external effects and resources of every task of the canvas it builds."""
    from .stagefx import dedupe

    reads = [e for t in canvas.stages for e in t.reads if e.kind not in MEMORY_KINDS]
    writes = [e for t in canvas.stages for e in t.writes if e.kind not in MEMORY_KINDS]
    resources = {r for t in canvas.stages for r in t.resources}
    return replace(stage, reads=dedupe([*stage.reads, *reads]), writes=dedupe([*stage.writes, *writes]),
                   resources=tuple(sorted({*stage.resources, *resources}, key=lambda r: (r.kind, r.name, r.line))))


def flatten_canvases(pipelines: list[PipelineFacts]) -> list[PipelineFacts]:
    """Each plain/class driver with stages that send Celery canvases, with those stages opened up.

    A canvas-sending stage `S` stays, with its canvas's effects (it sends the canvas and waits for it),
    and is followed by the canvas's tasks, ids `S.task`: they run because `S` sends them (a declared
    control dependency), keep the canvas's own declarations and links, and inherit every declaration
    and link of `S` towards the rest of the driver. The canvases are still reported as pipelines of
    their own.
    """
    canvases = {p.id: p for p in pipelines if p.style == "celery"}
    out = []
    for p in pipelines:
        opened = {s.id: canvases[s.nested_pipeline] for s in p.stages
                  if p.style in ("plain", "class") and s.nested_pipeline in canvases}
        out.append(_opened(p, opened) if opened else p)
    return out


def _opened(p: PipelineFacts, opened: dict[str, PipelineFacts]) -> PipelineFacts:
    stages: list[Stage] = []
    members: dict[str, list[str]] = {}
    declared: list[Link] = []
    links: list[Link] = []
    for s in p.stages:
        canvas = opened.get(s.id)
        if canvas is None:
            stages.append(s)
            members[s.id] = [s.id]
            continue
        stages.append(s)  # it still waits for its canvas: what its tasks do, it does (see `_running`)
        inner = {t.id: f"{s.id}.{t.id}" for t in canvas.stages}
        stages.extend(replace(t, id=inner[t.id]) for t in canvas.stages)
        members[s.id] = [s.id, *inner.values()]
        declared.extend(Link(s.id, new, "order", (f"{s.name} sends the canvas",)) for new in inner.values())
        links.extend(Link(s.id, new, "control", (f"{s.name} sends the canvas",)) for new in inner.values())
        declared.extend(_renamed(canvas.declared, inner))
        links.extend(_renamed(canvas.links, inner))
    declared.extend(_spread(p.declared, members))
    links.extend(_spread(p.links, members))
    return replace(p, stages=tuple(stages), declared=tuple(declared), links=tuple(links))


def _renamed(found: tuple[Link, ...], ids: dict[str, str]) -> list[Link]:
    return [replace(link, source=ids[link.source], target=ids[link.target])
            for link in found if link.source in ids and link.target in ids]


def _spread(found: tuple[Link, ...], members: dict[str, list[str]]) -> list[Link]:
    """A driver link between two stages, between everything each of them now stands for."""
    return [replace(link, source=a, target=b)
            for link in found for a in members.get(link.source, [link.source])
            for b in members.get(link.target, [link.target]) if a != b]
