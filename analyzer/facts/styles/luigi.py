"""Luigi task graphs: `requires()` declares the order, targets carry the data.

A task is a class deriving (directly or through analysed bases) from `luigi.Task`,
`luigi.WrapperTask`, `luigi.ExternalTask` or a `luigi.contrib` task. Each task is a stage named
after its class:

- `requires()` returning a task, a list/tuple, a dict, or yielding tasks (and `@requires(...)`
  from `luigi.util`) gives declared edges, required -> requiring;
- `output()` returning a target (`LocalTarget(path)`, `S3Target`, `GCSTarget`...) names the files
  the task writes when it has a `run()`; f-strings over parameters become `*` patterns; database
  targets (`PostgresTarget(..., table=...)`) are tables;
- in `run()` (and the task's own methods it calls), `self.input()`, `self.input()["key"]` and
  `self.input()[0]` read the outputs of the corresponding requirement; a bare `self.input()`
  reads all of them. The run method's own effects are composed as for any function.

One pipeline per root task (a task no other task requires), named after the root class, holding
every task reachable through `requires()`. A requirement stagegraph can't resolve (a registry,
a computed class) is a diagnostic plus `unknown` links from every other task in the pipeline,
which also takes in the root trees of the same package (where registries live).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import libcst as cst

from ...model import Effect, Link, PipelineFacts, Stage
from ..index import ClassRef, FunctionRef, ModuleIndex, Project, class_body_value
from ..stagefx import StageBuilder, dedupe
from ..values import WILD, Scope, evaluate, receiver_values
from ._declared import argument, code, kwarg, opaque, unresolved, walk

TASK_BASES = ("luigi.Task", "luigi.WrapperTask", "luigi.ExternalTask", "luigi.task.Task", "luigi.task.WrapperTask",
              "luigi.task.ExternalTask")
#: how luigi.contrib's task classes end: `SparkSubmitTask`, `postgres.CopyToTable`, `esindex.CopyToIndex`,
#: `postgres.PostgresQuery`, `redshift.S3CopyToTable`
CONTRIB_TASKS = ("Task", "CopyToTable", "CopyToIndex", "Query")
REQUIRES_DECORATORS = frozenset({"luigi.util.requires"})
_TABLE_TARGET_HINTS = ("Postgres", "MySql", "Redshift", "Hive", "BigQuery", "Sql", "Mongo")

Structure = dict[str, list[str]]  # requirement key ("" for a single task, "0", "1".. or dict keys) -> class qualnames


@dataclass(slots=True)
class TaskInfo:
    klass: ClassRef
    requires: Structure = field(default_factory=dict)
    shape: str = "none"  # none | single | list | dict
    unknown_requires: list[str] = field(default_factory=list)
    outputs: list[Effect] = field(default_factory=list)
    runs: FunctionRef | None = None


def is_task(klass: ClassRef, project: Project, depth: int = 0) -> bool:
    for base in klass.bases:
        contrib = base.startswith("luigi.contrib.") and base.rsplit(".", 1)[-1].endswith(CONTRIB_TASKS)
        if base in TASK_BASES or contrib:
            return True
        parent = project.klass(base)
        if parent is not None and parent is not klass and depth < 8 and is_task(parent, project, depth + 1):
            return True
    return False


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """One pipeline per root Luigi task."""
    project = builder.ctx.project
    tasks: dict[str, TaskInfo] = {}
    ordered = sorted(project.classes.items(), key=lambda kv: (kv[1].module.relpath, kv[1].module.line(kv[1].node)))
    for qualname, klass in ordered:
        if "luigi" in klass.module.parsed.text and is_task(klass, project):
            tasks[qualname] = TaskInfo(klass)
    # an abstract base (`class DailyTask(luigi.Task)` holding shared parameters) is not a task of the graph
    bases = {project.klass(b).qualname for info in tasks.values() for b in info.klass.bases  # type: ignore[union-attr]
             if project.klass(b) is not None}
    tasks = {q: info for q, info in tasks.items() if q not in bases or any(
        m in info.klass.methods for m in ("run", "output", "requires"))}
    if not tasks:
        return []
    for info in tasks.values():
        _read_requires(builder, info, tasks)
        _read_output(info, project)
        info.runs = project.method(info.klass, "run")
        if info.runs is not None and info.runs.qualname.rsplit(".", 2)[0] in TASK_BASES:
            info.runs = None
    required = {q for info in tasks.values() for qs in info.requires.values() for q in qs}
    roots = [q for q in tasks if q not in required]
    found: list[PipelineFacts] = []
    for qualname in roots:
        order = _reachable(qualname, tasks)
        unresolved_in = [tasks[q] for q in order if tasks[q].unknown_requires]
        if unresolved_in:
            # an unresolved requires() (a registry, a TaskParameter) may name a task nobody else requires:
            # take in those trees from the same package, where such registries live. Taking in every root
            # of the repository made one 353-stage pipeline per range task on luigi's own code.
            packages = {_package(info.klass.module.relpath) for info in unresolved_in}
            for other in roots:
                if other != qualname and _package(tasks[other].klass.module.relpath) in packages:
                    order = [*(q for q in _reachable(other, tasks) if q not in order), *order]
        if len(order) < 2:
            continue
        found.append(_pipeline(builder, tasks[qualname], order, tasks))
    return found


def _package(relpath: str) -> str:
    return relpath.rsplit("/", 1)[0] if "/" in relpath else ""


def _task_class(expr: cst.BaseExpression, module: ModuleIndex, project: Project,
                tasks: dict[str, TaskInfo]) -> str | None:
    """The task class a requirement expression instantiates: `Other(...)`, `self.clone(Other)`, `Other`."""
    if isinstance(expr, cst.Call):
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in {"clone", "clone_parent"} and expr.args:
            return _task_class(expr.args[0].value, module, project, tasks)
        expr = func
    klass = project.klass(module.qualify(expr))
    return klass.qualname if klass is not None and klass.qualname in tasks else None


def _read_requires(builder: StageBuilder, info: TaskInfo, tasks: dict[str, TaskInfo]) -> None:
    project = builder.ctx.project
    klass = info.klass
    module = klass.module
    for dec in klass.node.decorators:
        expr = dec.decorator
        if isinstance(expr, cst.Call) and (module.qualify(expr.func) or "") in REQUIRES_DECORATORS:
            for i, arg in enumerate(expr.args):
                found = _task_class(arg.value, module, project, tasks)
                if found:
                    info.requires.setdefault(str(i) if len(expr.args) > 1 else "", []).append(found)
                else:
                    info.unknown_requires.append(f"@requires({code(arg.value)})")
            info.shape = "list" if len(expr.args) > 1 else "single"
            return
    method = project.method(klass, "requires")
    if method is None or method.qualname.rsplit(".", 2)[0] in TASK_BASES:
        return
    locals_: dict[str, cst.BaseExpression] = {}
    values: list[cst.BaseExpression] = []
    yields: list[cst.BaseExpression] = []
    for node in walk(method.node.body, skip_defs=True):
        if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            locals_[node.targets[0].target.value] = node.value
        elif isinstance(node, cst.Return) and node.value is not None:
            values.append(node.value)
        elif isinstance(node, cst.Yield) and node.value is not None and not isinstance(node.value, cst.From):
            yields.append(node.value)
    if yields:
        info.shape = "list"
        for i, value in enumerate(yields):
            _add_requirement(info, str(i), value, locals_, method.module, project, tasks)
        return
    for value in values:
        if isinstance(value, cst.Name) and value.value in locals_:
            value = locals_[value.value]
        if (isinstance(value, cst.Name) and value.value in {"None"}) or (isinstance(value, cst.List | cst.Tuple) and \
                not value.elements):
            continue
        if isinstance(value, cst.Dict):
            info.shape = "dict"
            for el in value.elements:
                if isinstance(el, cst.DictElement):
                    key = evaluate(el.key, Scope(method.module, project)) or WILD
                    _add_requirement(info, key, el.value, locals_, method.module, project, tasks)
                else:
                    info.unknown_requires.append(code(el))
        elif isinstance(value, cst.List | cst.Tuple):
            info.shape = "list"
            for i, item in enumerate(value.elements):
                _add_requirement(info, str(i), item.value, locals_, method.module, project, tasks)
        elif isinstance(value, cst.ListComp | cst.GeneratorExp):
            info.shape = "list"
            _add_requirement(info, WILD, value.elt, locals_, method.module, project, tasks)
        else:
            info.shape = "single"
            _add_requirement(info, "", value, locals_, method.module, project, tasks)
    for what in info.unknown_requires:
        unresolved(builder, module, method.node,
                   f"{klass.name}.requires() returns {what}, which stagegraph can't resolve to a task class; "
                   "its requirements are unknown")


def _add_requirement(info: TaskInfo, key: str, expr: cst.BaseExpression, locals_: dict[str, cst.BaseExpression],
                     module: ModuleIndex, project: Project, tasks: dict[str, TaskInfo]) -> None:
    if isinstance(expr, cst.Name) and expr.value in locals_:
        expr = locals_[expr.value]
    found = _task_class(expr, module, project, tasks)
    if found is None:
        info.unknown_requires.append(code(expr))
        return
    if found != info.klass.qualname:
        info.requires.setdefault(key, []).append(found)


def _read_output(info: TaskInfo, project: Project) -> None:
    method = project.method(info.klass, "output")
    if method is None:
        return
    module = method.module
    scope = Scope(module, project)
    file = module.relpath
    locals_: dict[str, cst.BaseExpression] = {}
    for node in walk(method.node.body, skip_defs=True):
        if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            locals_[node.targets[0].target.value] = node.value
    # `LocalTarget(self.outfile)`: the class attribute of this very task class (an inherited output()
    # included), as Luigi builds exactly the class requires() names
    scope = Scope(module, project, locals_, owner=method,
                  self_values=receiver_values(project, method, info.klass, exact=True))
    for node in walk(method.node.body, skip_defs=True):
        if not isinstance(node, cst.Call):
            continue
        name = (module.qualify(node.func) or "").rsplit(".", 1)[-1]
        if not name.endswith("Target"):
            continue
        line = module.line(node)
        table = kwarg(node, "table")
        if any(h in name for h in _TABLE_TARGET_HINTS):
            value = evaluate(table if table is not None else argument(node, 4, "table"), scope) or WILD
            info.outputs.append(Effect("table", value, file, line, key=value))
        else:
            value = evaluate(argument(node, 0, "path"), scope) or WILD
            info.outputs.append(Effect("file", value, file, line, key=value))
    if not info.outputs:
        info.outputs.append(Effect("unknown", f"the target {info.klass.name}.output() returns", file, method.line,
                                   key=f"luigi-output:{info.klass.qualname}", of="file"))


def _reachable(root: str, tasks: dict[str, TaskInfo]) -> list[str]:
    """Tasks reachable from `root` through requires(), required ones first (post-order DFS)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(q: str) -> None:
        if q in seen:
            return
        seen.add(q)
        for qs in tasks[q].requires.values():
            for r in qs:
                visit(r)
        order.append(q)

    visit(root)
    return order


