"""Stage roles (extract, validate, dedup, transform, enrich, aggregate, load, notify).

Evidence, weakest first: the stage's name (`rules/roles.toml` name patterns), the calls and SQL
in its body (catalog data), and code shapes data can't describe: a `seen`-set filter loop or a
dict keyed by id is dedup; raising inside a loop over records, splitting records into good and
bad lists, or constructing a pydantic model is validate. Checks such as
dedup-before-validation read the result; analysed code is never imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

import libcst as cst

from ..catalog import RoleModel
from .index import FunctionRef, Project, dotted
from .tree import children as _children
from .tree import strings as _strings

_PYDANTIC_BASES = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel", "pydantic.RootModel"})


def stage_roles(name: str, fn: FunctionRef | None, project: Project, roles: tuple[RoleModel, ...]) -> tuple[str, ...]:
    """Roles from the name and, more reliably, the body; in catalog order."""
    found: set[str] = set()
    lowered = name.lower()
    for model in roles:
        if any(fnmatchcase(lowered, pattern.lower()) for pattern in model.name_patterns):
            found.add(model.role)
    if fn is not None:
        found |= _body_roles(fn, project, roles)
    ordered = list(dict.fromkeys(model.role for model in roles))
    return tuple(r for r in ordered if r in found) + tuple(sorted(found - set(ordered)))


def _body_roles(fn: FunctionRef, project: Project, roles: tuple[RoleModel, ...]) -> set[str]:
    calls = set(_call_names(fn))
    texts = [" ".join(t.upper().split()) for t in _strings(fn.node)]
    found: set[str] = set()
    for model in roles:
        if any(fnmatchcase(call, pattern) for call in calls for pattern in model.calls):
            found.add(model.role)
        fragments = [" ".join(f.upper().split()) for f in model.sql]
        if any(fragment in text for fragment in fragments for text in texts):
            found.add(model.role)
    if _seen_set_filter(fn.node) or _keyed_by_record(fn.node):
        found.add("dedup")
    if _raises_per_record(fn) or _partitions_records(fn.node) or _builds_pydantic_model(fn, project):
        found.add("validate")
    return found


# ---------------------------------------------------------------- helpers

def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(_children(current)))


def _call_names(fn: FunctionRef) -> Iterator[str]:
    """Qualified names of the calls in the body; `?.method` when the receiver is not a name."""
    for node in _walk(fn.node.body):
        if not isinstance(node, cst.Call):
            continue
        name = fn.module.qualify(node.func)
        if name is not None:
            yield name
        elif isinstance(node.func, cst.Attribute):
            yield f"?.{node.func.attr.value}"


def _loop_targets(node: cst.CSTNode) -> set[str]:
    names: set[str] = set()
    if isinstance(node, cst.Name):
        names.add(node.value)
    elif isinstance(node, cst.Tuple | cst.List):
        for element in node.elements:
            names |= _loop_targets(element.value)
    return names


def _record_loops(fn_node: cst.FunctionDef) -> Iterator[cst.For]:
    """`for` loops over something other than `range(...)`: loops over records."""
    for node in _walk(fn_node.body):
        if isinstance(node, cst.For) and not (
            isinstance(node.iter, cst.Call) and dotted(node.iter.func) == "range"
        ):
            yield node


# ---------------------------------------------------------------- dedup shapes

def _seen_set_filter(fn_node: cst.FunctionDef) -> bool:
    """`if key not in seen: seen.add(key)` (or `seen[key] = ...`) inside a loop."""
    for loop in _record_loops(fn_node):
        tested: set[str] = set()
        added: set[str] = set()
        for node in _walk(loop.body):
            if isinstance(node, cst.Comparison):
                for target in node.comparisons:
                    if isinstance(target.operator, cst.In | cst.NotIn) and isinstance(target.comparator, cst.Name):
                        tested.add(target.comparator.value)
            elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "add":
                receiver = dotted(node.func.value)
                if receiver:
                    added.add(receiver)
            elif isinstance(node, cst.AssignTarget) and isinstance(node.target, cst.Subscript):
                receiver = dotted(node.target.value)
                if receiver:
                    added.add(receiver)
        if tested & added:
            return True
    return False


def _keyed_by_record(fn_node: cst.FunctionDef) -> bool:
    """`{r["id"]: r for r in rows}` or `latest[r["id"]] = r` in a loop: one record kept per key."""
    for node in _walk(fn_node.body):
        if (
            isinstance(node, cst.DictComp)
            and isinstance(node.value, cst.Name)
            and node.value.value in _loop_targets(node.for_in.target)
            and isinstance(node.key, cst.Subscript | cst.Attribute)
        ):
            return True
    for loop in _record_loops(fn_node):
        element = _loop_targets(loop.target)
        for node in _walk(loop.body):
            if (
                isinstance(node, cst.Assign)
                and isinstance(node.value, cst.Name)
                and node.value.value in element
                and any(isinstance(t.target, cst.Subscript) and _subscript_reads(t.target, element)
                        for t in node.targets)
            ):
                return True
    return False


def _subscript_reads(target: cst.Subscript, names: set[str]) -> bool:
    """The subscript's key is taken from the record (`latest[r["id"]]`), not a fixed slot."""
    return any(isinstance(n, cst.Name) and n.value in names for e in target.slice for n in _walk(e))


# ---------------------------------------------------------------- validate shapes

def _raises_per_record(fn: FunctionRef) -> bool:
    """`if <condition on the record>: raise ...` (or `assert`) inside a loop over records."""
    for loop in _record_loops(fn.node):
        for node in _walk(loop.body):
            if isinstance(node, cst.If) and any(isinstance(n, cst.Raise) for n in _walk(node.body)):
                return True
            if isinstance(node, cst.Assert):
                return True
    return False


def _partitions_records(fn_node: cst.FunctionDef) -> bool:
    """Records split into two lists on a condition: `(good if ok else bad).append(r)` or if/else appends."""
    for loop in _record_loops(fn_node):
        for node in _walk(loop.body):
            if (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and node.func.attr.value == "append"
                and isinstance(node.func.value, cst.IfExp)
                and isinstance(node.func.value.body, cst.Name)
                and isinstance(node.func.value.orelse, cst.Name)
            ):
                return True
            if isinstance(node, cst.If) and isinstance(node.orelse, cst.Else):
                kept, dropped = _appended_to(node.body), _appended_to(node.orelse.body)
                if kept and dropped and not (kept & dropped):
                    return True
    return False


def _appended_to(suite: cst.BaseSuite) -> set[str]:
    names: set[str] = set()
    for node in _walk(suite):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "append":
            receiver = dotted(node.func.value)
            if receiver:
                names.add(receiver)
    return names


def _builds_pydantic_model(fn: FunctionRef, project: Project) -> bool:
    """Constructing a pydantic model from data validates it (`Order(**row)`)."""
    for node in _walk(fn.node.body):
        if not isinstance(node, cst.Call):
            continue
        klass = project.klass(fn.module.qualify(node.func))
        if klass is None:
            continue
        bases = set(klass.bases)
        for base in klass.bases:  # one level of analysed intermediate bases
            parent = project.klass(base)
            if parent is not None:
                bases |= set(parent.bases)
        if bases & _PYDANTIC_BASES:
            return True
    return False
