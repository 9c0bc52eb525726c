"""Plain-Python and class-based pipelines: a driver that calls analysed functions in order.

A driver is a function, method or `if __name__ == "__main__":` block that calls two or more
functions defined in the analysed code. The walk follows evaluation order and tracks *objects*
(not names) between stages: `orders = dedup(orders)` makes a new object, values derived in the
driver keep the stages they came from, and a stage that mutates an argument writes that object.
Guards (`if validate(x): load(x)`, early returns) become control links; loops and executors mark
fan-out; dispatch by name (`getattr(self, name)()`) becomes a chain of `unknown` links.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst

from ...model import Effect, FanOut, Link, PipelineFacts, Stage
from ..effects import INSTANCE, MUTATORS, Access, Context, Handle, _self_attr, _walk, function_scope
from ..index import ClassRef, FunctionRef, ModuleIndex, Project, named_arguments
from ..stagefx import StageBuilder, dedupe, effect_of, resolved
from ..tree import children as _children
from ..values import MARK, evaluate

_EXECUTORS = {
    "concurrent.futures.ThreadPoolExecutor": ("executor", ("max_workers",), 0),
    "concurrent.futures.ProcessPoolExecutor": ("executor", ("max_workers",), 0),
    "concurrent.futures.thread.ThreadPoolExecutor": ("executor", ("max_workers",), 0),
    "multiprocessing.Pool": ("pool", ("processes",), 0),
    "multiprocessing.pool.Pool": ("pool", ("processes",), 0),
    "multiprocessing.pool.ThreadPool": ("pool", ("processes",), 0),
    "multiprocessing.dummy.Pool": ("pool", ("processes",), 0),
    "billiard.Pool": ("pool", ("processes",), 0),
    "joblib.Parallel": ("pool", ("n_jobs",), 0),
}
_SUBMIT_ONE = {"submit", "apply_async", "apply", "run_in_executor"}
#: calls whose awaitable arguments run concurrently (their stages are an existing fan-out)
_CONCURRENT = {
    "asyncio.gather": "gather", "asyncio.wait": "gather", "asyncio.as_completed": "gather",
    "asyncio.create_task": "task", "asyncio.ensure_future": "task", "trio.lowlevel.spawn_system_task": "task",
}
_SUBMIT_MANY = {"map", "imap", "imap_unordered", "starmap", "map_async", "starmap_async"}
_EXITS = (cst.Return, cst.Raise, cst.Continue, cst.Break)


@dataclass(slots=True)
class Obj:
    key: str
    label: str
    keys: frozenset[str]  # its own key plus the keys of everything it was derived from
    producers: frozenset[str] = frozenset()


@dataclass(slots=True)
class Executor:
    mechanism: str
    detail: str
    capped: bool | None
    line: int


@dataclass(slots=True)
class _Walk:
    """State of one driver walk."""

    objects: dict[str, Obj] = field(default_factory=dict)
    env: dict[str, set[str]] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    guards: list[frozenset[str]] = field(default_factory=list)
    #: the branch arms being walked (chain, arm index), outside loops only (see `model.Stage.arms`)
    arms: list[tuple[str, int]] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    #: loop variable -> the expression it iterates (innermost last), to resolve `for step in STEPS: step(x)`
    loop_sources: list[tuple[frozenset[str], cst.BaseExpression]] = field(default_factory=list)
    executors: dict[str, Executor] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    dynamic: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    result_labels: dict[int, str] = field(default_factory=dict)
    instances: dict[str, tuple[ClassRef, str]] = field(default_factory=dict)  # local -> (class, object key)
    discarded: set[int] = field(default_factory=set)  # calls whose result is thrown away
    self_calls: int = 0
    #: a call site's result object, reused when a loop body is walked again (see `loop_body`)
    results: dict[tuple[int, str], str] = field(default_factory=dict)
    #: what the driver itself stored in self attributes (`self.rows = self.fetch()`)
    attr_objs: dict[str, set[str]] = field(default_factory=dict)
    #: names of file handles the driver opened for writing -> the opening call
    handles: dict[str, int] = field(default_factory=dict)
    gathers: list[FanOut] = field(default_factory=list)  # enclosing concurrent calls (asyncio.gather, ...)
    concurrent: list[set[str]] = field(default_factory=list)  # stages started together: no order among them
    #: objects the driver read itself (`df = pd.read_parquet(P)`) -> the reads that made them
    read_objs: dict[str, list[Access]] = field(default_factory=dict)
    #: results of glue stages (`df = read_parquet(P)`, see `Driver.glue`) -> the reads a consumer inherits
    carried: dict[str, list[Effect]] = field(default_factory=dict)


class Driver:
    """Walks one driver body and collects its stages."""

    def __init__(self, builder: StageBuilder, module: ModuleIndex, fn: FunctionRef | None,
                 body: Sequence[cst.BaseStatement]) -> None:
        self.builder = builder
        self.ctx: Context = builder.ctx
        self.project: Project = builder.ctx.project
        self.module = module
        self.fn = fn
        self.body = body
        self.klass: ClassRef | None = (
            self.project.classes.get(fn.qualname.rsplit(".", 1)[0]) if fn is not None and fn.class_name else None
        )
        self.w = _Walk()
        self.scope = function_scope(fn, module, self.project)
        #: the driver's own writes (files, tables, keys) by the call node that makes them
        self.own_writes: dict[int, list[Access]] = {}
        #: ...and its own reads: a stage handed what the driver read reads it too
        self.own_reads: dict[int, list[Access]] = {}
        summary = builder.direct.get(fn.qualname) if fn is not None else None
        for access in summary.accesses if summary is not None else ():
            if access.place is None:
                (self.own_writes if access.write else self.own_reads).setdefault(
                    id(access.site.node), []).append(access)
        if fn is not None:
            for p in fn.params:
                if p not in {"self", "cls"}:
                    self.w.env[p] = {self.new_obj(p, f"param:{p}", set()).key}

    # -- objects ----------------------------------------------------------------

    def new_obj(self, label: str, key: str | None, sources: set[str], producers: frozenset[str] = frozenset()) -> Obj:
        key = key or f"obj:{next(self.w.counter)}:{label}"
        keys = {key}
        prods = set(producers)
        for s in sources:
            obj = self.w.objects[s]
            keys |= obj.keys
            prods |= obj.producers
        obj = Obj(key, label, frozenset(keys), frozenset(prods))
        self.w.objects[key] = obj
        return obj

    def objects_of(self, expr: cst.BaseExpression) -> set[str]:
        """Objects an expression reads, processing any stage calls inside it first (evaluation order)."""
        return self.expr(expr)

    # -- statements -----------------------------------------------------------------

    def run(self) -> _Walk:
        self.block(self.body)
        return self.w

    def block(self, body: Sequence[cst.CSTNode]) -> None:
        pushed = 0
        for stmt in body:
            self.statement(stmt)
            guard = self.exit_guard(stmt)
            if guard is not None:
                self.w.guards.append(guard)
                pushed += 1
        for _ in range(pushed):
            self.w.guards.pop()

    def exit_guard(self, stmt: cst.CSTNode) -> frozenset[str] | None:
        """`if not ok: return` makes everything after it depend on what `ok` came from."""
        if not isinstance(stmt, cst.If) or stmt.orelse is not None:
            return None
        body = stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else []
        last = body[-1] if body else None
        exits = False
        if isinstance(last, cst.SimpleStatementLine):
            exits = any(isinstance(s, _EXITS) for s in last.body) or any(
                isinstance(s, cst.Expr) and isinstance(s.value, cst.Call)
                and (self.module.qualify(s.value.func) or "") in {"sys.exit", "exit", "quit", "os._exit"}
                for s in last.body
            )
        if not exits:
            return None
        return self.producers(self.test_objects.get(id(stmt), set()))

    def producers(self, objs: set[str]) -> frozenset[str]:
        out: set[str] = set()
        for o in objs:
            out |= self.w.objects[o].producers
        return frozenset(out)

    test_objects: dict[int, set[str]]

    def statement(self, stmt: cst.CSTNode) -> None:
        if not hasattr(self, "test_objects"):
            self.test_objects = {}
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                self.small(small)
        elif isinstance(stmt, cst.If):
            objs = self.expr(stmt.test)
            self.test_objects[id(stmt)] = objs
            chain = f"{self.module.relpath}:{self.module.line(stmt)}"
            self.guarded(objs, lambda: self.branches(stmt, chain, 0))
        elif isinstance(stmt, cst.For):
            iter_objs = self.expr(stmt.iter)
            self.bind(stmt.target, iter_objs)
            detail = f"for {_code(stmt.target)} in {_code(stmt.iter)}"
            self.w.loops.append(detail)
            self.w.loop_sources.append((frozenset(_names(stmt.target)), stmt.iter))
            self.loop_body(stmt.body)
            self.w.loop_sources.pop()
            self.w.loops.pop()
            if stmt.orelse is not None:
                self.block(stmt.orelse.body.body if isinstance(stmt.orelse.body, cst.IndentedBlock) else [])
        elif isinstance(stmt, cst.While):
            objs = self.expr(stmt.test)
            self.w.loops.append(f"while {_code(stmt.test)}")
            self.guarded(objs, lambda: self.loop_body(stmt.body))
            self.w.loops.pop()
        elif isinstance(stmt, cst.With):
            for item in stmt.items:
                objs = self.expr(item.item)
                executor = self.executor_of(item.item)
                if item.asname is not None:
                    self.bind(item.asname.name, objs)
                    if executor is not None and isinstance(item.asname.name, cst.Name):
                        self.w.executors[item.asname.name.value] = executor
                    if isinstance(item.asname.name, cst.Name) and id(item.item) in self.own_writes:
                        # with open(OUT, "w") as fh: what is written through fh lands in OUT
                        self.w.handles[item.asname.name.value] = id(item.item)
            self.suite(stmt.body)
        elif isinstance(stmt, cst.Try):
            before = len(self.w.stages)
            self.suite(stmt.body)
            in_try = frozenset(s.id for s in self.w.stages[before:])
            for handler in stmt.handlers:
                self.guarded_ids(in_try, lambda h=handler: self.suite(h.body))  # type: ignore[misc]
            if stmt.orelse is not None:
                self.suite(stmt.orelse.body)
            if stmt.finalbody is not None:
                self.suite(stmt.finalbody.body)
        elif isinstance(stmt, cst.Match):
            objs = self.expr(stmt.subject)
            self.guarded(objs, lambda: self.cases(stmt))
        # nested defs and classes run only when called: not part of this driver's order

    def cases(self, stmt: cst.Match) -> None:
        chain = f"{self.module.relpath}:{self.module.line(stmt)}"
        for arm, case in enumerate(stmt.cases):
            self.in_arm(chain, arm, lambda c=case: self.suite(c.body))  # type: ignore[misc]

    def in_arm(self, chain: str, arm: int, run: Callable[[], None]) -> None:
        """Walk one arm of a branch chain; outside loops, the stages it adds remember the arm (in a loop,
        each iteration may take another arm, so arms of one chain may all run in one execution)."""
        if self.w.loops:
            run()
            return
        self.w.arms.append((chain, arm))
        try:
            run()
        finally:
            self.w.arms.pop()

    def placed(self, stage: Stage) -> Stage:
        """`stage` with the branch arms its call sits in."""
        return replace(stage, arms=tuple(self.w.arms)) if self.w.arms else stage

    def suite(self, body: cst.BaseSuite) -> None:
        if isinstance(body, cst.IndentedBlock):
            self.block(body.body)
        elif isinstance(body, cst.SimpleStatementSuite):
            for small in body.body:
                self.small(small)

    def branches(self, stmt: cst.If, chain: str, arm: int) -> None:
        # may-analysis: bindings from either branch survive the if
        saved = {k: set(v) for k, v in self.w.env.items()}
        self.in_arm(chain, arm, lambda: self.suite(stmt.body))
        after_body = self.w.env
        self.w.env = {k: set(v) for k, v in saved.items()}
        if isinstance(stmt.orelse, cst.If):
            objs = self.expr(stmt.orelse.test)
            self.test_objects[id(stmt.orelse)] = objs
            orelse = stmt.orelse
            self.guarded(objs, lambda: self.branches(orelse, chain, arm + 1))
        elif isinstance(stmt.orelse, cst.Else):
            body = stmt.orelse.body
            self.in_arm(chain, arm + 1, lambda: self.suite(body))
        for k, v in after_body.items():
            self.w.env.setdefault(k, set()).update(v)

    def loop_body(self, body: cst.BaseSuite) -> None:
        first = len(self.w.stages)
        self.suite(body)
        if len(self.w.stages) > first:
            # second pass binds loop-carried values; it must not add stages again
            saved_stages, saved_links, saved_names = list(self.w.stages), list(self.w.links), dict(self.w.names)
            self.suite(body)
            # ...nor count its calls again: the next call of the same function is `#2`, not `#3`
            self.w.stages, self.w.links, self.w.names = saved_stages, saved_links, saved_names

    def guarded(self, objs: set[str], run: object) -> None:
        self.guarded_ids(self.producers(objs), run)

    def guarded_ids(self, ids: frozenset[str], run: object) -> None:
        self.w.guards.append(ids)
        try:
            assert callable(run)
            run()
        finally:
            self.w.guards.pop()

    def small(self, small: cst.BaseSmallStatement) -> None:
        if isinstance(small, cst.Assign):
            value = small.value.expression if isinstance(small.value, cst.Await) else small.value
            names = [t.target for t in small.targets]
            if isinstance(value, cst.Call) and len(names) == 1:
                only = names[0]
                if isinstance(only, cst.Name):
                    self.w.result_labels[id(value)] = only.value
                elif isinstance(only, cst.Tuple | cst.List):
                    self.w.result_labels[id(value)] = ", ".join(_code(e.value) for e in only.elements)
            pairs = _elementwise(small)
            if pairs is not None:
                gather = _unpacked_gather(small)
                if gather is not None:  # a, b = await gather(x(), y()): one result each, started together
                    self.concurrently(gather, "gather", bind=pairs)
                else:
                    for element_target, element_value in pairs:
                        self.bind(element_target, self.expr(element_value), value=element_value)
                return
            objs = self.expr(small.value)
            for target in small.targets:
                self.bind(target.target, objs, value=small.value)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self.bind(small.target, self.expr(small.value), value=small.value)
        elif isinstance(small, cst.AugAssign):
            objs = self.expr(small.value) | self.expr(small.target)
            self.bind(small.target, objs)
        elif isinstance(small, cst.Expr):
            if isinstance(small.value, cst.Call):
                self.w.discarded.add(id(small.value))
            self.expr(small.value)
        elif isinstance(small, cst.Return) and small.value is not None:
            self.expr(small.value)

    def bind(self, target: cst.BaseExpression, objs: set[str], value: cst.BaseExpression | None = None) -> None:
        if isinstance(target, cst.Name):
            label = target.value
            if len(objs) == 1 and value is not None and isinstance(value, cst.Name):
                self.w.env[label] = set(objs)  # a plain alias: same object
                return
            if len(objs) == 1 and self.w.objects[next(iter(objs))].label == label:
                self.w.env[label] = set(objs)  # the stage result already carries this name
                made = self.working_constructor(value.func) if isinstance(value, cst.Call) else None
                if made is not None:  # `fi = Indicators(rows)` built by a constructor stage
                    self.w.instances[label] = (made[0], next(iter(objs)))
                return
            obj = self.new_obj(label, None, objs)
            self.w.env[label] = {obj.key}
            if isinstance(value, cst.Call):
                klass = self.project.klass(self.module.qualify(value.func))
                if klass is not None:
                    self.w.instances[label] = (klass, obj.key)
            executor = self.executor_of(value) if value is not None else None
            if executor is not None:
                self.w.executors[label] = executor
        elif isinstance(target, cst.Tuple | cst.List):
            for el in target.elements:
                self.bind(el.value, objs)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, objs)
        elif isinstance(target, cst.Attribute | cst.Subscript):
            attr = _self_attr(target)
            if attr is not None:
                # self.rows = self.fetch(): stages that read self.rows read what the driver put there
                self.w.attr_objs[f"self.{attr}"] = set(objs)
            else:
                # results["a"] = extract(): the container now holds that value
                self.absorb(self.expr_names(target.value), objs)

    def expr_names(self, expr: cst.BaseExpression) -> set[str]:
        """The driver objects a container expression (`results`, `results["a"]`, `cfg.rows`) stands for."""
        while isinstance(expr, cst.Subscript | cst.Attribute) and _self_attr(expr) is None:
            expr = expr.value
        if isinstance(expr, cst.Name):
            return set(self.w.env.get(expr.value, set()))
        attr = _self_attr(expr)
        return set(self.w.attr_objs.get(f"self.{attr}", set())) if attr else set()

    def absorb(self, containers: set[str], objs: set[str]) -> None:
        """Containers that now hold `objs`: reading them reads those values (and depends on their producers)."""
        for key in containers:
            box = self.w.objects[key]
            keys, producers = set(box.keys), set(box.producers)
            for o in objs:
                keys |= self.w.objects[o].keys
                producers |= self.w.objects[o].producers
            self.w.objects[key] = Obj(box.key, box.label, frozenset(keys), frozenset(producers))

    # -- expressions --------------------------------------------------------------------

    def expr(self, expr: cst.BaseExpression | None) -> set[str]:
        if expr is None:
            return set()
        if isinstance(expr, cst.Name):
            return set(self.w.env.get(expr.value, set()))
        if isinstance(expr, cst.Call):
            return self.call(expr)
        if isinstance(expr, cst.Lambda):
            return set()
        if isinstance(expr, cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp):
            return self.comprehension(expr)
        out: set[str] = set()
        for child in _children(expr):
            if isinstance(child, cst.BaseExpression):
                out |= self.expr(child)
            elif isinstance(child, cst.CSTNode):
                for sub in _children(child):
                    if isinstance(sub, cst.BaseExpression):
                        out |= self.expr(sub)
                    elif isinstance(sub, cst.CSTNode):
                        for leaf in _walk(sub):
                            if isinstance(leaf, cst.BaseExpression):
                                out |= self.expr(leaf)
                                break
        return out

    def callback(self, call: cst.Call, results: set[str]) -> set[str]:
        """`pool.apply_async(f, args, callback=lambda r: collect(r, out))`: the callback runs on each
        task's result, so the analysed calls it makes are stages that read that result (a function
        named directly, `callback=collect`, is called with it)."""
        handler = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "callback"), None)
        if handler is None:
            return set()
        if id(call) in self.w.discarded and self.w.stages:
            # the submission's value is dropped, but each result is handed to the callback
            task = self.w.stages[-1]
            for key in sorted(results):
                task = self.builder.with_result(task, key, self.w.objects[key].label, task.line)
            self.w.stages[-1] = task
        if isinstance(handler, cst.Lambda):
            saved = {k: set(v) for k, v in self.w.env.items()}
            for param in handler.params.params:
                self.w.env[param.name.value] = set(results)
            try:
                return self.expr(handler.body)
            finally:
                self.w.env = saved
        ref = self.resolve_ref(handler)
        if ref is None:
            return set()
        return self.stage(ref, call, [set(results)], [cst.Arg(cst.Name("result"))], fanout=None,
                          via_self=_is_self_ref(handler))

    def comprehension(self, expr: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp) -> set[str]:
        saved = {k: set(v) for k, v in self.w.env.items()}
        out: set[str] = set()
        loops = 0
        comp: cst.CompFor | None = expr.for_in
        while comp is not None:
            iter_objs = self.expr(comp.iter)
            out |= iter_objs
            self.bind(comp.target, iter_objs)
            self.w.loops.append(f"for {_code(comp.target)} in {_code(comp.iter)}")
            loops += 1
            for cond in comp.ifs:
                out |= self.expr(cond.test)
            comp = comp.inner_for_in
        if isinstance(expr, cst.DictComp):
            out |= self.expr(expr.key) | self.expr(expr.value)
        else:
            out |= self.expr(expr.elt)
        for _ in range(loops):
            self.w.loops.pop()
        self.w.env = saved
        return out

    def call(self, call: cst.Call) -> set[str]:
        func = call.func
        # executor submissions: pool.submit(f, x), pool.map(f, xs)
        if isinstance(func, cst.Attribute) and call.args:
            method = func.attr.value
            if method in _SUBMIT_ONE | _SUBMIT_MANY:
                args = list(call.args)
                if method == "run_in_executor" and len(args) >= 2:
                    args = args[1:]
                target = self.resolve_ref(args[0].value)
                if target is not None:
                    receiver = self.expr(func.value)
                    executor = self.executor_named(func.value)
                    fan = FanOut(
                        executor.mechanism if executor else "executor",
                        executor.detail if executor else _code(func.value),
                        executor.line if executor else self.module.line(call),
                        executor.capped if executor else None,
                    )
                    arg_objs = [self.expr(a.value) for a in args[1:]]
                    submitted = args[0].value
                    via_self = _is_self_ref(submitted)
                    # `pool.submit(calc.run, x)`: a method of an object the driver made
                    instance = (self.instance_of(submitted.value)
                                if isinstance(submitted, cst.Attribute) and not via_self else None)
                    results = self.stage(target, call, arg_objs, args[1:], fanout=fan, via_self=via_self,
                                         instance=instance[1] if instance else None)
                    return receiver | results | self.callback(call, results)
        qualified = self.module.qualify(func) or ""
        mechanism = _CONCURRENT.get(qualified) or (
            "task" if isinstance(func, cst.Attribute) and func.attr.value in {"create_task", "start_soon"} else None)
        if mechanism is not None:
            return self.concurrently(call, mechanism)
        # threading.Thread(target=f, args=(...))
        if qualified in {"threading.Thread", "multiprocessing.Process"}:
            target_arg = next((a.value for a in call.args if a.keyword and a.keyword.value == "target"), None)
            ref = self.resolve_ref(target_arg) if target_arg is not None else None
            if ref is not None:
                args_expr = next((a.value for a in call.args if a.keyword and a.keyword.value == "args"), None)
                elems = list(args_expr.elements) if isinstance(args_expr, cst.Tuple | cst.List) else []
                arg_objs = [self.expr(e.value) for e in elems]
                fan = FanOut("thread" if "Thread" in qualified else "process", qualified.rsplit(".", 1)[-1],
                             self.module.line(call), None)
                return self.stage(ref, call, arg_objs, [cst.Arg(e.value) for e in elems], fanout=fan,
                                  via_self=_is_self_ref(target_arg))
        # dynamic dispatch: getattr(self, name)(...)
        if isinstance(func, cst.Call) and (self.module.qualify(func.func) or "") == "getattr":
            return self.dynamic_getattr(call, func)
        if isinstance(func, cst.Name) and func.value in self.w.env and self.w.loops:
            handled = self.dynamic_registry(call, func.value)
            if handled is not None:
                return handled
        if isinstance(func, cst.Subscript):
            handled = self.dynamic_subscript(call, func)
            if handled is not None:
                return handled
        callee = self.resolve_call(func)
        arg_objs = [self.expr(a.value) for a in call.args]
        constructor = self.working_constructor(func) if callee is None else None
        if constructor is not None:
            # `fi = FinancialIndicators(rows)` whose `__init__` computes from what it is given: a stage,
            # named by the class, whose result is the object its methods later read
            return self.stage(constructor[1], call, arg_objs, list(call.args), fanout=self.enclosing_fanout(call),
                              via_self=False, stage_name=constructor[0].name)
        receiver_objs: set[str] = set()
        if isinstance(func, cst.Attribute):
            receiver_objs = self.expr(func.value)
        if callee is not None and (self.fn is None or callee.qualname != self.fn.qualname):
            via_self = _is_self_ref(func)
            instance = self.instance_of(func.value) if isinstance(func, cst.Attribute) and not via_self else None
            made = self.stage(callee, call, arg_objs, list(call.args), fanout=self.enclosing_fanout(call),
                              via_self=via_self, instance=instance[1] if instance else None)
            self.glue(callee, call, arg_objs, made)
            return made
        out = set(receiver_objs)
        for objs in arg_objs:
            out |= objs
        if isinstance(func, cst.Attribute) and func.attr.value in MUTATORS:
            # batch.append(other()): the container now holds the argument's value
            self.absorb(self.expr_names(func.value), set().union(*arg_objs) if arg_objs else set())
        if id(call) in self.own_reads:
            # `df = pd.read_parquet(P)`: the value stands for what was read, so a stage given it reads P
            read = self.new_obj(_code(func), f"driver-read:{id(call)}", set(out))
            self.w.read_objs[read.key] = self.own_reads[id(call)]
            out = out | {read.key}
        if id(call) in self.own_writes:
            self.driver_write(id(call), out)
        elif self.w.handles:
            # fh.write(rows), json.dump(rows, fh), csv.writer(fh).writerows(rows)
            used = {n.value for n in _walk(call) if isinstance(n, cst.Name) and n.value in self.w.handles}
            for name in used:
                data = out - set(self.w.env.get(name, set()))
                self.driver_write(self.w.handles[name], data)
        return out

    def glue(self, callee: FunctionRef, call: cst.Call, arg_objs: list[set[str]], made: set[str]) -> None:
        """`df = read_parquet(p)`, `write_parquet(df, p)` with helpers that only read or write the file their
        caller names: the stage that is handed what was read reads that file too, and the stage that
        produced what is written writes it, as if the driver had called `pl.read_parquet(p)` itself.
        A step then depends on the file it really consumes even when the read is its own stage (a
        later overwrite of the file must wait for the step, not only for the read)."""
        if not _thin_io(callee, self.builder):
            return
        params = [p for p in callee.params if p not in {"self", "cls"}]
        values = {name: evaluate(arg.value, self.scope) for name, arg in named_arguments(params, call.args)}
        found = [pair for access in self.builder.total(callee).accesses if access.place is None
                 for pair in resolved(access, values)]
        named = [e for write, e in found if not write and e.kind != "unknown"]
        for key in made if named else ():
            self.w.carried[key] = named
        writes = [e for write, e in found if write]
        if writes:
            self.attribute_writes(set().union(*arg_objs) if arg_objs else set(), writes)

    def driver_write(self, call: int, objs: set[str]) -> None:
        """`df = fetch(); df.to_csv(OUT)`: the driver writes what a stage produced, so for ordering that
        stage writes OUT (a later `load_from(OUT)` depends on it)."""
        self.attribute_writes(objs, [effect_of(a) for a in self.own_writes[call]])

    def attribute_writes(self, objs: set[str], writes: list[Effect]) -> None:
        """The stages that produced `objs` write `writes` too (what the driver or a glue stage wrote)."""
        producers = self.producers(objs)
        if not producers:
            return
        for i, stage in enumerate(self.w.stages):
            if stage.id in producers:
                self.w.stages[i] = replace(stage, writes=dedupe([*stage.writes, *writes]))

    def concurrently(self, call: cst.Call, mechanism: str,
                     bind: list[tuple[cst.BaseExpression, cst.BaseExpression]] | None = None) -> set[str]:
        """`asyncio.gather(a(), b())`, `tg.create_task(c())`: the stages inside already run together.

        With `bind` (`x, y = await gather(a(), b())`) each target gets only its own argument's result.
        """
        self.w.gathers.append(FanOut(mechanism, _code(call), self.module.line(call), None))
        first = len(self.w.stages)
        out: set[str] = set()
        try:
            if bind is not None:
                for target, value in bind:
                    objs = self.expr(value)
                    self.bind(target, objs, value=value)
                    out |= objs
            for arg in call.args if bind is None else ():
                out |= self.expr(arg.value)
            if isinstance(call.func, cst.Attribute):
                out |= self.expr(call.func.value)
        finally:
            self.w.gathers.pop()
        started = {s.id for s in self.w.stages[first:]}
        if len(started) >= 2:
            self.w.concurrent.append(started)
        return out

    def enclosing_fanout(self, call: cst.Call) -> FanOut | None:
        """How a stage called here would run side by side: the innermost `gather`, else the innermost loop."""
        if self.w.gathers:
            return self.w.gathers[-1]
        if self.w.loops:
            return FanOut("loop", self.w.loops[-1], self.module.line(call), None)
        return None

    def working_constructor(self, func: cst.BaseExpression) -> tuple[ClassRef, FunctionRef] | None:
        """The analysed class a call builds, with its `__init__`, when that does more than keep its
        arguments (`self.x = x`, `super().__init__(...)`, a docstring): it computes or reaches a system."""
        if not isinstance(func, cst.Name | cst.Attribute):
            return None
        klass = self.project.klass(self.module.qualify(func))
        init = klass.methods.get("__init__") if klass is not None else None
        if klass is None or init is None or not _does_work(init):
            return None
        return klass, init

    def instance_of(self, expr: cst.BaseExpression) -> tuple[ClassRef, tuple[str, str] | None] | None:
        """The analysed class a method receiver is an instance of, with its (key, label) when it can be shared."""
        if isinstance(expr, cst.Call):
            klass = self.project.klass(self.module.qualify(expr.func))
            return (klass, None) if klass is not None else None  # a fresh object nobody else sees
        if isinstance(expr, cst.Name) and expr.value in self.w.instances:
            klass, key = self.w.instances[expr.value]
            return klass, (key, expr.value)
        if isinstance(expr, cst.Name | cst.Attribute) and not (isinstance(expr, cst.Name) and expr.value in self.w.env):
            single = self.project.singleton(self.module.qualify(expr))
            if single is not None:  # a module-level instance shared by everyone who imports it
                return single[0], (f"global:{single[1]}", single[1].rsplit(".", 1)[-1])
        attr = _self_attr(expr)
        if attr is not None and self.klass is not None:
            self.ctx.handles_of_class(self.klass)
            klass_of_attr = self.ctx.class_instances.get(self.klass.qualname, {}).get(attr)
            if klass_of_attr is not None:
                return klass_of_attr, (f"self.{attr}", f"self.{attr}")
        return None

    def instance_handle(self, expr: cst.BaseExpression) -> Handle | None:
        """An object of the project's own classes handed to a stage (`load(db)` with `db = Database(...)`).

        The stage's calls on it are not resolved to the class (the callee does not know the type), so
        each is an unknown effect on that object: two stages handed the same object are not proven apart.
        """
        if isinstance(expr, cst.Name) and expr.value in self.w.instances:
            klass, key = self.w.instances[expr.value]
            return Handle(f"{INSTANCE}{klass.qualname}", "other", key, True, False, f"{klass.module.name}.x")
        return None

    def resolve_call(self, func: cst.BaseExpression) -> FunctionRef | None:
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in {"self", "cls"}:
            return self.project.method(self.klass, func.attr.value) if self.klass is not None else None
        if isinstance(func, cst.Attribute):
            found = self.instance_of(func.value)
            if found is not None:
                return self.project.method(found[0], func.attr.value)
        if isinstance(func, cst.Name) and func.value in self.w.env:
            return None
        return self.project.function(self.module.qualify(func))

    def resolve_ref(self, expr: cst.BaseExpression | None) -> FunctionRef | None:
        """A function reference passed as a value (`pool.submit(make_thumbnail, k)`)."""
        if expr is None:
            return None
        if isinstance(expr, cst.Call) and (self.module.qualify(expr.func) or "") in {"functools.partial", "partial"}:
            return self.resolve_ref(expr.args[0].value) if expr.args else None
        if isinstance(expr, cst.Name | cst.Attribute):
            return self.resolve_call(expr)
        return None

    def executor_of(self, expr: cst.BaseExpression | None) -> Executor | None:
        if not isinstance(expr, cst.Call):
            return None
        qualified = self.module.qualify(expr.func) or ""
        spec = _EXECUTORS.get(qualified)
        if spec is None:
            return None
        mechanism, keywords, position = spec
        positional = [a for a in expr.args if a.keyword is None and not a.star]
        capped = any(a.keyword is not None and a.keyword.value in keywords and not _is_none(a.value)
                     for a in expr.args) or (len(positional) > position and not _is_none(positional[position].value))
        return Executor(mechanism, _code(expr), capped, self.module.line(expr))

    def executor_named(self, expr: cst.BaseExpression) -> Executor | None:
        if isinstance(expr, cst.Name):
            return self.w.executors.get(expr.value)
        return self.executor_of(expr)

    # -- stages -----------------------------------------------------------------------

    def stage(self, callee: FunctionRef, call: cst.Call, arg_objs: list[set[str]], args: list[cst.Arg],
              fanout: FanOut | None, via_self: bool, dynamic: str | None = None,
              instance: tuple[str, str] | None = None, stage_name: str | None = None) -> set[str]:
        # `from steps.ingest import main as bronze; bronze()`: when the function's own name does not tell it
        # apart (a `main` in every step module), the stage is what the driver calls it
        func = call.func
        aliased = (isinstance(func, cst.Name) and func.value != callee.name and func.value in self.module.imports
                   and self.project.shared_name(callee.name))
        name = stage_name or (func.value if aliased and isinstance(func, cst.Name) else callee.name)
        count = self.w.names.get(name, 0) + 1
        self.w.names[name] = count
        stage_id = name if count == 1 else f"{name}#{count}"
        line = self.module.line(call)
        params = [p for p in callee.params if p not in {"self", "cls"}] if callee.is_method else list(callee.params)
        bound = bind_arguments(params, args, arg_objs)
        named = named_arguments(params, args)
        values = {name: evaluate(arg.value, self.scope) for name, arg in named}
        driver = self.builder.direct.get(self.fn.qualname) if self.fn is not None else None
        local_handles = driver.handles if driver is not None else {}
        param_handles = {
            name: h for name, arg in named
            if (h := self.ctx.handle_of_expr(arg.value, self.module, local_handles, self.klass)
                or self.instance_handle(arg.value)) is not None
        }
        param_classes = {name: found[0].qualname for name, arg in named
                         if (found := self.instance_of(arg.value)) is not None}
        keys_by_param = {p: {k for o in objs for k in self.w.objects[o].keys} for p, objs in bound.items()}
        if instance is not None and instance[0] in self.w.objects:
            # `calc = Calc(rows)` then `calc.run()`: the method sees what the object was built from
            made = self.w.objects[instance[0]]
            # ...and, when a constructor stage built it, the object that stage wrote
            built_from = set(made.keys) if made.producers else made.keys - {instance[0]}
            if built_from:
                keys_by_param["self"] = set(built_from)
        # what the driver read and handed over is a read of that file or table, not a variable of its own
        driver_reads = [effect_of(a) for keys in keys_by_param.values() for k in sorted(keys)
                        for a in self.w.read_objs.get(k, ())]
        driver_reads += [e for keys in keys_by_param.values() for k in sorted(keys) for e in self.w.carried.get(k, ())]
        keys_by_param = {p: {k for k in keys if k not in self.w.read_objs} for p, keys in keys_by_param.items()}
        labels = {k: self.label_of(k) for keys in keys_by_param.values() for k in keys}
        self_attrs = [a for a in (_self_attr(arg.value) for arg in args) if a]
        stage = self.builder.stage(
            stage_id=stage_id, callee=callee, file=self.module.relpath, line=line, params=keys_by_param,
            skip_unused=True,
            labels=labels, via_self=via_self, fanout=fanout, self_attr_args=self_attrs,
            handle_args=[a.value for a in args], module=self.module, klass=self.klass, values=values,
            instance=instance, assumed=dynamic is not None, param_handles=param_handles, name=stage_id,
            receiver=self.klass if via_self else None, local_handles=local_handles, param_classes=param_classes,
        )
        if via_self:
            self.w.self_calls += 1
        carried = self.attribute_values(stage)
        carried += driver_reads
        if carried:
            stage = replace(stage, reads=dedupe([*stage.reads, *carried]))
        self.w.stages.append(self.placed(stage))
        for guard in self.w.guards:
            for producer in sorted(guard):
                if producer != stage_id:
                    why = ("runs only if the earlier stage's result allows it",)
                    self.w.links.append(Link(producer, stage_id, "control", why))
        if dynamic:
            self.w.dynamic.append(stage_id)
        # the stage mutates its arguments' objects: later guards on them depend on it
        written = {e.key for e in stage.writes}
        for obj in list(self.w.objects.values()):
            if obj.key in written:
                self.w.objects[obj.key] = Obj(obj.key, obj.label, obj.keys, obj.producers | {stage_id})
        site = (id(call), callee.qualname)  # one call node may dispatch to several candidates
        if site in self.w.results and self.w.results[site] in self.w.objects:
            # the second walk of a loop body: the same call site yields the same result object, so values
            # carried out of the loop still point at what the (first-walk) stage writes
            result = self.w.objects[self.w.results[site]]
        else:
            result = self.new_obj(self.w.result_labels.get(id(call), f"{name}()"), None, set(),
                                  producers=frozenset({stage_id}))
            self.w.results[site] = result.key
        if id(call) not in self.w.discarded:
            # a stage's result is the object it writes; later stages that use it read it
            self.w.stages[-1] = self.builder.with_result(self.w.stages[-1], result.key, result.label, line)
        return {result.key}

    def attribute_values(self, stage: Stage) -> list[Effect]:
        """Reads of the values the driver stored in the self attributes this stage reads."""
        out: list[Effect] = []
        for effect in stage.reads:
            for obj in self.w.attr_objs.get(effect.identity, set()):
                for key in self.w.objects[obj].keys:
                    out.append(Effect("variable", self.label_of(key), stage.file, stage.line, key=key))
        return out

    def label_of(self, key: str) -> str:
        obj = self.w.objects.get(key)
        return obj.label if obj else key

    # -- dynamic dispatch -----------------------------------------------------------------

    def dynamic_getattr(self, call: cst.Call, getattr_call: cst.Call) -> set[str]:
        args = getattr_call.args
        target_module = self.project.module_of(self.module.qualify(args[0].value) or "") if args else None
        if target_module is not None:
            return self.dynamic_module(call, getattr_call, target_module)
        on_self = bool(args) and isinstance(args[0].value, cst.Name) and args[0].value.value == "self"
        if self.klass is None or not on_self:
            self.w.notes.append(f"line {self.module.line(call)}: dynamic dispatch through getattr() on an object "
                                "stagegraph can't resolve; its stages are unknown")
            return set()
        candidates = self.dispatch_candidates()
        reason = (f"dispatch by name through {_code(getattr_call)}: the steps and their order are chosen at run time")
        return self.dispatch(call, candidates, reason, via_self=lambda _: True, note=True)

    def dispatch(self, call: cst.Call, candidates: Sequence[FunctionRef], reason: str,
                 via_self: Callable[[FunctionRef], bool] = lambda _: False, note: bool = False) -> set[str]:
        """Every function a dispatch may call becomes a stage with assumed effects, chained in order by
        `unknown` links: which ones run, and in what order, is decided at run time."""
        arg_objs = [self.expr(a.value) for a in call.args]
        out: set[str] = set()
        for ref in candidates:
            out |= self.stage(ref, call, arg_objs, list(call.args), fanout=None, via_self=via_self(ref),
                              dynamic=reason)
        if note:
            self.w.notes.append(f"{reason}; candidate stages: {', '.join(r.name for r in candidates) or 'none found'}")
        self.chain_dynamic(reason)
        return out

    def dynamic_module(self, call: cst.Call, getattr_call: cst.Call, target: ModuleIndex) -> set[str]:
        """`getattr(steps_module, name)(...)`: candidates are that module's functions named in string constants."""
        names: list[str] = []
        for node in _walk(list(self.body)):
            if isinstance(node, cst.Name) and node.value in self.module.constants:
                for leaf in _walk(self.module.constants[node.value]):
                    if isinstance(leaf, cst.SimpleString):
                        value = leaf.evaluated_value
                        if isinstance(value, str) and value in target.functions and value not in names:
                            names.append(value)
            elif isinstance(node, cst.SimpleString):
                value = node.evaluated_value
                if isinstance(value, str) and value in target.functions and value not in names:
                    names.append(value)
        if not names:
            names = [n for n in target.functions if not n.startswith("_")]
        reason = f"dispatch by name through {_code(getattr_call)}: the steps and their order are chosen at run time"
        return self.dispatch(call, [target.functions[n] for n in names], reason, note=True)

    def dynamic_registry(self, call: cst.Call, name: str) -> set[str] | None:
        """`for step in (clean, validate, load): data = step(data)` over a list of analysed functions.

        The list's order is known, but the data threading through the loop variable is not traced
        precisely, so the steps are linked by `unknown` edges in list order (sound, never 'independent').
        """
        source = next((expr for names, expr in reversed(self.w.loop_sources) if name in names), None)
        if source is None:
            return None
        candidates = self.function_list(source)
        if len(candidates) < 1:
            return None
        reason = (f"each step of `{_code(source)}` is called in turn through `{name}`: the data the steps hand "
                  "each other through the loop is not traced")
        return self.dispatch(call, candidates, reason, via_self=lambda ref: ref.is_method)

    def function_list(self, expr: cst.BaseExpression, depth: int = 0) -> list[FunctionRef]:
        """Analysed functions listed by a literal, a module constant, or a dict constant's `.values()`."""
        if depth > 3:
            return []
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "values":
            expr = expr.func.value
        if isinstance(expr, cst.Name) and expr.value in self.module.constants:
            return self.function_list(self.module.constants[expr.value], depth + 1)
        elements: list[cst.BaseExpression] = []
        if isinstance(expr, cst.List | cst.Tuple):
            elements = [el.value for el in expr.elements]
        elif isinstance(expr, cst.Dict):
            elements = [el.value for el in expr.elements if isinstance(el, cst.DictElement)]
        refs = [self.resolve_ref(el) for el in elements]
        return [r for r in refs if r is not None] if refs and all(refs) else []

    def dynamic_subscript(self, call: cst.Call, func: cst.Subscript) -> set[str] | None:
        """`REGISTRY[name](...)` over a dict of analysed functions."""
        base = func.value
        if not isinstance(base, cst.Name) or base.value not in self.module.constants:
            return None
        value = self.module.constants[base.value]
        if not isinstance(value, cst.Dict):
            return None
        refs = [self.resolve_ref(el.value) for el in value.elements if isinstance(el, cst.DictElement)]
        candidates = [r for r in refs if r is not None]
        if not candidates:
            return None
        reason = (f"dispatch through the registry {base.value}[...]: which steps run, and in what order, "
                  "is chosen at run time")
        return self.dispatch(call, candidates, reason)

    def chain_dynamic(self, reason: str) -> None:
        ids = self.w.dynamic
        for a, b in itertools.pairwise(ids):
            self.w.links.append(Link(a, b, "unknown", (reason,)))
        self.w.dynamic = []

    def dispatch_candidates(self) -> list[FunctionRef]:
        """Methods a name-dispatch loop may call: names listed in string constants, else all public methods."""
        assert self.klass is not None
        klass = self.klass
        names: list[str] = []
        exprs: list[cst.BaseExpression] = list(klass.attributes.values())
        init = klass.methods.get("__init__")
        if init is not None:
            for node in _walk(init.node.body):
                if isinstance(node, cst.Assign):
                    exprs.append(node.value)
        for expr in exprs:
            for node in _walk(expr):
                if isinstance(node, cst.Name) and node.value in self.module.constants:
                    exprs.append(self.module.constants[node.value])
        for expr in exprs:
            for node in _walk(expr):
                if isinstance(node, cst.SimpleString):
                    value = node.evaluated_value
                    if isinstance(value, str) and value in klass.methods and value not in names:
                        names.append(value)
        driver = self.fn.name if self.fn else ""
        if not names:
            names = [m for m in klass.methods if not m.startswith("_") and m != driver]
        return [klass.methods[n] for n in names if n != driver]


