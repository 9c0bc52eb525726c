"""Kedro pipelines: nodes exchange named datasets, and Kedro orders them by those names.

A pipeline is what a function (usually `create_pipeline`) returns when that is built from
`pipeline([...])` / `Pipeline([...])` (or `+` of such), or a module-level `name = pipeline([...])`.
Each `node(func, inputs, outputs, name=...)` is a stage named by its node name (else the
function name):

- each input dataset is a read and each output a write of `dataset:NAME` (kind `variable`);
  `params:x` / `parameters` inputs are configuration, not data between nodes; transcoded names
  (`sales@spark`) are the same dataset;
- when a `conf/**/catalog*.yml` above the code maps a dataset to a `filepath` (or a
  `table_name`), the dataset is that file (or table) instead, so two names for one file conflict.
  The catalog is read only when PyYAML is importable; otherwise it is skipped silently, as
  documented in docs/frameworks/kedro.md;
- the node function's own composed effects are added, its parameters bound to the input datasets.

Declared orderings are Kedro's own: every dataset's producer before each of its consumers.
`pipeline(base, namespace=...)` prefixes dataset and node names (except mapped `inputs=`/`outputs=`
and parameters). Dataset names that can't be known statically become a diagnostic and `unknown`
links to the rest of the pipeline.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import libcst as cst

from ...confine import inside, repo_root
from ...model import Diagnostic, DiagnosticKind, Effect, Link, PipelineFacts, Stage
from ..index import FunctionRef, ModuleIndex, Project, named_arguments
from ..stagefx import StageBuilder
from ..values import MARK, WILD, Scope, evaluate, subscript_value
from ._declared import argument, code, kwarg, unresolved, walk

PIPELINE_CALLS = frozenset({
    "kedro.pipeline.pipeline", "kedro.pipeline.Pipeline", "kedro.pipeline.modular_pipeline.pipeline",
    "kedro.pipeline.pipeline.Pipeline", "kedro.pipeline.pipeline.pipeline",
})
NODE_CALLS = frozenset({"kedro.pipeline.node", "kedro.pipeline.node.node", "kedro.pipeline.Node",
                        "kedro.pipeline.node.Node"})


@dataclass(slots=True)
class KedroNode:
    """A node as declared, with dataset names already namespaced."""

    name: str
    func: FunctionRef | None
    call: cst.Call
    module: ModuleIndex
    inputs: list[tuple[str, str]]  # (parameter name or "", dataset)
    outputs: list[str]
    dynamic: list[str] = field(default_factory=list)


def _is_param(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


def _dataset_id(name: str) -> str:
    return name.split("@", 1)[0]


def _bound(name: str, module: ModuleIndex, locals_: dict[str, cst.BaseExpression]
           ) -> tuple[cst.BaseExpression, dict[str, cst.BaseExpression]] | None:
    """What a name in a pipeline expression stands for, with the locals to read it in: the builder's
    local, else a module constant (read with no locals)."""
    if name in locals_:
        return locals_[name], locals_
    if name in module.constants:
        return module.constants[name], {}
    return None


class PipelineReader:
    """Evaluates pipeline expressions into node lists (following names, `+`, calls to other builders)."""

    def __init__(self, builder: StageBuilder) -> None:
        self.builder = builder
        self.project: Project = builder.ctx.project
        self.depth = 0

    def nodes(self, expr: cst.BaseExpression, module: ModuleIndex, locals_: dict[str, cst.BaseExpression]) \
            -> list[KedroNode] | None:
        """Nodes of a pipeline expression, or None when it is not one."""
        if self.depth > 12:
            return None
        self.depth += 1
        try:
            return self._nodes(expr, module, locals_)
        finally:
            self.depth -= 1

    def _nodes(self, expr: cst.BaseExpression, module: ModuleIndex,
               locals_: dict[str, cst.BaseExpression]) -> list[KedroNode] | None:
        if isinstance(expr, cst.Name):
            bound = _bound(expr.value, module, locals_)
            return self.nodes(bound[0], module, bound[1]) if bound is not None else None
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            left, right = self.nodes(expr.left, module, locals_), self.nodes(expr.right, module, locals_)
            if left is None and right is None:
                return None
            return [*(left or []), *(right or [])]
        if isinstance(expr, cst.List | cst.Tuple):
            out: list[KedroNode] = []
            for el in expr.elements:
                found = self.nodes(el.value, module, locals_)
                if found is None:
                    # never dropped silently: the pipeline may hold a node this run does not see
                    unresolved(self.builder, module, el.value, f"{code(el.value)} in a pipeline's node list is not "
                                                               "a node stagegraph can read; its datasets are not known")
                out.extend(found or [])
            return out
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
            # `prepare_nodes[0]`: one element of a node list bound to a name
            index = expr.slice[0].slice.value
            bound = _bound(expr.value.value, module, locals_) if isinstance(expr.value, cst.Name) else None
            if bound is not None and isinstance(bound[0], cst.List | cst.Tuple) and isinstance(index, cst.Integer):
                listed, scope = bound[0], bound[1]
                position = int(index.value)
                if -len(listed.elements) <= position < len(listed.elements):
                    return self.nodes(listed.elements[position].value, module, scope)
            return None
        if isinstance(expr, cst.ListComp):
            unresolved(self.builder, module, expr, f"nodes built in a comprehension ({code(expr)}): their datasets "
                                                   "are not known statically")
            found = self.nodes(expr.elt, module, locals_) or []
            for n in found:
                n.dynamic.append(f"built in {code(expr)}")
            return found
        if isinstance(expr, cst.Attribute) and expr.attr.value == "nodes":
            return self.nodes(expr.value, module, locals_)  # `[*other_pipeline().nodes, node(...)]`
        if not isinstance(expr, cst.Call):
            return None
        qualified = module.qualify(expr.func) or ""
        if qualified in NODE_CALLS or self.node_subclass(qualified):
            return [self.node(expr, module, locals_)]
        if qualified in PIPELINE_CALLS:
            first = argument(expr, 0, "nodes") or argument(expr, 0, "pipe")
            inner = self.nodes(first, module, locals_) if first is not None else []
            namespace = evaluate(kwarg(expr, "namespace"), Scope(module, self.project))
            if namespace is None and kwarg(expr, "inputs") is None and kwarg(expr, "outputs") is None:
                return inner or []
            return [self.namespaced(n, expr, module, namespace) for n in inner or []]
        fn = self.project.function(module.qualify(expr.func))
        if fn is not None:
            return self.function_nodes(fn, self.bound_arguments(fn, expr, Scope(module, self.project, locals_)))
        return None

    def bound_arguments(self, fn: FunctionRef, call: cst.Call, caller: Scope) -> dict[str, cst.BaseExpression]:
        """A builder's parameters given literal values by this call (`cached_pipeline(source="node")`), as
        the names a node's f-strings read (`name=f"derive_{source}"`); defaults fill the rest."""
        params = [p for p in fn.params if p not in {"self", "cls"}]
        bound = fn.defaults
        for name, arg in named_arguments([*params, *fn.kwonly], call.args):
            value = evaluate(arg.value, caller)
            if value is None or WILD in value or MARK in value:
                bound.pop(name, None)  # given, but not known here: never the default
                continue
            bound[name] = cst.SimpleString(json.dumps(value))
        return bound

    def node_subclass(self, qualified: str) -> bool:
        """A project class extending Kedro's Node (`class ArgoNode(Node)`): built like `node(...)`."""
        klass = self.project.klass(qualified) if qualified else None
        return klass is not None and any(
            base in NODE_CALLS for owner in self.project.lineage(klass) for base in owner.bases)

    def function_nodes(self, fn: FunctionRef, arguments: dict[str, cst.BaseExpression] | None = None
                       ) -> list[KedroNode] | None:
        locals_: dict[str, cst.BaseExpression] = dict(arguments or {})
        result: list[KedroNode] | None = None
        for node in walk(fn.node.body, skip_defs=True):
            if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                locals_[node.targets[0].target.value] = node.value
            elif isinstance(node, cst.Return) and node.value is not None:
                found = self.nodes(node.value, fn.module, locals_)
                if found is not None:
                    result = [*(result or []), *found]
        return result

    def node(self, call: cst.Call, module: ModuleIndex, locals_: dict[str, cst.BaseExpression]) -> KedroNode:
        scope = Scope(module, self.project, locals_)
        func_expr = argument(call, 0, "func")
        func = self.resolve(func_expr, module)
        fn_params = [p for p in func.params if p not in {"self", "cls"}] if func is not None else []
        dynamic: list[str] = []
        inputs: list[tuple[str, str]] = []
        in_expr = _as_dict(argument(call, 1, "inputs"), module)
        if isinstance(in_expr, cst.Dict):
            for el in in_expr.elements:
                if isinstance(el, cst.DictElement):
                    inputs.append((evaluate(el.key, scope) or "", evaluate(el.value, scope) or WILD))
                else:
                    dynamic.append(f"inputs {code(in_expr)}")
        else:
            for i, name in enumerate(self.names(in_expr, scope, dynamic, "inputs")):
                inputs.append((fn_params[i] if i < len(fn_params) else "", name))
        outputs: list[str] = []
        out_expr = _as_dict(argument(call, 2, "outputs"), module)
        if isinstance(out_expr, cst.Dict):
            outputs = [evaluate(el.value, scope) or WILD for el in out_expr.elements if isinstance(el, cst.DictElement)]
        else:
            outputs = self.names(out_expr, scope, dynamic, "outputs")
        given = evaluate(kwarg(call, "name"), scope)
        fallback = func.name if func is not None else (code(func_expr) if func_expr is not None else "node")
        name = given if given is not None else fallback
        namespace = evaluate(kwarg(call, "namespace"), scope)
        node = KedroNode(name, func, call, module, inputs, outputs, dynamic)
        if namespace:
            node = self.namespaced(node, None, module, namespace)
        if any(WILD in d for _, d in inputs) or any(WILD in d for d in outputs) or WILD in name:
            node.dynamic.append("dataset or node names built at run time")
        if func is None and func_expr is not None and not isinstance(func_expr, cst.Lambda):
            unresolved(self.builder, module, call, f"node function {code(func_expr)} is not in the analysed code; "
                                                   "only its datasets are known")
        return node

    def names(self, expr: cst.BaseExpression | None, scope: Scope, dynamic: list[str], what: str) -> list[str]:
        if expr is None or (isinstance(expr, cst.Name) and expr.value == "None"):
            return []
        if isinstance(expr, cst.List | cst.Tuple):
            out = []
            for el in expr.elements:
                if isinstance(el, cst.StarredElement):
                    dynamic.append(f"{what} {code(expr)}")
                    out.append(WILD)
                else:
                    out.append(evaluate(el.value, scope) or WILD)
            return out
        value = evaluate(expr, scope)
        if value is None:
            dynamic.append(f"{what} {code(expr)}")
            return [WILD]
        return [value]

    def resolve(self, expr: cst.BaseExpression | None, module: ModuleIndex) -> FunctionRef | None:
        if expr is None:
            return None
        if isinstance(expr, cst.Call) and (module.qualify(expr.func) or "") in {"functools.partial", "partial",
                                                                                 "functools.update_wrapper"}:
            return self.resolve(expr.args[0].value, module) if expr.args else None
        if isinstance(expr, cst.Lambda):
            for node in walk(expr.body):
                if isinstance(node, cst.Call):
                    found = self.project.function(module.qualify(node.func))
                    if found is not None:
                        return found
            return None
        return self.project.function(module.qualify(expr))

    def namespaced(self, node: KedroNode, call: cst.Call | None, module: ModuleIndex,
                   namespace: str | None) -> KedroNode:
        """`pipeline(base, namespace="ns", inputs=..., outputs=..., parameters=...)` renaming."""
        scope = Scope(module, self.project)
        mapping: dict[str, str] = {}
        if call is not None:
            for kw in ("inputs", "outputs", "parameters"):
                mapping.update(_mapping(kwarg(call, kw), scope))

        def rename(name: str) -> str:
            if name in mapping:
                return mapping[name]
            if _is_param(name) or not namespace:
                return name
            return f"{namespace}.{name}"

        return replace(
            node,
            name=f"{namespace}.{node.name}" if namespace else node.name,
            inputs=[(p, rename(d)) for p, d in node.inputs],
            outputs=[rename(d) for d in node.outputs],
        )


