"""Shared helpers for the decorator-based framework adapters (Prefect, Dagster, Celery, sklearn).

Three things live here:
- reading decorators (`@flow`, `@app.task(bind=True)`, `@asset(deps=[...])`) as qualified names;
- `is_framework_entry`, the hook the plain adapter calls so a Prefect flow, a Dagster job or a
  Celery canvas builder is reported once, by its framework adapter, not also as a plain driver;
- `FrameworkDriver`, a plain `Driver` whose stages are built explicitly by the adapters (a stage
  name other than the callee's, parameters bound by the framework's rules, declared links).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import libcst as cst

from ...model import Diagnostic, Effect, FanOut, Link, PipelineFacts, Stage, Style
from ..effects import _walk
from ..index import FunctionRef, ModuleIndex
from ..stagefx import StageBuilder
from .plain import Driver, Obj, bind_arguments

PREFECT_FLOWS = frozenset({"prefect.flow", "prefect.flows.flow"})
PREFECT_TASKS = frozenset({"prefect.task", "prefect.tasks.task"})
DAGSTER_BODIES = frozenset({"dagster.job", "dagster.graph", "dagster.graph_asset", "dagster.graph_multi_asset"})
DAGSTER_OPS = frozenset({"dagster.op"})
DAGSTER_ASSETS = frozenset({"dagster.asset", "dagster.multi_asset"})
CELERY_CANVAS = frozenset({"celery.chain", "celery.group", "celery.chord", "celery.canvas.chain",
                           "celery.canvas.group", "celery.canvas.chord"})


@dataclass(frozen=True, slots=True)
class Decorator:
    """One decorator: the qualified name it refers to, and its call when written with arguments."""

    qualified: str
    node: cst.BaseExpression
    call: cst.Call | None


def decorators(fn: FunctionRef) -> list[Decorator]:
    """The decorators of `fn`, imports resolved (`@flow(retries=2)` -> `prefect.flow` with its call)."""
    out: list[Decorator] = []
    for dec in fn.node.decorators:
        expr = dec.decorator
        call = expr if isinstance(expr, cst.Call) else None
        target = call.func if call is not None else expr
        qualified = fn.module.qualify(target) or ""
        out.append(Decorator(qualified, target, call))
    return out


def decorated_with(fn: FunctionRef, names: Iterable[str]) -> Decorator | None:
    wanted = frozenset(names)
    return next((d for d in decorators(fn) if d.qualified in wanted), None)


def is_celery_task(fn: FunctionRef) -> Decorator | None:
    """`@app.task`, `@celery.task(bind=True)`, `@shared_task`: any `<app>.task` that is not Prefect's."""
    for d in decorators(fn):
        if d.qualified in {"celery.shared_task", "celery.task"}:
            return d
        if isinstance(d.node, cst.Attribute) and d.node.attr.value == "task" and not d.qualified.startswith(
            ("prefect.", "dagster.")
        ):
            return d
    return None


def keyword_arg(call: cst.Call | None, name: str) -> cst.BaseExpression | None:
    if call is None:
        return None
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def string_value(expr: cst.BaseExpression | None) -> str | None:
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


def builds_celery_canvas(fn: FunctionRef) -> bool:
    """Whether the body calls `chain`/`group`/`chord` from celery (the function is a canvas builder)."""
    body = fn.node.body
    for node in _walk(body):
        if isinstance(node, cst.Call) and (fn.module.qualify(node.func) or "") in CELERY_CANVAS:
            return True
    return False


def is_framework_entry(fn: FunctionRef) -> bool:
    """A function whose pipeline a framework adapter reports: the plain adapter must skip it.

    Prefect flows, Dagster jobs and graphs, and functions that build Celery canvases: their
    bodies look like plain drivers, but their stages and orderings follow the framework's rules.
    """
    names = {d.qualified for d in decorators(fn)}
    if names & (PREFECT_FLOWS | DAGSTER_BODIES):
        return True
    return builds_celery_canvas(fn)


def note_unresolved(diagnostics: list[Diagnostic], module: ModuleIndex, line: int, message: str) -> None:
    diagnostics.append(Diagnostic(module.relpath, "unresolved", message, line))


