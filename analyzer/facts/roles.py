"""Stage roles (extract, validate, dedup, transform, enrich, aggregate, load, notify).

Evidence, weakest first: the stage's name (`rules/roles.toml` name patterns), the calls and SQL
in its body (catalog data), and code shapes data can't describe: a `seen`-set filter loop, a dict
keyed by id or `groupby(...).first()` is dedup; rows dropped by a validity predicate (a null test,
a pattern match, `dropna`), records skipped or rejected on such a test, raising inside a loop over
records, splitting records into good and bad lists, or constructing a pydantic model is validate.
Each role comes with a `RoleEvidence` saying why ("drops rows where `customer_id` is null"), which
checks such as dedup-before-validation show in their findings; analysed code is never imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

import libcst as cst

from ..catalog import RoleModel
from ..model import RoleEvidence
from .index import FunctionRef, Project, dotted
from .tree import children as _children
from .tree import strings as _strings

_PYDANTIC_BASES = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel", "pydantic.RootModel"})


def stage_roles(name: str, fn: FunctionRef | None, project: Project, roles: tuple[RoleModel, ...]) -> tuple[str, ...]:
    """Roles from the name and, more reliably, the body; in catalog order."""
    return roles_of(role_evidence(name, fn, project, roles), roles)


def roles_of(evidence: tuple[RoleEvidence, ...], roles: tuple[RoleModel, ...]) -> tuple[str, ...]:
    found = {e.role for e in evidence}
    ordered = list(dict.fromkeys(model.role for model in roles))
    return tuple(r for r in ordered if r in found) + tuple(sorted(found - set(ordered)))


def role_evidence(
    name: str, fn: FunctionRef | None, project: Project, roles: tuple[RoleModel, ...]
) -> tuple[RoleEvidence, ...]:
    """Why the stage has each role: body evidence first (one per role), then name matches."""
    body = _body_roles(fn, project, roles) if fn is not None else {}
    named: list[RoleEvidence] = []
    lowered = name.lower()
    for model in roles:
        pattern = next((p for p in model.name_patterns if fnmatchcase(lowered, p.lower())), None)
        if pattern is not None and all(e.role != model.role for e in named):
            named.append(RoleEvidence(model.role, "name", "its name matches ", pattern))
    return (*body.values(), *named)


def _body_roles(fn: FunctionRef, project: Project, roles: tuple[RoleModel, ...]) -> dict[str, RoleEvidence]:
    found: dict[str, RoleEvidence] = {}

    def note(role: str, before: str, code: str = "", after: str = "") -> None:
        found.setdefault(role, RoleEvidence(role, "body", before, code, after))

    # shapes first: they say the most about what the stage does to records
    for role, shape in (*_dedup_shapes(fn.node), *_validate_shapes(fn, project)):
        note(role, *shape)
    calls = list(_calls(fn))
    texts = [" ".join(t.upper().split()) for t in _strings(fn.node)]
    for model in roles:
        hit = next((node for qualified, node in calls for pattern in model.calls
                    if fnmatchcase(qualified, pattern)), None)
        if hit is not None:
            note(model.role, "calls ", _code(hit))
        fragments = [" ".join(f.upper().split()) for f in model.sql]
        fragment = next((f for f in fragments for text in texts if f in text), None)
        if fragment is not None:
            note(model.role, "runs SQL with ", fragment)
    return found


# ---------------------------------------------------------------- helpers

def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(_children(current)))


def _calls(fn: FunctionRef) -> Iterator[tuple[str, cst.Call]]:
    """Qualified names of the calls in the body; `?.method` when the receiver is not a name."""
    for node in _walk(fn.node.body):
        if not isinstance(node, cst.Call):
            continue
        name = fn.module.qualify(node.func)
        if name is not None:
            yield name, node
        elif isinstance(node.func, cst.Attribute):
            yield f"?.{node.func.attr.value}", node


def _code(node: cst.CSTNode, limit: int = 70) -> str:
    text = " ".join(cst.Module([]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


Shape = tuple[str, str, str]  # (before, code, after) of a RoleEvidence


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

_FIRST_PER_GROUP = frozenset({"first", "last", "head", "nth", "tail"})


def _dedup_shapes(fn_node: cst.FunctionDef) -> Iterator[tuple[str, Shape]]:
    seen = _seen_set_filter(fn_node)
    if seen is not None:
        yield "dedup", ("keeps the first record per key in the set ", seen, "")
    if _keyed_by_record(fn_node):
        yield "dedup", ("keeps one record per key in a dict keyed by the record", "", "")
    for node in _walk(fn_node.body):
        if (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
                and node.func.attr.value in _FIRST_PER_GROUP and _grouped(node.func.value)
                and (node.func.attr.value in {"first", "last"} or _is_one(node))):
            yield "dedup", ("keeps one row per group: ", _code(node), "")
            return


def _grouped(expr: cst.BaseExpression) -> bool:
    """`x.groupby(...)` (or `groupBy`/`group_by`), possibly sorted first."""
    return (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value in {"groupby", "groupBy", "group_by"})


def _is_one(call: cst.Call) -> bool:
    args = [a for a in call.args if a.keyword is None]
    return len(args) == 1 and isinstance(args[0].value, cst.Integer) and args[0].value.value in {"0", "1"}

def _seen_set_filter(fn_node: cst.FunctionDef) -> str | None:
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
            return min(tested & added)
    return None


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

_NULL_TESTS = frozenset({"notna", "notnull", "isna", "isnull"})
_PATTERN_TESTS = frozenset({"match", "fullmatch", "contains"})
_RE_CALLS = frozenset({"re.match", "re.fullmatch", "re.search"})


def _validate_shapes(fn: FunctionRef, project: Project) -> Iterator[tuple[str, Shape]]:
    for shape in (*_row_filters(fn.node), *_record_filters(fn)):
        yield "validate", shape
    if _raises_per_record(fn):
        yield "validate", ("raises on a bad record inside a loop over records", "", "")
    if _partitions_records(fn.node):
        yield "validate", ("splits records into good and bad lists", "", "")
    if _builds_pydantic_model(fn, project):
        yield "validate", ("builds a pydantic model from each record", "", "")


def _column(expr: cst.BaseExpression) -> str:
    """`df["customer_id"]` / `df.customer_id` -> customer_id; else the expression's code."""
    if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
        index = expr.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            value = index.value.evaluated_value
            return value if isinstance(value, str) else _code(expr)
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return _code(expr)