def _as_dict(expr: cst.BaseExpression | None, module: ModuleIndex) -> cst.BaseExpression | None:
    """`dict(datos="model_input_table", n="params:n")` read as the literal `{"datos": ..., "n": ...}`
    it builds (keywords only; any other call stays what it is)."""
    if not (isinstance(expr, cst.Call) and (module.qualify(expr.func) or "") == "dict" and expr.args
            and all(a.keyword is not None and not a.star for a in expr.args)):
        return expr
    return cst.Dict([cst.DictElement(cst.SimpleString(repr(a.keyword.value)), a.value)
                     for a in expr.args if a.keyword is not None])


def _mapping(expr: cst.BaseExpression | None, scope: Scope) -> dict[str, str]:
    expr = _as_dict(expr, scope.module)
    if expr is None:
        return {}
    if isinstance(expr, cst.Dict):
        out = {}
        for el in expr.elements:
            if isinstance(el, cst.DictElement):
                key, value = evaluate(el.key, scope), evaluate(el.value, scope)
                if key and value:
                    out[key] = value
        return out
    if isinstance(expr, cst.List | cst.Tuple | cst.Set):
        return {v: v for el in expr.elements if (v := evaluate(el.value, scope))}
    value = evaluate(expr, scope)
    return {value: value} if value else {}


