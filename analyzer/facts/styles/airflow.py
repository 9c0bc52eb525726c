"""Airflow DAGs (2.x and 3.x): tasks, their effects, and the orderings the DAG declares.

A DAG is a `with DAG(...)` block (module level or inside a factory function), a `dag = DAG(...)`
assignment followed by operators, or a `@dag`-decorated function (style `airflow-taskflow`).
Each task is a stage named by its task id (prefixed by its TaskGroup ids, as Airflow does):

- Python operators: the callable's composed effects, plus XCom: `xcom_push(key=K)` writes
  `TASK.K`, `xcom_pull(task_ids=T, key=K)` reads `T.K` (default key `return_value`), and a
  callable that returns something writes `TASK.return_value`. Jinja `{{ ti.xcom_pull(...) }}`
  in any templated argument reads too.
- SQL operators: tables of `sql=` (strings, lists, or `.sql` files next to the DAG or under
  `template_searchpath`); `{{ params.x }}` is substituted from `params=` when literal, other
  templates become wildcards.
- TaskFlow `@task` calls: a task result passed as an argument is a read of `A.return_value` and
  a declared ordering (Airflow sets it); `.partial(...).expand(...)` is a fan-out.
- Everything else (Bash, Docker, Kubernetes, custom operators...) is opaque: it may read and
  write anything, so every pair with it is an `unknown` dependency (the conservative answer).

Declared orderings: `>>`, `<<`, lists, chains, `chain()`, `chain_linear()`, `cross_downstream()`,
`set_upstream/set_downstream`; a TaskGroup on either side stands for its roots or leaves.
Task ids that can't be known statically (loops over data we can't see) become one wildcard
stage with a diagnostic and `unknown` links to the rest of the DAG.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import libcst as cst
import networkx as nx

from ...catalog import OperatorModel
from ...confine import inside, repo_root
from ...model import Effect, EffectKind, FanOut, Link, PipelineFacts, Stage
from .. import shell
from ..index import ClassRef, FunctionRef, ModuleIndex, Project, named_arguments
from ..sql import JINJA_EXPRESSION
from ..stagefx import StageBuilder, sql_effects, used_names
from ..summaries import Total
from ..values import WILD, Scope, evaluate
from ._declared import (
    argument,
    body_of,
    code,
    decorator_call,
    decorator_names,
    kwarg,
    literal_values,
    nested_function,
    opaque,
    returns_value,
    string_items,
    unresolved,
    walk,
)

DAG_CLASSES = frozenset({
    "airflow.DAG", "airflow.models.DAG", "airflow.models.dag.DAG", "airflow.sdk.DAG", "airflow.sdk.definitions.dag.DAG",
})
DAG_DECORATORS = frozenset({"airflow.decorators.dag", "airflow.sdk.dag", "airflow.models.dag.dag"})
TASK_DECORATORS = frozenset({"airflow.decorators.task", "airflow.sdk.task"})
GROUP_DECORATORS = frozenset({"airflow.decorators.task_group", "airflow.sdk.task_group"})
TASK_GROUPS = frozenset({
    "airflow.utils.task_group.TaskGroup", "airflow.sdk.TaskGroup", "airflow.task.TaskGroup",
    "airflow.sdk.definitions.taskgroup.TaskGroup",
})
CHAIN = frozenset({"airflow.models.baseoperator.chain", "airflow.sdk.chain", "airflow.utils.helpers.chain",
                   "airflow.models.chain"})
CHAIN_LINEAR = frozenset({"airflow.models.baseoperator.chain_linear", "airflow.sdk.chain_linear"})
CROSS = frozenset({"airflow.models.baseoperator.cross_downstream", "airflow.sdk.cross_downstream",
                   "airflow.utils.helpers.cross_downstream"})
#: .sql files per analysed root, listed once per run when a template_searchpath can't be evaluated
_SQL_FILES: dict[str, list[Path]] = {}

PYTHON_OPERATORS = frozenset({
    "PythonOperator", "PythonVirtualenvOperator", "BranchPythonOperator", "ShortCircuitOperator",
    "ExternalPythonOperator", "BranchExternalPythonOperator", "BranchPythonVirtualenvOperator",
})
SQL_OPERATORS = frozenset({
    "PostgresOperator", "MySqlOperator", "MsSqlOperator", "SqliteOperator", "OracleOperator", "SnowflakeOperator",
    "SQLExecuteQueryOperator", "BigQueryInsertJobOperator", "BigQueryExecuteQueryOperator", "RedshiftSQLOperator",
    "TrinoOperator", "DatabricksSqlOperator", "VerticaOperator", "JdbcOperator", "DruidSqlOperator",
    "ExasolOperator", "HiveOperator", "PrestoOperator", "SparkSqlOperator",
})
EMPTY_OPERATORS = frozenset({"EmptyOperator", "DummyOperator", "LatestOnlyOperator"})
#: keyword arguments that cap how many mapped task instances run at once
MAPPING_CAPS = ("max_active_tis_per_dag", "max_active_tis_per_dagrun", "pool")
#: `xcom_pull(...)` in a Jinja template, with its argument text (no nested parentheses in practice)
_XCOM_TEMPLATE = re.compile(r"xcom_pull\(([^()]*)\)")
_QUOTED = r"['\"]([^'\"]+)['\"]"
_PULL_TASK = re.compile(rf"^\s*{_QUOTED}|\btask_ids\s*=\s*{_QUOTED}")
_PULL_KEY = re.compile(rf"\bkey\s*=\s*{_QUOTED}")


def template_pulls(text: str) -> list[tuple[str, str]]:
    """(task id, key) of every `xcom_pull` in a template, whatever order its keywords come in."""
    out: list[tuple[str, str]] = []
    for m in _XCOM_TEMPLATE.finditer(text):
        args = m.group(1)
        task = _PULL_TASK.search(args)
        if task is None:
            continue
        key = _PULL_KEY.search(args)
        out.append((task.group(1) or task.group(2), key.group(1) if key else "return_value"))
    return out
_PARAMS_TEMPLATE = re.compile(r"\{\{\s*params\.(\w+)\s*\}\}|\{\{\s*params\[['\"](\w+)['\"]\]\s*\}\}")

Ref = tuple[str, str]  # ("task", id) | ("group", id)


@dataclass(slots=True)
class Task:
    """One task as declared, before its stage is built."""

    task_id: str
    line: int
    call: cst.Call
    kind: str  # python | sql | shell | empty | opaque | taskflow
    callee: FunctionRef | None = None
    fanout: FanOut | None = None
    reads: list[Effect] = field(default_factory=list)
    writes: list[Effect] = field(default_factory=list)
    dynamic: bool = False
    xcom_push: bool = True
    #: "branch" / "short-circuit": every task downstream runs only depending on this task's outcome
    gate: str = ""
    #: a TaskFlow task whose returned dict is pushed key by key (`multiple_outputs`, or a dict return type)
    multiple_outputs: bool = False
    #: a custom operator: what `self.<attr>` holds in its execute(), from the constructor arguments
    bound: dict[str, str] | None = None
    #: the file the task is declared in (a task group or factory in another module), "" for the DAG's
    file: str = ""


@dataclass(slots=True)
class Group:
    group_id: str
    members: list[str] = field(default_factory=list)  # task ids, nested groups' members included
    roots: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Walk:
    tasks: dict[str, Task] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    env: dict[str, list[Ref]] = field(default_factory=dict)
    locals: dict[str, cst.BaseExpression] = field(default_factory=dict)
    relations: list[tuple[Ref, Ref, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    group_stack: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    #: what `return` statements hand back while a task group or factory function is walked (`inline`)
    returns: list[Ref] = field(default_factory=list)
    #: the functions being walked inline, innermost last (a guard against recursion)
    inlining: list[str] = field(default_factory=list)


class DagWalker:
    """Walks one DAG body in source order, collecting tasks, groups and declared relations."""

    def __init__(self, builder: StageBuilder, module: ModuleIndex, dag_name: str,
                 taskflow: dict[str, FunctionRef], groupfns: dict[str, cst.FunctionDef],
                 local_defs: dict[str, FunctionRef], searchpath: list[str],
                 scope_locals: dict[str, cst.BaseExpression]) -> None:
        self.builder = builder
        self.project: Project = builder.ctx.project
        self.module = module
        self.dag_name = dag_name
        self.taskflow = dict(taskflow)
        self.groupfns = dict(groupfns)
        self.local_defs = dict(local_defs)
        self.searchpath = searchpath
        self.w = _Walk(locals=dict(scope_locals))

    # -- scope -----------------------------------------------------------------

    def scope(self) -> Scope:
        shadowed = frozenset(n for n in self.w.env)
        return Scope(self.module, self.project, dict(self.w.locals), shadowed)

    def qualify(self, expr: cst.BaseExpression) -> str:
        return self.module.qualify(expr) or ""

    # -- statements ------------------------------------------------------------

    def block(self, body: Sequence[cst.CSTNode]) -> None:
        for stmt in body:
            self.statement(stmt)

    def statement(self, stmt: cst.CSTNode) -> None:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                self.small(small)
        elif isinstance(stmt, cst.With):
            self.with_block(stmt)
        elif isinstance(stmt, cst.FunctionDef):
            self.definition(stmt)
        elif isinstance(stmt, cst.For):
            self.for_loop(stmt)
        elif isinstance(stmt, cst.If):
            self.block(body_of(stmt))
            orelse = stmt.orelse
            if isinstance(orelse, cst.If):
                self.statement(orelse)
            elif isinstance(orelse, cst.Else) and isinstance(orelse.body, cst.IndentedBlock):
                self.block(orelse.body.body)
        elif isinstance(stmt, cst.Try):
            self.block(body_of(stmt))  # type: ignore[arg-type]

    def small(self, small: cst.BaseSmallStatement) -> None:
        if isinstance(small, cst.Assign):
            refs = self.expr(small.value)
            for target in small.targets:
                self.bind(target.target, refs, small.value)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self.bind(small.target, self.expr(small.value), small.value)
        elif isinstance(small, cst.Expr):
            self.expr(small.value)
        elif isinstance(small, cst.Return) and small.value is not None and self.w.inlining:
            self.w.returns.extend(self.expr(small.value))

    def bind(self, target: cst.BaseExpression, refs: list[Ref], value: cst.BaseExpression) -> None:
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and refs:
            # `tasks[src] = Operator(...)`: the container accumulates tasks
            self.w.env[target.value.value] = [*self.w.env.get(target.value.value, []), *refs]
            return
        if isinstance(target, cst.Name):
            if refs:
                self.w.env[target.value] = refs
                self.w.locals.pop(target.value, None)
            else:
                self.w.locals[target.value] = value
                self.w.env.pop(target.value, None)
        elif isinstance(target, cst.Tuple | cst.List) and isinstance(value, cst.Tuple | cst.List) and \
                len(target.elements) == len(value.elements):
            for t, v in zip(target.elements, value.elements, strict=True):
                self.bind(t.value, self.expr(v.value) if refs else [], v.value)

    def definition(self, node: cst.FunctionDef) -> None:
        names = decorator_names(node, self.module)
        if any(_is_task_decorator(n) for n in names):
            self.taskflow[node.name.value] = nested_function(self.builder, self.module, node,
                                                             f"{self.module.name}.{self.dag_name}")
        elif any(n in GROUP_DECORATORS for n in names):
            self.groupfns[node.name.value] = node
        else:
            self.local_defs[node.name.value] = nested_function(self.builder, self.module, node,
                                                               f"{self.module.name}.{self.dag_name}")

    def with_block(self, stmt: cst.With) -> None:
        for item in stmt.items:
            call = item.item
            if isinstance(call, cst.Call) and self.qualify(call.func) in TASK_GROUPS:
                gid = evaluate(argument(call, 0, "group_id") or self.spread_kwarg(call, "group_id"),
                               self.scope()) or WILD
                if item.asname is not None and isinstance(item.asname.name, cst.Name):
                    # bound before the body runs: `return group` inside it (a group factory) hands it back
                    self.w.env[item.asname.name.value] = [self.group_ref(gid)]
                self.group(gid, lambda s=stmt: self.block(body_of(s)), call)
                return
        self.block(body_of(stmt))

    def spread_kwarg(self, call: cst.Call, name: str) -> cst.BaseExpression | None:
        """A keyword given through `**settings`, where `settings` is a dict literal (a local or constant)."""
        for arg in call.args:
            if arg.star != "**" or not isinstance(arg.value, cst.Name):
                continue
            found = _dict_path(self.w.locals.get(arg.value.value) or self.module.constants.get(arg.value.value),
                               (name,))
            if found is not None:
                return found
        return None

    def group_ref(self, gid: str) -> Ref:
        """The ref of group `gid` opened here (its id within the groups it sits in)."""
        return ("group", ".".join([*self.w.group_stack, gid]) if self.w.group_stack else gid)

    def group(self, gid: str, run: object, node: cst.CSTNode, prefix: bool = True) -> Ref:
        full = self.group_ref(gid)[1]
        group = self.w.groups.setdefault(full, Group(full))
        self.w.group_stack.append(gid if prefix else "")
        before = set(self.w.tasks)
        try:
            assert callable(run)
            run()
        finally:
            self.w.group_stack.pop()
        group.members.extend(t for t in self.w.tasks if t not in before)
        if WILD in gid:
            unresolved(self.builder, self.module, node, f"TaskGroup id {gid!r} is not known statically")
        return ("group", full)

    def for_loop(self, stmt: cst.For) -> None:
        values = literal_values(stmt.iter, self.scope())
        if values is not None and len(values) <= 200:
            for value in values:
                self.bind_loop(stmt.target, value)
                self.block(body_of(stmt))
            return
        detail = f"for {code(stmt.target)} in {code(stmt.iter)}"
        self.bind_loop(stmt.target, None)
        self.w.loops.append(detail)
        try:
            self.block(body_of(stmt))
        finally:
            self.w.loops.pop()

    def bind_loop(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            self.w.env.pop(target.value, None)
            if value is None:
                self.w.locals[target.value] = cst.Name("__stagegraph_unknown__")
            else:
                self.w.locals[target.value] = value
        elif isinstance(target, cst.Tuple | cst.List):
            items = value.elements if isinstance(value, cst.Tuple | cst.List) else None
            for i, el in enumerate(target.elements):
                sub = items[i].value if items is not None and i < len(items) else None
                self.bind_loop(el.value, sub)

    # -- expressions -----------------------------------------------------------

    def expr(self, expr: cst.BaseExpression) -> list[Ref]:
        if isinstance(expr, cst.Name):
            return list(self.w.env.get(expr.value, []))
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.RightShift | cst.LeftShift):
            left, right = self.expr(expr.left), self.expr(expr.right)
            for side, refs in ((expr.left, left), (expr.right, right)):
                if not refs and not _is_chain(side):
                    unresolved(self.builder, self.module, expr,
                               f"{code(side)} in {code(expr)} is not a task stagegraph can resolve; "
                               "this declared ordering is lost")
            upstream, downstream = (left, right) if isinstance(expr.operator, cst.RightShift) else (right, left)
            self.relate(upstream, downstream, code(expr))
            return right
        if isinstance(expr, cst.List | cst.Tuple | cst.Set):
            out: list[Ref] = []
            for el in expr.elements:
                out.extend(self.expr(el.value))
            return out
        if isinstance(expr, cst.Attribute) and expr.attr.value == "output":
            return self.expr(expr.value)
        if isinstance(expr, cst.Subscript):
            refs = self.expr(expr.value)
            if not refs:
                return []
            index = expr.slice[0].slice if len(expr.slice) == 1 else None
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer):
                i = int(index.value.value)
                if -len(refs) <= i < len(refs) and isinstance(expr.value, cst.Name):
                    return [refs[i]]
            if isinstance(index, cst.Slice) and isinstance(expr.value, cst.Name):
                bounds = [_int_literal(b) for b in (index.lower, index.upper, index.step)]
                given = [b for b in (index.lower, index.upper, index.step) if b is not None]
                if all(_int_literal(b) is not None for b in given):
                    return refs[slice(*bounds)]  # `tasks[1:]`: the list's tasks after the first
            return refs  # a result subscripted by key is still that task's result
        if isinstance(expr, cst.ListComp | cst.GeneratorExp):
            return self.comprehension(expr)
        if isinstance(expr, cst.Call):
            return self.call(expr)
        return []

    def comprehension(self, expr: cst.ListComp | cst.GeneratorExp) -> list[Ref]:
        comp = expr.for_in
        values = literal_values(comp.iter, self.scope()) if comp.inner_for_in is None and not comp.ifs else None
        saved = dict(self.w.locals)
        out: list[Ref] = []
        if values is not None:
            for value in values:
                self.bind_loop(comp.target, value)
                out.extend(self.expr(expr.elt))
        else:
            out.extend(self.expr(comp.iter))
            self.bind_loop(comp.target, None)
            self.w.loops.append(f"for {code(comp.target)} in {code(comp.iter)}")
            try:
                out.extend(self.expr(expr.elt))
            finally:
                self.w.loops.pop()
        self.w.locals = saved
        return out

    def call(self, call: cst.Call) -> list[Ref]:
        func = call.func
        qualified = self.qualify(func)
        if qualified in CHAIN or qualified in CHAIN_LINEAR:
            self.chain(call, linear=qualified in CHAIN_LINEAR)
            return []
        if qualified in CROSS:
            ups = self.expr(argument(call, 0, "from_tasks") or cst.List([]))
            downs = self.expr(argument(call, 1, "to_tasks") or cst.List([]))
            self.relate(ups, downs, code(call))
            return []
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in {"set_downstream", "set_upstream"} and call.args:
                base = self.expr(func.value)
                other = self.expr(call.args[0].value)
                ups, downs = (base, other) if method == "set_downstream" else (other, base)
                self.relate(ups, downs, code(call))
                return base
            if method in {"expand", "expand_kwargs"}:
                return self.mapped(call)
            if method in {"as_setup", "as_teardown"}:
                # `Operator(...).as_teardown(setups=create)`: the task itself, run after its setups
                base = self.expr(func.value)
                setups = kwarg(call, "setups")
                if setups is not None:
                    self.relate(self.expr(setups), base, code(call))
                return base
            if method in {"append", "extend", "add"} and isinstance(func.value, cst.Name) and call.args:
                refs = self.expr(call.args[0].value)
                if refs:
                    name = func.value.value
                    self.w.env[name] = [*self.w.env.get(name, []), *refs]
                    self.w.locals.pop(name, None)
                return []
        taskflow = self.taskflow_target(func)
        if taskflow is not None:
            fn, override = taskflow
            return [self.taskflow_task(fn, call, override, None)]
        if isinstance(func, cst.Name) and func.value in self.groupfns:
            return [self.local_group(self.groupfns[func.value], call, None)]
        if self.is_operator(qualified) or kwarg(call, "task_id") is not None:
            # a call given a task_id in a DAG body is a task, whatever its class (custom operators included)
            return [self.operator(call, qualified, None, call)]
        called = self.project.function(qualified) if isinstance(func, cst.Name | cst.Attribute) else None
        if called is not None and (_is_group_function(called) or _builds_tasks(called)):
            return self.inline(called, call, None, group=_is_group_function(called))
        # any other call: tasks created inside its arguments still count
        out: list[Ref] = []
        for arg in call.args:
            out.extend(self.expr(arg.value))
        return out if qualified in {"list", "tuple", "set", "reversed", "sorted"} else []

    def local_group(self, node: cst.FunctionDef, call: cst.Call, fanout: FanOut | None) -> Ref:
        """A `@task_group` function defined in the DAG body, called (or mapped): its tasks, in the closure."""
        gid = self.decorated_group_id(node, self.module)
        params = [p.name.value for p in node.params.params]
        arg_refs = [self.expr(a.value) for a in call.args]
        saved_env = dict(self.w.env)
        for i, refs in enumerate(arg_refs):
            if i < len(params) and refs:
                self.w.env[params[i]] = refs
        before = set(self.w.tasks)
        ref = self.group(gid or node.name.value, lambda: self.block(body_of(node)), call)
        self.w.env = saved_env
        self.fan_out_new(before, fanout, [r for refs in arg_refs for r in refs])
        return ref

    def decorated_group_id(self, node: cst.FunctionDef, module: ModuleIndex) -> str | None:
        """The `group_id` a `@task_group(group_id=...)` decorator gives, if it gives one."""
        gcall = decorator_call(node, module, GROUP_DECORATORS)
        return evaluate(argument(gcall, 0, "group_id"), self.scope()) if gcall is not None else None

    def fan_out_new(self, before: set[str], fanout: FanOut | None, inputs: Sequence[Ref]) -> None:
        """A mapped task group: every task added since `before` runs once per item of the expand
        input (`inputs`, the tasks given to `.expand()`), so each reads that input (how many
        instances run, and which item is theirs)."""
        if fanout is None:
            return
        for task_id, task in self.w.tasks.items():
            if task_id in before:
                continue
            if task.fanout is None:
                task.fanout = fanout
            for upstream in inputs:
                self.w.relations.append((upstream, ("task", task_id), "expand input of the mapped task group"))
                task.reads.extend(_xcom(tid, "return_value", task.file or self.module.relpath, task.line)
                                  for tid in self.ref_tasks(upstream))

    def group_function(self, func: cst.BaseExpression) -> FunctionRef | None:
        """The `@task_group` function `func` names (defined in this DAG or imported), if it is one."""
        fn = self.project.function(self.qualify(func)) if isinstance(func, cst.Name | cst.Attribute) else None
        return fn if fn is not None and _is_group_function(fn) else None

    def inline(self, fn: FunctionRef, call: cst.Call, partial: cst.Call | None, group: bool,
               fanout: FanOut | None = None) -> list[Ref]:
        """Walk a project function called in the DAG body as part of the DAG: a `@task_group` from
        another module (its tasks are the group's, ids prefixed by its group id), or a factory that
        builds tasks or a TaskGroup (Airflow attaches them to the DAG it is called in). Task results
        passed in bind its parameters; what it returns is what the call stands for. A mapped group's
        tasks are fanned out."""
        if fn.qualname in self.w.inlining or len(self.w.inlining) >= 4:
            return []
        bound: dict[str, list[Ref]] = {}
        literals: dict[str, cst.BaseExpression] = {}
        inputs: list[Ref] = []  # the tasks the call itself is given (a mapped group's expand input)
        position = 0
        for source_call in (partial, call):
            if source_call is None:
                continue
            given = {id(arg): self.expr(arg.value) for arg in source_call.args}  # each evaluated once
            if source_call is call:
                inputs = [r for refs in given.values() for r in refs]
            for name, arg in named_arguments(fn.params, source_call.args, position):
                refs = given[id(arg)]
                value = evaluate(arg.value, self.scope()) if not refs and \
                    isinstance(arg.value, cst.SimpleString | cst.Integer | cst.Name) else None
                if refs:
                    bound[name] = refs
                elif value is not None:
                    literals[name] = cst.SimpleString(repr(value))
            position += sum(1 for arg in source_call.args if arg.keyword is None and not arg.star)
        saved = (self.module, self.w.env, self.w.locals, self.taskflow, self.groupfns, self.local_defs,
                 self.w.returns)
        self.module, self.w.env, self.w.locals = fn.module, dict(bound), literals
        self.taskflow, self.groupfns, self.local_defs, self.w.returns = {}, {}, {}, []
        self.w.inlining.append(fn.qualname)
        before = set(self.w.tasks)
        try:
            if group:
                gid = self.decorated_group_id(fn.node, fn.module)
                refs = [self.group(gid or fn.name, lambda: self.block(body_of(fn.node)), call)]
            else:
                self.block(body_of(fn.node))
                refs = list(self.w.returns)
        finally:
            self.w.inlining.pop()
            (self.module, self.w.env, self.w.locals, self.taskflow, self.groupfns, self.local_defs,
             self.w.returns) = saved
        self.fan_out_new(before, fanout, inputs)
        return refs

    def is_operator(self, qualified: str) -> bool:
        last = qualified.rsplit(".", 1)[-1]
        if not (qualified.startswith("airflow.") or last.endswith(("Operator", "Sensor"))):
            return False
        return last.endswith(("Operator", "Sensor")) or last in EMPTY_OPERATORS

    def taskflow_target(self, func: cst.BaseExpression) -> tuple[FunctionRef, cst.Call | None] | None:
        """`extract`, `extract.override(task_id=...)`: the @task function being called."""
        override = None
        if isinstance(func, cst.Call) and isinstance(func.func, cst.Attribute) and func.func.attr.value == "override":
            override, func = func, func.func.value
        if isinstance(func, cst.Name) and func.value in self.taskflow:
            return self.taskflow[func.value], override
        if isinstance(func, cst.Name | cst.Attribute):
            fn = self.project.function(self.qualify(func))
            if fn is not None and any(_is_task_decorator(n) for n in decorator_names(fn.node, fn.module)):
                return fn, override
        return None

    def mapped(self, call: cst.Call) -> list[Ref]:
        """`task.partial(...).expand(...)` / `Operator.partial(...).expand(...)`: one stage, fanned out."""
        assert isinstance(call.func, cst.Attribute)
        base = call.func.value
        partial: cst.Call | None = None
        if isinstance(base, cst.Call) and isinstance(base.func, cst.Attribute) and base.func.attr.value == "partial":
            partial, base = base, base.func.value
        taskflow = self.taskflow_target(base)
        decorator = decorator_call(taskflow[0].node, taskflow[0].module, _task_decorator_names(taskflow[0])) \
            if taskflow is not None else None
        caps = [a for c in (partial, call, decorator) if c is not None for a in c.args
                if a.keyword is not None and a.keyword.value in MAPPING_CAPS]
        fanout = FanOut("expand", code(call), self.module.line(call), capped=bool(caps))
        if taskflow is not None:
            fn, override = taskflow
            return [self.taskflow_task(fn, call, override, fanout, partial)]
        if isinstance(base, cst.Name) and base.value in self.groupfns:
            return [self.local_group(self.groupfns[base.value], call, fanout)]
        group_fn = self.group_function(base)
        if group_fn is not None:  # a mapped task group: every task in it runs once per item
            return self.inline(group_fn, call, partial, group=True, fanout=fanout)
        qualified = self.qualify(base)
        if self.is_operator(qualified) and partial is not None:
            return [self.operator(partial, qualified, fanout, call)]
        unresolved(self.builder, self.module, call, f"dynamic task mapping over {code(base)} is not understood")
        return []

    def chain(self, call: cst.Call, linear: bool) -> None:
        items: list[tuple[list[Ref], bool]] = []  # refs, is a list literal
        for arg in call.args:
            if arg.star:
                refs = self.expr(arg.value)
                items.extend(([r], False) for r in refs)
            else:
                items.append((self.expr(arg.value), isinstance(arg.value, cst.List | cst.Tuple)))
        for (ups, up_list), (downs, down_list) in itertools.pairwise(items):
            if not linear and up_list and down_list and len(ups) == len(downs):
                for u, d in zip(ups, downs, strict=True):
                    self.relate([u], [d], code(call))
            else:
                self.relate(ups, downs, code(call))

    def relate(self, ups: list[Ref], downs: list[Ref], how: str) -> None:
        for u in ups:
            for d in downs:
                self.w.relations.append((u, d, how))

    # -- tasks -----------------------------------------------------------------

    def task_id(self, raw: str) -> str:
        prefix = ".".join(g for g in self.w.group_stack if g)
        return f"{prefix}.{raw}" if prefix else raw

    def unique(self, task_id: str) -> str:
        if task_id not in self.w.tasks:
            return task_id
        for i in itertools.count(1):
            candidate = f"{task_id}__{i}"
            if candidate not in self.w.tasks:
                return candidate
        raise AssertionError("unreachable")

    def add(self, task: Task, node: cst.CSTNode) -> Ref:
        if WILD in task.task_id or self.w.loops:
            task.dynamic = True
            if task.fanout is None and self.w.loops:
                task.fanout = FanOut("loop", self.w.loops[-1], task.line, capped=None)
            unresolved(self.builder, self.module, node,
                       f"task id {task.task_id!r} is built at run time"
                       + (f" ({self.w.loops[-1]})" if self.w.loops else "")
                       + "; stagegraph treats these tasks as one stage with unknown links to the rest of the DAG")
        if task.task_id in self.w.tasks and task.dynamic:
            return ("task", task.task_id)
        task.task_id = self.unique(task.task_id)
        self.w.tasks[task.task_id] = task
        return ("task", task.task_id)

    def taskflow_task(self, fn: FunctionRef, call: cst.Call, override: cst.Call | None, fanout: FanOut | None,
                      partial: cst.Call | None = None) -> Ref:
        dec = decorator_call(fn.node, fn.module, _task_decorator_names(fn))
        raw = None
        for source in (override, dec):
            if source is not None and kwarg(source, "task_id") is not None:
                raw = evaluate(kwarg(source, "task_id"), self.scope())
        task = Task(self.task_id(raw or fn.name), self.module.line(call), call, "taskflow", callee=fn, fanout=fanout,
                    file=self.module.relpath)
        task.gate = _gate(_task_decorator_names(fn))
        task.multiple_outputs = _multiple_outputs(fn, (override, dec))
        ref = self.add(task, call)
        used = used_names(fn)
        # a parameter is certain only when it is one of the function's own (not *args / **kwargs)
        declared = {*fn.params, *fn.kwonly}
        position = 0
        for source_call in (partial, call):
            if source_call is None:
                continue
            bound = {id(arg): name for name, arg in named_arguments(fn.params, source_call.args, position)}
            position += sum(1 for arg in source_call.args if arg.keyword is None and not arg.star)
            for arg in source_call.args:
                param = bound.get(id(arg))
                for upstream in self.expr(arg.value):
                    self.w.relations.append((upstream, ref, "task result passed as an argument"))
                    if param in declared and param not in used:
                        continue  # Airflow still orders them; no data reaches a parameter the body never reads
                    for tid in self.ref_tasks(upstream):
                        task.reads.append(_xcom(tid, "return_value", self.module.relpath, task.line))
        return ref

    def operator(self, call: cst.Call, qualified: str, fanout: FanOut | None, site: cst.Call) -> Ref:
        # task results handed to the operator (`data=parsed`, `op_kwargs={"x": t.output}`) are evaluated
        # first, as Python does; Airflow orders the operator after them and hands it their XComs
        upstream = [r for c in dict.fromkeys((call, site)) for arg in c.args for r in self.arg_refs(arg.value)]
        ref = self.operator_task(call, qualified, fanout, site)
        task = self.w.tasks.get(ref[1]) if ref[0] == "task" else None
        for up in upstream:
            self.w.relations.append((up, ref, "task result passed as an argument"))
            if task is not None:
                task.reads.extend(_xcom(tid, "return_value", self.module.relpath, task.line)
                                  for tid in self.ref_tasks(up))
        return ref

    def modelled(self, model: OperatorModel, call: cst.Call, file: str,
                 line: int) -> tuple[list[Effect], list[Effect]]:
        """An operator the `[[operator]]` catalog models: its effects, named by its arguments."""
        out: tuple[list[Effect], list[Effect]] = ([], [])
        for specs, bucket in ((model.reads, out[0]), (model.writes, out[1])):
            for spec in specs:
                kind, _, template = spec.partition(":")
                value = _SLOT.sub(lambda m: self.slot(call, m.group(1), m.group(2)), template)
                if kind == "sql":
                    reads, writes = sql_effects(value, file, line) if value.replace(WILD, "").strip() else ([], [])
                    out[0].extend(reads)
                    out[1].extend(writes)
                elif "s3://" in value[1:]:
                    bucket.append(_named(kind, value[value.rfind("s3://"):], file, line))  # a key that is a URL
                else:
                    bucket.append(_named(kind, value, file, line))
        return out

    def slot(self, call: cst.Call, position: str | None, name: str) -> str:
        expr = argument(call, int(position), name) if position is not None else kwarg(call, name)
        value = evaluate(expr, self.scope()) if expr is not None else None
        return JINJA_EXPRESSION.sub(WILD, value) if value is not None else WILD

    def shell(self, call: cst.Call, file: str, line: int) -> tuple[list[Effect], list[Effect]] | None:
        """A BashOperator's command, when the `[[command]]` catalog models every part of it."""
        text = evaluate(kwarg(call, "bash_command") or argument(call, 0, "bash_command"), self.scope())
        if text is None or (kwarg(call, "env") is not None and "$" in text):
            return None  # no literal command, or one whose words come from its environment

        def read(name: str) -> str | None:
            found = self.read_sql_file(name) if name.lower().endswith(".sql") else None
            return found if isinstance(found, str) else None

        return shell.effects(text, self.builder.ctx.catalog, file, line, read)

    def arg_refs(self, expr: cst.BaseExpression) -> list[Ref]:
        """Task results in an operator argument, inside dict and list literals too."""
        if isinstance(expr, cst.Dict):
            return [r for el in expr.elements for r in self.arg_refs(el.value)]
        return self.expr(expr)

    def operator_task(self, call: cst.Call, qualified: str, fanout: FanOut | None, site: cst.Call) -> Ref:
        last = qualified.rsplit(".", 1)[-1]
        raw = evaluate(kwarg(call, "task_id"), self.scope()) or WILD
        line = self.module.line(site)
        file = self.module.relpath
        task = Task(self.task_id(raw), line, call, "opaque", fanout=fanout, file=file)
        task.gate = _gate([last])
        push = kwarg(call, "do_xcom_push")
        task.xcom_push = not (isinstance(push, cst.Name) and push.value == "False")
        callable_expr = kwarg(call, "python_callable")
        klass = self.project.klass(qualified)
        if klass is not None and self.bind_custom_operator(task, klass, call):
            pass
        elif callable_expr is not None or last in PYTHON_OPERATORS:
            task.kind = "python"
            task.callee = self.resolve_callable(callable_expr)
            if task.callee is None:
                what = code(callable_expr) if callable_expr is not None else "its callable"
                reason = f"{last} runs {what}, which is not in the analysed code"
                unresolved(self.builder, self.module, call, reason)
                task.reads, task.writes = opaque(reason, file, line)
        elif last in SQL_OPERATORS or last.endswith(("SqlOperator", "SQLOperator")) or kwarg(call, "sql") is not None:
            task.kind = "sql"
            self.sql_task(task, call, last)
            if not _known_sql_operator(last):
                # an operator that takes sql= but is not a known SQL operator (a custom one, a transfer):
                # SQL in its other arguments runs too (`pg_preoperator="TRUNCATE ..."`), and what else its
                # execute() does with its arguments is not seen
                self.sql_in_arguments(task, call)
                reason = f"{last} runs code with its constructor arguments that stagegraph does not bind"
                more_reads, more_writes = opaque(reason, file, line)
                task.reads.extend(more_reads)
                task.writes.extend(more_writes)
        elif last in EMPTY_OPERATORS:
            task.kind = "empty"
        elif (model := self.builder.ctx.catalog.operators.get(last)) is not None and not any(
                _given(kwarg(call, name)) for name in model.unless):
            task.kind = "modelled"
            task.reads, task.writes = self.modelled(model, call, file, line)
        elif last == "BashOperator" and (found := self.shell(call, file, line)) is not None:
            task.kind = "shell"
            task.reads, task.writes = found
        else:
            reason = f"{last} runs something stagegraph can't see into"
            if last == "BashOperator":
                reason = "BashOperator runs a shell command stagegraph can't see"
            elif self.project.klass(qualified) is not None:
                reason = f"custom operator {last}: its execute() uses constructor arguments stagegraph does not bind"
            task.reads, task.writes = opaque(reason, file, line)
        # Jinja `{{ ti.xcom_pull(task_ids='x') }}` in any templated argument
        for node in walk(call):
            if isinstance(node, cst.SimpleString | cst.FormattedStringText):
                text = node.value
                for tid, key in template_pulls(text):
                    task.reads.append(_xcom(tid, key, file, line))
        return self.add(task, site)

    def bind_custom_operator(self, task: Task, klass: ClassRef, call: cst.Call) -> bool:
        """A project's own operator class: its execute() is analysed with `self.<attr>` bound to what
        this task's constructor call gives the `__init__` parameter the attribute is assigned from
        (a templated field naming a `.sql` file is that file's text, as Airflow renders it).

        Only when execute() is entirely the project's: every base outside the project must be
        Airflow's BaseOperator, else the effect may sit in an unanalysed parent (`super().execute`).
        """
        execute = self.project.method(klass, "execute")
        if execute is None or not self.only_base_operator(klass):
            return False
        init = self.project.method(klass, "__init__")
        bound: dict[str, str] = {}
        if init is not None:
            params = [p for p in init.params if p != "self"]
            given = dict(named_arguments(params, call.args))
            params += init.kwonly
            defaults = init.defaults
            fields, exts = self.template_settings(execute)
            jinja = _literal_params(kwarg(call, "params"), self.scope())  # `{{ params.x }}` in a templated field
            for statement in init.node.body.body:
                for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
                    if not (isinstance(small, cst.Assign) and len(small.targets) == 1
                            and isinstance(small.value, cst.Name) and small.value.value in params):
                        continue
                    target = small.targets[0].target
                    if not (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name)
                            and target.value.value == "self"):
                        continue
                    param = small.value.value
                    expr = given[param].value if param in given else defaults.get(param)
                    if isinstance(expr, cst.Name) and expr.value == "None":
                        value: str | None = ""  # nothing to run: `if self.pg_preoperator:` never fires
                    elif param in given:
                        value = evaluate(expr, self.scope())
                    else:
                        value = evaluate(expr, Scope(init.module, self.project))
                    if value is None:
                        continue
                    attr = target.attr.value
                    if attr in fields and any(value.strip().lower().endswith(ext) for ext in exts):
                        text = self.read_sql_file(value.strip())
                        if not isinstance(text, str):
                            continue  # the file is not readable here: the attribute stays unknown
                        task.reads.extend(_xcom(tid, key, self.module.relpath, task.line)
                                          for tid, key in template_pulls(text))
                        value = text
                    if attr in fields:
                        value = _PARAMS_TEMPLATE.sub(lambda m: jinja.get(m.group(1) or m.group(2), "{{ x }}"), value)
                    bound[attr] = value
        task.kind, task.callee, task.bound = "custom", execute, bound
        return True

    def only_base_operator(self, klass: ClassRef) -> bool:
        """Every base of `klass` (through analysed bases) is analysed or Airflow's BaseOperator."""
        return all(self.project.klass(base) is not None
                   or (base.startswith("airflow") and base.rsplit(".", 1)[-1] == "BaseOperator")
                   for owner in self.project.lineage(klass) for base in owner.bases)

    def template_settings(self, execute: FunctionRef) -> tuple[set[str], tuple[str, ...]]:
        """The operator's `template_fields` and `template_ext` (class constants), as Airflow reads them."""
        out: list[set[str]] = []
        for name in ("template_fields", "template_ext"):
            found = self.project.class_constant(execute, name)
            items = string_items(found[0], Scope(found[1], self.project)) if found is not None else None
            out.append({i for i in items or [] if i != WILD})
        return out[0], tuple(e.lower() for e in out[1])

    def resolve_callable(self, expr: cst.BaseExpression | None) -> FunctionRef | None:
        if expr is None:
            return None
        if isinstance(expr, cst.Name) and expr.value in self.local_defs:
            return self.local_defs[expr.value]
        if isinstance(expr, cst.Name) and expr.value in self.taskflow:
            return self.taskflow[expr.value]
        if isinstance(expr, cst.Call) and self.qualify(expr.func) in {"functools.partial", "partial"} and expr.args:
            return self.resolve_callable(expr.args[0].value)
        if isinstance(expr, cst.Lambda):
            for node in walk(expr.body):
                if isinstance(node, cst.Call):
                    found = self.resolve_callable(node.func)
                    if found is not None:
                        return found
            return None
        return self.project.function(self.qualify(expr))

    def sql_task(self, task: Task, call: cst.Call, last: str) -> None:
        file, line = self.module.relpath, task.line
        sql_expr = kwarg(call, "sql")
        if sql_expr is None and last == "BigQueryInsertJobOperator":
            sql_expr = _dict_path(kwarg(call, "configuration"), ("query", "query"))
        params = _literal_params(kwarg(call, "params"), self.scope())
        texts: list[str] = []
        reason = ""
        if sql_expr is None:
            reason = f"{last} without a sql= argument stagegraph can read"
        else:
            items = string_items(sql_expr, self.scope())
            if items is None:
                reason = f"the SQL of {last} ({code(sql_expr)}) is not a string stagegraph can read"
            for item in items or []:
                if item.strip().lower().endswith(".sql"):
                    text = self.read_sql_file(item.strip())
                    if text is False:
                        reason = f"SQL file {item!r} is outside the repository; it was not read"
                        continue
                    if text is None:
                        reason = f"SQL file {item!r} not found next to the DAG"
                        continue
                    texts.append(text)
                elif item == WILD:
                    reason = f"the SQL of {last} is built at run time"
                else:
                    texts.append(item)
        for text in texts:
            # `{{ ti.xcom_pull(task_ids='t', key='k') }}` inside the SQL (a `.sql` file's too) reads t's XCom
            task.reads.extend(_xcom(tid, key, file, line) for tid, key in template_pulls(text))
            text = _PARAMS_TEMPLATE.sub(lambda m: params.get(m.group(1) or m.group(2), "{{ x }}"), text)
            reads, writes = sql_effects(text, file, line, certain=True)
            task.reads.extend(reads)
            task.writes.extend(writes)
        if reason:
            unresolved(self.builder, self.module, call, reason)
            task.writes.append(Effect("unknown", reason, file, line, key=f"sql:{file}:{line}", of="table"))
            task.reads.append(Effect("unknown", reason, file, line, key=f"sql:{file}:{line}", of="table"))

    def sql_in_arguments(self, task: Task, call: cst.Call) -> None:
        """Tables of SQL text in any keyword argument other than `sql=` (already read)."""
        for arg in call.args:
            if arg.keyword is None or arg.keyword.value == "sql":
                continue
            for item in string_items(arg.value, self.scope()) or []:
                reads, writes = sql_effects(item, self.module.relpath, task.line)
                task.reads.extend(reads)
                task.writes.extend(writes)

    def read_sql_file(self, name: str) -> str | Literal[False] | None:
        """The text of a `.sql` file named by `sql=`: None when absent, False when it lies outside the
        repository (never read: the analysed code may not make stagegraph read the auditor's files)."""
        path = self.module.parsed.path
        if path is None:
            return None
        root = repo_root(_analysed_root(path, self.module.relpath))
        folder = path.parent
        candidates = [Path(name)] if Path(name).is_absolute() else [
            folder / name, *[(folder / sp / name) for sp in self.searchpath]]
        outside = False
        for candidate in candidates:
            if not inside(candidate, root):  # not even probed
                outside = True
                continue
            try:
                if candidate.is_file():
                    return candidate.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        found = self.sql_under_root(name)
        if found is not None and inside(found, root):
            return found.read_text(encoding="utf-8", errors="replace")
        return False if outside else None

    def sql_under_root(self, name: str) -> Path | None:
        """The one file under the analysed root whose path ends with `name`, for a `template_searchpath`
        that can't be evaluated (`Variable.get("sql_path")`); None when absent or ambiguous."""
        path = self.module.parsed.path
        if path is None or Path(name).is_absolute():
            return None
        root = _analysed_root(path, self.module.relpath)
        key = str(root)
        if key not in _SQL_FILES:
            try:
                _SQL_FILES[key] = sorted(p for p in root.rglob("*.sql") if p.is_file())[:20_000]
            except OSError:
                _SQL_FILES[key] = []
        suffix = "/" + name.lstrip("./")
        matches = [p for p in _SQL_FILES[key] if p.as_posix().endswith(suffix)]
        return matches[0] if len(matches) == 1 else None

    def ref_tasks(self, ref: Ref) -> list[str]:
        kind, name = ref
        if kind == "task":
            return [name]
        group = self.w.groups.get(name)
        return list(group.members) if group else []

    # -- results ---------------------------------------------------------------

    def declared_links(self) -> list[Link]:
        """Expand relations between tasks and groups into task-level declared links.

        A group upstream stands for its leaves, downstream for its roots; roots and leaves come
        from the relations inside the group, so this iterates to a fixed point.
        """
        groups = self.w.groups
        for g in groups.values():
            g.roots, g.leaves = list(g.members), list(g.members)
        pairs: set[tuple[str, str, str]] = set()
        for _ in range(6):
            pairs = set()
            for (uk, un), (dk, dn), how in self.w.relations:
                ups = [un] if uk == "task" else (groups[un].leaves if un in groups else [])
                downs = [dn] if dk == "task" else (groups[dn].roots if dn in groups else [])
                for u in ups:
                    for d in downs:
                        if u != d:
                            pairs.add((u, d, how))
            changed = False
            for g in groups.values():
                members = set(g.members)
                inner = {(u, d) for u, d, _ in pairs if u in members and d in members}
                roots = [m for m in g.members if not any(d == m for _, d in inner)]
                leaves = [m for m in g.members if not any(u == m for u, _ in inner)]
                if roots != g.roots or leaves != g.leaves:
                    g.roots, g.leaves, changed = roots, leaves, True
            if not changed:
                break
        return [Link(u, d, "order", (how,)) for u, d, how in sorted(pairs)]

    def stages(self) -> list[Stage]:
        out: list[Stage] = []
        for task in self.w.tasks.values():
            file = task.file or self.module.relpath
            reads, writes = list(task.reads), list(task.writes)
            fn = task.callee
            if fn is not None:
                xr, xw = xcom_effects(self.builder, fn, task.task_id, file, task.line)
                reads.extend(xr)
                writes.extend(xw)
                if task.xcom_push and returns_value(fn.node):
                    writes.append(_xcom(task.task_id, "return_value", file, task.line))
                    if task.multiple_outputs:  # each key of the returned dict is an XCom of its own
                        writes.extend(_xcom(task.task_id, key, file, task.line) for key in _returned_keys(fn))
                total = self.bound(fn, task.bound) if task.bound is not None else None
                out.append(self.builder.stage(
                    stage_id=task.task_id, callee=fn, file=file, line=task.line, params={}, labels={},
                    via_self=False, fanout=task.fanout, module=self.module, name=task.task_id,
                    extra_reads=reads, extra_writes=writes, total=total,
                ))
            else:
                from ..stagefx import dedupe

                if task.xcom_push:
                    # an operator's execute() result is pushed as its return_value (query rows, the last
                    # line of a shell command...), which `task.output` hands to a later task
                    writes.append(_xcom(task.task_id, "return_value", file, task.line))
                out.append(Stage(id=task.task_id, name=task.task_id, file=file, line=task.line,
                                 reads=dedupe(reads), writes=dedupe(writes), fanout=task.fanout,
                                 roles=self.builder.roles(task.task_id, None)))
        return out

    def bound(self, fn: FunctionRef, values: dict[str, str]) -> Total:
        """The total of `fn` for one binding, shared by every task built with the same arguments."""
        return self.builder.bound(fn, values)

    def control_links(self, declared: Sequence[Link]) -> list[Link]:
        """A branch or short-circuit task decides whether everything downstream of it runs: control edges."""
        graph = nx.DiGraph()
        graph.add_edges_from((link.source, link.target) for link in declared)
        links: list[Link] = []
        for tid, task in self.w.tasks.items():
            if task.gate and tid in graph:
                why = (f"{task.gate} task {tid}: downstream tasks run only when it chooses them",)
                links.extend(Link(tid, down, "control", why) for down in sorted(nx.descendants(graph, tid)))
        return links

    def unknown_links(self) -> list[Link]:
        ids = list(self.w.tasks)
        links: list[Link] = []
        for i, tid in enumerate(ids):
            if not self.w.tasks[tid].dynamic:
                continue
            reason = f"task {tid!r} has a task id built at run time: its place in the DAG is not known"
            for j, other in enumerate(ids):
                if other != tid:
                    a, b = (other, tid) if j < i else (tid, other)
                    links.append(Link(a, b, "unknown", (reason,)))
        return links


