"""Compose direct summaries through calls: what a function does including everything it calls.

Parameters of a callee are mapped onto the caller's argument places, `self` onto the caller's
receiver; recursion is handled by iterating each strongly connected component of the call
graph to a fixed point (networkx condensation gives the bottom-up order).

Cost is bounded: a function's transitive callees are not stored (they are read off the call graph
when a stage asks), and a total holding more than `MAX_ACCESSES` accesses is folded: each
namespace's many exact accesses become one `unknown` access on that namespace (sound: it may
overlap anything there, so edges become `unknown`), and callers inherit the fold. Without this, a
chain of N functions each calling the previous one kept N²/2 accesses.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import networkx as nx

from ..model import MEMORY_KINDS, Signal
from .effects import (
    RESULT,
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
from .values import MARK, WILD, substitute

T = TypeVar("T")

_MAX_ROUNDS = 8
#: composition budget: a total with more accesses than this is folded (see the module docstring)
MAX_ACCESSES = 500

#: (is-write, namespace) of the accesses one fold stands for
FoldKey = tuple[bool, str]


@dataclass(slots=True)
class Total:
    """A function's effects including its callees', in the function's own terms (its params, its self)."""

    accesses: set[Access] = field(default_factory=set)
    resources: set[ResourceUse] = field(default_factory=set)
    signals: set[Signal] = field(default_factory=set)
    _callees: set[str] = field(default_factory=set)
    #: the call graph `callees` is read from (None: `_callees` is the whole answer)
    _graph: nx.DiGraph | None = None
    _node: str = ""
    #: namespaces whose accesses were folded into one unknown access, here or in a callee
    folded: dict[FoldKey, Access] = field(default_factory=dict)
    #: methods called on the function's own parameters, here or in a callee, still to be resolved by a
    #: caller that knows the argument's class (`CallSite.via`)
    virtual: set[CallSite] = field(default_factory=set)

    @property
    def callees(self) -> set[str]:
        """Every analysed function this one calls, directly or not (itself too when it is recursive)."""
        if self._graph is None or self._node not in self._graph:
            return self._callees
        reach: set[str] = nx.descendants(self._graph, self._node)
        if any(p == self._node or p in reach for p in self._graph.predecessors(self._node)):
            reach.add(self._node)
        return reach | self._callees

    @callees.setter
    def callees(self, value: set[str]) -> None:
        self._callees = value
        self._graph = None


def fold_key(access: Access) -> FoldKey | None:
    """The namespace an access could be folded into; None for accesses that must keep their place."""
    if access.place is not None and access.place[0] != "global":
        return None  # a parameter's or self's access: the caller maps it onto its own places
    if access.kind in MEMORY_KINDS:
        space = "memory"
    elif access.kind == "unknown":
        space = access.of or "any"
    elif access.kind == "sql":
        space = "table"
    else:
        space = access.kind
    return access.write, space


_BUDGET = "composition budget:"


def _is_fold(access: Access) -> bool:
    """Whether an access is the one unknown access a fold left (an open-world fallback, by its reason)."""
    return access.kind == "unknown" and access.place is None and access.target.startswith(_BUDGET)


def _fold(total: Total) -> bool:
    """Fold a total over the budget; whether anything was folded."""
    groups: dict[FoldKey, list[Access]] = {}
    for access in total.accesses:
        key = fold_key(access)
        if key is not None and total.folded.get(key) is not access:
            groups.setdefault(key, []).append(access)
    folded = False
    for key, group in sorted(groups.items()):
        if len(group) < 2 and key not in total.folded:
            continue
        total.accesses.difference_update(group)
        if key not in total.folded:
            anchor = min(group, key=lambda a: (a.kind, a.target, a.file, a.line))
            write, space = key
            why = f"{_BUDGET} over {MAX_ACCESSES} effects through calls, so any {space} effect"
            total.folded[key] = Access(write, "unknown", None, why, anchor.site, space, True, origin="fallback")
            total.accesses.add(total.folded[key])
        folded = True
    return folded


def _fold_resources(total: Total) -> None:
    """Over the budget, keep one use per resource (its first site) instead of every call site of it."""
    first: dict[tuple[str, str, bool, bool], ResourceUse] = {}
    for use in sorted(total.resources, key=lambda u: (u.kind, u.name, u.site.file, u.site.line, u.call)):
        first.setdefault((use.kind, use.name, use.thread_safe, use.capacity_limited), use)
    total.resources = set(first.values())


