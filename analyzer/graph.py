"""Relate stages: Bernstein conflicts over effects, declared vs real orderings, parallel groups.

Input is `PipelineFacts` (plain data from the facts layer); output is a `Pipeline` with edges
and parallel groups. networkx does the graph work (reachability, cliques); nothing here
knows which framework a pipeline came from.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

from analyzer.model import (
    DEPENDENCY_KINDS,
    MEMORY_KINDS,
    Edge,
    EdgeKind,
    Effect,
    ParallelGroup,
    Pipeline,
    PipelineFacts,
    Resource,
    Stage,
)

#: At most this many parallel groups are listed per pipeline (maximal antichains can be many).
MAX_GROUPS = 40
_KIND_RANK: dict[str, int] = {"data": 3, "control": 2, "unknown": 1, "order": 0}


def space(effect: Effect) -> str:
    """Which namespace an effect lives in: memory, file, table, key, xcom, queue."""
    if effect.kind in MEMORY_KINDS:
        return "memory"
    if effect.kind == "unknown":
        return effect.of or "any"
    return effect.kind


def _pattern(text: str) -> str:
    return text.replace("[", "[[]")


def _paths_overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    if "*" in a or "*" in b:
        return fnmatch.fnmatchcase(a, _pattern(b)) or fnmatch.fnmatchcase(b, _pattern(a))
    return False


def _tables_overlap(a: str, b: str) -> bool:
    a, b = a.lower().strip('"`[]'), b.lower().strip('"`[]')
    if a == b:
        return True
    a_parts, b_parts = a.split("."), b.split(".")
    if len(a_parts) != len(b_parts):
        # an unqualified name may resolve to the qualified one through the search path
        short, long_ = (a_parts, b_parts) if len(a_parts) < len(b_parts) else (b_parts, a_parts)
        return long_[-len(short) :] == short
    return ("*" in a or "*" in b) and _paths_overlap(a, b)


def overlap(a: Effect, b: Effect) -> bool:
    """Whether two effects may name the same thing."""
    sa, sb = space(a), space(b)
    if a.kind == "unknown" or b.kind == "unknown":
        return sa == "any" or sb == "any" or sa == sb
    if sa != sb:
        return False
    if sa == "memory":
        return a.identity == b.identity
    if sa == "table":
        return _tables_overlap(a.target, b.target)
    return _paths_overlap(a.identity, b.identity)


@dataclass(frozen=True, slots=True)
class Conflict:
    first: Effect
    second: Effect
    what: str  # "raw", "war", "waw"

    @property
    def certain(self) -> bool:
        return not (
            self.first.assumed or self.second.assumed or self.first.kind == "unknown" or self.second.kind == "unknown"
        )

    @property
    def label(self) -> str:
        for effect in (self.first, self.second):
            if effect.kind == "unknown":
                return f"unknown: {effect.target}"
        return self.first.target if self.first.kind not in MEMORY_KINDS else self.second.target


def conflicts(first: Stage, second: Stage) -> list[Conflict]:
    """Bernstein's conditions: second reads what first writes, writes what it reads, or both write."""
    found: list[Conflict] = []
    # An unknown write conflicts with everything of its kind, unknown reads and writes included;
    # two reads never conflict, whatever they name.
    for w in first.writes:
        for r in second.reads:
            if overlap(w, r):
                found.append(Conflict(w, r, "raw"))
        for w2 in second.writes:
            if overlap(w, w2):
                found.append(Conflict(w, w2, "waw"))
    for r in first.reads:
        for w in second.writes:
            if overlap(r, w):
                found.append(Conflict(r, w, "war"))
    return found


def resource_label(resource: Resource) -> str:
    return f"{resource.kind}:{resource.name}"


def shared_resources(stages: Iterable[Stage]) -> tuple[str, ...]:
    """Resources that two or more of `stages` touch."""
    counts: dict[str, int] = {}
    for stage in stages:
        for label in {resource_label(r) for r in stage.resources}:
            counts[label] = counts.get(label, 0) + 1
    return tuple(sorted(label for label, n in counts.items() if n >= 2))


def _orient(a: Stage, b: Stage, declared: nx.DiGraph, index: dict[str, int]) -> tuple[Stage, Stage]:
    if declared.has_node(a.id) and declared.has_node(b.id):
        if nx.has_path(declared, b.id, a.id) and not nx.has_path(declared, a.id, b.id):
            return b, a
        if nx.has_path(declared, a.id, b.id):
            return a, b
    ab = any(c.what == "raw" for c in conflicts(a, b))
    ba = any(c.what == "raw" for c in conflicts(b, a))
    if ba and not ab:
        return b, a
    if ab and not ba:
        return a, b
    return (a, b) if index[a.id] <= index[b.id] else (b, a)


