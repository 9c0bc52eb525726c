"""Helpers shared by the checks: stage lookups, real-dependency reachability, signal attribution.

Checks read only the `Pipeline`; nothing here touches source code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..model import DEPENDENCY_KINDS, Pipeline, RoleEvidence, Signal, Stage
from ..spans import Template, Text, code, join, plain

if TYPE_CHECKING:
    from . import Hit

#: Fan-out mechanisms whose branches really run at the same time (a plain loop does not).
CONCURRENT_MECHANISMS = frozenset({"executor", "pool", "gather", "map", "group", "chord", "expand", "union"})


def name_of(pipeline: Pipeline, stage_id: str) -> str:
    for stage in pipeline.stages:
        if stage.id == stage_id:
            return stage.name
    return stage_id


def quoted(names: Iterable[str]) -> Text:
    """`a`, `a` and `b`, `a`, `b` and `c`: stage names as a person reads them, each a code span."""
    items = [code(n) for n in names]
    if len(items) <= 1:
        return join(items, "")
    return join([join(items[:-1]), items[-1]], " and ")


def is_concurrent_fanout(stage: Stage) -> bool:
    return stage.fanout is not None and stage.fanout.mechanism in CONCURRENT_MECHANISMS


def successors(pipeline: Pipeline, kinds: frozenset[str] = DEPENDENCY_KINDS) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {s.id: set() for s in pipeline.stages}
    for edge in pipeline.edges:
        if edge.kind in kinds and edge.source in graph and edge.target in graph:
            graph[edge.source].add(edge.target)
    return graph


def reachable(graph: dict[str, set[str]], start: str, avoid: frozenset[str] = frozenset()) -> set[str]:
    """Stages reachable from `start` along `graph`, not passing through `avoid` (which can be reached)."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt in seen:
                continue
            seen.add(nxt)
            if nxt not in avoid:
                stack.append(nxt)
    return seen


def later(pipeline: Pipeline, stage_ids: Iterable[str]) -> Stage:
    """The stage that comes last in the pipeline's order: where a finding about several stages points."""
    order = {s.id: i for i, s in enumerate(pipeline.stages)}
    return pipeline.stage(max(stage_ids, key=lambda s: order.get(s, -1)))


def signals_of(stage: Stage, kinds: Iterable[str]) -> list[Signal]:
    wanted = set(kinds)
    return sorted((s for s in stage.signals if s.kind in wanted), key=lambda s: (s.file, s.line, s.detail))


def fanout_targets(pipeline: Pipeline, signal: Signal) -> tuple[Stage, ...]:
    """The fan-out stages a driver-level signal (an uncapped pool, a bare `result()`) is about.

    The nearest concurrent fan-out stage(s) in the same file, by line; none when the driver has
    no fan-out stage, in which case the finding stays on the signal's own line.
    """
    candidates = [s for s in pipeline.stages if is_concurrent_fanout(s) and s.file == signal.file]
    if not candidates:
        return ()

    def distance(stage: Stage) -> int:
        line = stage.fanout.line if stage.fanout is not None and stage.fanout.line else stage.line
        return abs(line - signal.line)

    best = min(distance(s) for s in candidates)
    return tuple(s for s in candidates if distance(s) == best)


def attributed(pipeline: Pipeline, kinds: Iterable[str]) -> Iterator[tuple[tuple[Stage, ...], Signal]]:
    """Each matching signal with the stages it belongs to: the stage's own, or driver ones via fan-out."""
    wanted = set(kinds)
    for stage in pipeline.stages:
        for signal in signals_of(stage, wanted):
            yield (stage,), signal
    for signal in sorted(pipeline.signals, key=lambda s: (s.file, s.line, s.detail)):
        if signal.kind in wanted:
            yield fanout_targets(pipeline, signal), signal


def evidence_text(evidence: RoleEvidence | None) -> Text:
    """A role's evidence as message text: prose around one code span (empty when there is none)."""
    if evidence is None:
        return plain("")
    pieces = [plain(evidence.before)]
    if evidence.code:
        pieces.append(code(evidence.code))
    pieces.append(plain(evidence.after))
    return join(pieces, "")


def site_hits(pipeline: Pipeline, rule: str, kind: str, message: Template, no_detail: str = "") -> Iterator[Hit]:
    """One hit per code site of a stage signal (`by_site`), at the site, naming every stage that
    reaches it: `message` is filled with `stage` (those names) and `detail` (the signal's, else `no_detail`)."""
    from . import Hit

    for signal, stages in by_site(pipeline, (kind,)):
        yield Hit(
            rule=rule,
            message=message.format(stage=names(stages), detail=signal.detail or no_detail),
            file=signal.file,
            line=signal.line,
            stages=tuple(s.id for s in stages),
            column=signal.column,
        )


def by_site(
    pipeline: Pipeline, kinds: Iterable[str], keep: Callable[[Stage, Signal], bool] = lambda stage, signal: True
) -> list[tuple[Signal, tuple[Stage, ...]]]:
    """Each stage signal once per call site, with every stage that reaches it (in pipeline order).

    A helper with a bare `future.result()` that seven stages call is one cause, so one finding.
    """
    sites: dict[tuple[str, int, int | None, str, str], tuple[Signal, list[Stage]]] = {}
    for stage in pipeline.stages:
        for signal in signals_of(stage, kinds):
            if keep(stage, signal):
                key = (signal.file, signal.line, signal.column, signal.kind, signal.detail)
                sites.setdefault(key, (signal, []))[1].append(stage)
    return [(signal, tuple(stages)) for signal, stages in sorted(sites.values(), key=lambda v: (
        v[0].file, v[0].line, v[0].column or 0, v[0].detail))]


def names(stages: Iterable[Stage]) -> str:
    """Stage names for a message, each once (`upload_file` called twice is still one name)."""
    return ", ".join(dict.fromkeys(s.name for s in stages))
