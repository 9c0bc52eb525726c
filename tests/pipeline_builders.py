"""Build Pipelines by hand for check tests: stages, edges and (computed or given) parallel groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

import networkx as nx

from stagegraph.checks import Hit, all_checks
from stagegraph.graph import parallel_groups
from stagegraph.model import (
    DEPENDENCY_KINDS,
    Edge,
    EdgeKind,
    Effect,
    FanOut,
    ParallelGroup,
    Pipeline,
    Resource,
    Signal,
    SignalKind,
    Stage,
    Style,
)

FILE = "etl.py"


def stage(
    name: str,
    line: int = 0,
    *,
    reads: Iterable[Effect] = (),
    writes: Iterable[Effect] = (),
    resources: Iterable[Resource] = (),
    roles: Iterable[str] = (),
    fanout: FanOut | None = None,
    signals: Iterable[Signal] = (),
    file: str = FILE,
) -> Stage:
    """A stage whose id is its name (ids only need to be unique within a test)."""
    return Stage(
        id=name, name=name, file=file, line=line, reads=tuple(reads), writes=tuple(writes),
        resources=tuple(resources), roles=tuple(roles), fanout=fanout, signals=tuple(signals),
    )


def var(target: str) -> Effect:
    return Effect("variable", target, key=f"{target}#1")


def attr(target: str) -> Effect:
    return Effect("attribute", target, key=f"{target}#self")


def glob(target: str) -> Effect:
    return Effect("global", target, key=target)


def container(target: str) -> Effect:
    return Effect("container", target, key=f"{target}#self")


def table(target: str) -> Effect:
    return Effect("table", target)


def signal(kind: SignalKind, line: int, detail: str = "", file: str = FILE) -> Signal:
    return Signal(kind, file, line, detail)


def edge(source: str, target: str, kind: EdgeKind = "data", declared: bool = True, via: Sequence[str] = ()) -> Edge:
    return Edge(source, target, kind, declared, tuple(via))


def chain(*names: str, kind: EdgeKind = "data") -> list[Edge]:
    """Edges a->b->c... of one kind (declared, as call order declares them)."""
    return [edge(a, b, kind) for a, b in pairwise(names)]


def pipeline(
    stages: Sequence[Stage],
    edges: Sequence[Edge] = (),
    *,
    groups: Sequence[ParallelGroup] | None = None,
    style: Style = "plain",
    signals: Iterable[Signal] = (),
    name: str = "main",
) -> Pipeline:
    """A pipeline; parallel groups are computed from the real edges unless given."""
    if groups is None:
        real = nx.DiGraph()
        real.add_nodes_from(s.id for s in stages)
        real.add_edges_from((e.source, e.target) for e in edges if e.kind in DEPENDENCY_KINDS)
        groups = parallel_groups(stages, real)
    return Pipeline(
        id=f"{FILE}::{name}", name=name, style=style, file=FILE, line=1, stages=tuple(stages),
        edges=tuple(edges), parallel_groups=tuple(groups), signals=tuple(signals),
    )


def hits(rule: str, p: Pipeline) -> list[Hit]:
    return list(all_checks()[rule](p))


def stage_sets(rule: str, p: Pipeline) -> list[tuple[str, ...]]:
    """The stages of each hit, as a sorted multiset (pyflakes-style: assert exactly what fires)."""
    return sorted(tuple(h.stages) for h in hits(rule, p))