def bind_arguments(params: Sequence[str], args: Sequence[cst.Arg], arg_objs: Sequence[set[str]],
                   positional: int = 0) -> dict[str, set[str]]:
    """The objects each parameter receives; a `*args`/`**kw` argument may reach any parameter."""
    bound: dict[str, set[str]] = {}
    for arg, objs in zip(args, arg_objs, strict=False):
        if arg.star:
            for p in params:
                bound.setdefault(p, set()).update(objs)
    objs_of = {id(arg): objs for arg, objs in zip(args, arg_objs, strict=False)}
    for name, arg in named_arguments(params, args, positional):
        bound.setdefault(name, set()).update(objs_of.get(id(arg), set()))
    return bound


def _call_order(stages: Sequence[Stage], concurrent: list[set[str]]) -> list[Link]:
    """Each stage follows the one before it, except inside a concurrent call (`gather`), whose members all
    follow what came before it and all precede what comes after it."""
    group_of = {sid: i for i, group in enumerate(concurrent) for sid in group}
    links: list[Link] = []
    previous: list[str] = []  # the stage(s) the next stage follows
    i = 0
    while i < len(stages):
        group = group_of.get(stages[i].id)
        if group is None:
            members = [stages[i].id]
            i += 1
        else:
            members = []
            while i < len(stages) and group_of.get(stages[i].id) == group:
                members.append(stages[i].id)
                i += 1
        links.extend(Link(a, b, "order", ("call order",)) for a in previous for b in members)
        previous = members
    return links