def _merge(total: Total, accesses: list[Access]) -> None:
    """Add accesses to a total: a callee's fold carries over, and stands for that namespace's accesses."""
    for access in accesses:
        if _is_fold(access):
            key = fold_key(access)
            if key is not None and key not in total.folded:
                total.folded[key] = access
                total.accesses.add(access)
    if not total.folded:
        total.accesses.update(accesses)
        return
    for access in accesses:
        key = fold_key(access)
        if key is None or key not in total.folded:
            total.accesses.add(access)


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
        if handle is not None and RESULT in handle.type:
            return []  # the data a modelled access returned (rows, a response): using it is no access
        if handle is not None:
            return [on_handle(access, handle)]
    targets = _mapped_place(place, site)  # a parameter's arguments, or the receiver for `self`
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


def expand_virtual(total: Total, classes: Mapping[str, str], ctx: Context, totals: Mapping[str, Total]) -> Total:
    """`total` with its virtual calls resolved where `classes` names the class of the parameter they are
    made on: `def list_new(s3): s3.list_files(p)` called as `list_new(S3(...))` runs `S3.list_files`, so
    that method's effects (mapped onto the parameter and the call's arguments) replace the open-world
    stand-in. Calls on parameters of unknown class stay virtual, and their stand-ins stay effects."""
    if not total.virtual or not classes:
        return total

    def methods(param: str, name: str) -> list[FunctionRef]:
        klass = ctx.project.classes.get(classes.get(param, ""))
        method = ctx.project.method(klass, name) if klass is not None else None
        return [method] if method is not None else []

    return _expand(total, methods, totals)


#: at most this many analysed methods of one name stand for a call on an object of unknown class (one:
#: a name several classes define is a protocol, `fit` or `run`, that library objects share too)
MAX_NAMESAKES = 1


def expand_by_name(total: Total, known: Container[str], ctx: Context, totals: Mapping[str, Total]) -> Total:
    """Virtual calls on a parameter whose class the caller does not know either (the driver's own
    parameter, an object out of a container), resolved by the method's name: the project's classes
    that define it are the code it may run (class hierarchy analysis), so their effects are united.
    `store.save(df)` then writes what `Store.save` writes, where it used to touch nothing: the stand-in
    is only an effect once the argument is known to be a handle. Parameters in `known` (a class or a
    handle is known for them) are left as they are; a name many classes define stays virtual."""
    if not total.virtual:
        return total

    def methods(param: str, name: str) -> list[FunctionRef]:
        if param in known or name.startswith("__"):
            return []
        found = ctx.project.methods_named(name)
        return found if len(found) <= MAX_NAMESAKES else []

    return _expand(total, methods, totals)


def _expand(total: Total, methods: Callable[[str, str], list[FunctionRef]], totals: Mapping[str, Total]) -> Total:
    """`total` with each virtual call replaced by the effects of the methods `methods` says it runs."""
    accesses = set(total.accesses)
    resources, signals, callees = set(total.resources), set(total.signals), set(total.callees)
    pending: set[CallSite] = set()
    for call in total.virtual:
        assert call.via is not None
        param, name = call.via
        found = [(m, totals[m.qualname]) for m in methods(param, name) if m.qualname in totals]
        if not found:
            pending.add(call)
            continue
        accesses = {a for a in accesses if not (a.via == name and a.place == ("param", param))}
        for method, effects in found:
            params = [p for p in method.params if p not in {"self", "cls"}] if method.is_method \
                else list(method.params)
            site = CallSite(method.qualname, _bind(call.args, params), frozenset({("param", param)}), 0,
                            values=_bind(call.values, params))
            for access in effects.accesses:
                accesses.update(map_access(access, site))
            resources |= effects.resources
            signals |= effects.signals
            callees |= {method.qualname, *effects.callees}
    return Total(accesses, resources, signals, callees, folded=dict(total.folded), virtual=pending)


def _bind(pairs: tuple[tuple[str, T], ...], params: list[str]) -> tuple[tuple[str, T], ...]:
    """A virtual call's `#N` positions named by the resolved method's parameters."""
    out = []
    for name, value in pairs:
        if name.startswith("#"):
            index = int(name[1:])
            if index >= len(params):
                continue
            name = params[index]
        out.append((name, value))
    return tuple(out)


def _carry_virtual(total: Total, callee: Total, site: CallSite) -> None:
    """A callee's unresolved virtual calls on a parameter the caller fills with its own parameter are
    the caller's virtual calls now (its callers may know the class)."""
    for call in list(callee.virtual):  # a snapshot: a recursive function's callee total is its own
        assert call.via is not None
        param, name = call.via
        for place in next((places for n, places in site.args if n == param), frozenset()):
            if place[0] != "param":
                continue
            args = tuple((n, frozenset(t for p in places for t in _mapped_place(p, site))) for n, places in call.args)
            values = tuple((n, substitute(v, dict(site.values)) if v is not None and MARK in v else v)
                           for n, v in call.values)
            _add_virtual(total, CallSite("", args, None, 0, values=values, via=(place[1], name)))