def _int_literal(expr: cst.BaseExpression | None) -> int | None:
    """The value of an integer literal (`3`, `-1`), else None."""
    if isinstance(expr, cst.Integer):
        return int(expr.value)
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and \
            isinstance(expr.expression, cst.Integer):
        return -int(expr.expression.value)
    return None


def _is_chain(expr: cst.BaseExpression) -> bool:
    """An expression that is a list of nothing (`[]`) is an empty declaration, not an unresolved one."""
    return isinstance(expr, cst.List | cst.Tuple) and not expr.elements


#: a `{kw}` / `{N:kw}` slot of an `[[operator]]` template
_SLOT = re.compile(r"\{(?:(\d+):)?(\w+)\}")


def _given(expr: cst.BaseExpression | None) -> bool:
    return expr is not None and not (isinstance(expr, cst.Name) and expr.value in {"False", "None"})


def _named(kind: str, value: str, file: str, line: int) -> Effect:
    """An effect on `value` of `kind`, or an unknown one of that kind when nothing of the name is known."""
    if not value.replace(WILD, "").replace("s3://", "").strip("/"):
        return Effect("unknown", f"{kind} name built at run time", file, line, key=f"{kind}:{file}:{line}", of=kind)
    named: EffectKind = "file" if kind == "file" else "table" if kind == "table" else "key"
    return Effect(named, value, file, line, key=value)