def build(facts: PipelineFacts) -> Pipeline:
    """Turn facts into a pipeline with real, unknown and coincidental edges and parallel groups."""
    stages = facts.stages
    index = {s.id: i for i, s in enumerate(stages)}
    by_id = {s.id: s for s in stages}
    declared = nx.DiGraph()
    declared.add_nodes_from(index)
    declared.add_edges_from(
        (link.source, link.target) for link in facts.declared if link.source in index and link.target in index
    )

    edges: dict[tuple[str, str], Edge] = {}

    def add(source: str, target: str, kind: EdgeKind, via: Sequence[str]) -> None:
        key = (source, target)
        old = edges.get(key)
        if old is not None:
            kind = old.kind if _KIND_RANK[old.kind] >= _KIND_RANK[kind] else kind
            via = [*old.via, *(v for v in via if v not in old.via)]
        pair = shared_resources([by_id[source], by_id[target]])
        is_declared = source != target and nx.has_path(declared, source, target)
        edges[key] = Edge(source, target, kind, is_declared, tuple(via), pair)

    for a, b in itertools.combinations(stages, 2):
        first, second = _orient(a, b, declared, index)
        found = conflicts(first, second)
        if not found:
            continue
        kind: EdgeKind = "data" if any(c.certain for c in found) else "unknown"
        chosen = [c for c in found if c.certain] if kind == "data" else found
        via = sorted({c.label for c in chosen})
        add(first.id, second.id, kind, via)

    for link in facts.links:
        if link.source in index and link.target in index and link.source != link.target:
            add(link.source, link.target, link.kind, link.via)

    real = nx.DiGraph()
    real.add_nodes_from(index)
    real.add_edges_from(k for k, e in edges.items() if e.kind in DEPENDENCY_KINDS)

    for link in facts.declared:
        s, t = link.source, link.target
        if s not in index or t not in index or s == t or (s, t) in edges:
            continue
        if nx.has_path(real, s, t) or nx.has_path(real, t, s):
            continue
        add(s, t, "order", link.via)

    ordered = sorted(edges.values(), key=lambda e: (index[e.source], index[e.target]))
    return Pipeline(
        id=facts.id,
        name=facts.name,
        style=facts.style,
        file=facts.file,
        line=facts.line,
        stages=stages,
        edges=tuple(ordered),
        parallel_groups=parallel_groups(stages, real),
        signals=facts.signals,
        notes=facts.notes,
    )


def parallel_groups(stages: Sequence[Stage], real: nx.DiGraph) -> tuple[ParallelGroup, ...]:
    """Stages that could run at the same time, one group per step of the fastest schedule.

    A stage's earliest step is the longest chain of real dependencies leading to it, its latest
    the step it could be delayed to without delaying anything after it. Group k holds the stages
    whose earliest step is k, plus stages with slack whose window covers k and that no real
    dependency orders against the group. Every group is an antichain; there are at most as many
    groups as steps, where listing every maximal antichain grows combinatorially and buries the answer.
    """
    if len(stages) < 2:
        return ()
    index = {s.id: i for i, s in enumerate(stages)}
    dag = real if nx.is_directed_acyclic_graph(real) else _acyclic(real)
    earliest: dict[str, int] = {}
    for node in nx.topological_sort(dag):
        earliest[node] = 1 + max((earliest[p] for p in dag.predecessors(node)), default=-1)
    below: dict[str, int] = {}
    for node in reversed(list(nx.topological_sort(dag))):
        below[node] = 1 + max((below[c] for c in dag.successors(node)), default=-1)
    depth = max(earliest.values(), default=0)
    latest = {node: depth - below[node] for node in dag.nodes}
    reach = {node: nx.descendants(real, node) for node in real.nodes}

    def ordered(a: str, b: str) -> bool:
        return b in reach[a] or a in reach[b]

    by_id = {s.id: s for s in stages}
    groups: list[ParallelGroup] = []
    seen: set[tuple[str, ...]] = set()
    for step in range(depth + 1):
        members = [n for n in sorted(earliest, key=index.__getitem__) if earliest[n] == step]
        members = [n for i, n in enumerate(members) if not any(ordered(n, m) for m in members[:i])]
        for node in sorted(earliest, key=index.__getitem__):
            if earliest[node] < step <= latest[node] and not any(ordered(node, m) for m in members):
                members.append(node)
        key = tuple(sorted(members, key=index.__getitem__))
        if len(key) >= 2 and key not in seen:
            seen.add(key)
            groups.append(ParallelGroup(key, shared_resources(by_id[m] for m in key)))
    return tuple(groups[:MAX_GROUPS])


def _acyclic(real: nx.DiGraph) -> nx.DiGraph:
    """Real dependencies with cycles (mutual unknowns) collapsed onto an order-respecting DAG."""
    dag = nx.DiGraph()
    dag.add_nodes_from(real.nodes)
    order = list(real.nodes)
    position = {n: i for i, n in enumerate(order)}
    dag.add_edges_from((a, b) for a, b in real.edges if position[a] < position[b])
    return dag
