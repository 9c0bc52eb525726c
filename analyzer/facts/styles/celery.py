"""Celery canvases: `chain`, `group`, `chord`, `|`, `.s()`/`.si()`, `signature("name")`.

A pipeline is a function that builds a canvas (or sends two or more tasks), or a canvas assigned at
module level (`pipeline = chain(...)`, named after the variable); its stages are the
task functions the canvas names. The canvas is first read into a small tree (signatures, chains,
groups, chords) while the driver walk tracks objects; the tree becomes stages when it is applied
(`.apply_async()`, `.delay()`, `()`, returned, or at the end of the body). A chain declares order
between consecutive elements, and a mutable signature (`.s`) receives the previous result as its
first argument (a data edge); an immutable one (`.si`) receives nothing. Group members run in
parallel; a chord's header results feed its body. A task chosen at run time becomes an
unresolved placeholder stage with `unknown` links and a diagnostic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from ...model import FanOut, Link, PipelineFacts
from ..effects import _walk, is_true
from ..index import FunctionRef, ModuleIndex, Project
from ..stagefx import StageBuilder
from ._decorated import (
    FrameworkDriver,
    builds_celery_canvas,
    is_celery_task,
    keyword_arg,
    note_unresolved,
    placeholder_stage,
    string_value,
)
from .plain import _code

_SIGNATURE_METHODS = frozenset({"s", "si", "signature", "subtask"})
_SEND_METHODS = frozenset({"delay", "apply_async"})
_PASSTHROUGH = frozenset({"set", "clone", "on_error", "set_immutable", "options"})
_SIGNATURE_FUNCS = frozenset({"celery.signature", "celery.canvas.signature", "celery.Signature",
                              "celery.canvas.Signature", "celery.subtask"})
_CHAIN = frozenset({"celery.chain", "celery.canvas.chain"})
_GROUP = frozenset({"celery.group", "celery.canvas.group"})
_CHORD = frozenset({"celery.chord", "celery.canvas.chord"})


@dataclass(slots=True)
class Task:
    """An analysed Celery task: its function, registered names, and whether `self` is bound."""

    fn: FunctionRef
    names: frozenset[str]
    bound: bool


@dataclass(slots=True)
class Sig:
    task: Task
    args: list[cst.Arg]
    arg_objs: list[set[str]]
    immutable: bool
    line: int
    loop: str | None = None


@dataclass(slots=True)
class Chain:
    items: list[Node]


@dataclass(slots=True)
class Group:
    items: list[Node]


@dataclass(slots=True)
class Chord:
    header: Node
    body: Node | None


@dataclass(slots=True)
class Opaque:
    reason: str
    line: int


Node = Sig | Chain | Group | Chord | Opaque


def tasks_of(project: Project) -> dict[str, Task]:
    """Every Celery task in the project by qualified name."""
    found: dict[str, Task] = {}
    for q, fn in project.functions.items():
        if fn.is_method:
            continue
        dec = is_celery_task(fn)
        if dec is None:
            continue
        names = {q, fn.name}
        explicit = string_value(keyword_arg(dec.call, "name"))
        if explicit:
            names.add(explicit)
        found[q] = Task(fn, frozenset(names), is_true(keyword_arg(dec.call, "bind")))
    return found


@dataclass(slots=True)
class _Pending:
    node: Node
    key: str
    applied: bool = False


class CeleryDriver(FrameworkDriver):
    """Walks a canvas-building function: objects as in a plain driver, canvases as trees."""

    def __init__(self, builder: StageBuilder, module: ModuleIndex, fn: FunctionRef | None,
                 body: Sequence[cst.BaseStatement], tasks: dict[str, Task]) -> None:
        super().__init__(builder, module, fn, body)
        self.tasks = tasks
        self.trees: dict[str, _Pending] = {}
        self.appended: dict[str, list[Node]] = {}
        self.results: dict[str, str] = {}
        self.opaque_ids: set[str] = set()
        self.unknown_links: list[Link] = []

    # -- resolving tasks ------------------------------------------------------------------

    def task_of(self, expr: cst.BaseExpression) -> Task | None:
        if isinstance(expr, cst.Name) and expr.value in self.w.env:
            return None
        fn = self.project.function(self.module.qualify(expr))
        return self.tasks.get(fn.qualname) if fn is not None else None

    def task_named(self, name: str) -> Task | None:
        hits = [t for t in self.tasks.values() if name in t.names]
        if not hits:
            hits = [t for t in self.tasks.values() if any(n.endswith("." + name) or name.endswith("." + n)
                                                          for n in t.names)]
        return hits[0] if len(hits) == 1 else None

    def opaque(self, why: str, node: cst.CSTNode) -> Opaque:
        line = self.module.line(node)
        note_unresolved(self.builder.diagnostics, self.module, line, why)
        return Opaque(why, line)

    # -- reading canvases -----------------------------------------------------------------

    def signature(self, call: cst.Call, task: Task, immutable: bool, args: Sequence[cst.Arg]) -> Sig:
        plain = [a for a in args if a.keyword is None or a.keyword.value not in {"immutable", "options"}]
        return Sig(task, list(plain), [self.expr(a.value) for a in plain], immutable, self.module.line(call))

    def parse(self, expr: cst.BaseExpression) -> Node | None:
        """The canvas an expression builds, or None when it is not a canvas."""
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
            left, right = self.parse(expr.left), self.parse(expr.right)
            if left is not None and right is not None:
                return Chain([left, right])
            return None
        if isinstance(expr, cst.ListComp | cst.GeneratorExp):
            return self.parse_comprehension(expr)
        if isinstance(expr, cst.List | cst.Tuple):
            items = [self.parse(e.value) for e in expr.elements]
            if items and all(i is not None for i in items):
                return Group([i for i in items if i is not None])
            return None
        if isinstance(expr, cst.Name):
            if expr.value in self.appended:
                return Group(list(self.appended[expr.value]))
            for key in sorted(self.w.env.get(expr.value, set())):
                pending = self.trees.get(key)
                if pending is not None:
                    pending.applied = True  # consumed by the enclosing canvas
                    return pending.node
                obj = self.w.objects.get(key)
                if obj is not None:
                    members = [self.trees[k] for k in sorted(obj.keys, key=_creation) if k in self.trees]
                    if members:
                        for m in members:
                            m.applied = True
                        return Group([m.node for m in members])
            return None
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        qualified = self.module.qualify(func) or ""
        args = list(expr.args)
        if qualified in _CHAIN:
            return Chain(self.parse_members(args))
        if qualified in _GROUP:
            return Group(self.parse_members(args))
        if qualified in _CHORD:
            header = self.parse(args[0].value) if args else None
            body = self.parse(args[1].value) if len(args) > 1 else None
            if header is None:
                header = self.opaque(f"chord header {_code(args[0].value) if args else ''} is not a list of "
                                     "signatures stagegraph can read", expr)
            return Chord(header, body)
        if isinstance(func, cst.Call) and (self.module.qualify(func.func) or "") in _CHORD and args:
            inner = self.parse(func)
            if isinstance(inner, Chord) and inner.body is None:
                inner.body = self.parse(args[0].value)
            return inner
        if qualified in _SIGNATURE_FUNCS or (isinstance(func, cst.Attribute) and func.attr.value == "signature"
                                             and self.task_of(func.value) is None and args
                                             and string_value(args[0].value) is not None):
            return self.by_name(expr, args)
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in _SIGNATURE_METHODS:
                task = self.task_of(func.value)
                if task is None:
                    return self.opaque(f"{_code(func.value)}.{method}(): a task chosen at run time", expr)
                if method == "signature":
                    inner_args = _tuple_args(args[0].value) if args and args[0].keyword is None else []
                    immutable = is_true(keyword_arg(expr, "immutable"))
                    return self.signature(expr, task, immutable, inner_args)
                return self.signature(expr, task, method == "si", args)
            if method in _PASSTHROUGH:
                inner = self.parse(func.value)
                if inner is not None and method == "set_immutable" and isinstance(inner, Sig):
                    inner.immutable = not (args and isinstance(args[0].value, cst.Name)
                                           and args[0].value.value == "False")
                return inner
        return None

    def by_name(self, call: cst.Call, args: list[cst.Arg]) -> Node:
        name = string_value(args[0].value) if args else None
        task = self.task_named(name) if name else None
        if task is None:
            what = f"signature({_code(args[0].value) if args else ''})"
            why = (f"{what}: task {name!r} is not defined in the analysed code" if name
                   else f"{what}: the task name is chosen at run time")
            return self.opaque(why, call)
        sig_args = keyword_arg(call, "args")
        inner = _tuple_args(sig_args) if sig_args is not None else (
            _tuple_args(args[1].value) if len(args) > 1 and args[1].keyword is None else [])
        return self.signature(call, task, is_true(keyword_arg(call, "immutable")), inner)

    def parse_members(self, args: list[cst.Arg]) -> list[Node]:
        out: list[Node] = []
        for arg in args:
            if arg.keyword is not None:
                continue
            node = self.parse(arg.value)
            if node is None:
                node = self.opaque(f"canvas member {_code(arg.value)} is not a signature stagegraph can read",
                                   arg.value)
            if arg.star and isinstance(node, Group):
                out.extend(node.items)
            else:
                out.append(node)
        if len(args) == 1 and len(out) == 1 and isinstance(out[0], Group) and not args[0].star:
            return out[0].items  # chain([a.s(), b.s()]) / group([...]) take one list
        return out

    def parse_comprehension(self, expr: cst.ListComp | cst.GeneratorExp) -> Node | None:
        saved = {k: set(v) for k, v in self.w.env.items()}
        details: list[str] = []
        comp: cst.CompFor | None = expr.for_in
        while comp is not None:
            self.bind(comp.target, self.expr(comp.iter))
            details.append(f"for {_code(comp.target)} in {_code(comp.iter)}")
            comp = comp.inner_for_in
        node = self.parse(expr.elt)
        self.w.env = saved
        if node is None:
            return None
        for sig in _sigs(node):
            sig.loop = " ".join(details)
        return Group([node])

    # -- the walk ------------------------------------------------------------------------

    def call(self, call: cst.Call) -> set[str]:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in {"append", "extend"} and call.args \
                and isinstance(func.value, cst.Name):
            node = self.parse(call.args[0].value)
            if node is not None:
                if self.w.loops:
                    for sig in _sigs(node):
                        sig.loop = self.w.loops[-1]
                members = node.items if func.attr.value == "extend" and isinstance(node, Group) else [node]
                self.appended.setdefault(func.value.value, []).extend(members)
                return set()
        if isinstance(func, cst.Attribute) and func.attr.value in _SEND_METHODS | {"apply"}:
            node = self.sent(call, func)
            if node is not None:
                return self.realize_root(node, call)
        if isinstance(func, cst.Call | cst.Name):
            node = self.parse(func) if not (isinstance(func, cst.Name) and self.task_of(func)) else None
            if node is not None:
                if isinstance(node, Chord) and node.body is None and call.args:
                    node.body = self.parse(call.args[0].value)
                return self.realize_root(node, call)
        node = self.parse(call)
        if node is not None:
            return {self.hold(node, call)}
        return super().call(call)

    def expr(self, expr: cst.BaseExpression | None) -> set[str]:
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
            node = self.parse(expr)
            if node is not None:
                return {self.hold(node, expr)}
        return super().expr(expr)

    def hold(self, node: Node, where: cst.CSTNode) -> str:
        obj = self.new_obj(f"canvas@{self.module.line(where)}", None, set())
        self.trees[obj.key] = _Pending(node, obj.key)
        return obj.key

    def sent(self, call: cst.Call, func: cst.Attribute) -> Node | None:
        """What `x.delay(...)`/`x.apply_async(...)` sends: a task with arguments, or a canvas."""
        base = func.value
        task = self.task_of(base)
        args = list(call.args)
        node: Node | None
        if task is not None:
            if func.attr.value == "delay":
                node = self.signature(call, task, False, args)
            else:
                positional = [a for a in args if a.keyword is None]
                given = keyword_arg(call, "args")
                inner = _tuple_args(given) if given is not None else (
                    _tuple_args(positional[0].value) if positional else [])
                kwargs = keyword_arg(call, "kwargs")
                if isinstance(kwargs, cst.Dict):
                    inner += [cst.Arg(el.value, keyword=cst.Name(k)) for el in kwargs.elements
                              if isinstance(el, cst.DictElement) and (k := string_value(el.key) or "").isidentifier()]
                node = self.signature(call, task, False, inner)
        else:
            node = self.parse(base)
        if node is None:
            return None
        link = keyword_arg(call, "link")
        callback = self.parse(link) if link is not None else None
        return Chain([node, callback]) if callback is not None else node

    def realize_root(self, node: Node, where: cst.CSTNode) -> set[str]:
        _, exits = self.realize(node, [], None)
        return {self.results[s] for s in exits if s in self.results}

    def small(self, small: cst.BaseSmallStatement) -> None:
        """`raise self.replace(chain(...))`: a bound task hands its place to a canvas it raises; the canvas
        is built (and realised with the rest at the end of the body) like one returned."""
        if isinstance(small, cst.Raise) and small.exc is not None:
            self.expr(small.exc)
            return
        super().small(small)

    def finish(self) -> None:
        """Canvases built but never applied in the body (returned, or passed on) still describe the pipeline."""
        for pending in list(self.trees.values()):
            if not pending.applied and not _inside_other(pending, self.trees):
                pending.applied = True
                self.realize(pending.node, [], None)

    # -- trees to stages -------------------------------------------------------------------

    def realize(self, node: Node, prev: list[str], fan: str | None) -> tuple[list[str], list[str]]:
        """Stages for one canvas node fed by the `prev` stages' results; returns (entries, exits)."""
        if isinstance(node, Sig):
            first = {self.results[p] for p in prev if p in self.results} if prev and not node.immutable else None
            bound = self.bind_params(node.task.fn, node.args, node.arg_objs, skip=1 if node.task.bound else 0,
                                     first=first)
            fanout = FanOut(fan or "loop", node.loop, node.line, None) if node.loop else None
            stage_id, result = self.add_stage(node.task.fn, node.line, bound, fanout=fanout,
                                              label=f"result of {node.task.fn.name}",
                                              handle_args=[a.value for a in node.args])
            self.results[stage_id] = result.key
            return [stage_id], [stage_id]
        if isinstance(node, Opaque):
            stage_id = self.next_id("unresolved-task")
            self.w.stages.append(placeholder_stage(stage_id, self.module, node.line, node.reason))
            self.opaque_ids.add(stage_id)
            for p in prev:
                self.unknown_links.append(Link(p, stage_id, "unknown", (node.reason,)))
            return [stage_id], [stage_id]
        if isinstance(node, Chain):
            entries: list[str] | None = None
            current = prev
            for item in node.items:
                e, x = self.realize(item, current, fan)
                if entries is None:
                    entries = e
                self.declare(current if item is not node.items[0] else [], e)
                current = x
            return entries or [], current
        if isinstance(node, Group):
            entries, exits = [], []
            for item in node.items:
                e, x = self.realize(item, prev, fan if fan in {"chord"} and len(node.items) == 1 else "group")
                entries += e
                exits += x
            return entries, exits
        header = node.header if isinstance(node.header, Group) else Group([node.header])
        entries, exits = [], []
        for item in header.items:
            e, x = self.realize(item, prev, "chord")
            entries += e
            exits += x
        if node.body is None:
            return entries, exits
        body_entries, body_exits = self.realize(node.body, exits, None)
        self.declare(exits, body_entries)
        return entries, body_exits

    def declare(self, before: list[str], after: list[str]) -> None:
        for a, b in itertools.product(before, after):
            if a != b:
                self.declared.append(Link(a, b, "order", ("canvas order",)))
                if a in self.opaque_ids or b in self.opaque_ids:
                    self.unknown_links.append(Link(a, b, "unknown", ("a task stagegraph could not resolve",)))


