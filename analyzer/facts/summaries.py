"""Compose direct summaries through calls: what a function does including everything it calls.

Parameters of a callee are mapped onto the caller's argument places, `self` onto the caller's
receiver; recursion is handled by iterating each strongly connected component of the call
graph to a fixed point (networkx condensation gives the bottom-up order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx

from ..model import Signal
from .effects import (
    SELF,
    Access,
    CallSite,
    Context,
    Place,
    ResourceUse,
    Summary,
    on_handle,
    resolve_sql,
    summarize,
)
from .index import FunctionRef
from .values import MARK, substitute

_MAX_ROUNDS = 8


@dataclass(slots=True)
class Total:
    """A function's effects including its callees', in the function's own terms (its params, its self)."""

    accesses: set[Access] = field(default_factory=set)
    resources: set[ResourceUse] = field(default_factory=set)
    signals: set[Signal] = field(default_factory=set)
    callees: set[str] = field(default_factory=set)


def map_access(access: Access, site: CallSite) -> list[Access]:
    """Translate a callee's access into the caller's places through one call site."""
    place = access.place
    if place is None and MARK in access.target:
        target = substitute(access.target, dict(site.values))
        if access.kind == "sql":
            return resolve_sql(access, target)
        # the caller's own parameter markers survive substitution and propagate further up
        return [access.moved(None, target)]
    if place is None or place[0] == "global":
        return [access]
    if access.of == "handle" and place[0] == "param":
        handle = dict(site.handle_params).get(place[1])
        if handle is not None:
            return [on_handle(access, handle)]
    targets: Iterable[Place]
    if place[0] == "param":
        targets = next((places for name, places in site.args if name == place[1]), frozenset())
    else:  # ("self", attr)
        if site.receiver is None:
            return []
        targets = [
            (("self", place[1]) if r == SELF else r) for r in site.receiver
        ]
    out = []
    for t in targets:
        if t == SELF:
            continue
        kind = access.kind
        if t[0] == "global" and kind == "attribute":
            kind = "container"
        if place[0] == "param" and kind == "attribute":
            kind = "container"
        if access.of == "handle":
            if t[0] == "param":  # still a parameter of the caller: its own callers decide
                out.append(access.moved(t, access.target))
            continue  # an object that is not a handle: a method on pipeline data, already a read
        out.append(access.moved(t, _label(t), kind))
    return out


def _label(place: Place) -> str:
    from .effects import place_label

    return place_label(place)


def compose(
    functions: dict[str, FunctionRef],
    ctx: Context,
    signals_of: dict[str, tuple[Signal, ...]] | None = None,
    direct: dict[str, Summary] | None = None,
) -> tuple[dict[str, Summary], dict[str, Total], list[str]]:
    """Direct summaries (unless given), composed totals, and the functions whose recursion did not settle.

    A component still changing after the round budget gets an unknown effect on everything, so its
    stages' edges become `unknown` rather than silently missing what the last rounds would have added.
    """
    unconverged: list[str] = []
    if direct is None:
        direct = {q: summarize(fn, ctx) for q, fn in functions.items()}
    graph = nx.DiGraph()
    graph.add_nodes_from(direct)
    for q, summary in direct.items():
        for site in summary.calls:
            if site.callee in direct:
                graph.add_edge(q, site.callee)
    totals: dict[str, Total] = {}
    condensed = nx.condensation(graph)
    for component in reversed(list(nx.topological_sort(condensed))):
        members = sorted(condensed.nodes[component]["members"])
        for q in members:
            totals[q] = Total(set(direct[q].accesses), set(direct[q].resources),
                              set((signals_of or {}).get(q, ())), set())
        for _ in range(_MAX_ROUNDS):
            changed = False
            for q in members:
                total = totals[q]
                before = (len(total.accesses), len(total.resources), len(total.signals), len(total.callees))
                for site in direct[q].calls:
                    callee = totals.get(site.callee)
                    if callee is None:
                        continue
                    # snapshot: a recursive function's callee total is its own total
                    callees, accesses = set(callee.callees), list(callee.accesses)
                    resources, signals = set(callee.resources), set(callee.signals)
                    total.callees.add(site.callee)
                    total.callees |= callees
                    for access in accesses:
                        total.accesses.update(map_access(access, site))
                    total.resources |= resources
                    total.signals |= signals
                after = (len(total.accesses), len(total.resources), len(total.signals), len(total.callees))
                changed = changed or after != before
            if not changed or (len(members) == 1 and not graph.has_edge(members[0], members[0])):
                break
        else:
            for q in members:
                anchor = min(totals[q].accesses, key=lambda a: (a.kind, a.target)).site if totals[q].accesses else None
                if anchor is not None:
                    why = "effects of a recursive call cycle that did not settle"
                    totals[q].accesses.add(Access(True, "unknown", None, why, anchor, "any", True, origin="fallback"))
                unconverged.append(q)
    return direct, totals, unconverged
