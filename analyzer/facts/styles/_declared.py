"""Helpers shared by the framework adapters: decorators, call arguments, literal strings, opaque stages.

Framework adapters read *declarations* (decorators, `>>`, `requires()`, dataset names) rather than
call order; these helpers keep that reading uniform. Nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from ...model import Diagnostic, Effect
from ..effects import Context, summarize
from ..index import FunctionRef, ModuleIndex
from ..stagefx import StageBuilder
from ..summaries import Total, map_access
from ..tree import walk as walk  # re-exported for the adapters
from ..values import Scope, evaluate

_CODE_MODULE = cst.Module(body=[])


def code(node: cst.CSTNode, limit: int = 80) -> str:
    """Source text of a node, shortened for messages."""
    text = " ".join(_CODE_MODULE.code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def body_of(node: cst.FunctionDef | cst.ClassDef | cst.With | cst.For | cst.If) -> list[cst.BaseStatement]:
    body = node.body
    return list(body.body) if isinstance(body, cst.IndentedBlock) else []


def kwarg(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def positional(call: cst.Call, index: int) -> cst.BaseExpression | None:
    args = [a.value for a in call.args if a.keyword is None and not a.star]
    return args[index] if index < len(args) else None


def argument(call: cst.Call, index: int, name: str) -> cst.BaseExpression | None:
    """An argument by keyword, else by position."""
    found = kwarg(call, name)
    return found if found is not None else positional(call, index)


def decorator_names(node: cst.FunctionDef | cst.ClassDef, module: ModuleIndex) -> list[str]:
    """Qualified names of a definition's decorators: `@task`, `@task()`, `@task.virtualenv(...)` all give a name."""
    names: list[str] = []
    for dec in node.decorators:
        expr = dec.decorator
        if isinstance(expr, cst.Call):
            expr = expr.func
        name = module.qualify(expr)
        if name:
            names.append(name)
    return names


def decorator_call(node: cst.FunctionDef, module: ModuleIndex, names: Iterable[str]) -> cst.Call | None:
    """The call form of a decorator whose name is in `names` (`@task(task_id="x")`), if any."""
    wanted = set(names)
    for dec in node.decorators:
        expr = dec.decorator
        if isinstance(expr, cst.Call) and (module.qualify(expr.func) or "") in wanted:
            return expr
    return None


def string_items(expr: cst.BaseExpression | None, scope: Scope) -> list[str] | None:
    """A string, or a list/tuple/set of strings, as a list (unknown parts `*`); None when nothing is known."""
    if expr is None:
        return None
    if isinstance(expr, cst.List | cst.Tuple | cst.Set):
        out: list[str] = []
        for el in expr.elements:
            if isinstance(el, cst.StarredElement):
                out.append("*")
                continue
            value = evaluate(el.value, scope)
            out.append(value if value is not None else "*")
        return out
    if isinstance(expr, cst.Name) and expr.value in scope.module.constants and expr.value not in scope.locals:
        return string_items(scope.module.constants[expr.value], scope)
    if isinstance(expr, cst.Name) and expr.value in scope.locals:
        return string_items(scope.locals[expr.value], scope)
    value = evaluate(expr, scope)
    return [value] if value is not None else None


def literal_values(expr: cst.BaseExpression, scope: Scope) -> list[cst.BaseExpression] | None:
    """Elements of a literal list/tuple (or a module constant holding one), for unrolling a loop; else None."""
    if isinstance(expr, cst.Name):
        if expr.value in scope.locals:
            return literal_values(scope.locals[expr.value], scope)
        if expr.value in scope.module.constants and expr.value not in scope.shadowed:
            return literal_values(scope.module.constants[expr.value], scope)
        return None
    if isinstance(expr, cst.List | cst.Tuple | cst.Set):
        if any(isinstance(el, cst.StarredElement) for el in expr.elements):
            return None
        return [el.value for el in expr.elements]
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in {
        "keys", "items"
    }:
        base = expr.func.value
        value = scope.locals.get(base.value) if isinstance(base, cst.Name) else None
        if value is None and isinstance(base, cst.Name) and base.value in scope.module.constants:
            value = scope.module.constants[base.value]
        if isinstance(value, cst.Dict):
            out: list[cst.BaseExpression] = []
            for el in value.elements:
                if not isinstance(el, cst.DictElement):
                    return None
                if expr.func.attr.value == "keys":
                    out.append(el.key)
                else:
                    out.append(cst.Tuple([cst.Element(el.key), cst.Element(el.value)]))
            return out
    return None


def opaque(reason: str, file: str, line: int) -> tuple[list[Effect], list[Effect]]:
    """Effects of a step stagegraph can't see into: it may read and write anything."""
    effect = Effect("unknown", reason, file, line, key=f"opaque:{file}:{line}", of="any")
    return [effect], [effect]


def unresolved(builder: StageBuilder, module: ModuleIndex, node: cst.CSTNode, message: str) -> None:
    builder.diagnostics.append(Diagnostic(module.relpath, "unresolved", message, module.line(node)))


def nested_function(builder: StageBuilder, module: ModuleIndex, node: cst.FunctionDef, owner: str) -> FunctionRef:
    """A function defined inside another one (a TaskFlow `@task` inside a `@dag`), summarised on demand.

    The project index holds only top-level functions and methods; nested ones get a direct summary
    plus their analysed callees' composed effects (one level of composition is enough: the callees'
    totals are already complete).
    """
    qualname = f"{owner}.<locals>.{node.name.value}"
    fn = FunctionRef(qualname, node.name.value, module, node)
    if qualname not in builder.totals:
        builder.totals[qualname] = compose_one(fn, builder.ctx, builder.totals)
    return fn


def compose_one(fn: FunctionRef, ctx: Context, totals: dict[str, Total]) -> Total:
    direct = summarize(fn, ctx)
    total = Total(set(direct.accesses), set(direct.resources), set(), set())
    for site in direct.calls:
        callee = totals.get(site.callee)
        if callee is None:
            continue
        total.callees.add(site.callee)
        total.callees |= callee.callees
        for access in callee.accesses:
            total.accesses.update(map_access(access, site))
        total.resources |= callee.resources
        total.signals |= callee.signals
    return total


def returns_value(fn: cst.FunctionDef) -> bool:
    """Whether a function returns something other than None (nested definitions are not its returns)."""
    for node in walk(fn.body, skip_defs=True):
        if isinstance(node, cst.Return) and node.value is not None and not (
            isinstance(node.value, cst.Name) and node.value.value == "None"
        ):
            return True
        if isinstance(node, cst.Yield):
            return True
    return False
