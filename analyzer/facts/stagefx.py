"""Turn a callee's composed effects into a Stage at one call site.

Shared by every style (plain, class and the framework adapters): they decide *what* the stages
are and which objects flow into them; this module decides what each stage reads and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst

from ..model import DIR_KEY, Diagnostic, Effect, FanOut, Location, Resource, RoleEvidence, Signal, Stage
from . import sql as sqlmod
from .effects import RESULT, Access, Context, Handle, Place, Summary, on_handle, place_label, resolve_sql
from .index import ClassRef, FunctionRef, ModuleIndex
from .summaries import Total, bound_total, expand_by_name, expand_virtual
from .tree import walk
from .values import MARK, finish, known, receiver_values, shared, substitute

RolesFn = Callable[[str, FunctionRef | None], tuple[str, ...]]
RoleEvidenceFn = Callable[[str, FunctionRef | None], tuple[RoleEvidence, ...]]
FunctionSignalsFn = Callable[[FunctionRef], tuple[Signal, ...]]
SignalsFn = Callable[[Sequence[cst.BaseStatement], ModuleIndex], tuple[Signal, ...]]


def place_key(place: Place) -> str:
    kind, name = place
    if kind == "self":
        return f"self.{name}"
    if kind == "global":
        return f"global:{name}"
    return f"param:{name}"


def effect_of(access: Access, key: str | None = None, target: str | None = None, kind: str | None = None) -> Effect:
    if access.kind == "dir" and kind is None:  # a directory: a file path in the directory namespace
        kind, key = "file", key or f"{DIR_KEY}{target or access.target}"
    return Effect(
        kind=(kind or access.kind),  # type: ignore[arg-type]
        target=target or access.target,
        file=access.file,
        line=access.line,
        key=key or (place_key(access.place) if access.place else (access.key or access.target)),
        of=access.of,
        assumed=access.assumed,
        origin=access.origin,
    )


def resolved(access: Access, values: dict[str, str | None]) -> list[tuple[bool, Effect]]:
    """(is-write, effect) for an access whose target named the callee's parameters, filled in from this call.

    The call's values were made outside the stage: a fresh name among them is shared by every stage
    handed it, so it is compared as a pattern (`values.shared`)."""
    target = finish(substitute(access.target, {k: shared(v) for k, v in values.items()}))
    if access.kind == "sql":
        return [(a.write, effect_of(a)) for a in resolve_sql(access, target)]
    if known(target):
        # a directory's key is made by effect_of; any other resolved name is its own key
        return [(access.write, effect_of(access, key=None if access.kind == "dir" else target, target=target))]
    return [(access.write, Effect("unknown", f"{access.kind} name built at run time", access.file, access.line,
                                  of=access.kind, assumed=access.assumed, origin="fallback"))]


def dedupe(effects: Iterable[Effect]) -> tuple[Effect, ...]:
    """One effect per (kind, identity, assumed), keeping the earliest location; sorted for stable output."""
    best: dict[tuple[str, str, str, bool], Effect] = {}
    for e in effects:
        k = (e.kind, e.identity, e.of, e.assumed)
        old = best.get(k)
        # ties at one location are broken by the rest of the effect, never by arrival order (which
        # can follow set iteration, so a report would change from run to run)
        if old is None or _rank(e) < _rank(old):
            best[k] = e
    return tuple(sorted(best.values(), key=lambda e: (e.kind, e.target, e.file, e.line)))


def _rank(e: Effect) -> tuple[str, int, str, str, str]:
    return (e.file, e.line, e.target, e.key, e.origin)


def sql_effects(text: str, file: str, line: int, certain: bool = False) -> tuple[list[Effect], list[Effect]]:
    """Table reads and writes of a SQL string (an unparseable one is an unknown table write). `certain`:
    the text is SQL whatever it looks like (a SQL operator's `sql=`), so text we don't recognise is SQL
    that could not be parsed, never no effect."""
    found = sqlmod.tables(text)
    if found is None and certain and text.strip():
        found = sqlmod.SqlTables((), (), parsed=False)
    if found is None:
        return [], []
    if not found.parsed:
        return [], [Effect("unknown", "SQL that could not be parsed", file, line, of="table")]
    reads = [Effect("table", t, file, line, key=t) for t in found.reads]
    writes = [Effect("table", t, file, line, key=t) for t in found.writes]
    reads += [_sql_file(f, file, line) for f in found.files]
    writes += [_sql_file(f, file, line) for f in found.written_files]
    return reads, writes


def used_names(fn: FunctionRef) -> frozenset[str]:
    """Every name a function's body mentions; `locals()` / `vars()` make every parameter used."""
    memo = fn.module.memo.setdefault("used_names", {})
    assert isinstance(memo, dict)
    found = memo.get(fn.qualname)
    if found is None:
        names = {n.value for n in walk(fn.node.body) if isinstance(n, cst.Name)}
        found = memo[fn.qualname] = frozenset({"*"} if names & {"locals", "vars"} else names)
    return found  # type: ignore[no-any-return]


def _sql_file(path: str, file: str, line: int) -> Effect:
    if path == "*":
        return Effect("unknown", "file named by SQL built at run time", file, line, of="file")
    return Effect("file", path, file, line, key=path)


@dataclass(slots=True)
class StageBuilder:
    """What every style adapter gets: the composed summaries and a way to build stages from them."""

    ctx: Context
    direct: dict[str, Summary]
    totals: dict[str, Total]
    roles: RolesFn
    body_signals: SignalsFn
    #: adapters append diagnostics here (an unsupported construct: say so, never guess silently)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: hazard signals of one function's own body, computed only for functions behind a stage
    function_signals: FunctionSignalsFn | None = None
    #: why each role was given (`roles` returns the same roles without the reasons)
    role_evidence: RoleEvidenceFn | None = None
    _signal_memo: dict[str, tuple[Signal, ...]] = field(default_factory=dict)
    _bound_memo: dict[tuple[str, tuple[tuple[str, str], ...]], Total] = field(default_factory=dict)

    def signals_of(self, callee: FunctionRef, total: Total) -> tuple[Signal, ...]:
        """Signals in the callee's body and in every analysed function it calls."""
        if self.function_signals is None:
            return tuple(sorted(total.signals, key=lambda s: (s.file, s.line, s.kind, s.detail)))
        found: set[Signal] = set(total.signals)
        functions = [callee, *(self.ctx.project.functions[q] for q in sorted(total.callees)
                               if q in self.ctx.project.functions)]
        for fn in functions:
            if fn.qualname not in self._signal_memo:
                self._signal_memo[fn.qualname] = self.function_signals(fn)
            found.update(self._signal_memo[fn.qualname])
        return tuple(sorted(found, key=lambda s: (s.file, s.line, s.kind, s.detail)))

    def total(self, callee: FunctionRef) -> Total:
        return self.totals.get(callee.qualname) or Total()

    def receiver_total(self, callee: FunctionRef, receiver: ClassRef, exact: bool) -> Total | None:
        """The callee's effects when `self` is a `receiver` object, if that changes anything.

        A method a base class defines (`run()` of a Luigi base task, `extract()` of a base job) reads
        `self.sql` / `self.source`, which each subclass sets on its class: summarised once for the
        hierarchy those are unknown. Bound to the receiver's class values, the stage names its own table
        or file. Only attributes the generic summary cannot pin down are bound."""
        values = receiver_values(self.ctx.project, callee, receiver, exact)
        return self.bound(callee, values) if values else None

    def bound(self, fn: FunctionRef, values: dict[str, str]) -> Total:
        """`fn`'s effects with `self.<attr>` bound to `values` (`summaries.bound_total`), computed once
        per binding: every stage built with the same values shares it."""
        values = {k: shared(v) or v for k, v in values.items()}  # made once, for every stage of the instance
        key = (fn.qualname, tuple(sorted(values.items())))
        if key not in self._bound_memo:
            self._bound_memo[key] = bound_total(fn, self.ctx, self.totals, values)
        return self._bound_memo[key]

    def stage(
        self,
        *,
        stage_id: str,
        callee: FunctionRef,
        file: str,
        line: int,
        params: dict[str, set[str]],
        labels: dict[str, str],
        via_self: bool,
        fanout: FanOut | None,
        self_attr_args: Sequence[str] = (),
        handle_args: Sequence[cst.BaseExpression] = (),
        module: ModuleIndex | None = None,
        klass: ClassRef | None = None,
        name: str | None = None,
        extra_reads: Iterable[Effect] = (),
        extra_writes: Iterable[Effect] = (),
        extra_resources: Iterable[Resource] = (),
        values: dict[str, str | None] | None = None,
        instance: tuple[str, str] | None = None,
        assumed: bool = False,
        param_handles: dict[str, Handle] | None = None,
        total: Total | None = None,
        skip_unused: bool = False,
        receiver: ClassRef | None = None,
        exact_receiver: bool = False,
        local_handles: dict[str, Handle] | None = None,
        param_classes: dict[str, str] | None = None,
    ) -> Stage:
        """Build a stage; `instance` = (key, label) of the object a method is called on, when not `self`;
        `total`: the callee's effects for this one instance (`summaries.bound_total`), when bound.
        `skip_unused`: a value handed to a parameter the body never reads is no read (a plain call
        passes it and nothing else looks at it; a framework that loads its inputs reads them anyway).
        `receiver`: the class of `self` inside the callee (`exact_receiver`: that very class, not a
        subclass), so class attributes a subclass overrides are bound (see `receiver_total`).
        `local_handles`: handles the calling function made itself (`conn = psycopg2.connect(...)`), so one
        handed to the stage is a resource it uses, as shared as its factory says: every branch of a
        fan-out handed the driver's one connection shares it. `param_classes`: the analysed class of an
        object handed to a parameter (qualname), so the methods the callee calls on it are resolved."""
        if total is None and receiver is not None:
            total = self.receiver_total(callee, receiver, exact_receiver)
        total = total if total is not None else self.total(callee)
        if param_classes:
            total = expand_virtual(total, param_classes, self.ctx, self.totals)
        total = expand_by_name(total, {*(param_classes or {}), *(param_handles or {})}, self.ctx, self.totals)
        reads: list[Effect] = list(extra_reads)
        writes: list[Effect] = list(extra_writes)
        used = used_names(callee) if skip_unused else frozenset({"*"})
        named = {*callee.params, *callee.kwonly}
        for param, keys in params.items():
            if param in named and param not in used and "*" not in used:
                continue  # a value handed to a parameter the body never reads orders, but is not data
            for key in keys:
                reads.append(Effect("variable", labels.get(key, key), file, line, key=key))
        for attr in self_attr_args:
            reads.append(Effect("attribute", f"self.{attr}", file, line, key=f"self.{attr}"))
        for access in total.accesses:
            bucket = writes if access.write else reads
            place = access.place
            if place is None and MARK in access.target:
                for write, effect in resolved(access, values or {}):
                    (writes if write else reads).append(effect)
            elif place is None:
                bucket.append(effect_of(access))
            elif place[0] == "param" and access.of == "handle":
                handle = (param_handles or {}).get(place[1])
                if handle is not None and RESULT not in handle.type:
                    bucket.append(effect_of(on_handle(access, handle)))
            elif place[0] == "param":
                keys = params.get(place[1], set())
                for key in keys:
                    kind = "container" if access.write else "variable"
                    bucket.append(effect_of(access, key=key, target=labels.get(key, key), kind=kind))
            elif place[0] == "self":
                if via_self:
                    bucket.append(effect_of(access, key=place_key(place), target=place_label(place)))
                elif instance is not None:
                    key, label = instance
                    attr = f".{place[1]}" if place[1] else ""
                    bucket.append(effect_of(access, key=f"{key}{attr}", target=f"{label}{attr}", kind="container"
                                            if access.write else "variable"))
            else:
                bucket.append(effect_of(access, key=place_key(place), target=place_label(place)))
        resources = {use.resource() for use in total.resources} | set(extra_resources)
        if module is not None:
            for expr in handle_args:
                handle = self.ctx.handle_of_expr(expr, module, local_handles or {}, klass)
                if handle is not None:
                    # a handle made in the caller is private to each call of the caller (effects.track_handle),
                    # but every stage it is handed to here shares it: as safe as its factory says
                    factory = self.ctx.catalog.factories.get(handle.call) if handle.call else None
                    safe = factory.thread_safe if factory is not None else handle.thread_safe
                    resources.add(Resource(handle.kind, handle.name, f"{handle.type} passed to {callee.name}",  # type: ignore[arg-type]
                                           file, line, safe, handle.capacity_limited))
        if assumed:  # e.g. chosen by name at run time: nothing it does is certain
            reads = [replace(e, assumed=True) for e in reads]
            writes = [replace(e, assumed=True) for e in writes]
        return Stage(
            id=stage_id,
            name=name or callee.name,
            file=file,
            line=line,
            definition=Location(callee.module.relpath, callee.line),
            reads=dedupe(reads),
            writes=dedupe(writes),
            resources=tuple(sorted(resources, key=lambda r: (r.kind, r.name, r.file, r.line, r.call))),
            roles=self.roles(name or callee.name, callee),
            fanout=fanout,
            signals=self.signals_of(callee, total),
            qualname=callee.qualname,
            role_evidence=self.role_evidence(name or callee.name, callee) if self.role_evidence is not None else (),
        )

    def with_result(self, stage: Stage, key: str, label: str, line: int) -> Stage:
        """The stage writes its return value (a fresh object later stages may read)."""
        result = Effect("variable", label, stage.file, line, key=key)
        return replace(stage, writes=dedupe([*stage.writes, result]))

    def driver_signals(
        self, fn: FunctionRef | None, body: Sequence[cst.BaseStatement], module: ModuleIndex
    ) -> tuple[Signal, ...]:
        return self.body_signals(body, module)