def _row_filters(fn_node: cst.FunctionDef) -> Iterator[Shape]:
    """Rows dropped by a validity predicate: `df[df.x.notna()]`, `df.loc[~df.x.str.match(p)]`, `dropna`."""
    assigned = {id(t.target) for n in _walk(fn_node.body) if isinstance(n, cst.Assign) for t in n.targets}
    for node in _walk(fn_node.body):
        if isinstance(node, cst.Subscript):
            # `df.loc[df.x.isnull(), "x"] = 0` fills values in: a transform, not a filter
            if len(node.slice) == 1 and id(node) not in assigned and isinstance(node.slice[0].slice, cst.Index):
                found = _mask_test(node.slice[0].slice.value)
                if found is not None:
                    yield found
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            if method == "dropna" and not _drops_columns(node):
                subset = next((a.value for a in node.args if a.keyword is not None and a.keyword.value == "subset"),
                              None)
                yield ("drops rows with missing ", _code(subset), "") if subset is not None else (
                    "drops rows with missing values: ", _code(node), "")
            elif method == "query" and any(t in s.lower() for s in _strings(node) for t in ("notna", "isnull",
                                                                                             "notnull", "isna")):
                yield "drops rows on a null test: ", _code(node), ""


def _drops_columns(call: cst.Call) -> bool:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "axis":
            return _code(arg.value).strip("'\"") in {"1", "columns"}
    return False


def _mask_test(expr: cst.BaseExpression) -> Shape | None:
    """The validity test in a boolean mask, if any: a null test or a pattern match on a column."""
    for node in _walk(expr):
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            continue
        method = node.func.attr.value
        if method in _NULL_TESTS:
            negated = any(isinstance(n, cst.UnaryOperation) and isinstance(n.operator, cst.BitInvert | cst.Not)
                          for n in _walk(expr))
            keeps_valid = method.startswith("not") != negated
            return ("drops rows where " if keeps_valid else "selects the rows where "), _column(node.func.value), \
                " is null"
        if method in _PATTERN_TESTS and isinstance(node.func.value, cst.Attribute) and _is_str(node.func.value):
            return "filters rows on a pattern: ", _code(node), ""
    return None


def _is_str(accessor: cst.Attribute) -> bool:
    return accessor.attr.value == "str"


def _record_filters(fn: FunctionRef) -> Iterator[Shape]:
    """Records skipped on a validity test: `if r.get("id") is None: continue`, `[r for r in rows if ok(r)]`."""
    for loop in _record_loops(fn.node):
        record = _loop_targets(loop.target)
        for node in _walk(loop.body):
            if (isinstance(node, cst.If) and _only_skips(node.body)
                    and _validity_test(node.test, record, fn)):
                yield "skips records where ", _code(node.test), ""
                return
    for node in _walk(fn.node.body):
        if isinstance(node, cst.ListComp | cst.GeneratorExp | cst.SetComp):
            record = _loop_targets(node.for_in.target)
            for test in node.for_in.ifs:
                if _validity_test(test.test, record, fn):
                    yield "keeps only records where ", _code(test.test), ""
                    return


def _only_skips(body: cst.BaseSuite) -> bool:
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    return len(statements) >= 1 and all(
        isinstance(s, cst.SimpleStatementLine | cst.SimpleStatementSuite)
        and all(isinstance(x, cst.Continue | cst.Expr) for x in s.body)
        for s in statements
    ) and any(isinstance(x, cst.Continue) for s in statements for x in _walk(s))


def _validity_test(test: cst.BaseExpression, record: set[str], fn: FunctionRef) -> bool:
    """A null test or a pattern match on a field of the record."""
    if not any(isinstance(n, cst.Name) and n.value in record for n in _walk(test)):
        return False
    for node in _walk(test):
        if isinstance(node, cst.Comparison) and any(
            isinstance(c.operator, cst.Is | cst.IsNot) and isinstance(c.comparator, cst.Name)
            and c.comparator.value == "None" for c in node.comparisons
        ):
            return True
        if isinstance(node, cst.Call) and (fn.module.qualify(node.func) or "") in _RE_CALLS | {"pandas.isna",
                                                                                                "pandas.isnull",
                                                                                                "pandas.notna"}:
            return True
    return False

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