def _add_virtual(total: Total, call: CallSite) -> None:
    """Add a virtual call; one already there for the same method, parameter and arguments keeps a
    single entry whose values that differ become `*`. A recursive helper (`_list(client, join(path,
    name))` calling itself) would otherwise build a new value each round and never settle."""
    same = next((c for c in total.virtual if c.via == call.via and c.args == call.args
                 and [n for n, _ in c.values] == [n for n, _ in call.values]), None)
    if same is None:
        total.virtual.add(call)
        return
    if same.values == call.values:
        return
    values = tuple((n, v if v == w else WILD) for (n, v), (_, w) in zip(same.values, call.values, strict=True))
    total.virtual.discard(same)
    total.virtual.add(CallSite("", call.args, None, 0, values=values, via=call.via))


def _mapped_place(place: Place, site: CallSite) -> frozenset[Place]:
    """The caller's places a callee's place stands for at `site`: a parameter's argument places, the
    receiver's for `self` (its own `self` attribute when the receiver is the caller's `self`)."""
    if place[0] == "param":
        return next((places for name, places in site.args if name == place[1]), frozenset())
    if place[0] == "self":
        return frozenset(("self", place[1]) if r == SELF else r for r in site.receiver or ())
    return frozenset({place})


def _label(place: Place) -> str:
    from .effects import place_label

    return place_label(place)


def compose(
    functions: dict[str, FunctionRef],
    ctx: Context,
    signals_of: dict[str, tuple[Signal, ...]] | None = None,
    direct: dict[str, Summary] | None = None,
    over_budget: list[str] | None = None,
) -> tuple[dict[str, Summary], dict[str, Total], list[str]]:
    """Direct summaries (unless given), composed totals, and the functions whose recursion did not settle.

    A component still changing after the round budget gets an unknown effect on everything, so its
    stages' edges become `unknown` rather than silently missing what the last rounds would have added.
    The functions whose totals were folded (see `MAX_ACCESSES`) are in `over_budget` when given.
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
            for _, qualname in site.classes:
                # a virtual call below this site may resolve to any method of the argument's class
                klass = ctx.project.classes.get(qualname)
                for owner in ctx.project.lineage(klass) if klass is not None else ():
                    graph.add_edges_from((q, m.qualname) for m in owner.methods.values() if m.qualname in direct)
    totals: dict[str, Total] = {}
    condensed = nx.condensation(graph)
    for component in reversed(list(nx.topological_sort(condensed))):
        members = sorted(condensed.nodes[component]["members"])
        for q in members:
            totals[q] = Total(set(direct[q].accesses), set(direct[q].resources),
                              set((signals_of or {}).get(q, ())), set(), graph, q,
                              virtual={site for site in direct[q].calls if site.via})
        for _ in range(_MAX_ROUNDS):
            changed = False
            for q in members:
                total = totals[q]
                before = (len(total.accesses), len(total.resources), len(total.signals), len(total.folded),
                          len(total.virtual))
                for site in direct[q].calls:
                    callee = totals.get(site.callee)
                    if callee is not None:
                        _absorb(total, callee, site, ctx, totals)
                if len(total.resources) > MAX_ACCESSES:
                    _fold_resources(total)
                if len(total.accesses) > MAX_ACCESSES and _fold(total) and over_budget is not None:
                    over_budget.append(q)
                after = (len(total.accesses), len(total.resources), len(total.signals), len(total.folded),
                         len(total.virtual))
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


def _absorb(total: Total, callee: Total, site: CallSite, ctx: Context, totals: Mapping[str, Total]) -> None:
    """Add what a callee does, through one call site, to a caller's total."""
    # snapshot: a recursive function's callee total is its own total
    callee = expand_virtual(callee, dict(site.classes), ctx, totals)
    _carry_virtual(total, callee, site)
    accesses = list(callee.accesses)
    resources, signals = set(callee.resources), set(callee.signals)
    _merge(total, [mapped for access in accesses for mapped in map_access(access, site)])
    total.resources |= resources
    total.signals |= signals


def bound_total(fn: FunctionRef, ctx: Context, totals: Mapping[str, Total], self_values: Mapping[str, str]) -> Total:
    """The total of one instance's method: `fn` summarised with `self.<attr>` bound to `self_values`
    (a custom operator's constructor arguments), its callees' totals mapped in as `compose` does.
    Signals and callees are the method's own (they do not depend on the instance)."""
    direct = summarize(fn, ctx, self_values)
    generic = totals.get(fn.qualname)
    total = Total(set(direct.accesses), set(direct.resources), set(generic.signals) if generic else set())
    total.callees = set(generic.callees) if generic is not None else set()
    total.virtual = {site for site in direct.calls if site.via}
    for site in direct.calls:
        callee = totals.get(site.callee)
        if callee is not None:
            _absorb(total, callee, site, ctx, totals)
    if len(total.accesses) > MAX_ACCESSES:
        _fold(total)
    return total