def _xcom(task_id: str, key: str, file: str, line: int) -> Effect:
    target = f"{task_id}.{key}"
    return Effect("xcom", target, file, line, key=f"xcom:{target}")


def xcom_effects(builder: StageBuilder, fn: FunctionRef, task_id: str, file: str,
                 line: int) -> tuple[list[Effect], list[Effect]]:
    """XCom pushes and pulls in a callable and everything it calls."""
    project = builder.ctx.project
    functions = [fn, *(project.functions[q] for q in sorted(builder.total(fn).callees) if q in project.functions)]
    reads: list[Effect] = []
    writes: list[Effect] = []
    for f in functions:
        for push, ids, key, where in _xcom_sites(f, project):
            if push:
                writes.append(Effect("xcom", f"{task_id}.{key}", f.module.relpath, where, key=f"xcom:{task_id}.{key}"))
            else:
                reads.extend(Effect("xcom", f"{tid}.{key}", f.module.relpath, where, key=f"xcom:{tid}.{key}")
                             for tid in ids)
    return reads, writes


def _xcom_sites(f: FunctionRef, project: Project) -> list[tuple[bool, tuple[str, ...], str, int]]:
    """(is-push, pulled task ids, key, line) of each xcom_push/xcom_pull in one function, walked once
    per function however many tasks run it."""
    memo = f.module.memo.setdefault("xcom_sites", {})
    assert isinstance(memo, dict)
    if f.qualname in memo:
        return memo[f.qualname]  # type: ignore[no-any-return]
    scope = Scope(f.module, project)
    sites: list[tuple[bool, tuple[str, ...], str, int]] = []
    for node in walk(f.node.body):
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            continue
        method = node.func.attr.value
        if method == "xcom_push":
            sites.append((True, (), evaluate(argument(node, 0, "key"), scope) or WILD, f.module.line(node)))
        elif method == "xcom_pull":
            key_expr = argument(node, 2, "key")
            key = evaluate(key_expr, scope) or WILD if key_expr is not None else "return_value"
            ids = tuple(string_items(argument(node, 0, "task_ids"), scope) or [WILD])
            sites.append((False, ids, key, f.module.line(node)))
    memo[f.qualname] = sites
    return sites