def _input_reads(info: TaskInfo, tasks: dict[str, TaskInfo], project: Project) -> tuple[list[Effect], bool]:
    """Outputs of requirements that run() reads through self.input() (and whether it reads any input)."""
    assert info.runs is not None
    keys: set[str] = set()
    everything = False
    methods = [info.runs, *(m for m in info.klass.methods.values() if m is not info.runs and m.name not in
                            {"requires", "output"})]
    for method in methods:
        aliases: set[str] = set()
        for node in walk(method.node.body):
            if isinstance(node, cst.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0].target, cst.Name) and _is_input(node.value, set()):
                aliases.add(node.targets[0].target.value)
        handled: set[int] = set()
        for node in walk(method.node.body):
            if isinstance(node, cst.Subscript) and _is_input(node.value, aliases):
                handled.add(id(node.value))
                index = node.slice[0].slice if len(node.slice) == 1 else None
                value = evaluate(index.value, Scope(method.module, project)) if isinstance(index, cst.Index) else None
                if value is not None and WILD not in value:
                    keys.add(value)
                else:
                    everything = True
            elif isinstance(node, cst.Assign) and len(node.targets) == 1 and _is_input(node.value, set()) and \
                    isinstance(node.targets[0].target, cst.Name):
                handled.add(id(node.value))  # an alias: its uses decide what is read
        for node in walk(method.node.body):
            if id(node) in handled or isinstance(node, cst.AssignTarget):
                continue
            if (isinstance(node, cst.Call) and _is_input(node, set())) or (isinstance(node, cst.Name) and \
                    node.value in aliases):
                everything = True
    reads: list[Effect] = []
    for key, qualnames in info.requires.items():
        if everything or key in keys or (key == WILD and keys) or (info.shape == "single" and keys):
            for q in qualnames:
                reads.extend(tasks[q].outputs)
    return reads, bool(keys) or everything