# ---------------------------------------------------------------- catalog


def _catalog(module: ModuleIndex, diagnostics: list[Diagnostic]) -> dict[str, Effect]:
    """Dataset name -> file/table effect from the nearest `conf/**/catalog*.yml` (`yaml.safe_load`: no
    tags are ever constructed). A catalog that can't be read is one diagnostic naming it; the nodes
    still connect by dataset name, only the mapping to files is lost."""
    path = module.parsed.path
    if path is None:
        return {}
    depth = len(PurePosixPath(module.relpath).parts)
    top = path.parents[depth - 1] if depth >= 1 else path.parent  # the analysed folder
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:  # a declared dependency; an install without it still reports, and says so
        if not any(d.code == "kedro-catalog" for d in diagnostics):
            diagnostics.append(Diagnostic(module.relpath, "skipped", "PyYAML is not installed: Kedro catalogs "
                                          "(conf/**/catalog*.yml) were not read", code="kedro-catalog"))
        return {}
    memo = _CATALOGS
    root = repo_root(top)
    for folder in list(path.parents)[:6]:
        if not inside(folder, root):  # never read a catalog outside the analysed repository
            break
        conf = folder / "conf"
        if not conf.is_dir():
            continue
        if conf in memo:
            return memo[conf]
        found: dict[str, Effect] = {}
        for file in sorted(conf.rglob("catalog*.yml")) + sorted(conf.rglob("catalog*.yaml")):
            if not inside(file, root):  # a symlink pointing out of the repository
                continue
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8"))
            except Exception as exc:  # PyYAML raises many types; each broken catalog is one diagnostic
                shown = file.relative_to(top).as_posix() if inside(file, top) else file.name
                kind: DiagnosticKind = ("encoding-error" if isinstance(exc, UnicodeDecodeError) else
                                        "unreadable" if isinstance(exc, OSError) else "syntax-error")
                diagnostics.append(Diagnostic(shown, kind, f"Kedro catalog not read ({type(exc).__name__}: "
                                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); its "
                                              "datasets are not mapped to files or tables", code="kedro-catalog"))
                continue
            if not isinstance(data, dict):
                continue
            rel = file.relative_to(folder).as_posix()
            for name, entry in data.items():
                if not isinstance(name, str) or "{" in name or not isinstance(entry, dict):
                    continue
                target = entry.get("filepath") or entry.get("path")
                table = entry.get("table_name") or entry.get("table")
                if isinstance(target, str):
                    found[name] = Effect("file", target, rel, 1, key=target)
                elif isinstance(table, str):
                    found[name] = Effect("table", table, rel, 1, key=table)
        memo[conf] = found
        return found
    return {}