def _creation(key: str) -> int:
    parts = key.split(":")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


def _inside_other(pending: _Pending, trees: dict[str, _Pending]) -> bool:
    return any(other is not pending and _contains(other.node, pending.node) for other in trees.values())


def _contains(outer: Node, inner: Node) -> bool:
    if outer is inner:
        return True
    if isinstance(outer, Chain | Group):
        return any(_contains(i, inner) for i in outer.items)
    if isinstance(outer, Chord):
        return _contains(outer.header, inner) or (outer.body is not None and _contains(outer.body, inner))
    return False


def _sigs(node: Node) -> list[Sig]:
    if isinstance(node, Sig):
        return [node]
    if isinstance(node, Chain | Group):
        return [s for i in node.items for s in _sigs(i)]
    if isinstance(node, Chord):
        return _sigs(node.header) + (_sigs(node.body) if node.body is not None else [])
    return []


def _tuple_args(expr: cst.BaseExpression) -> list[cst.Arg]:
    if isinstance(expr, cst.Tuple | cst.List):
        return [cst.Arg(e.value, star="*" if isinstance(e, cst.StarredElement) else "") for e in expr.elements]
    return [cst.Arg(expr, star="*")]


# ---------------------------------------------------------------- finding canvas builders


def _task_uses(fn: FunctionRef, tasks: dict[str, Task], project: Project) -> int:
    return _signatures_in(fn.node.body, fn.module, tasks, project)