def _is_input(expr: cst.BaseExpression, aliases: set[str]) -> bool:
    if isinstance(expr, cst.Name):
        return expr.value in aliases
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and \
        expr.func.attr.value in {"input", "requires"} and isinstance(expr.func.value, cst.Name) and \
        expr.func.value.value == "self"


def _stage(builder: StageBuilder, info: TaskInfo, tasks: dict[str, TaskInfo]) -> Stage:
    klass = info.klass
    file = klass.module.relpath
    line = klass.module.line(klass.node)
    name = klass.name
    if info.runs is None:
        library = _library_runner(klass, builder.ctx.project)
        if library is not None:
            # run() is a library class's (`luigi.contrib.postgres.CopyToTable` loads its input into a
            # table): it reads what its requirements wrote, and what else it does is not seen
            reads = [e for qualnames in info.requires.values() for q in qualnames for e in tasks[q].outputs]
            why = f"{name}.run() is {library}'s, which stagegraph can't see into"
            table = _class_table(klass, builder.ctx.project) if library.endswith("CopyToTable") else None
            if table is not None:
                # the SQL loaders (postgres, mysqldb, redshift, sqla, rdbms) insert into `table`
                more_reads, more_writes = [], [Effect("table", table, file, line, key=table)]
            elif library.endswith(("CopyToTable", "Query")):
                # ...or, when the class does not name it, some table of their database
                unknown = Effect("unknown", why, file, line, key=f"opaque:{file}:{line}", of="table")
                more_reads, more_writes = [unknown], [unknown]
            else:
                more_reads, more_writes = opaque(why, file, line)
            return Stage(id=name, name=name, file=file, line=line, reads=dedupe([*reads, *more_reads]),
                         writes=dedupe([*info.outputs, *more_writes]), roles=builder.roles(name, None),
                         qualname=klass.qualname)
        # an ExternalTask (or any task without run()) still provides its output to the tasks requiring it
        return Stage(id=name, name=name, file=file, line=line, writes=dedupe(info.outputs),
                     roles=builder.roles(name, None), qualname=klass.qualname)
    reads, _ = _input_reads(info, tasks, builder.ctx.project)
    if info.unknown_requires:
        reads.append(Effect("unknown", f"self.input() of {name}: its requirements are not known", file, line,
                            key=f"luigi-input:{klass.qualname}", of="file"))
    stage = builder.stage(
        stage_id=name, callee=info.runs, file=file, line=line, params={}, labels={}, via_self=False,
        fanout=None, module=klass.module, klass=klass, name=name, extra_reads=reads, extra_writes=info.outputs,
        receiver=klass, exact_receiver=True,  # Luigi builds exactly the task class a requires() names
    )
    # `self.input()[k].open()` / `self.output().open("w")` are modelled above through the targets: the
    # summariser's "file name built at run time" for those same lines would only add noise
    modelled = _target_lines(info, builder.ctx.project)
    return replace(
        stage,
        reads=tuple(e for e in stage.reads if not _is_modelled(e, modelled)),
        writes=tuple(e for e in stage.writes if not _is_modelled(e, modelled)),
    )