def _dict_path(expr: cst.BaseExpression | None, path: tuple[str, ...]) -> cst.BaseExpression | None:
    for key in path:
        if not isinstance(expr, cst.Dict):
            return None
        found = None
        for el in expr.elements:
            if isinstance(el, cst.DictElement) and isinstance(el.key, cst.SimpleString) and (
                el.key.evaluated_value == key
            ):
                found = el.value
        expr = found
    return expr


def _literal_params(expr: cst.BaseExpression | None, scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(expr, cst.Dict):
        for el in expr.elements:
            if isinstance(el, cst.DictElement):
                key, value = evaluate(el.key, scope), evaluate(el.value, scope)
                if key and value is not None:
                    out[key] = value
    return out


def _known_sql_operator(last: str) -> bool:
    """A provider operator that only runs its `sql=` (a query, a check, a SQL branch), nothing else."""
    if last in SQL_OPERATORS or last.endswith(("SqlOperator", "SQLOperator")):
        return True
    return "Check" in last and any(word in last for word in ("SQL", "Sql", "BigQuery", "Snowflake", "Presto"))


def _gate(names: Sequence[str]) -> str:
    """Whether an operator class or TaskFlow decorator chooses which downstream tasks run."""
    for name in names:
        last = name.rsplit(".", 1)[-1]
        if last in {"short_circuit", "ShortCircuitOperator"}:
            return "short-circuit"
        if last.startswith(("branch", "Branch")) or (last.endswith("Operator") and "Branch" in last):
            return "branch"
    return ""


def _is_group_function(fn: FunctionRef) -> bool:
    """`fn` is decorated with `@task_group`."""
    return any(n in GROUP_DECORATORS for n in decorator_names(fn.node, fn.module))


def _builds_tasks(fn: FunctionRef) -> bool:
    """Whether calling `fn` in a DAG body adds tasks to that DAG: it makes a TaskGroup, an operator or
    anything given a task_id, and makes no DAG of its own (a DAG factory is a DAG, found as one)."""
    memo = fn.module.memo.setdefault("builds_tasks", {})
    assert isinstance(memo, dict)
    if fn.qualname not in memo:
        builds, own_dag = False, False
        for node in walk(fn.node.body):
            if not isinstance(node, cst.Call):
                continue
            qualified = fn.module.qualify(node.func) or ""
            own_dag = own_dag or qualified in DAG_CLASSES
            last = qualified.rsplit(".", 1)[-1]
            builds = builds or qualified in TASK_GROUPS or kwarg(node, "task_id") is not None \
                or last.endswith(("Operator", "Sensor"))
        memo[fn.qualname] = builds and not own_dag and not any(
            n in DAG_DECORATORS or _is_task_decorator(n) for n in decorator_names(fn.node, fn.module))
    return bool(memo[fn.qualname])


def _is_task_decorator(name: str) -> bool:
    return any(name == d or name.startswith(d + ".") for d in TASK_DECORATORS)


def _multiple_outputs(fn: FunctionRef, calls: Sequence[cst.Call | None]) -> bool:
    """`@task(multiple_outputs=True)`, or (Airflow's inference) a return annotation of dict/Dict[...]."""
    for call in calls:
        flag = kwarg(call, "multiple_outputs") if call is not None else None
        if flag is not None:
            return isinstance(flag, cst.Name) and flag.value == "True"
    returns = fn.node.returns.annotation if fn.node.returns is not None else None
    if isinstance(returns, cst.Subscript):
        returns = returns.value
    return (fn.module.qualify(returns) or "") in {"dict", "typing.Dict", "Dict"} if returns is not None else False


def _returned_keys(fn: FunctionRef) -> list[str]:
    """The keys a function's returned dict has: every `return {...}` with literal keys, else `*` (any)."""
    keys: list[str] = []
    for node in walk(fn.node.body, skip_defs=True):
        if not isinstance(node, cst.Return) or node.value is None:
            continue
        if not isinstance(node.value, cst.Dict):
            return [WILD]
        for element in node.value.elements:
            key = element.key.evaluated_value if isinstance(element, cst.DictElement) and isinstance(
                element.key, cst.SimpleString) else None
            if not isinstance(key, str):
                return [WILD]
            keys.append(key)
    return sorted(set(keys)) or [WILD]


def _task_decorator_names(fn: FunctionRef) -> list[str]:
    return [n for n in decorator_names(fn.node, fn.module) if _is_task_decorator(n)]


# ---------------------------------------------------------------- finding DAGs


@dataclass(slots=True)
class _Site:
    """Where a DAG's body is: the statements to walk and the names visible there."""

    name: str
    line: int
    body: list[cst.BaseStatement]
    style: str
    call: cst.Call | None
    node: cst.CSTNode
    enclosing: cst.FunctionDef | None
    in_loop: bool


def _analysed_root(path: Path, relpath: str) -> Path:
    """The folder the report's paths are relative to, from one module's place on disk."""
    depth = len(PurePosixPath(relpath).parts)
    return path.parents[depth - 1] if depth >= 1 else path.parent


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """Every DAG in the analysed code."""
    project = builder.ctx.project
    found: list[PipelineFacts] = []
    for module in sorted(project.modules.values(), key=lambda m: m.relpath):
        if "airflow" not in module.parsed.text:
            continue
        for site in _sites(module, module.parsed.tree.body, None, False):
            facts = _pipeline(builder, module, site)
            if facts is not None:
                found.append(facts)
    return found


def _dag_call(expr: cst.BaseExpression, module: ModuleIndex) -> cst.Call | None:
    if isinstance(expr, cst.Call) and (module.qualify(expr.func) or "") in DAG_CLASSES:
        return expr
    return None


def _sites(module: ModuleIndex, body: Sequence[cst.CSTNode], enclosing: cst.FunctionDef | None,
           in_loop: bool) -> list[_Site]:
    scope = Scope(module, None)
    out: list[_Site] = []
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.With):
            call = next((c for item in stmt.items if (c := _dag_call(item.item, module)) is not None), None)
            if call is not None:
                name = evaluate(argument(call, 0, "dag_id"), scope) or WILD
                body_after = [*body_of(stmt), *_relations_after(module, body[i + 1:])]
                out.append(_Site(name, module.line(stmt), body_after, "airflow", call, stmt, enclosing, in_loop))
                continue
            out.extend(_sites(module, body_of(stmt), enclosing, in_loop))
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign) and (call := _dag_call(small.value, module)) is not None:
                    name = evaluate(argument(call, 0, "dag_id"), scope) or WILD
                    rest = [s for s in body[i + 1:] if isinstance(s, cst.BaseStatement)]
                    out.append(_Site(name, module.line(stmt), rest, "airflow", call, stmt, enclosing, in_loop))
        elif isinstance(stmt, cst.FunctionDef):
            names = decorator_names(stmt, module)
            if any(n in DAG_DECORATORS for n in names):
                call = decorator_call(stmt, module, DAG_DECORATORS)
                name = (evaluate(argument(call, 0, "dag_id"), scope) if call is not None else None) or stmt.name.value
                out.append(_Site(name, module.line(stmt), body_of(stmt), "airflow-taskflow", call, stmt, stmt, in_loop))
            else:
                out.extend(_sites(module, body_of(stmt), stmt, in_loop))
        elif isinstance(stmt, cst.For | cst.While):
            out.extend(_sites(module, body_of(stmt), enclosing, True))  # type: ignore[arg-type]
        elif isinstance(stmt, cst.If | cst.Try):
            out.extend(_sites(module, body_of(stmt), enclosing, in_loop))  # type: ignore[arg-type]
    return out