def _elementwise(assign: cst.Assign) -> list[tuple[cst.BaseExpression, cst.BaseExpression]] | None:
    """Targets paired with values for `a, b = x(), y()` and `a, b = await asyncio.gather(x(), y())`."""
    if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Tuple | cst.List):
        return None
    targets = assign.targets[0].target.elements
    value = assign.value.expression if isinstance(assign.value, cst.Await) else assign.value
    if isinstance(value, cst.Tuple | cst.List):
        values = [el.value for el in value.elements if not isinstance(el, cst.StarredElement)]
        if len(values) != len(value.elements):
            return None
    elif isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "gather" \
            and all(a.keyword is None and not a.star for a in value.args):
        values = [a.value for a in value.args]
    else:
        return None
    if len(values) != len(targets) or any(isinstance(t, cst.StarredElement) for t in targets):
        return None
    return [(t.value, v) for t, v in zip(targets, values, strict=True)]


def _unpacked_gather(assign: cst.Assign) -> cst.Call | None:
    value = assign.value.expression if isinstance(assign.value, cst.Await) else assign.value
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "gather":
        return value
    return None


def _names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple | cst.List):
        return [n for el in target.elements for n in _names(el.value)]
    return []


def _thin_io(fn: FunctionRef, builder: StageBuilder) -> bool:
    """A helper whose body is at most three plain statements (a docstring aside) that only read or
    write the file or table its caller names, through library calls: no analysed callee, no resource,
    nothing unknown, no state of its own (`def read_parquet(path): return pl.read_parquet(path)`)."""
    if fn.is_method or not isinstance(fn.node.body, cst.IndentedBlock):
        return False
    body = [s for s in fn.node.body.body if not (
        isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1 and isinstance(s.body[0], cst.Expr)
        and isinstance(s.body[0].value, cst.SimpleString | cst.ConcatenatedString))]
    if not body or len(body) > 3 or not all(isinstance(s, cst.SimpleStatementLine) for s in body):
        return False
    total = builder.total(fn)
    if total.resources or total.callees or total.virtual:
        return False
    outside = [a for a in total.accesses if a.place is None]
    # making sure a folder exists (`path.parent.mkdir(exist_ok=True)`) only reads it, even unnamed
    ensured = [a for a in outside if a.kind == "unknown" and a.of == "dir" and not a.write]
    named = [a for a in outside if a not in ensured]
    if not named or any(a.kind not in {"file", "dir", "table"} for a in named):
        return False
    # glue passes the caller's name through unchanged; a helper that names its own file or table
    # (`f"out/product_{p}.csv"`, `CREATE TABLE my_table`) is a step of its own
    markers = {f"{MARK}{p}{MARK}" for p in fn.params}
    if any(a.target not in markers for a in named):
        return False
    return all(a.place is None or (a.place[0] == "param" and not a.write) for a in total.accesses)