_CATALOGS: dict[Path, dict[str, Effect]] = {}


# ---------------------------------------------------------------- pipelines


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """The pipelines the project's registry registers, plus every builder no registry pipeline covers.

    What `kedro run` runs is the registry's (`register_pipelines()`); a `create_pipeline()` alone misses
    every dependency between it and the pipelines it is added to, so a builder whose nodes all belong
    to a registered pipeline is reported only as part of it.
    """
    project = builder.ctx.project
    _CATALOGS.clear()
    builders: list[tuple[ModuleIndex, str, int, list[KedroNode]]] = []
    registered: list[PipelineFacts] = []
    covered: set[int] = set()
    for module in sorted(project.modules.values(), key=lambda m: m.relpath):
        if "kedro" not in module.parsed.text:
            continue
        for fn in module.functions.values():
            if fn.name == "register_pipelines" and not fn.class_name:
                registry, members = _registry(builder, fn)
                for key, nodes in registry.items():
                    facts = _pipeline(builder, module, key, fn.line, nodes)
                    registered.append(replace(
                        facts, id=f"{module.relpath}::register_pipelines[{key}]",
                        notes=(*facts.notes, f"registered as {key!r} by {module.relpath}::register_pipelines"),
                        assembled_from=(f"{module.relpath}::{fn.name}", *members),
                    ))
                    covered.update(id(n.call) for n in nodes)
                continue
            if not _builds_pipeline(fn.node, module):
                continue
            nodes = PipelineReader(builder).function_nodes(fn) or []
            if nodes:
                builders.append((module, fn.name, fn.line, nodes))
        for name, value in module.constants.items():
            if isinstance(value, cst.Call | cst.BinaryOperation) and _builds_pipeline(value, module):
                nodes = PipelineReader(builder).nodes(value, module, {}) or []
                if nodes:
                    builders.append((module, name, module.line(value), nodes))
    found = [_pipeline(builder, module, name, line, nodes) for module, name, line, nodes in builders
             if not covered or not {id(n.call) for n in nodes} <= covered]
    return [*registered, *found]