def _class_table(klass: ClassRef, project: Project) -> str | None:
    """The `table` class attribute a `CopyToTable` subclass (or an analysed base of it) sets, if literal."""
    for owner in project.lineage(klass):
        value = class_body_value(owner, "table")
        if value is not None:
            text = evaluate(value, Scope(owner.module, project))
            return text if text and WILD not in text else None
    return None


def _library_runner(klass: ClassRef, project: Project) -> str | None:
    """The library class a task's run() comes from, when a base outside the analysed code (other than
    Luigi's plain `Task`, `WrapperTask`, `ExternalTask`) provides it."""
    for owner in project.lineage(klass):
        for base in owner.bases:
            if project.klass(base) is None and base not in TASK_BASES and base.startswith("luigi."):
                return base
    return None


def _target_lines(info: TaskInfo, project: Project) -> set[tuple[str, int]]:
    """Lines that use a target (`self.input()`, `self.output()`) or a file opened from one, in the
    task's methods and the ones it inherits (a base task's `run()` writing `self.output()`)."""
    out: set[tuple[str, int]] = set()
    methods = {name: fn for klass in reversed(project.lineage(info.klass)) for name, fn in klass.methods.items()}
    for method in methods.values():
        out |= _method_target_lines(method)
    return out


def _method_target_lines(method: FunctionRef) -> frozenset[tuple[str, int]]:
    """`_target_lines` of one method, computed once: a task is a stage of every pipeline that needs it,
    and a base task's methods are inherited by each of its subclasses."""
    memo = method.module.memo.setdefault("luigi_target_lines", {})
    assert isinstance(memo, dict)
    if method.qualname in memo:
        return memo[method.qualname]  # type: ignore[no-any-return]
    nodes = list(walk(method.node.body))
    handles: set[str] = set()
    for node in nodes:
        if isinstance(node, cst.WithItem) and node.asname is not None and isinstance(node.asname.name, cst.Name) \
                and any(_is_target_call(n) for n in walk(node.item)):
            handles.add(node.asname.name.value)
        elif isinstance(node, cst.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0].target, cst.Name) and any(_is_target_call(n) for n in walk(node.value)):
            handles.add(node.targets[0].target.value)
    out: set[tuple[str, int]] = set()
    for node in nodes:
        if _is_target_call(node) or (isinstance(node, cst.Name) and node.value in handles):
            out.add((method.module.relpath, method.module.line(node)))
        elif isinstance(node, cst.Call) and any(isinstance(a.value, cst.Name) and a.value.value in handles
                                                for a in node.args):
            out.add((method.module.relpath, method.module.line(node)))  # `df.to_csv(\n f, ...)`
    memo[method.qualname] = frozenset(out)
    return memo[method.qualname]  # type: ignore[no-any-return]


