"""Relate stages: Bernstein conflicts over effects, declared vs real orderings, parallel groups.

Input is `PipelineFacts` (plain data from the facts layer); output is a `Pipeline` with edges
and parallel groups. networkx does the graph work (reachability, cliques); nothing here
knows which framework a pipeline came from.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .model import (
    DEPENDENCY_KINDS,
    DIR_KEY,
    FRESH,
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
    if effect.kind == "file" and effect.key.startswith(DIR_KEY):
        return "dir"
    return effect.kind


@functools.lru_cache(maxsize=65536)  # asked once per candidate pair: each path is spelled out once
def _file_path(text: str) -> str:
    """A local path spelled one way: `./data//x.csv` and `data/x.csv` are one file (`..` is kept:
    collapsing it lexically is wrong under symlinks). URLs are left as they are."""
    if "://" in text or ("/" not in text and not text.startswith(".")):
        return text
    parts = [part for part in text.split("/") if part not in ("", ".")]
    joined = "/".join(parts)
    return ("/" + joined if text.startswith("/") else joined) or text


def _identity(effect: Effect, where: str) -> str:
    if where == "dir":
        return _file_path(effect.identity.removeprefix(DIR_KEY).rstrip("/") or "/")
    return _file_path(effect.identity) if where == "file" else effect.identity


def _pattern(text: str) -> str:
    return text.replace("[", "[[]")


def _paths_overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    if "*" in a or "*" in b:
        return fnmatch.fnmatchcase(a, _pattern(b)) or fnmatch.fnmatchcase(b, _pattern(a))
    return False


def _web_host(url: str) -> str | None:
    """The host of an http(s) URL (`https://api.example.com/v2/users/*` -> `api.example.com`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in {"http", "https"}:
        return None
    host = rest.split("/", 1)[0].split("?", 1)[0].lower()
    return host if host and "*" not in host else None


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


NONE, MAYBE, EXACT = 0, 1, 2


def _resource_path(effect: Effect) -> list[str] | None:
    """The levels of the external object an effect is on (`res:client/db/coll`), when it names one."""
    return effect.key[4:].split("/") if effect.key.startswith("res:") else None


def _resources_overlap(a: list[str], b: list[str], space_name: str) -> int:
    """Two objects of one resource hierarchy: the same, one inside the other, or provably apart.

    Different roots (two clients built differently) can't be told apart for databases and object
    stores (the same server may sit behind both), so they stay MAYBE there; for other systems
    (an SDK client, a cache) a different client is a different system.
    """
    system_a, _, name_a = a[0].partition("|")
    system_b, _, name_b = b[0].partition("|")
    if system_a != system_b:
        return NONE  # a MongoDB client and a PostgreSQL connection never reach the same data
    if name_a != name_b:
        return MAYBE if space_name in {"table", "file"} else NONE
    short = min(len(a), len(b))
    if a[:short] != b[:short]:
        return NONE
    # the same object below the handle (a collection, a bucket) is the same data; the same whole client
    # is only possibly the same data (two writes to one search cluster may be to different indexes)
    return EXACT if len(a) == len(b) and len(a) > 1 else MAYBE


def overlap(a: Effect, b: Effect) -> int:
    """Whether two effects name the same thing: NONE, MAYBE (a wildcard or unknown could match) or EXACT."""
    sa, sb = space(a), space(b)
    ra, rb = _resource_path(a), _resource_path(b)
    if (ra is not None and sb == "memory") or (rb is not None and sa == "memory"):
        return NONE  # an effect on an external system's object never changes the program's own variables
    if ra is not None and rb is not None:
        if sa != sb and "any" not in (sa, sb):
            return NONE
        found = _resources_overlap(ra, rb, sa)
        if found == EXACT and (a.kind == "unknown" or b.kind == "unknown"):
            return MAYBE
        return found
    if a.kind == "unknown" or b.kind == "unknown":
        unknown = a if a.kind == "unknown" else b
        if {sa, sb} == {"any", "xcom"} and (a.kind == "unknown") != (b.kind == "unknown") \
                and unknown.origin == "fallback":
            # a task's XCom is written by the orchestrator from its return value: a library call we
            # don't model reaches external systems, never another task's XCom (an operator we can't see
            # into is another matter: Airflow hands it XComs through its templates)
            return NONE
        return MAYBE if (sa == "any" or sb == "any" or sa == sb) else NONE
    if sa != sb:
        return NONE
    if sa == "memory":
        return EXACT if a.identity == b.identity else NONE
    if sa == "table":
        if a.target.lower() == b.target.lower() and "*" not in a.target:
            return EXACT
        return MAYBE if _tables_overlap(a.target, b.target) else NONE
    ia, ib = _identity(a, sa), _identity(b, sb)
    if FRESH in ia and FRESH in ib:
        return NONE  # each stage made its own unique name (a temp file, a uuid): never the same one
    if ia == ib and "*" not in ia:
        return EXACT
    if sa == "key" and _web_host(ia) is not None and _web_host(ia) == _web_host(ib):
        # two endpoints of one web API are one server's state (DELETE /users/1, then DELETE
        # /deleted_users/1): another path proves nothing apart, so it is a possible conflict
        return MAYBE
    # the same pattern (`/data/stock/*.json`) may well be the same file, but the unknown part can differ
    # per run or per task: a dependency to respect (unknown), never proof enough for an error
    return MAYBE if _paths_overlap(ia, ib) else NONE


@dataclass(frozen=True, slots=True)
class Conflict:
    first: Effect
    second: Effect
    what: str  # "raw" (second reads what first writes), "war", "waw"
    exact: bool = True

    @property
    def certain(self) -> bool:
        """A proven conflict: exact names, nothing assumed or unknown. Anything less is an `unknown` edge."""
        return self.exact and not (self.first.assumed or self.second.assumed)

    @property
    def label(self) -> str:
        for effect in (self.first, self.second):
            if effect.kind == "unknown":
                return f"unknown: {effect.target}"
        if not self.exact:
            return f"{self.first.target} ~ {self.second.target}"
        return self.first.target if self.first.kind not in MEMORY_KINDS else self.second.target


class _Profile:
    """A stage's effects grouped by namespace, so pairs only compare what could overlap."""

    __slots__ = ("reads", "writes")

    def __init__(self, stage: Stage) -> None:
        self.reads = _group(stage.reads)
        self.writes = _group(stage.writes)


def _group(effects: Iterable[Effect]) -> dict[str, list[Effect]]:
    out: dict[str, list[Effect]] = {}
    for e in effects:
        out.setdefault(space(e), []).append(e)
    return out


def _candidates(xs: dict[str, list[Effect]], ys: dict[str, list[Effect]]) -> Iterable[tuple[Effect, Effect]]:
    if "any" in xs or "any" in ys:
        for xl in xs.values():
            for x in xl:
                for yl in ys.values():
                    for y in yl:
                        yield x, y
        return
    for key, xl in xs.items():
        for x in xl:
            for y in ys.get(key, ()):
                yield x, y


def _buckets(effect: Effect) -> tuple[str, str | None]:
    """(namespace, bucket): two effects can overlap only when they share a bucket, or one of them has
    bucket None (a wildcard or unknown: it may overlap anything in its namespace, or anything at all
    for namespace "any"). A sound over-approximation of `overlap(a, b) != NONE`."""
    where = space(effect)
    if effect.kind == "unknown":
        return where, None
    if where == "memory":
        return where, effect.identity
    if where == "table":
        name = effect.target.lower().strip('"`[]')
        return where, None if "*" in name else name.split(".")[-1]
    identity = _identity(effect, where)
    return where, None if "*" in identity else identity


def _candidate_pairs(stages: Sequence[Stage], profiles: dict[str, _Profile]) -> list[tuple[int, int]]:
    """Index pairs (i < j) of stages whose effects could conflict, without comparing every pair.

    A linear chain of n stages has O(n) such pairs where `itertools.combinations` has n²/2: the
    cost that made a 4,000-stage driver take half a minute.
    """
    exact: dict[tuple[str, str], set[int]] = {}
    touches: dict[str, set[int]] = {}
    wild: dict[str, set[int]] = {}
    for i, stage in enumerate(stages):
        profile = profiles[stage.id]
        for group in (profile.reads, profile.writes):
            for effects in group.values():
                for effect in effects:
                    where, bucket = _buckets(effect)
                    touches.setdefault(where, set()).add(i)
                    if bucket is None:
                        wild.setdefault(where, set()).add(i)
                    else:
                        exact.setdefault((where, bucket), set()).add(i)
    pairs: set[tuple[int, int]] = set()

    def join(xs: Iterable[int], ys: Iterable[int]) -> None:
        ys = list(ys)
        for x in xs:
            for y in ys:
                if x != y:
                    pairs.add((x, y) if x < y else (y, x))

    for members in exact.values():
        if len(members) > 1:
            ordered = sorted(members)
            pairs.update(itertools.combinations(ordered, 2))
    for where, members in wild.items():
        join(members, touches[where] if where != "any" else range(len(stages)))
        if where != "any":
            join(members, wild.get("any", ()))
    for where, members in touches.items():  # an unknown of namespace "any" meets every namespace
        if where != "any" and "any" in wild:
            join(wild["any"], members)
    return sorted(pairs)


def conflicts(first: Stage, second: Stage, profiles: dict[str, _Profile] | None = None) -> list[Conflict]:
    """Bernstein's conditions: second reads what first writes, writes what it reads, or both write.

    An unknown write conflicts with everything of its kind, unknown reads and writes included;
    two reads never conflict, whatever they name.
    """
    p1 = profiles[first.id] if profiles else _Profile(first)
    p2 = profiles[second.id] if profiles else _Profile(second)
    found: list[Conflict] = []
    for pairs, what in ((_candidates(p1.writes, p2.reads), "raw"), (_candidates(p1.writes, p2.writes), "waw"),
                        (_candidates(p1.reads, p2.writes), "war")):
        for x, y in pairs:
            o = overlap(x, y)
            if o:
                exact = o == EXACT and x.kind != "unknown" and y.kind != "unknown"
                found.append(Conflict(x, y, what, exact))
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


def _forward(a: Stage, b: Stage, found: list[Conflict], declared_reach: Mapping[str, Container[str]],
             rank: dict[str, int], by_data: bool) -> bool:
    """Whether the edge between a and b points a -> b: the declared order wins, else (when `by_data`)
    the direction data flows (only one reads what the other writes), else the declared order's
    linear extension, which can't close a cycle."""
    if b.id in declared_reach[a.id]:
        return True
    if a.id in declared_reach[b.id]:
        return False
    if by_data:
        raw_ab = any(c.what == "raw" for c in found)  # b reads what a writes
        raw_ba = any(c.what == "war" for c in found)  # a reads what b writes
        if raw_ab != raw_ba:
            return raw_ab
    return rank[a.id] <= rank[b.id]


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
    declared_reach = reachability(declared)
    try:
        rank = {n: i for i, n in enumerate(nx.lexicographical_topological_sort(declared, key=index.__getitem__))}
    except nx.NetworkXUnfeasible:  # a declared cycle: fall back to source order
        rank = dict(index)
    profiles = {s.id: _Profile(s) for s in stages}
    pair_conflicts = [(stages[i], stages[j], found) for i, j in _candidate_pairs(stages, profiles)
                      if (found := conflicts(stages[i], stages[j], profiles))]

    edges: dict[tuple[str, str], Edge] = {}

    def add(source: str, target: str, kind: EdgeKind, via: Sequence[str]) -> None:
        key = (source, target)
        old = edges.get(key)
        if old is not None:
            kind = old.kind if _KIND_RANK[old.kind] >= _KIND_RANK[kind] else kind
            via = [*old.via, *(v for v in via if v not in old.via)]
        pair = shared_resources([by_id[source], by_id[target]])
        is_declared = source != target and target in declared_reach[source]
        edges[key] = Edge(source, target, kind, is_declared, tuple(via), pair)

    def relate(by_data: bool) -> nx.DiGraph:
        edges.clear()
        for a, b, found in pair_conflicts:
            first, second = (a, b) if _forward(a, b, found, declared_reach, rank, by_data) else (b, a)
            kind: EdgeKind = "data" if any(c.certain for c in found) else "unknown"
            chosen = [c for c in found if c.certain] if kind == "data" else found
            add(first.id, second.id, kind, sorted({c.label for c in chosen}))
        for link in facts.links:
            if link.source in index and link.target in index and link.source != link.target:
                add(link.source, link.target, link.kind, link.via)
        graph = nx.DiGraph()
        graph.add_nodes_from(index)
        graph.add_edges_from(k for k, e in edges.items() if e.kind in DEPENDENCY_KINDS)
        return graph

    real = relate(by_data=True)
    if not nx.is_directed_acyclic_graph(real):
        real = relate(by_data=False)  # data direction closed a cycle: orient by the declared order alone
    for key in _implied_unknowns(real, edges):
        del edges[key]
    real_reach = reachability(real)

    for link in facts.declared:
        s, t = link.source, link.target
        if s not in index or t not in index or s == t or (s, t) in edges:
            continue
        if t in real_reach[s] or s in real_reach[t]:
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


class _Reach:
    """The nodes reachable from one node, as one bit per node of a shared index (membership only)."""

    __slots__ = ("bits", "index")

    def __init__(self, bits: int, index: dict[Any, int]) -> None:
        self.bits, self.index = bits, index

    def __contains__(self, node: object) -> bool:
        position = self.index.get(node)
        return position is not None and bool(self.bits >> position & 1)


def reachability(graph: nx.DiGraph) -> dict[Any, _Reach]:
    """`nx.descendants` of every node, as bit sets built bottom-up over the condensation.

    The sets themselves hold n² entries on a chain of n stages (1 GB at 4,000 stages); bits over
    the condensation cost n²/8 bytes and one OR per edge.
    """
    index = {node: i for i, node in enumerate(graph.nodes)}
    condensed = nx.condensation(graph)
    mapping = condensed.graph["mapping"]
    members = {c: sum(1 << index[n] for n in condensed.nodes[c]["members"]) for c in condensed.nodes}
    below: dict[int, int] = {}
    for component in reversed(list(nx.topological_sort(condensed))):
        bits = 0
        for child in condensed.successors(component):
            bits |= members[child] | below[child]
        below[component] = bits
    out = {}
    for node, component in mapping.items():
        bits = below[component]
        if len(condensed.nodes[component]["members"]) > 1:  # in a cycle: the rest of its component too
            bits |= members[component] & ~(1 << index[node])
        out[node] = _Reach(bits, index)
    return out


def _implied_unknowns(real: nx.DiGraph, edges: dict[tuple[str, str], Edge]) -> list[tuple[str, str]]:
    """`unknown` edges another path of real dependencies already implies.

    One unknown write conflicts with every stage that touches its kind, which is n² edges on a big
    pipeline; dropping the implied ones keeps every ordering (reachability) while the report stays
    readable. Data and control edges are always kept: their `via` says what links the stages.
    """
    unknown = [k for k, e in edges.items() if e.kind == "unknown"]
    if len(unknown) < 2 or not nx.is_directed_acyclic_graph(real):
        return []
    reduced = nx.transitive_reduction(real)
    return [k for k in unknown if not reduced.has_edge(*k)]


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
    reach = reachability(real)

    def ordered(a: str, b: str) -> bool:
        return b in reach[a] or a in reach[b]

    by_id = {s.id: s for s in stages}
    groups: list[ParallelGroup] = []
    seen: set[tuple[str, ...]] = set()
    in_order = sorted(earliest, key=index.__getitem__)
    at_step: dict[int, list[str]] = {}
    for node in in_order:
        at_step.setdefault(earliest[node], []).append(node)
    with_slack = [n for n in in_order if earliest[n] < latest[n]]  # only these can join a later step
    for step in range(depth + 1):
        members = at_step.get(step, [])
        members = [n for i, n in enumerate(members) if not any(ordered(n, m) for m in members[:i])]
        for node in with_slack:
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