def _registry(builder: StageBuilder, fn: FunctionRef) -> tuple[dict[str, list[KedroNode]], tuple[str, ...]]:
    """Registered name -> nodes, for the maximal pipelines `register_pipelines()` returns.

    Follows the usual shapes: a dict literal, `pipelines = find_pipelines()`, `pipelines["k"] = a + b`,
    `sum(pipelines.values())`, locals bound to `create_pipeline()` calls. A registered pipeline whose
    nodes all belong to another registered one adds nothing and is left out (`__default__` wins ties).
    """
    reader = PipelineReader(builder)
    module = fn.module
    members: set[str] = set()
    for call in walk(fn.node.body, skip_defs=True):  # the builders it calls, directly or by discovery
        if isinstance(call, cst.Call):
            callee = reader.project.function(module.qualify(call.func))
            if callee is not None:
                members.add(f"{callee.module.relpath}::{callee.name}")
    locals_: dict[str, cst.BaseExpression] = {}
    lists: dict[str, list[KedroNode]] = {}
    dicts: dict[str, dict[str, list[KedroNode]]] = {}
    returned: dict[str, list[KedroNode]] = {}

    def value(expr: cst.BaseExpression) -> list[KedroNode]:
        if isinstance(expr, cst.Name) and expr.value in lists:
            return lists[expr.value]
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            return [*value(expr.left), *value(expr.right)]
        if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Name) and expr.value.value in dicts:
            key = _literal_key(expr, module)
            return dicts[expr.value.value].get(key, []) if key is not None else []
        if isinstance(expr, cst.Call) and (module.qualify(expr.func) or "") == "sum" and expr.args:
            inner = expr.args[0].value
            if (isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute)
                    and isinstance(inner.func.value, cst.Name) and inner.func.value.value in dicts):
                return [n for nodes in dicts[inner.func.value.value].values() for n in nodes]
        return reader.nodes(expr, module, locals_) or []

    def mapping(expr: cst.BaseExpression) -> dict[str, list[KedroNode]] | None:
        if isinstance(expr, cst.Dict):
            out: dict[str, list[KedroNode]] = {}
            for element in expr.elements:
                if isinstance(element, cst.DictElement):
                    key = evaluate(element.key, Scope(module, reader.project))
                    if key is not None and WILD not in key:
                        out[key] = value(element.value)
            return out
        if isinstance(expr, cst.Call):
            qualified = module.qualify(expr.func) or ""
            if qualified.endswith("find_pipelines"):
                return _found_pipelines(reader, members)
            if qualified == "dict" and not expr.args:
                return {}
        if isinstance(expr, cst.Name) and expr.value in dicts:
            return dicts[expr.value]
        return None

    for node in walk(fn.node.body, skip_defs=True):
        if isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = node.targets[0].target
            if isinstance(target, cst.Name):
                found = mapping(node.value)
                if found is not None:
                    dicts[target.value] = found
                else:
                    locals_[target.value] = node.value
                    lists[target.value] = value(node.value)
            elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and \
                    target.value.value in dicts:
                key = _literal_key(target, module)
                if key is not None:
                    dicts[target.value.value][key] = value(node.value)
        elif isinstance(node, cst.Return) and node.value is not None:
            returned = mapping(node.value) or returned
    return _maximal(returned), tuple(sorted(members))


