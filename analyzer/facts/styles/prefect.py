"""Prefect flows: `@flow` bodies (2/3) and `with Flow(...)` blocks (1) calling `@task` functions
(direct, `.submit()`, `.map()`).

A flow body is plain Python, so the walk is the plain driver's (objects, not names, flow between
stages); only tasks and subflows become stages. A direct call blocks, so it is declared after
everything that finished before it; `.submit()` returns a future at once (a fan-out in a loop),
ordered only by the futures passed to it, by `wait_for=[...]` (a control link) and by
`.result()`/`.wait()`/`wait(...)` before later calls; `.map()` is a fan-out. A flow calling a
flow is a stage pointing at the subflow's own pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import libcst as cst

from ...model import FanOut, Link, PipelineFacts
from ..index import FunctionRef, ModuleIndex, Project
from ..stagefx import StageBuilder
from ..values import WILD, Scope, evaluate
from ._declared import argument, walk
from ._decorated import (
    PREFECT_FLOWS,
    PREFECT_TASKS,
    FrameworkDriver,
    decorated_with,
    note_unresolved,
    placeholder_stage,
)
from .plain import _code

#: Keyword arguments Prefect consumes itself (not passed to the task function).
_PREFECT_KWARGS = frozenset({"wait_for", "return_state", "timeout"})
_WAITS = frozenset({"prefect.futures.wait", "prefect.wait", "prefect.futures.as_completed"})


def task_functions(project: Project) -> tuple[dict[str, FunctionRef], dict[str, FunctionRef]]:
    """Tasks and flows by qualified name (also `load_task = task(load)` aliases at module level)."""
    tasks: dict[str, FunctionRef] = {}
    flows: dict[str, FunctionRef] = {}
    for q, fn in project.functions.items():
        if fn.is_method:
            continue
        if decorated_with(fn, PREFECT_FLOWS):
            flows[q] = fn
        elif decorated_with(fn, PREFECT_TASKS):
            tasks[q] = fn
    for module in project.modules.values():
        for name, value in module.constants.items():
            target = _wrapped(value, module)
            if target is None:
                continue
            kind, wrapped = target
            ref = project.function(module.qualify(wrapped))
            if ref is not None:
                (tasks if kind == "task" else flows)[f"{module.name}.{name}"] = ref
    return tasks, flows


def _wrapped(value: cst.BaseExpression, module: ModuleIndex) -> tuple[str, cst.BaseExpression] | None:
    """`task(fn)`, `task(name="x")(fn)`, `flow(fn)` -> ("task" | "flow", fn)."""
    if not isinstance(value, cst.Call) or not value.args:
        return None
    func = value.func.func if isinstance(value.func, cst.Call) else value.func
    qualified = module.qualify(func) or ""
    kind = "task" if qualified in PREFECT_TASKS else "flow" if qualified in PREFECT_FLOWS else None
    if kind is None or value.args[0].keyword is not None:
        return None
    return kind, value.args[0].value


class PrefectDriver(FrameworkDriver):
    """Walks one flow body; tasks and subflows are stages."""

    def __init__(self, builder: StageBuilder, module: ModuleIndex, fn: FunctionRef,
                 body: Sequence[cst.BaseStatement], tasks: dict[str, FunctionRef],
                 flows: dict[str, FunctionRef]) -> None:
        super().__init__(builder, module, fn, body)
        self.tasks = tasks
        self.flows = flows
        self.finished: list[str] = []  # stages known complete before the next call starts
        self.after_unknown: str | None = None
        #: what each local name a call goes through aliases (see `task_alias`), looked up once per name
        self.aliases: dict[str, tuple[FunctionRef, bool] | None] = {}

    def callee(self, expr: cst.BaseExpression) -> tuple[FunctionRef, bool] | None:
        """The task or flow an expression names (through `.with_options(...)`), and whether it is a flow."""
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) \
                and expr.func.attr.value == "with_options":
            return self.callee(expr.func.value)
        if isinstance(expr, cst.Name) and (aliased := self.task_alias(expr.value)) is not None:
            return aliased
        if isinstance(expr, cst.Name) and expr.value in self.w.env:
            return None
        qualified = self.module.qualify(expr)
        if qualified is None:
            return None
        for table, is_flow in ((self.tasks, False), (self.flows, True)):
            if qualified in table:
                return table[qualified], is_flow
        fn = self.project.function(qualified)
        if fn is not None:
            if fn.qualname in self.tasks:
                return self.tasks[fn.qualname], False
            if fn.qualname in self.flows:
                return self.flows[fn.qualname], True
        return None

    def task_alias(self, name: str) -> tuple[FunctionRef, bool] | None:
        """`step = fetch_orders` in the flow body (in one branch of an `if`, say), then `step.submit()`:
        the task the local names, when every assignment to it names the same one."""
        if name not in self.aliases:
            self.aliases[name] = None  # a self-referencing alias settles on "not a task"
            self.aliases[name] = self._task_alias(name)
        return self.aliases[name]

    def _task_alias(self, name: str) -> tuple[FunctionRef, bool] | None:
        if self.fn is not None and name in self.fn.params:
            return None
        found: list[tuple[FunctionRef, bool] | None] = []
        for node in walk(list(self.body)):
            if isinstance(node, cst.Assign) and any(
                    isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets):
                value = node.value
                found.append(self.callee(value) if isinstance(value, cst.Name | cst.Attribute)
                             and not (isinstance(value, cst.Name) and value.value == name) else None)
            elif isinstance(node, cst.For | cst.AugAssign | cst.AnnAssign | cst.NamedExpr) and \
                    isinstance(node.target, cst.Name) and node.target.value == name:
                return None
        if not found or any(f is None for f in found):
            return None
        first = found[0]
        assert first is not None
        return first if all(f is not None and f[0] is first[0] for f in found) else None

    def call(self, call: cst.Call) -> set[str]:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in {"submit", "map"}:
            found = self.callee(func.value)
            if found is not None:
                return self.task_call(call, found[0], found[1], func.attr.value)
            if func.attr.value == "submit" and self.dynamic_submit(func.value, call):
                return self.unknown_task(call, func.value)
        found = self.callee(func)
        if found is not None:
            return self.task_call(call, found[0], found[1], "call")
        if isinstance(func, cst.Attribute) and func.attr.value in {"result", "wait"}:
            objs = self.expr(func.value)
            self.finished.extend(p for p in self.producers_of(objs) if p not in self.finished)
            for a in call.args:
                self.expr(a.value)
            return objs
        if (self.module.qualify(func) or "") in _WAITS:
            waited: set[str] = set()
            for a in call.args:
                waited |= self.expr(a.value)
            self.finished.extend(p for p in self.producers_of(waited) if p not in self.finished)
            return waited
        ref = self.resolve_call(func)
        if ref is not None and self.fn is not None and ref.qualname != self.fn.qualname:
            # a plain helper runs inline in the flow: not a stage, but its arguments flow through
            out: set[str] = set()
            for a in call.args:
                out |= self.expr(a.value)
            return out
        return super().call(call)

    def dynamic_submit(self, base: cst.BaseExpression, call: cst.Call) -> bool:
        """`step.submit(x)` where `step` is not a task we can name (and not an executor)."""
        if isinstance(base, cst.Name) and base.value in self.w.executors:
            return False
        if call.args and self.resolve_ref(call.args[0].value) is not None:
            return False  # pool.submit(fn, x): the plain driver's executor handling
        return isinstance(base, cst.Name | cst.Subscript | cst.Call | cst.Attribute)

    def unknown_task(self, call: cst.Call, base: cst.BaseExpression) -> set[str]:
        """A task chosen at run time: a placeholder stage, `unknown` links to its neighbours, a diagnostic."""
        line = self.module.line(call)
        why = f"{_code(base)}.submit(): the task is chosen at run time"
        note_unresolved(self.builder.diagnostics, self.module, line, why)
        objs: set[str] = set()
        for a in call.args:
            objs |= self.expr(a.value)
        stage_id = self.next_id("unresolved-task")
        previous = self.w.stages[-1].id if self.w.stages else None
        self.w.stages.append(placeholder_stage(stage_id, self.module, line, why))
        if previous is not None:
            self.w.links.append(Link(previous, stage_id, "unknown", (why,)))
        self.after_unknown = stage_id
        result = self.new_obj(f"future of {stage_id}", None, objs, producers=frozenset({stage_id}))
        return {result.key}

    def task_call(self, call: cst.Call, callee: FunctionRef, is_flow: bool, how: str) -> set[str]:
        line = self.module.line(call)
        waits: set[str] = set()
        args: list[cst.Arg] = []
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "wait_for":
                waits |= self.expr(arg.value)
            elif arg.keyword is None or arg.keyword.value not in _PREFECT_KWARGS:
                args.append(arg)
        arg_objs = [self.expr(a.value) for a in args]
        fanout: FanOut | None = None
        if how == "map":
            fanout = FanOut("map", _code(call), line, None)
        elif self.w.loops:
            fanout = FanOut("submit" if how == "submit" else "loop", self.w.loops[-1], line, None)
        bound = self.bind_params(callee, args, arg_objs)
        name = callee.name
        nested = f"{callee.module.relpath}::{callee.qualname.removeprefix(callee.module.name + '.')}" if is_flow \
            else None
        data_producers = self.producers_of(set().union(*arg_objs) if arg_objs else set())
        wait_producers = self.producers_of(waits)
        stage_id, result = self.add_stage(callee, line, bound, fanout=fanout, name=name,
                                          label=self.w.result_labels.get(id(call)) or
                                          (f"future of {name}" if how != "call" else f"{name}()"),
                                          handle_args=[a.value for a in args], nested=nested)
        for producer in wait_producers:
            self.w.links.append(Link(producer, stage_id, "control", ("wait_for",)))
        for producer in dict.fromkeys([*self.finished, *data_producers, *wait_producers]):
            if producer != stage_id:
                self.declared.append(Link(producer, stage_id, "order", ("flow order",)))
        if self.after_unknown is not None:
            self.w.links.append(Link(self.after_unknown, stage_id, "unknown", ("follows a task chosen at run time",)))
            self.after_unknown = None
        if how == "call":
            self.finished = [stage_id]  # a direct call blocks: it finishes before anything after it starts
        return {result.key}


#: Prefect 1's flow context manager: `with Flow("name") as flow:` whose body calls tasks
_PREFECT1_FLOWS = frozenset({"prefect.Flow", "prefect.core.flow.Flow", "prefect.core.Flow"})


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """One pipeline per `@flow` function, and per Prefect 1 `with Flow(...)` block."""
    project = builder.ctx.project
    tasks, flows = task_functions(project)
    found: list[PipelineFacts] = []
    for fn in project.functions.values():
        if fn.qualname not in flows or fn.is_method:
            continue
        body = fn.node.body.body if isinstance(fn.node.body, cst.IndentedBlock) else []
        driver = PrefectDriver(builder, fn.module, fn, body, tasks, flows)
        driver.run()
        facts = driver.facts("prefect")
        if facts is not None:
            found.append(facts)
    for module in sorted(project.modules.values(), key=lambda m: m.relpath):
        if "Flow" in module.parsed.text:
            found.extend(_flow_blocks(builder, module, tasks, flows))
    return found


def _flow_blocks(builder: StageBuilder, module: ModuleIndex, tasks: dict[str, FunctionRef],
                 flows: dict[str, FunctionRef]) -> list[PipelineFacts]:
    """Prefect 1: `with Flow("CRIS import") as flow:` at module level. Calling a task inside builds the
    flow (data handed over by the results passed along); the block is walked like a flow body."""
    found: list[PipelineFacts] = []
    for stmt in module.parsed.tree.body:
        if not isinstance(stmt, cst.With) or not isinstance(stmt.body, cst.IndentedBlock):
            continue
        call = next((item.item for item in stmt.items if isinstance(item.item, cst.Call)
                     and (module.qualify(item.item.func) or "") in _PREFECT1_FLOWS), None)
        if call is None:
            continue
        name = evaluate(argument(call, 0, "name"), Scope(module, builder.ctx.project))
        name = name if name and WILD not in name else f"flow@{module.line(stmt)}"
        ident = re.sub(r"\W", "_", name)
        node = cst.FunctionDef(name=cst.Name(ident if ident.isidentifier() else f"_{ident}"),
                               params=cst.Parameters(), body=stmt.body)
        fn = FunctionRef(f"{module.name}.{node.name.value}", node.name.value, module, node)
        driver = PrefectDriver(builder, module, fn, stmt.body.body, tasks, flows)
        driver.run()
        facts = driver.facts("prefect")
        if facts is not None:
            found.append(replace(facts, id=f"{module.relpath}::{name}", name=name, line=module.line(stmt)))
    return found