def _relations_after(module: ModuleIndex, rest: Sequence[cst.CSTNode]) -> list[cst.BaseStatement]:
    """Statements after a `with DAG(...)` block that only declare relations (`a >> b`, `chain(a, b)`,
    `a.set_downstream(b)`): the tasks still belong to that DAG, so the dependencies do too. Stops at
    the next statement that is not such an expression (another DAG, a definition)."""
    out: list[cst.BaseStatement] = []
    for stmt in rest:
        smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else None
        if not smalls:
            break
        if all(isinstance(small, cst.Expr) and _is_relation(small.value, module) for small in smalls):
            assert isinstance(stmt, cst.SimpleStatementLine)
            out.append(stmt)
        elif any(isinstance(small, cst.Assign) and _dag_call(small.value, module) is not None for small in smalls):
            break  # the next DAG
        elif not all(isinstance(small, cst.Assign | cst.AnnAssign | cst.Expr) for small in smalls):
            break
        # else `dag.doc_md = "..."` between the block and its relations: read on
    return out


def _is_relation(expr: cst.BaseExpression, module: ModuleIndex) -> bool:
    """`a >> b`, `[a, b] << c`, `chain(a, b)`, `cross_downstream(...)`, `a.set_upstream(b)`."""
    if isinstance(expr, cst.BinaryOperation):
        return isinstance(expr.operator, cst.RightShift | cst.LeftShift)
    if isinstance(expr, cst.Call):
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in {"set_upstream", "set_downstream"}:
            return True
        return (module.qualify(expr.func) or "").rsplit(".", 1)[-1] in {"chain", "cross_downstream", "chain_linear"}
    return False