def _literal_key(expr: cst.Subscript, module: ModuleIndex) -> str | None:
    key = subscript_value(expr, Scope(module))
    return key if key is not None and WILD not in key else None


def _found_pipelines(reader: PipelineReader, members: set[str]) -> dict[str, list[KedroNode]]:
    """What Kedro's `find_pipelines()` discovers: `create_pipeline` of each `<package>.pipelines.<name>`."""
    out: dict[str, list[KedroNode]] = {}
    for qualname, fn in sorted(reader.project.functions.items()):
        parts = qualname.split(".")
        if fn.name != "create_pipeline" or "pipelines" not in parts[:-1]:
            continue
        rest = parts[parts.index("pipelines") + 1:-1]
        if not rest or (len(rest) == 2 and rest[1] != "pipeline") or len(rest) > 2:
            continue
        out.setdefault(rest[0], reader.function_nodes(fn) or [])
        members.add(f"{fn.module.relpath}::{fn.name}")
    return out


def _first_of_each(nodes: Sequence[KedroNode]) -> list[KedroNode]:
    """One node per declaration, in order: `init + a` and `init + b` summed list `init`'s nodes twice."""
    first: dict[int, KedroNode] = {}
    for n in nodes:
        first.setdefault(id(n.call), n)
    return list(first.values())


def _maximal(registry: dict[str, list[KedroNode]]) -> dict[str, list[KedroNode]]:
    unique = {key: _first_of_each(nodes) for key, nodes in registry.items()}
    sets = {k: {id(n.call) for n in v} for k, v in unique.items() if v}
    order = sorted(sets, key=lambda k: (k != "__default__", k))
    kept: dict[str, list[KedroNode]] = {}
    for key in order:
        if any(sets[key] < sets[other] or (sets[key] == sets[other] and other in kept) for other in sets
               if other != key):
            continue
        kept[key] = unique[key]
    return kept


def _builds_pipeline(node: cst.CSTNode, module: ModuleIndex) -> bool:
    for sub in walk(node, skip_defs=True):
        if isinstance(sub, cst.Call) and (module.qualify(sub.func) or "") in PIPELINE_CALLS:
            return True
    return False