#: builtins that only copy or convert what they are given
_COPIES = frozenset({"list", "dict", "set", "tuple", "frozenset", "str", "int", "float", "bool", "bytes"})


def _does_work(init: FunctionRef) -> bool:
    """`__init__` does more than store its parameters: any call (but `super().__init__(...)`), or a
    value other than a parameter, a literal or `None`."""
    params = set(init.params)
    body = init.node.body.body if isinstance(init.node.body, cst.IndentedBlock) else ()
    for stmt in body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return True  # an `if`, a loop, a `with`: work
        for small in stmt.body:
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString | cst.ConcatenatedString):
                continue  # a docstring
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and _is_super_init(small.value):
                continue
            value = small.value if isinstance(small, cst.Assign | cst.AnnAssign) else None
            if isinstance(small, cst.Pass) or (isinstance(small, cst.AnnAssign) and value is None):
                continue
            if value is None:
                return True
            if isinstance(value, cst.Name) and (value.value in params or value.value in {"None", "True", "False"}):
                continue
            if (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in _COPIES
                    and all(isinstance(a.value, cst.Name) and a.value.value in params for a in value.args)):
                continue  # `self.steps = list(steps)`: a copy of an argument, no work
            if isinstance(value, cst.SimpleString | cst.Integer | cst.Float | cst.List | cst.Dict | cst.Tuple) \
                    and not any(isinstance(n, cst.Call) for n in _walk(value)):
                continue
            return True
    return False