def _pipeline(builder: StageBuilder, module: ModuleIndex, site: _Site) -> PipelineFacts | None:
    project = builder.ctx.project
    taskflow: dict[str, FunctionRef] = {}
    groupfns: dict[str, cst.FunctionDef] = {}
    for fn in module.functions.values():
        names = decorator_names(fn.node, module)
        if any(_is_task_decorator(n) for n in names):
            taskflow[fn.name] = fn
        elif any(n in GROUP_DECORATORS for n in names):
            groupfns[fn.name] = fn.node
    local_defs: dict[str, FunctionRef] = {}
    scope_locals: dict[str, cst.BaseExpression] = {}
    if site.enclosing is not None and site.style == "airflow":
        owner = f"{module.name}.{site.enclosing.name.value}"
        for stmt in body_of(site.enclosing):
            if isinstance(stmt, cst.FunctionDef):
                local_defs[stmt.name.value] = nested_function(builder, module, stmt, owner)
    searchpath = string_items(kwarg(site.call, "template_searchpath"), Scope(module, project)) if site.call else None
    walker = DagWalker(builder, module, site.name, taskflow, groupfns, local_defs,
                       [p for p in searchpath or [] if WILD not in p], scope_locals)
    walker.block(site.body)
    if not walker.w.tasks:
        return None
    notes: list[str] = []
    if site.in_loop or WILD in site.name:
        message = f"DAG {site.name!r} is built in a loop or with a run-time id; stagegraph analyses one instance"
        unresolved(builder, module, site.node, message)
        notes.append(message)
    stages = walker.stages()
    declared = walker.declared_links()
    return PipelineFacts(
        id=f"{module.relpath}::{site.name}",
        name=site.name,
        style=site.style,  # type: ignore[arg-type]
        file=module.relpath,
        line=site.line,
        stages=tuple(stages),
        declared=tuple(declared),
        links=tuple(walker.unknown_links() + walker.control_links(declared)),
        notes=tuple(notes),
    )