def placeholder_stage(stage_id: str, module: ModuleIndex, line: int, why: str) -> Stage:
    """A stage stagegraph could not resolve: it may read and write anything (unknown, assumed)."""
    effect = Effect("unknown", why, module.relpath, line, of="any", assumed=True)
    return Stage(id=stage_id, name=stage_id, file=module.relpath, line=line, reads=(effect,), writes=(effect,))


class FrameworkDriver(Driver):
    """A plain driver walk whose adapters build stages themselves and collect declared links."""

    def __init__(self, builder: StageBuilder, module: ModuleIndex, fn: FunctionRef | None,
                 body: Sequence[cst.BaseStatement]) -> None:
        super().__init__(builder, module, fn, body)
        self.declared: list[Link] = []

    def facts(self, style: Style, extra_links: Sequence[Link] = ()) -> PipelineFacts | None:
        """The walked function as a pipeline of `style` (None when it started no stage)."""
        fn = self.fn
        if fn is None or not self.w.stages:
            return None
        name = fn.qualname.removeprefix(fn.module.name + ".")
        return PipelineFacts(
            id=f"{fn.module.relpath}::{name}", name=name, style=style, file=fn.module.relpath, line=fn.line,
            stages=tuple(self.w.stages), declared=tuple(self.declared), links=(*self.w.links, *extra_links),
            signals=self.builder.driver_signals(fn, self.body, fn.module), notes=tuple(self.w.notes),
        )

    def next_id(self, base: str) -> str:
        count = self.w.names.get(base, 0) + 1
        self.w.names[base] = count
        return base if count == 1 else f"{base}#{count}"

    def bind_params(self, callee: FunctionRef, args: Sequence[cst.Arg], arg_objs: Sequence[set[str]],
                    skip: int = 0, first: set[str] | None = None) -> dict[str, set[str]]:
        """Map call arguments onto the callee's parameters; `first` fills the first free one (Celery's `.s`)."""
        params = list(callee.params)[skip:]
        if first is None:
            return bind_arguments(params, args, arg_objs)
        bound = bind_arguments(params, args, arg_objs, positional=1)
        bound.setdefault(params[0] if params else "*0", set()).update(first)
        return bound

    def add_stage(self, callee: FunctionRef, line: int, bound: dict[str, set[str]], *, fanout: FanOut | None,
                  name: str | None = None, label: str | None = None, handle_args: Sequence[cst.BaseExpression] = (),
                  extra_reads: Iterable[Effect] = (), extra_writes: Iterable[Effect] = (),
                  nested: str | None = None) -> tuple[str, Obj]:
        """Build one stage from `callee` reading the objects in `bound`; returns its id and result object."""
        base = name or callee.name
        stage_id = self.next_id(base)
        keys_by_param = {p: {k for o in objs if o in self.w.objects for k in self.w.objects[o].keys}
                         for p, objs in bound.items()}
        labels = {k: self.label_of(k) for keys in keys_by_param.values() for k in keys}
        stage = self.builder.stage(
            stage_id=stage_id, callee=callee, file=self.module.relpath, line=line, params=keys_by_param,
            skip_unused=True,
            labels=labels, via_self=False, fanout=fanout, handle_args=handle_args, module=self.module,
            name=base, extra_reads=extra_reads, extra_writes=extra_writes,
        )
        for guard in self.w.guards:
            for producer in sorted(guard):
                if producer != stage_id:
                    self.w.links.append(Link(producer, stage_id, "control",
                                             ("runs only if the earlier stage's result allows it",)))
        written = {e.key for e in stage.writes}
        for obj in list(self.w.objects.values()):
            if obj.key in written:
                self.w.objects[obj.key] = Obj(obj.key, obj.label, obj.keys, obj.producers | {stage_id})
        result = self.new_obj(label or f"{base}()", None, set(), producers=frozenset({stage_id}))
        stage = self.builder.with_result(stage, result.key, result.label, line)
        if nested is not None:
            stage = replace(stage, nested_pipeline=nested)
        self.w.stages.append(self.placed(stage))
        return stage_id, result

    def producers_of(self, objs: Iterable[str]) -> list[str]:
        """Stages whose results (or anything derived from them) the objects carry, in stage order."""
        found = self.producers(set(objs))
        order = {s.id: i for i, s in enumerate(self.w.stages)}
        return sorted(found, key=lambda s: order.get(s, 0))