def _is_target_call(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
        node.func.attr.value in {"input", "output"} and isinstance(node.func.value, cst.Name) and \
        node.func.value.value == "self"


def _is_modelled(effect: Effect, lines: set[tuple[str, int]]) -> bool:
    return effect.kind == "unknown" and effect.of == "file" and not effect.key.startswith("luigi-") and \
        (effect.file, effect.line) in lines


def _pipeline(builder: StageBuilder, root: TaskInfo, order: list[str], tasks: dict[str, TaskInfo]) -> PipelineFacts:
    names = {q: tasks[q].klass.name for q in order}
    stages = [_stage(builder, tasks[q], tasks) for q in order]
    declared = sorted({
        Link(names[r], names[q], "order", ("requires()",))
        for q in order for qs in tasks[q].requires.values() for r in qs if r in names and r != q
    }, key=lambda link: (link.source, link.target))
    links: list[Link] = []
    notes: list[str] = []
    for q in order:
        info = tasks[q]
        if not info.unknown_requires:
            continue
        reason = f"{info.klass.name}.requires() is not resolvable: {', '.join(info.unknown_requires)}"
        notes.append(reason)
        downstream = {o for o in order if q in _reachable(o, tasks)}
        links.extend(Link(names[o], names[q], "unknown", (reason,)) for o in order if o not in downstream)
    klass = root.klass
    return PipelineFacts(
        id=f"{klass.module.relpath}::{klass.name}",
        name=klass.name,
        style="luigi",
        file=klass.module.relpath,
        line=klass.module.line(klass.node),
        stages=tuple(stages),
        declared=tuple(declared),
        links=tuple(links),
        notes=tuple(notes),
    )