def _stage(builder: StageBuilder, node: KedroNode, stage_id: str, catalog: dict[str, Effect]) -> Stage:
    file, line = node.module.relpath, node.module.line(node.call)

    def effect(dataset: str) -> Effect:
        name = _dataset_id(dataset)
        mapped = catalog.get(dataset) or catalog.get(name)
        if mapped is not None:
            return replace(mapped, file=file, line=line)
        if WILD in name:
            return Effect("unknown", f"dataset {dataset!r} named at run time", file, line, key=f"dataset:{name}",
                          of="any")
        return Effect("variable", name, file, line, key=f"dataset:{name}")

    reads = [effect(d) for _, d in node.inputs if not _is_param(d)]
    writes = [effect(d) for d in node.outputs]
    if node.func is None:
        from ..stagefx import dedupe

        return Stage(id=stage_id, name=node.name, file=file, line=line, reads=dedupe(reads), writes=dedupe(writes),
                     roles=builder.roles(node.name, None))
    params: dict[str, set[str]] = {}
    labels: dict[str, str] = {}
    for param, dataset in node.inputs:
        if param and not _is_param(dataset) and WILD not in dataset:
            key = f"dataset:{_dataset_id(dataset)}"
            params.setdefault(param, set()).add(key)
            labels[key] = _dataset_id(dataset)
    stage = builder.stage(
        stage_id=stage_id, callee=node.func, file=file, line=line, params=params, labels=labels, via_self=False,
        fanout=None, module=node.module, name=node.name, extra_reads=reads, extra_writes=writes,
    )
    # Kedro hands each node its own loaded copy of an input: mutating it in place is not a write
    # of the dataset; parameter-bound reads of catalog-mapped datasets are that file, not memory
    outputs = {e.identity for e in writes}
    mapped_keys = {f"dataset:{_dataset_id(d)}" for _, d in node.inputs if _dataset_id(d) in catalog or d in catalog}
    return replace(
        stage,
        reads=tuple(e for e in stage.reads if e.key not in mapped_keys),
        writes=tuple(e for e in stage.writes if not (e.key.startswith("dataset:") and e.identity not in outputs)),
    )


def _pipeline(builder: StageBuilder, module: ModuleIndex, name: str, line: int,
              nodes: Sequence[KedroNode]) -> PipelineFacts:
    catalog = _catalog(module, builder.diagnostics)
    ids: list[str] = []
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.name] = counts.get(n.name, 0) + 1
        ids.append(n.name if counts[n.name] == 1 else f"{n.name}#{counts[n.name]}")
    stages = [_stage(builder, n, sid, catalog) for n, sid in zip(nodes, ids, strict=True)]
    producers: dict[str, list[str]] = {}
    for n, sid in zip(nodes, ids, strict=True):
        for d in n.outputs:
            producers.setdefault(_dataset_id(d), []).append(sid)
    declared: set[Link] = set()
    for n, sid in zip(nodes, ids, strict=True):
        for _, d in n.inputs:
            for producer in producers.get(_dataset_id(d), []):
                if producer != sid:
                    declared.add(Link(producer, sid, "order", (f"dataset {_dataset_id(d)}",)))
    links: list[Link] = []
    notes: list[str] = []
    for i, (n, sid) in enumerate(zip(nodes, ids, strict=True)):
        if not n.dynamic:
            continue
        reason = f"node {n.name}: {'; '.join(n.dynamic)}"
        notes.append(reason)
        unresolved(builder, n.module, n.call, f"{reason}; stagegraph links it to every other node as unknown")
        for j, other in enumerate(ids):
            if other != sid:
                pair = (other, sid) if j < i else (sid, other)
                links.append(Link(*pair, "unknown", (reason,)))
    return PipelineFacts(
        id=f"{module.relpath}::{name}",
        name=name,
        style="kedro",
        file=module.relpath,
        line=line,
        stages=tuple(stages),
        declared=tuple(sorted(declared, key=lambda link: (link.source, link.target))),
        links=tuple(links),
        notes=tuple(notes),
    )

