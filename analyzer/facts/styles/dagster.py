"""Dagster: `@op` composition in `@job`/`@graph` bodies, and software-defined `@asset`s.

Op graphs: a job or graph body is walked like a plain driver (objects, not names); each op call
is a stage, an op's result passed as an argument is a data edge, and that passing is also the
only ordering Dagster declares (ops with no data between them may run at once). `.alias("x")`
names the stage; `.map(op)` over a dynamic output is a fan-out; a graph called in a job is a
nested pipeline.

Assets: each asset writes `asset:NAME` (kind `variable`); a consumer reads it when it names the
asset in `deps=[...]`, in `ins={...: AssetIn(...)}`, or as a parameter name. Those references are
the declared edges. `@multi_asset(outs={...})` writes each output. Assets form one pipeline per
`Definitions(assets=[...])` (named after its variable) and one per module for the rest (`assets`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst
import networkx as nx

from ...model import Diagnostic, Effect, FanOut, Link, PipelineFacts, Stage
from ..index import FunctionRef, ModuleIndex, Project
from ..stagefx import StageBuilder
from ._decorated import (
    DAGSTER_ASSETS,
    DAGSTER_BODIES,
    DAGSTER_OPS,
    FrameworkDriver,
    decorated_with,
    keyword_arg,
    note_unresolved,
    string_value,
)
from .plain import _code

_CONTEXT_PARAMS = frozenset({"context", "ctx", "_context", "config"})
_PASSTHROUGH = frozenset({"with_hooks", "tag", "with_retry_policy", "configured"})
_DEFINITIONS = frozenset({"dagster.Definitions", "dagster.repository"})
_FROM_MODULES = frozenset({"dagster.load_assets_from_modules", "dagster.load_assets_from_current_module",
                           "dagster.load_assets_from_package_module"})


def _op_params(fn: FunctionRef) -> int:
    """How many leading parameters Dagster fills itself (the context)."""
    params = fn.params
    return 1 if params and params[0] in _CONTEXT_PARAMS else 0


class DagsterDriver(FrameworkDriver):
    """Walks one `@job`/`@graph` body: op and graph calls are stages."""

    def __init__(self, builder: StageBuilder, module: ModuleIndex, fn: FunctionRef,
                 body: Sequence[cst.BaseStatement], ops: dict[str, FunctionRef],
                 graphs: dict[str, FunctionRef]) -> None:
        super().__init__(builder, module, fn, body)
        self.ops = ops
        self.graphs = graphs

    def op_of(self, expr: cst.BaseExpression) -> tuple[FunctionRef, str | None, bool] | None:
        """The op (or graph) an expression names, its alias, and whether it is a graph."""
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            method = expr.func.attr.value
            if method == "alias":
                inner = self.op_of(expr.func.value)
                alias = string_value(expr.args[0].value) if expr.args else None
                return (inner[0], alias or inner[1], inner[2]) if inner else None
            if method in _PASSTHROUGH:
                return self.op_of(expr.func.value)
        if isinstance(expr, cst.Name) and expr.value in self.w.env:
            return None
        fn = self.project.function(self.module.qualify(expr))
        if fn is None:
            return None
        if fn.qualname in self.ops:
            return fn, None, False
        if fn.qualname in self.graphs:
            return fn, None, True
        return None

    def call(self, call: cst.Call) -> set[str]:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "map" and call.args:
            mapped = self.op_of(call.args[0].value)
            if mapped is not None:
                source = self.expr(func.value)
                return self.op_call(call, mapped, [call.args[0]], [source], fan="map")
        found = self.op_of(func)
        if found is not None:
            return self.op_call(call, found, list(call.args), [self.expr(a.value) for a in call.args])
        if isinstance(func, cst.Attribute) and func.attr.value in {"collect", "map"} and not call.args[1:]:
            out = self.expr(func.value)
            for a in call.args:
                out |= self.expr(a.value)
            return out
        ref = self.resolve_call(func)
        if ref is not None and ref.qualname != (self.fn.qualname if self.fn else ""):
            if ref.qualname not in self.ops and ref.qualname not in self.graphs:
                # a plain function called while composing the graph: Dagster runs it at definition time
                line = self.module.line(call)
                note_unresolved(self.builder.diagnostics, self.module, line,
                                f"{ref.name}() is not an op: it runs when the job is defined, not as a step")
            out = set()
            for a in call.args:
                out |= self.expr(a.value)
            return out
        return super().call(call)

    def op_call(self, call: cst.Call, found: tuple[FunctionRef, str | None, bool], args: list[cst.Arg],
                arg_objs: list[set[str]], fan: str | None = None) -> set[str]:
        fn, alias, is_graph = found
        line = self.module.line(call)
        if fan == "map":
            bound: dict[str, set[str]] = {}
            params = fn.params[_op_params(fn):]
            if params:
                bound[params[0]] = set(arg_objs[0])
            fanout: FanOut | None = FanOut("map", _code(call), line, None)
        else:
            bound = self.bind_params(fn, args, arg_objs, skip=_op_params(fn))
            fanout = FanOut("loop", self.w.loops[-1], line, None) if self.w.loops else None
        producers = self.producers_of(set().union(*arg_objs) if arg_objs else set())
        nested = f"{fn.module.relpath}::{fn.qualname.removeprefix(fn.module.name + '.')}" if is_graph else None
        stage_id, result = self.add_stage(fn, line, bound, fanout=fanout, name=alias or fn.name,
                                          label=self.w.result_labels.get(id(call)) or f"output of {alias or fn.name}",
                                          nested=nested)
        for producer in producers:
            if producer != stage_id:
                self.declared.append(Link(producer, stage_id, "order", ("op input",)))
        return {result.key}


# ---------------------------------------------------------------- assets


@dataclass(slots=True)
class Asset:
    """One `@asset` or `@multi_asset` function: what it writes and which assets it names as inputs."""

    fn: FunctionRef
    stage_name: str
    writes: list[str]
    params: dict[str, str] = field(default_factory=dict)  # parameter -> upstream asset name
    deps: list[str] = field(default_factory=list)


def _asset_name(expr: cst.BaseExpression | None, module: ModuleIndex, project: Project,
                names_by_fn: dict[str, str]) -> str | None:
    """`"raw/orders"`, `AssetKey(["raw", "orders"])`, `orders_fn`, `AssetIn("orders")` -> the asset name."""
    if expr is None:
        return None
    text = string_value(expr)
    if text is not None:
        return text.rsplit("/", 1)[-1]
    if isinstance(expr, cst.List | cst.Tuple) and expr.elements:
        return _asset_name(expr.elements[-1].value, module, project, names_by_fn)
    if isinstance(expr, cst.Call):
        qualified = module.qualify(expr.func) or ""
        short = qualified.rsplit(".", 1)[-1]
        if short in {"AssetKey", "AssetIn", "AssetDep", "SourceAsset", "AssetSpec"}:
            key = keyword_arg(expr, "key") or keyword_arg(expr, "asset")
            if key is None and expr.args and expr.args[0].keyword is None:
                key = expr.args[0].value
            return _asset_name(key, module, project, names_by_fn)
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "with_prefix":
            return _asset_name(expr.func.value, module, project, names_by_fn)
        return None
    if isinstance(expr, cst.Attribute) and expr.attr.value == "key":
        return _asset_name(expr.value, module, project, names_by_fn)
    fn = project.function(module.qualify(expr))
    if fn is not None and fn.qualname in names_by_fn:
        return names_by_fn[fn.qualname]
    return None


def collect_assets(project: Project, diagnostics: list[Diagnostic]) -> dict[str, Asset]:
    """Every asset function by qualified name."""
    found: dict[str, Asset] = {}
    names_by_fn: dict[str, str] = {}
    decorated: list[tuple[FunctionRef, cst.Call | None, bool]] = []
    for q, fn in project.functions.items():
        dec = None if fn.is_method else decorated_with(fn, DAGSTER_ASSETS)
        if dec is None:
            continue
        multi = dec.qualified.endswith("multi_asset")
        decorated.append((fn, dec.call, multi))
        explicit = string_value(keyword_arg(dec.call, "name")) or _asset_name(
            keyword_arg(dec.call, "key"), fn.module, project, {})
        names_by_fn[q] = explicit or fn.name
    for fn, call, multi in decorated:
        module = fn.module
        writes = [names_by_fn[fn.qualname]]
        deps: list[str] = []
        if multi:
            outs = keyword_arg(call, "outs")
            specs = keyword_arg(call, "specs")
            writes = []
            if isinstance(outs, cst.Dict):
                writes = [n for el in outs.elements if isinstance(el, cst.DictElement)
                          if (n := string_value(el.key)) is not None]
            if isinstance(specs, cst.List):
                for el in specs.elements:
                    name = _asset_name(el.value, module, project, names_by_fn)
                    if name:
                        writes.append(name)
                    if isinstance(el.value, cst.Call):
                        deps += _dep_list(keyword_arg(el.value, "deps"), module, project, names_by_fn, diagnostics)
            if not writes:
                writes = [fn.name]
                note_unresolved(diagnostics, module, fn.line,
                                f"{fn.name}: outs= is not a literal dict; the function name stands for its outputs")
        deps += _dep_list(keyword_arg(call, "deps"), module, project, names_by_fn, diagnostics)
        params: dict[str, str] = {}
        ins = keyword_arg(call, "ins")
        if isinstance(ins, cst.Dict):
            for item in ins.elements:
                if not isinstance(item, cst.DictElement):
                    continue
                pname = string_value(item.key)
                if pname is None:
                    continue
                upstream = _asset_name(item.value, module, project, names_by_fn)
                if upstream is None and isinstance(item.value, cst.Call):
                    upstream = pname  # AssetIn(key_prefix=...) without a key: the parameter names the asset
                params[pname] = upstream or pname
        elif ins is not None:
            note_unresolved(diagnostics, module, fn.line,
                            f"{fn.name}: ins= is not a literal dict; its inputs are matched by parameter name")
        for p in fn.params[_op_params(fn):]:
            if p not in params and p not in _CONTEXT_PARAMS:
                params[p] = p
        # the stage is the function (as for ops and tasks); the asset's key is what it writes
        stage_name = fn.name
        found[fn.qualname] = Asset(fn, stage_name, writes, params, deps)
    return found


def _dep_list(expr: cst.BaseExpression | None, module: ModuleIndex, project: Project, names_by_fn: dict[str, str],
              diagnostics: list[Diagnostic]) -> list[str]:
    if expr is None:
        return []
    if not isinstance(expr, cst.List | cst.Tuple | cst.Set):
        note_unresolved(diagnostics, module, module.line(expr),
                        f"deps={_code(expr)} is not a literal list: those dependencies are unknown")
        return ["?"]
    out = []
    for el in expr.elements:
        name = _asset_name(el.value, module, project, names_by_fn)
        if name is None:
            note_unresolved(diagnostics, module, module.line(el.value),
                            f"asset dependency {_code(el.value)} can't be resolved statically")
            out.append("?")
        else:
            out.append(name)
    return out


def _asset_stage(builder: StageBuilder, asset: Asset) -> Stage:
    fn = asset.fn
    file, line = fn.module.relpath, fn.line
    params = {p: {f"asset:{up}"} for p, up in asset.params.items()}
    labels = {f"asset:{up}": f"asset:{up}" for up in asset.params.values()}
    reads = [Effect("variable", f"asset:{d}", file, line, key=f"asset:{d}") for d in asset.deps if d != "?"]
    reads += [Effect("unknown", "asset dependency that can't be resolved statically", file, line, of="memory",
                     assumed=True) for d in asset.deps if d == "?"]
    writes = [Effect("variable", f"asset:{w}", file, line, key=f"asset:{w}") for w in asset.writes]
    return builder.stage(stage_id=asset.stage_name, callee=fn, file=file, line=line, params=params, labels=labels,
                         via_self=False, fanout=None, module=fn.module, name=asset.stage_name,
                         extra_reads=reads, extra_writes=writes)


def _asset_pipeline(builder: StageBuilder, name: str, module: ModuleIndex, line: int,
                    members: list[Asset]) -> PipelineFacts | None:
    if not members:
        return None
    producers: dict[str, str] = {}
    for asset in members:
        for w in asset.writes:
            producers.setdefault(w, asset.stage_name)
    declared: list[Link] = []
    links: list[Link] = []
    for asset in members:
        for up in [*asset.params.values(), *asset.deps]:
            source = producers.get(up)
            if source is not None and source != asset.stage_name:
                declared.append(Link(source, asset.stage_name, "order", ("asset dependency",)))
        if "?" in asset.deps:
            for other in members:
                if other is not asset:
                    links.append(Link(other.stage_name, asset.stage_name, "unknown",
                                      ("an asset dependency stagegraph could not resolve",)))
    graph = nx.DiGraph()
    order = {a.stage_name: i for i, a in enumerate(members)}
    graph.add_nodes_from(order)
    graph.add_edges_from((d.source, d.target) for d in declared)
    try:
        sequence = list(nx.lexicographical_topological_sort(graph, key=order.__getitem__))
    except nx.NetworkXUnfeasible:
        sequence = list(order)
    by_name = {a.stage_name: a for a in members}
    stages = tuple(_asset_stage(builder, by_name[n]) for n in sequence)
    return PipelineFacts(
        id=f"{module.relpath}::{name}", name=name, style="dagster", file=module.relpath, line=line,
        stages=stages, declared=tuple(declared), links=tuple(links),
    )


def _definitions(project: Project, assets: dict[str, Asset],
                 diagnostics: list[Diagnostic]) -> list[tuple[str, ModuleIndex, int, list[Asset]]]:
    """`defs = Definitions(assets=[...])` at module level: (name, module, line, members)."""
    out = []
    by_module: dict[str, list[Asset]] = {}
    for a in assets.values():
        by_module.setdefault(a.fn.module.name, []).append(a)
    for module in project.modules.values():
        for var, value in module.constants.items():
            if not isinstance(value, cst.Call) or (module.qualify(value.func) or "") not in _DEFINITIONS:
                continue
            listed = keyword_arg(value, "assets")
            if listed is None:
                continue
            members = _members(listed, module, project, assets, by_module, diagnostics)
            unique = list({a.fn.qualname: a for a in members}.values())
            out.append((var, module, module.line(value), unique))
    return out


def _members(expr: cst.BaseExpression, module: ModuleIndex, project: Project, assets: dict[str, Asset],
             by_module: dict[str, list[Asset]], diagnostics: list[Diagnostic], depth: int = 0) -> list[Asset]:
    """The assets an `assets=` expression stands for: a literal list (starred parts included), a module
    variable holding one (`all_assets = load_assets_from_modules([a, b])`), a loader call, an asset."""
    if depth > 6:
        return []
    if isinstance(expr, cst.List | cst.Tuple):
        out: list[Asset] = []
        for el in expr.elements:
            out += _members(el.value, module, project, assets, by_module, diagnostics, depth + 1)
        return out
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):  # [*a] + b
        return (_members(expr.left, module, project, assets, by_module, diagnostics, depth + 1)
                + _members(expr.right, module, project, assets, by_module, diagnostics, depth + 1))
    qualified = (module.qualify(expr.func) or "") if isinstance(expr, cst.Call) else ""
    if isinstance(expr, cst.Call) and qualified in _FROM_MODULES:
        if qualified.endswith("current_module"):
            return list(by_module.get(module.name, []))
        package = qualified.endswith("package_module")
        mods = keyword_arg(expr, "package_module" if package else "modules")
        if mods is None and expr.args and expr.args[0].keyword is None:
            mods = expr.args[0].value
        out = []
        listed = [mods] if package and mods is not None else (
            [e.value for e in mods.elements] if isinstance(mods, cst.List | cst.Tuple) else [])
        for value in listed:
            target = project.module_of(module.qualify(value) or "")
            if target is None:
                note_unresolved(diagnostics, module, module.line(value),
                                f"assets module {_code(value)} is not in the analysed code")
                continue
            for name, group in by_module.items():
                if name == target.name or (package and name.startswith(target.name + ".")):
                    out += group
        if mods is not None and not package and not isinstance(mods, cst.List | cst.Tuple):
            note_unresolved(diagnostics, module, module.line(mods),
                            f"assets modules {_code(mods)} are not a literal list")
        return out
    fn = project.function(module.qualify(expr))
    if fn is not None and fn.qualname in assets:
        return [assets[fn.qualname]]
    if isinstance(expr, cst.Name) and expr.value in module.constants:
        return _members(module.constants[expr.value], module, project, assets, by_module, diagnostics, depth + 1)
    note_unresolved(diagnostics, module, module.line(expr),
                    f"Definitions asset {_code(expr)} can't be resolved statically")
    return []


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """One pipeline per `@job`/`@graph`, per `Definitions(assets=...)`, and per module of remaining assets."""
    project = builder.ctx.project
    diagnostics = builder.diagnostics
    ops = {q: fn for q, fn in project.functions.items() if not fn.is_method and decorated_with(fn, DAGSTER_OPS)}
    bodies = {q: fn for q, fn in project.functions.items()
              if not fn.is_method and decorated_with(fn, DAGSTER_BODIES)}
    graphs = {q: fn for q, fn in bodies.items() if decorated_with(fn, {"dagster.graph"})}
    found: list[PipelineFacts] = []
    for fn in bodies.values():
        body = fn.node.body.body if isinstance(fn.node.body, cst.IndentedBlock) else []
        driver = DagsterDriver(builder, fn.module, fn, body, ops, graphs)
        driver.run()
        facts = driver.facts("dagster")
        if facts is not None:
            found.append(facts)
    assets = collect_assets(project, diagnostics)
    covered: set[str] = set()
    for name, module, line, members in _definitions(project, assets, diagnostics):
        covered |= {a.fn.qualname for a in members}
        facts = _asset_pipeline(builder, name, module, line, members)
        if facts is not None:
            found.append(facts)
    rest = sorted((a for q, a in assets.items() if q not in covered), key=lambda a: (a.fn.module.name, a.fn.line))
    for module_name, group in itertools.groupby(rest, key=lambda a: a.fn.module.name):
        members = list(group)
        module = project.modules[module_name]
        facts = _asset_pipeline(builder, "assets", module, members[0].fn.line, members)
        if facts is not None:
            found.append(facts)
    return found