def _signatures_in(tree: cst.CSTNode, module: ModuleIndex, tasks: dict[str, Task], project: Project) -> int:
    """How many task signatures or sends (`t.s()`, `t.delay()`, `signature("t")`) a tree holds."""
    count = 0
    for node in _walk(tree):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
                and node.func.attr.value in _SIGNATURE_METHODS | _SEND_METHODS:
            ref = project.function(module.qualify(node.func.value))
            if ref is not None and ref.qualname in tasks:
                count += 1
        elif isinstance(node, cst.Call) and (module.qualify(node.func) or "") in _SIGNATURE_FUNCS:
            count += 1
    return count


def _module_canvases(builder: StageBuilder, tasks: dict[str, Task]) -> list[PipelineFacts]:
    """`pipeline = chain(a.s(), b.s(), c.s())` at module level, started elsewhere (`pipeline.delay()`):
    one pipeline named after the variable."""
    project = builder.ctx.project
    found: list[PipelineFacts] = []
    for module in project.modules.values():
        for stmt in module.parsed.tree.body:
            if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
                continue
            assign = stmt.body[0]
            if not isinstance(assign, cst.Assign | cst.AnnAssign) or assign.value is None:
                continue
            targets = [t.target for t in assign.targets] if isinstance(assign, cst.Assign) else [assign.target]
            if len(targets) != 1 or not isinstance(targets[0], cst.Name):
                continue
            if _signatures_in(assign.value, module, tasks, project) < 2:
                continue
            driver = CeleryDriver(builder, module, None, [stmt], tasks)
            driver.run()
            driver.finish()
            if not driver.w.stages:
                continue
            name = targets[0].value
            found.append(PipelineFacts(
                id=f"{module.relpath}::{name}", name=name, style="celery", file=module.relpath,
                line=module.line(stmt), stages=tuple(driver.w.stages), declared=tuple(driver.declared),
                links=(*driver.w.links, *driver.unknown_links), signals=builder.driver_signals(None, [stmt], module),
                notes=tuple(driver.w.notes),
            ))
    return found


def is_canvas_builder(fn: FunctionRef, tasks: dict[str, Task], project: Project) -> bool:
    return builds_celery_canvas(fn) or _task_uses(fn, tasks, project) >= 2


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """One pipeline per function that builds a Celery canvas or sends two or more tasks."""
    project = builder.ctx.project
    tasks = tasks_of(project)
    found: list[PipelineFacts] = []
    for fn in project.functions.values():
        if not is_canvas_builder(fn, tasks, project):
            continue
        body = fn.node.body.body if isinstance(fn.node.body, cst.IndentedBlock) else []
        driver = CeleryDriver(builder, fn.module, fn, body, tasks)
        driver.run()
        driver.finish()
        facts = driver.facts("celery", driver.unknown_links)
        if facts is not None:
            found.append(facts)
    found += _module_canvases(builder, tasks)
    return found