def _is_super_init(call: cst.Call) -> bool:
    func = call.func
    return (isinstance(func, cst.Attribute) and func.attr.value == "__init__" and isinstance(func.value, cst.Call)
            and isinstance(func.value.func, cst.Name) and func.value.func.value == "super")


def _is_self_ref(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self"


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


_CODE_MODULE = cst.Module(body=[])


def _code(node: cst.CSTNode) -> str:
    text = _CODE_MODULE.code_for_node(node)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- finding drivers


def _main_blocks(module: ModuleIndex) -> list[cst.If]:
    blocks = []
    for stmt in module.parsed.tree.body:
        if isinstance(stmt, cst.If) and "__name__" in _code(stmt.test) and "__main__" in _code(stmt.test):
            blocks.append(stmt)
    return blocks


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """Every plain or class driver in the project with two or more stages."""
    # Prefect flows, Dagster jobs and Celery canvas builders are reported by their own adapters.
    from ._decorated import is_framework_entry

    project = builder.ctx.project
    found: list[PipelineFacts] = []
    for fn in project.functions.values():
        if is_framework_entry(fn):
            continue
        body = fn.node.body.body if isinstance(fn.node.body, cst.IndentedBlock) else []
        facts = _pipeline(builder, fn.module, fn, body, fn.qualname.removeprefix(fn.module.name + "."))
        if facts is not None:
            found.append(facts)
    for module in project.modules.values():
        for block in _main_blocks(module):
            body = block.body.body if isinstance(block.body, cst.IndentedBlock) else []
            facts = _pipeline(builder, module, None, body, "__main__", line=module.line(block))
            if facts is not None:
                found.append(facts)
    return found


def _recursive(builder: StageBuilder, fn: FunctionRef | None) -> bool:
    """`fn` calls itself, directly or through the functions it calls: a tree walker or an evaluator
    (`expr` -> `call` -> `expr`), whose calls are the steps of one recursion, not stages of a pipeline."""
    if fn is None:
        return False
    total = builder.totals.get(fn.qualname)
    return total is not None and fn.qualname in total.callees


def _pipeline(builder: StageBuilder, module: ModuleIndex, fn: FunctionRef | None, body: Sequence[cst.BaseStatement],
              name: str, line: int | None = None) -> PipelineFacts | None:
    if not _calls_enough(builder.ctx.project, module, fn, body) or _recursive(builder, fn):
        return None
    walk = Driver(builder, module, fn, body).run()
    if len(walk.stages) < 2:
        return None
    style = "class" if fn is not None and fn.class_name and walk.self_calls * 2 >= len(walk.stages) else "plain"
    declared = tuple(_call_order(walk.stages, walk.concurrent))
    signals = builder.driver_signals(fn, body, module)
    return PipelineFacts(
        id=f"{module.relpath}::{name}",
        name=name,
        style=style,  # type: ignore[arg-type]
        file=module.relpath,
        line=line or (fn.line if fn is not None else 1),
        stages=tuple(walk.stages),
        declared=declared,
        links=tuple(walk.links),
        signals=signals,
        notes=tuple(walk.notes),
    )


def _dispatches(call: cst.Call, module: ModuleIndex) -> bool:
    """`getattr(x, name)(...)` or `REGISTRY[name](...)` over a module-level dict."""
    if (module.qualify(call.func) or "") == "getattr":
        return True
    func = call.func
    return (
        isinstance(func, cst.Subscript)
        and isinstance(func.value, cst.Name)
        and isinstance(module.constants.get(func.value.value), cst.Dict)
    )


def _calls_enough(project: Project, module: ModuleIndex, fn: FunctionRef | None,
                  body: Sequence[cst.BaseStatement]) -> bool:
    """Cheap pre-check: does the body mention two or more analysed functions (or dispatch by name)?"""
    klass = project.classes.get(fn.qualname.rsplit(".", 1)[0]) if fn is not None and fn.class_name else None
    seen: set[str] = set()
    constructed: dict[str, cst.BaseExpression] | None = None
    for node in _walk(list(body)):
        if isinstance(node, cst.FunctionDef | cst.ClassDef | cst.Lambda):
            continue
        ref: FunctionRef | None = None
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
            ref = project.method(klass, node.attr.value) if klass is not None else None
        elif isinstance(node, cst.Name | cst.Attribute):
            q = module.qualify(node)
            ref = project.function(q) if q and "." in q else None
            listed = module.constants.get(node.value) if isinstance(node, cst.Name) else None
            if isinstance(listed, cst.List | cst.Tuple | cst.Dict):  # STEPS = (clean, validate, load)
                for leaf in _walk(listed):
                    q = module.qualify(leaf) if isinstance(leaf, cst.Name | cst.Attribute) else None
                    found = project.function(q) if q and "." in q else None
                    if found is not None:
                        seen.add(found.qualname)
        elif isinstance(node, cst.Call) and _dispatches(node, module):
            return True
        if ref is None and isinstance(node, cst.Attribute):
            if constructed is None:
                constructed = _constructed(body)
            ref = _method_of_instance(project, module, node, constructed)
        if ref is not None and (fn is None or ref.qualname != fn.qualname):
            seen.add(ref.qualname)
            if len(seen) >= 2:
                return True
    return False


def _constructed(body: Sequence[cst.BaseStatement]) -> dict[str, cst.BaseExpression]:
    """Local names bound to a call's result (`job = Extract(cfg)`): name -> the called expression."""
    out: dict[str, cst.BaseExpression] = {}
    for n in _walk(list(body)):
        if isinstance(n, cst.Assign) and isinstance(n.value, cst.Call):
            for t in n.targets:
                if isinstance(t.target, cst.Name):
                    out.setdefault(t.target.value, n.value.func)
    return out


def _method_of_instance(project: Project, module: ModuleIndex, node: cst.Attribute,
                        constructed: dict[str, cst.BaseExpression]) -> FunctionRef | None:
    """`Extract(cfg).run`, `job.run` after `job = Extract(cfg)`, `service.load` on an imported module-level
    instance: the analysed method a driver calls on an object of the project's own classes."""
    receiver = node.value
    klass: ClassRef | None = None
    if isinstance(receiver, cst.Call):
        klass = project.klass(module.qualify(receiver.func))
    elif isinstance(receiver, cst.Name) and receiver.value in constructed:
        klass = project.klass(module.qualify(constructed[receiver.value]))
    elif isinstance(receiver, cst.Name | cst.Attribute):
        single = project.singleton(module.qualify(receiver))
        klass = single[0] if single is not None else None
    return project.method(klass, node.attr.value) if klass is not None else None
