"""What one function reads and writes, seen directly in its body (callees are composed later).

Memory is tracked by *place*: a parameter's object, an attribute of `self`, a module global.
Local names are followed as may-aliases (`batch = self.invoices; batch.extend(rows)` writes
`self.invoices`; `for inv in self.invoices: inv["amount"] = ...` writes it too: field-insensitive,
which is the conservative choice). Files, tables, cache keys and URLs come from the resource
catalog plus static evaluation of their names; what can't be resolved is an `unknown` access,
never a silent omission.
"""

from __future__ import annotations

import builtins
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import libcst as cst

from ..catalog import CallModel, Factory, OpaqueLibrary, ResourceCatalog
from ..model import Resource
from . import sql as sqlmod
from .index import ClassRef, FunctionRef, ModuleIndex, Project, dotted
from .signals import is_log_call
from .tree import children as _children
from .values import (
    SA_STATEMENT_CALLS,
    SQL_COMPOSERS,
    WILD,
    Scope,
    evaluate,
    finish,
    function_returns,
    is_orm_model,
    known,
    local_assignments,
    model_table,
    module_constant,
    orm_table,
    references,
    same_value,
    subscript_value,
    templated,
)

Place = tuple[str, str]  # ("param", name) | ("self", attr) | ("global", qualified name)
SELF: Place = ("self", "")

#: Methods that mutate their receiver (lists, dicts, sets, deques, DataFrames in place).
MUTATORS = frozenset(
    {
        "append", "extend", "insert", "remove", "pop", "popitem", "clear", "sort", "reverse", "update", "add",
        "discard", "setdefault", "appendleft", "extendleft", "popleft", "rotate", "difference_update",
        "intersection_update", "symmetric_difference_update", "__setitem__", "__delitem__", "put", "put_nowait",
        "write", "writelines", "writerow", "writerows", "truncate", "fillna_", "set_index_", "drop_", "rename_",
    }
)
#: Methods that only read their receiver (str, dict, list, pandas accessors...).
PURE = frozenset(
    {
        "get", "keys", "values", "items", "copy", "count", "index", "startswith", "endswith", "split", "rsplit",
        "join", "strip", "lstrip", "rstrip", "lower", "upper", "format", "replace", "encode", "decode", "find",
        "isdigit", "isoformat", "strftime", "date", "timestamp", "total_seconds", "__len__", "__contains__",
        "__iter__", "__getitem__", "issubset", "issuperset", "union", "intersection", "difference", "head", "tail",
        "groupby", "merge", "join_", "sum", "mean", "max", "min", "agg", "apply", "map", "filter", "query", "loc",
        "iloc", "to_dict", "to_list", "tolist", "dropna", "drop_duplicates", "sort_values", "astype", "assign",
        "rename", "reset_index", "set_index", "fillna", "drop", "pivot", "pivot_table", "melt", "describe",
        "unique", "nunique", "value_counts", "corr", "diff", "cumsum", "shift", "rolling", "resample", "isin",
        "isna", "notna", "any", "all", "round", "abs", "clip", "where", "mask", "select", "with_columns",
        "collect", "read", "readline", "readlines", "fetchall", "fetchone", "json", "raise_for_status",
    }
)
_BUILTIN_NAMES = frozenset(dir(builtins))
#: calls whose result holds (or yields) the very elements of their arguments (field-insensitive aliasing)
_SAME_ELEMENTS = frozenset({
    "enumerate", "reversed", "iter", "zip", "sorted", "list", "tuple", "filter", "set", "frozenset",
    "copy.copy", "itertools.chain", "itertools.islice", "itertools.chain.from_iterable", "itertools.compress",
    "itertools.dropwhile", "itertools.takewhile", "next",
})
_SIMPLE_LITERALS = (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString, cst.Integer, cst.Float)


class Site:
    """Where something happened; the line is looked up only if a report needs it.

    Part of an access's identity: if equal accesses at two sites collapsed into one, which site
    survived would depend on hash-seeded set order, and so would the report.
    """

    __slots__ = ("module", "node")

    def __init__(self, module: ModuleIndex, node: cst.CSTNode) -> None:
        self.module = module
        self.node = node

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Site) and other.node is self.node and other.module is self.module

    def __hash__(self) -> int:
        return id(self.node)

    @property
    def file(self) -> str:
        return self.module.relpath

    @property
    def line(self) -> int:
        return self.module.line(self.node)


@dataclass(frozen=True, slots=True)
class Access:
    """One raw read or write, before it is mapped onto a stage."""

    write: bool
    kind: str  # attribute | container | global | file | table | key | xcom | queue | unknown
    place: Place | None
    target: str
    site: Site = field(repr=False)
    of: str = ""
    assumed: bool = False
    #: identity of the external object the effect is on (`res:pymongo.MongoClient/shop/orders`), when known
    key: str = ""
    #: where the effect comes from: "code" (seen directly), "model" (a catalog entry), "fallback" (open world)
    origin: str = "code"
    #: for the open-world stand-in of a method called on a parameter (`s3.list_files()` with `s3` a
    #: parameter), the method's name: a caller that knows the argument's class replaces it with the
    #: method's own effects (see `summaries.expand_virtual`)
    via: str = ""

    @property
    def file(self) -> str:
        return self.site.file

    @property
    def line(self) -> int:
        return self.site.line

    def moved(self, place: Place | None, target: str, kind: str | None = None) -> Access:
        return Access(self.write, kind or self.kind, place, target, self.site, self.of, self.assumed, self.key,
                      self.origin, self.via)


@dataclass(frozen=True, slots=True)
class ResourceUse:
    """A resource touched at a site; becomes a model `Resource` (with its line) only inside a stage."""

    kind: str
    name: str
    call: str
    thread_safe: bool
    capacity_limited: bool
    site: Site = field(repr=False)

    def resource(self) -> Resource:
        return Resource(self.kind, self.name, self.call, self.site.file, self.site.line,  # type: ignore[arg-type]
                        self.thread_safe, self.capacity_limited)


@dataclass(frozen=True, slots=True)
class Handle:
    """A value known to be a handle on a shared resource."""

    type: str
    kind: str
    name: str
    thread_safe: bool
    capacity_limited: bool
    call: str
    #: the object-store URL this sub-object stands for (`s3://raw/2024/a.csv`, `s3://raw/`), when modelled:
    #: effects on it are file effects there, so they meet the same object reached any other way
    location: str = ""
    #: the name of the handle a sub-object was reached from (`client` for `client/shop/orders`): the object
    #: that branches would actually share
    root: str = ""
    #: made afresh by each call of a project factory (`def get_session(): return sessionmaker(...)`):
    #: branches calling it never share the object, whatever its type's thread safety
    fresh: bool = False
    #: the table an ORM model's manager stands for (`Order.query`, `Order.objects`): `table:self` effects
    table: str = ""


@dataclass(frozen=True, slots=True)
class CallSite:
    """A call from one analysed function to another, with how arguments map onto parameters."""

    callee: str
    args: tuple[tuple[str, frozenset[Place]], ...]
    receiver: frozenset[Place] | None
    line: int
    handles: tuple[Handle, ...] = ()
    #: arguments that are handles, by the callee parameter they bind (an unmodelled call through that
    #: parameter inside the callee is an unknown effect on the handle's resource)
    handle_params: tuple[tuple[str, Handle], ...] = ()
    #: statically known argument values per parameter (may hold the caller's own parameter markers)
    values: tuple[tuple[str, str | None], ...] = ()
    #: arguments that are objects of an analysed class, by the callee parameter they bind (qualname)
    classes: tuple[tuple[str, str], ...] = ()
    #: a virtual call (`callee` empty): `(param, method)`, the method called on the function's own
    #: parameter; `args`/`values` are keyed by the method's keyword names, or `#N` for the Nth positional
    via: tuple[str, str] | None = None


@dataclass(slots=True)
class Summary:
    fn: FunctionRef
    accesses: set[Access] = field(default_factory=set)
    calls: list[CallSite] = field(default_factory=list)
    resources: set[ResourceUse] = field(default_factory=set)
    #: the function's local names bound to handles (a driver's `conn = psycopg2.connect(...)`)
    handles: dict[str, Handle] = field(default_factory=dict)


# ---------------------------------------------------------------- shared context


@dataclass(slots=True)
class Context:
    """Project-wide knowledge the summariser needs: catalog, module and class handles, mutable globals."""

    project: Project
    catalog: ResourceCatalog
    module_handles: dict[str, dict[str, Handle]] = field(default_factory=dict)
    class_handles: dict[str, dict[str, Handle]] = field(default_factory=dict)
    class_collaborators: dict[str, set[str]] = field(default_factory=dict)
    class_instances: dict[str, dict[str, ClassRef]] = field(default_factory=dict)
    #: the analysed class each analysed function returns an instance of (None: not one class)
    returned_classes: dict[str, ClassRef | None] = field(default_factory=dict)

    def returned_class(self, fn: FunctionRef) -> ClassRef | None:
        """The analysed class every `return` of `fn` gives an instance of: `return Loader(cfg)`, a local
        bound once to one, `cls(...)` in a classmethod, `self` in a method. A factory's result is then
        an object whose methods resolve (`make_loader().load(rows)` writes what `Loader.load` writes)."""
        if fn.qualname in self.returned_classes:
            return self.returned_classes[fn.qualname]
        self.returned_classes[fn.qualname] = None  # recursion through factories settles on "unknown"
        owner = self.project.classes.get(fn.qualname.rsplit(".", 1)[0]) if fn.class_name else None
        shape = function_returns(fn, _NESTED_SCOPES)
        if shape is None or not shape[0]:
            return None
        returns, single, counts = shape
        klasses: dict[str, ClassRef] = {}
        for ret in returns:
            value = ret.value
            if isinstance(value, cst.Name) and value.value in single and counts[value.value] == 1:
                value = single[value.value]
            klass: ClassRef | None = None
            if isinstance(value, cst.Call):
                func = value.func
                if isinstance(func, cst.Name) and func.value == "cls":
                    klass = owner
                else:
                    klass = self.project.klass(fn.module.qualify(func))
                    callee = None if klass is not None else self.project.function(fn.module.qualify(func))
                    if callee is not None and callee is not fn:
                        klass = self.returned_class(callee)
            elif isinstance(value, cst.Name) and value.value == "self":
                klass = owner
            if klass is None:
                return None
            klasses[klass.qualname] = klass
        result = next(iter(klasses.values())) if len(klasses) == 1 else None
        self.returned_classes[fn.qualname] = result
        return result

    def handles_of_module(self, module: ModuleIndex) -> dict[str, Handle]:
        if module.name not in self.module_handles:
            found: dict[str, Handle] = {}
            self.module_handles[module.name] = found  # re-entrant lookups see the partial table, not a loop
            for name, value in module.constants.items():
                handle = self.handle_from(value, module, name, {}, Scope(module, self.project))
                if handle is not None:
                    found[name] = handle
            self.module_handles[module.name] = found
        return self.module_handles[module.name]

    def handles_of_class(self, klass: ClassRef) -> dict[str, Handle]:
        if klass.qualname not in self.class_handles:
            found: dict[str, Handle] = {}
            collaborators: set[str] = set()
            instances: dict[str, ClassRef] = {}
            self.class_handles[klass.qualname] = found
            self.class_collaborators[klass.qualname] = collaborators
            self.class_instances[klass.qualname] = instances
            module_handles = self.handles_of_module(klass.module)
            for method in klass.methods.values():
                params = set(method.params)
                for node in _walk(method.node.body):
                    if not isinstance(node, cst.Assign):
                        continue
                    for target in node.targets:
                        attr = _self_attr(target.target)
                        if attr is None:
                            continue
                        handle = self.handle_from(node.value, klass.module, f"self.{attr}", module_handles,
                                                  Scope(klass.module, self.project))
                        other = (self.project.klass(klass.module.qualify(node.value.func))
                                 if isinstance(node.value, cst.Call) else None)
                        if other is not None:
                            instances[attr] = other
                        if handle is not None:
                            found[attr] = handle
                        elif _is_collaborator(node.value, params, klass.module, self.project):
                            collaborators.add(attr)
            self.class_handles[klass.qualname] = found
            self.class_collaborators[klass.qualname] = collaborators
        return self.class_handles[klass.qualname]

    def handle_from(
        self,
        value: cst.BaseExpression,
        module: ModuleIndex,
        bound_name: str,
        handles: dict[str, Handle],
        scope: Scope,
    ) -> Handle | None:
        """The handle an expression evaluates to: a factory call, or a handle method that returns one."""
        if isinstance(value, cst.Await):
            value = value.expression
        if not isinstance(value, cst.Call):
            if isinstance(value, cst.Name) and value.value in handles:
                return handles[value.value]
            return None
        qualified = module.qualify(value.func) or ""
        factory = self.catalog.factories.get(qualified)
        if factory is not None:
            return _made_by(factory, value, bound_name, scope)
        if isinstance(value.func, cst.Call | cst.Name):
            # calling a handle makes one of its kind, afresh: `Session()` with `Session = sessionmaker(e)`,
            # `sessionmaker(engine)()`
            maker = self.handle_of_expr(value.func, module, handles, scope=scope)
            if maker is not None:
                return replace(maker, fresh=True)
        if isinstance(value.func, cst.Attribute):
            base = self.handle_of_expr(value.func.value, module, handles, scope=scope)
            if base is not None:
                return self.method_result(base, value, scope)
        fn = self.project.function(qualified) if qualified else None
        if fn is not None:
            return self.returned_handle(fn)
        klass = self.project.klass(qualified) if qualified else None
        if klass is not None:
            return self.subclass_handle(klass, value, bound_name, scope)
        if qualified in self.catalog.calls:
            return None  # a modelled call's result is data (a response, a frame), its effect already recorded
        return self.opaque_handle(qualified, value.func, module, value, scope)

    def method_result(self, base: Handle, call: cst.Call, scope: Scope) -> Handle:
        """What a method called on a handle returns: a modelled type, else a sub-object of the same resource."""
        assert isinstance(call.func, cst.Attribute)
        method = call.func.attr.value
        part = _selector(call, scope) if _SELECTS.match(method) else None
        model = self.catalog.methods_of(base.type, method)
        if model is None:  # a model for any receiver (`spark.read.parquet(p)`), as method_call finds it
            model = self.catalog.any_method(method, receiver_chain(call.func.value))
        if model is not None and model.returns:
            _, safe, _ = self.catalog.types.get(model.returns, (base.kind, base.thread_safe, base.capacity_limited))
            handle = derived(base, part, model.returns)
            shareable = base.thread_safe if model.checkout else base.thread_safe and safe
            location = locate(model.location, base, call, scope) if model.location else base.location
            return Handle(handle.type, base.kind, handle.name, shareable, base.capacity_limited,
                          f"{base.type}.{method}", location, handle.root, base.fresh, base.table)
        if method in _SQL_METHODS or (model is not None and model.effect):
            # what a modelled access returned (rows, a response): reading it is not another access
            return derived(base, None, f"{RESULT}{base.type}")
        return derived(base, part)

    def subclass_handle(self, klass: ClassRef, call: cst.Call, bound_name: str, scope: Scope) -> Handle | None:
        """An object of a project class that extends a library's handle class (`class AzureHook(PostgresHook)`):
        a handle of that library type, so the methods it inherits keep their models (`hook.run(sql)`) and
        the ones we can't see stay unknown effects on it. The project's own methods are still analysed."""
        for owner in self.project.lineage(klass):
            for base in owner.bases:
                if self.project.klass(base) is not None:
                    continue
                factory = self.catalog.factories.get(base)
                if factory is not None:
                    return _made_by(factory, call, bound_name, scope)
                library = self.catalog.library_of(base)
                if library is not None and not self.catalog.pure_call(base) and not _builtin(base):
                    return Handle(f"opaque:{base}", library.kind, bound_name or base, library.thread_safe,
                                  library.capacity_limited, base)
        return None

    def opaque_handle(self, qualified: str, func: cst.BaseExpression, module: ModuleIndex, call: cst.Call | None,
                      scope: Scope) -> Handle | None:
        """An object made by an imported library we don't model (open world): a handle of unknown type.

        Its identity is the constructor plus whatever configuration is literal (URL, host, database),
        so two clients built the same way are taken to reach the same system.
        """
        if not qualified or not self.external(func, qualified, module):
            return None
        library = self.catalog.library_of(qualified)
        if library is None or self.catalog.pure_call(qualified):
            return None
        config = _literal_config(call, scope) if call is not None else ""
        name = f"{qualified}({config})" if config else qualified
        return Handle(f"opaque:{qualified}", library.kind, name, library.thread_safe, library.capacity_limited,
                      qualified)

    def external(self, func: cst.BaseExpression, qualified: str, module: ModuleIndex) -> bool:
        """`func` names an imported module's object that no analysed module defines."""
        head = func
        while isinstance(head, cst.Attribute):
            head = head.value
        if not isinstance(head, cst.Name) or head.value not in module.imports:
            return False
        if self.project.klass(qualified) or self.project.function(qualified) is not None:
            return False
        if self.project.function(qualified.rsplit(".", 1)[0]) is not None:
            return False  # `load.s(day)`, `load.delay(day)`: a task's signature, or a call of it (resolve_callee)
        parts = qualified.split(".")
        for n in range(len(parts) - 1, 0, -1):
            owner = self.project.module_of(".".join(parts[:n]))
            if owner is None:
                continue
            # a method of an analysed module's literal (`CATS.items()`), of its object of an analysed
            # class (resolved as a call of that class's method) or of a value a pure library built:
            # no external effect of its own. Anything else reached through an
            # analysed module (`Model.query.filter_by()`, a client made by a call we can't follow) is
            # code we can't see: open world, an unknown effect
            value = owner.constants.get(parts[n]) if n < len(parts) - 1 else None
            if isinstance(value, _LITERALS):
                return False
            model = self.project.klass(".".join(parts[:n + 1])) if n < len(parts) - 2 else None
            if (model is not None and not parts[n + 1].startswith("__") and is_orm_model(model, self.project)
                    and self.catalog.methods_of(ORM_MODEL, parts[n + 1]) is None):
                return False  # `Publication.funders.any()`: a query expression built from a model's column
            return not (isinstance(value, cst.Call) and self.plain_value(value, owner))
        return True

    def plain_value(self, call: cst.Call, module: ModuleIndex, depth: int = 0) -> bool:
        """`call` builds a plain value, not a handle: an object of an analysed class, a value a pure library
        built (`funders = Table("funders", ...)`, `app = Flask(__name__)`), or what an analysed function
        returns when every `return` is such a call (`task_app = create_app()`). A standard-library object
        such as `queue.Queue()` is shared state: not proven plain."""
        made_by = module.qualify(call.func) or ""
        if not made_by or depth > 3:
            return False
        if self.project.klass(made_by) is not None:
            return True
        fn = self.project.function(made_by)
        if fn is not None:
            shape = function_returns(fn, _NESTED_SCOPES)
            if shape is None or not shape[0]:
                return False
            returns, single, _ = shape
            for ret in returns:
                value = ret.value
                if isinstance(value, cst.Name):
                    value = single.get(value.value)
                if not isinstance(value, cst.Call) or not self.plain_value(value, fn.module, depth + 1):
                    return False
            return True
        pure_library = made_by.split(".")[0] not in sys.stdlib_module_names and self.catalog.library_of(made_by) is None
        return self.catalog.pure_call(made_by) or pure_library

    def returned_handle(self, fn: FunctionRef) -> Handle | None:
        """The handle an analysed function returns (`def get_conn(): return psycopg2.connect(...)`)."""
        memo = fn.module.memo.setdefault("returned_handles", {})
        assert isinstance(memo, dict)
        if fn.qualname in memo:
            return memo[fn.qualname]  # type: ignore[no-any-return]
        memo[fn.qualname] = None  # recursion guard
        scope = Scope(fn.module, self.project)
        local: dict[str, Handle] = {}
        found: Handle | None = None
        made = False  # the returned handle is built by the call (not a module-level object handed out)
        for node in _walk(fn.node.body):
            if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                got = self.handle_from(node.value, fn.module, node.targets[0].target.value, local, scope)
                if got is not None:
                    local[node.targets[0].target.value] = got
            elif isinstance(node, cst.Return) and node.value is not None and found is None:
                found = self.handle_from(node.value, fn.module, f"{fn.qualname}()", local, scope)
                made = self.makes_handle(node.value, fn.module, local)
        if found is not None and (made or found.name in local):
            # made afresh by each call, unless the factory is memoised (`@cache def get_engine()`): then
            # callers running at once share the one object, else each has its own (capacity still shared)
            memoised = _decorated(fn, _MEMOISERS)
            found = Handle(found.type, found.kind, f"{fn.qualname}()", found.thread_safe, found.capacity_limited,
                           found.call, found.location, fresh=not memoised)
        memo[fn.qualname] = found
        return found

    def makes_handle(self, value: cst.BaseExpression, module: ModuleIndex, local: dict[str, Handle]) -> bool:
        """`value` builds a new handle (a factory's call, or a call of a session factory), rather than
        reaching one that exists (`crm.fetch_segment()` on a module-level client)."""
        if not isinstance(value, cst.Call):
            return False
        if (module.qualify(value.func) or "") in self.catalog.factories or isinstance(value.func, cst.Call):
            return True
        return isinstance(value.func, cst.Name) and self.handle_of_expr(value.func, module, local) is not None

    def handle_of_expr(self, expr: cst.BaseExpression, module: ModuleIndex, handles: dict[str, Handle],
                       klass: ClassRef | None = None, depth: int = 0, scope: Scope | None = None) -> Handle | None:
        if depth > 16:
            return None
        if isinstance(expr, cst.Name):
            if expr.value in handles:
                return handles[expr.value]
            return self.handles_of_module(module).get(expr.value) or self._imported_handle(expr.value, module)
        attr = _self_attr(expr)
        if attr is not None:
            return self.handles_of_class(klass).get(attr) if klass is not None else None
        scope = scope if scope is not None and scope.module is module else Scope(module, self.project)
        if isinstance(expr, cst.Call) and not isinstance(expr.func, cst.Attribute):
            return self.handle_from(expr, module, "", handles, scope)  # `S3Hook(conn_id).load_file(...)`
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            base = self.handle_of_expr(expr.func.value, module, handles, klass, depth + 1, scope)
            if base is not None:
                return self.method_result(base, expr, scope)
            # `db.connection_engine()`: a handle made by an analysed function (or a factory) in a module
            return self.handle_from(expr, module, "", handles, scope) if isinstance(expr.func.value, cst.Name) else None
        if isinstance(expr, cst.Attribute | cst.Subscript):
            base = self.handle_of_expr(expr.value, module, handles, klass, depth + 1, scope)
            if base is None:
                if isinstance(expr, cst.Attribute):
                    manager = self.model_manager(expr, module)
                    if manager is not None:
                        return manager
                    if self.model_column(expr, module):
                        return None
                    # `SparkSession.builder`: an external class's attribute
                    return self.opaque_handle(module.qualify(expr) or "", expr, module, None, scope)
                return None
            return self.sub_object(base, expr, scope)
        return None

    def model_manager(self, expr: cst.Attribute, module: ModuleIndex) -> Handle | None:
        """`Order.query` (Flask-SQLAlchemy), `Order.objects` (Django): a manager of an analysed ORM model
        class, whose catalog type (`orm.Model` accessors) says which of its methods read or write the
        model's table."""
        model = self.catalog.methods_of(ORM_MODEL, expr.attr.value)
        if model is None or not model.returns or not isinstance(expr.value, cst.Name | cst.Attribute):
            return None
        klass = self.project.klass(module.qualify(expr.value))
        if klass is None or not is_orm_model(klass, self.project):
            return None
        table = model_table(klass, self.project)
        if not table:
            return None
        return Handle(model.returns, "database", f"{klass.name}.{expr.attr.value}", True, False,
                      f"{klass.qualname}.{expr.attr.value}", table=table)

    def model_column(self, expr: cst.Attribute, module: ModuleIndex) -> bool:
        """`Publication.title`, `Publication.funders`: a column or relationship of an analysed ORM model,
        from which queries are built (`.is_not(None)`, `.any()`, `.in_(...)`): a plain value, not a
        handle. Running the query is the effect (`session.execute(...)`)."""
        if expr.attr.value.startswith("__") or not isinstance(expr.value, cst.Name | cst.Attribute):
            return False
        klass = self.project.klass(module.qualify(expr.value))
        return klass is not None and is_orm_model(klass, self.project)

    def sub_object(self, base: Handle, expr: cst.Attribute | cst.Subscript, scope: Scope) -> Handle:
        """`client.shop`, `db["orders"]`: a modelled accessor's type, else an opaque level below `base`."""
        if isinstance(expr, cst.Attribute):
            part: str | None = expr.attr.value
            accessor = "__getattr__"
        else:
            part = subscript_value(expr, scope)
            accessor = "__getitem__"
        model = self.catalog.methods_of(base.type, accessor)
        if model is not None and model.returns:
            return derived(base, part, model.returns)
        if isinstance(expr, cst.Attribute):
            named = self.catalog.methods_of(base.type, expr.attr.value)
            if named is not None and named.returns and not named.effect:
                return derived(base, None, named.returns)  # a property (`db.session`): the object it gives
            if named is not None:
                return base  # a bound method, not a sub-object
        return derived(base, part)

    def _imported_handle(self, name: str, module: ModuleIndex) -> Handle | None:
        qualified = module.imports.get(name)
        if not qualified:
            return None
        owner, _, attr = qualified.rpartition(".")
        other = self.project.module_of(owner)
        if other is None:
            return None
        return self.handles_of_module(other).get(attr)


#: the effect namespace an unknown effect on a handle of this kind stands for
_HANDLE_SPACE = {"database": "table", "cloud": "file", "filesystem": "file", "queue": "queue",
                 "process": "any"}  # a shell command or a container can touch anything


#: databases that hold documents or graphs, not SQL tables: their effects never meet a SQL table's
_NON_SQL_SYSTEMS = frozenset({"pymongo", "motor", "mongoengine", "elasticsearch", "opensearchpy", "cassandra",
                              "neo4j", "py2neo", "redis", "aioredis"})


#: type prefix of a handle that stands for an object of the project's own classes (see plain.Driver)
INSTANCE = "instance:"


#: nodes that make a function's `return`s not all its own (or its result not one value)
_NESTED_SCOPES: frozenset[type[cst.CSTNode]] = frozenset({cst.FunctionDef, cst.Lambda, cst.Yield})

#: decorators that make a function return the same object on every call
_MEMOISERS = frozenset({"cache", "lru_cache", "functools.cache", "functools.lru_cache", "cached", "memoize"})

_CLASSMETHOD = frozenset({"classmethod"})


def _decorated(fn: FunctionRef, names: frozenset[str]) -> bool:
    """`fn` carries one of these decorators (`@cache`, `@lru_cache(maxsize=8)`, `@classmethod`)."""
    return any(dotted(d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator) in names
               for d in fn.node.decorators)


#: query engines that read and write files (local or object-store URLs) as readily as tables
_FILE_AND_TABLE_ENGINES = frozenset({"pyspark", "duckdb", "databricks", "deltalake", "pyiceberg"})


def handle_space(handle: Handle) -> str:
    """The effect namespace an unknown effect on `handle` stands for."""
    if handle.type.startswith(INSTANCE):
        return "any"  # our own class's method, not resolved: it may touch anything
    if _system(handle) in _NON_SQL_SYSTEMS:
        return "key"
    if _system(handle) in _FILE_AND_TABLE_ENGINES:
        return "any"  # `spark.read.csv(path)`, `duckdb.read_parquet(path)`: files as much as tables
    if handle.kind == "other":
        return "any"  # a library the catalog does not classify: it may reach any external system
    return _HANDLE_SPACE.get(handle.kind, "key")  # a cache or an HTTP API: its own keys


def _system(handle: Handle) -> str:
    return (handle.call or handle.type.removeprefix("opaque:")).split(".")[0]


def resource_key(handle: Handle) -> str:
    """The identity effects on a handle's resource carry: `res:SYSTEM|NAME/level/level`.

    SYSTEM is the library that made the handle (pymongo, psycopg2): handles of different systems never
    share data; NAME is the handle's own identity; `/` separates levels (database, collection, key).
    """
    return f"res:{_system(handle)}|{handle.name}"


def derived(base: Handle, part: str | None, type_name: str = "") -> Handle:
    """A sub-object of a handle (`client["shop"]`, `bucket.Object(key)`): same resource, one level down."""
    name = f"{base.name}/{part}" if part and known(part) and "/" not in part else base.name
    return Handle(type_name or f"opaque:{base.type}", base.kind, name, base.thread_safe, base.capacity_limited,
                  base.call, base.location, base.root or base.name, base.fresh, base.table)


_SLOT = re.compile(r"\{([^{}]*)\}")


def locate(template: str, base: Handle, call: cst.Call, scope: Scope) -> str:
    """A catalog `location` template filled in: `{self}` is the base's location, `{N:kw}` an argument."""
    def fill(m: re.Match[str]) -> str:
        spec = m.group(1)
        if spec == "self":
            return base.location or "s3://*/"
        expr = _object_part(call, spec)
        return evaluate(expr, scope) or WILD if expr is not None else WILD

    return _SLOT.sub(fill, template)


#: methods that pick a sub-object by name (`get_database("shop")`, `Bucket("raw")`, `collection("x")`)
_SELECTS = re.compile(r"^(?:[A-Z]\w*|get_(?:database|collection|bucket|table|blob|queue|container|index)\w*|"
                      r"bucket|blob|collection|database|table|container|index|queue)$")


def _selector(call: cst.Call, scope: Scope) -> str | None:
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    expr = positional[0] if positional else next(
        (a.value for a in call.args if a.keyword is not None and a.keyword.value in {"name", "Bucket", "bucket_name",
                                                                                      "TableName", "table_id"}), None)
    value = evaluate(expr, scope) if expr is not None else None
    return value if known(value) and not templated(value) and WILD not in (value or "") else None


def _literal_config(call: cst.Call, scope: Scope) -> str:
    """What can be read of an opaque constructor's configuration: its first argument or a URL/host/db keyword."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in {"url", "uri", "host", "dsn", "dbname", "database",
                                                              "bucket", "bucket_name", "conn_id", "endpoint_url"}:
            value = evaluate(arg.value, scope)
            if known(value) and not templated(value):
                return f"{arg.keyword.value}={value}"
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    if positional:
        value = evaluate(positional[0], scope)
        if known(value) and not templated(value) and WILD not in (value or ""):
            return str(value)
    return ""


#: type prefix of a handle that holds a statement's result rows (`conn.execute(q).fetchall()`)
RESULT = "result:"
#: the catalog type whose accessors are an ORM model class's managers (`query`, `objects`)
ORM_MODEL = "orm.Model"

#: method names that run SQL given as their first argument, whatever object they are called on
_SQL_METHODS = frozenset({"execute", "executemany", "executescript", "exec_driver_sql", "mogrify", "sql",
                          "run", "get_records", "get_first", "get_pandas_df", "read_sql", "query", "execute_string"})


#: ...and the ones that do so on any receiver (a cursor passed in, a session we could not trace)
_CURSOR_SQL = frozenset({"execute", "executemany", "executescript", "exec_driver_sql", "mogrify"})


#: methods of a task function that run it (Celery `delay`/`apply_async`/`apply`)
_RUNS_TASK = frozenset({"delay", "apply_async", "apply"})

#: literal values: their methods are the builtins' (a mutator's change is a write of the global itself)
_LITERALS = (cst.Dict, cst.List, cst.Set, cst.Tuple, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString,
             cst.Integer, cst.Float, cst.DictComp, cst.ListComp, cst.SetComp)


def _constructor(qualified: str) -> bool:
    """`SomeClient(...)`: making an object is not yet an effect (what is done with it is)."""
    last = qualified.rsplit(".", 1)[-1]
    return last[:1].isupper()


def _made_by(factory: Factory, call: cst.Call, bound_name: str, scope: Scope) -> Handle:
    """The handle a factory call makes (`psycopg2.connect(...)`, or a project subclass's constructor)."""
    return Handle(factory.type, factory.kind, _identity(factory, call, bound_name, scope), factory.thread_safe,
                  factory.capacity_limited, factory.call)


def _identity(factory: Factory, call: cst.Call, bound_name: str, scope: Scope) -> str:
    spec = factory.identity
    if spec.startswith(("arg:", "host:")):
        value = evaluate(argument(call, spec), scope)
        if known(value):
            assert value is not None
            return host_of(value) if spec.startswith("host:") else value
    return bound_name or factory.call  # `boto3.Session().resource("s3")`: the factory names it


def _is_collaborator(value: cst.BaseExpression, params: set[str], module: ModuleIndex, project: Project) -> bool:
    """A `self.x = ...` that holds a service object (a constructor argument or an unknown object), not data."""
    if isinstance(value, cst.Name):
        return value.value in params
    if isinstance(value, cst.BooleanOperation):
        return _is_collaborator(value.left, params, module, project)
    if isinstance(value, cst.Call):
        qualified = module.qualify(value.func) or ""
        return qualified not in _BUILTIN_NAMES and project.function(qualified) is None and not qualified.startswith(
            ("pandas.", "pd.", "collections.", "datetime.", "numpy.", "polars.")
        )
    return False


# ---------------------------------------------------------------- helpers over libcst


#: exceptions an existing directory raises (`os.makedirs` without exist_ok): a handler catching one
#: (or everything) makes the creation an "ensure it exists"
_EXISTS_ERRORS = frozenset({"OSError", "IOError", "EnvironmentError", "FileExistsError", "Exception",
                            "BaseException"})


def _tolerates_existing(handler: cst.ExceptHandler, module: ModuleIndex) -> bool:
    if handler.type is None:
        return True
    types = [e.value for e in handler.type.elements] if isinstance(handler.type, cst.Tuple) else [handler.type]
    return any((module.qualify(expr) or "").rsplit(".", 1)[-1] in _EXISTS_ERRORS for expr in types)


def _walk(node: cst.CSTNode | Sequence[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """Every node below `node`, depth first in source order."""
    stack: list[cst.CSTNode] = list(reversed(node)) if isinstance(node, Sequence) else [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(_children(current)))


def _self_attr(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
        return expr.attr.value
    return None


def argument(call: cst.Call, spec: str) -> cst.BaseExpression | None:
    """The argument a catalog spec like `file:0:path` names (positional index, then keyword)."""
    parts = spec.split(":")
    position = parts[1] if len(parts) > 1 else ""
    keyword = parts[2] if len(parts) > 2 else ""
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    for arg in call.args:
        if arg.keyword is not None and keyword and arg.keyword.value in keyword.split("|"):
            return arg.value
    if position.isdigit() and int(position) < len(positional):
        return positional[int(position)]
    return None


def receiver_chain(expr: cst.BaseExpression) -> tuple[str, ...]:
    """The attribute names a receiver is reached through, nearest first (`spark.read.option(..)` -> option, read)."""
    out: list[str] = []
    while len(out) < 32:
        if isinstance(expr, cst.Attribute):
            out.append(expr.attr.value)
            expr = expr.value
        elif isinstance(expr, cst.Call):
            expr = expr.func
        elif isinstance(expr, cst.Subscript):
            expr = expr.value
        else:
            break
    return tuple(out)


def _object_part(call: cst.Call, spec: str) -> cst.BaseExpression | None:
    """A bucket or key argument: `Bucket` (a keyword) or `2:bucket_name` (position, then keyword)."""
    return argument(call, f"x:{spec}") if ":" in spec else keyword(call, spec)


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def host_of(url: str) -> str:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = ""
    return netloc or url


def is_true(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


# ---------------------------------------------------------------- the summariser


class _Function:
    """Summarises one function body (two passes: may-alias of locals, then accesses)."""

    def __init__(self, fn: FunctionRef, ctx: Context, self_values: Mapping[str, str] | None = None) -> None:
        self.fn = fn
        self.ctx = ctx
        self.module = fn.module
        self.project = ctx.project
        self.file = fn.module.relpath
        self.klass = self.project.classes.get(fn.qualname.rsplit(".", 1)[0]) if fn.class_name else None
        self.summary = Summary(fn)
        self.params = fn.params
        self.points: dict[str, set[Place]] = {p: {("param", p)} for p in self.params if p != "self"}
        self.handles: dict[str, Handle] = {}
        #: locals reached from a parameter (`cur = conn.cursor()`, `coll = client["db"]["c"]`): (param, path)
        self.derived_from: dict[str, tuple[str | None, list[str]]] = {}
        self.instances: dict[str, ClassRef] = {}
        for param in (*fn.node.params.params, *fn.node.params.kwonly_params):
            klass = self.annotated_class(param.annotation) if param.name.value not in {"self", "cls"} else None
            if klass is not None:
                self.instances[param.name.value] = klass
        #: locals taken out of a module-level container of the project's objects (see `registry_methods`)
        self.registry_items: dict[str, list[ClassRef]] = {}
        self.file_modes: dict[str, str] = {}
        self.globals_declared: set[str] = set()
        # every pass walks the same body: flatten it once (libcst isinstance checks go through ABCMeta,
        # so the passes below dispatch on the concrete type)
        self.nodes = list(_walk(fn.node.body))
        #: calls inside a `try` whose handler takes an existing file in its stride (`except OSError`,
        #: `except FileExistsError`): `os.makedirs(d)` there is `os.makedirs(d, exist_ok=True)`
        self.exists_tolerated: set[int] = set()
        for node in self.nodes:
            if isinstance(node, cst.Global):
                self.globals_declared.update(n.name.value for n in node.names)
            elif type(node) is cst.Try and any(_tolerates_existing(h, self.module) for h in node.handlers):
                self.exists_tolerated.update(id(n) for n in _walk(node.body) if type(n) is cst.Call)
        # parameters evaluate to markers each call site fills in (summaries.map_access, stagefx)
        self.scope = function_scope(fn, self.module, self.project, nodes=self.nodes, markers=True)
        if self_values:
            self.scope.self_values = self_values
        self.mutable_globals = _mutable_globals(self.module, self.project)

    # -- places -------------------------------------------------------------

    def places(self, expr: cst.BaseExpression | None) -> set[Place]:
        """Which tracked objects an expression may evaluate to (or be part of)."""
        if expr is None:
            return set()
        if isinstance(expr, cst.Name):
            name = expr.value
            if name in self.points:
                return set(self.points[name])
            if name == "self":
                return {SELF}
            g = self.global_place(name)
            return {g} if g else set()
        if isinstance(expr, cst.Attribute):
            attr = _self_attr(expr)
            if attr is not None:
                return {("self", attr)}
            return self.places(expr.value)
        if isinstance(expr, cst.Subscript):
            return self.places(expr.value)
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            method = expr.func.attr.value
            if method in {"values", "items", "keys", "__iter__", "iterrows", "itertuples", "copy_"}:
                return self.places(expr.func.value)
        if isinstance(expr, cst.Call):
            q = self.module.qualify(expr.func) or ""
            if q in _SAME_ELEMENTS:
                # a new container holding the same elements: mutating an element mutates the original
                out: set[Place] = set()
                for a in expr.args:
                    out |= self.places(a.value)
                return out
            callee = self.project.function(q)
            if callee is not None:
                ret = _returned_params(callee)
                out = set()
                for i, a in enumerate(expr.args):
                    if a.keyword is None and i < len(callee.params) and callee.params[i] in ret:
                        out |= self.places(a.value)
                return out
        if isinstance(expr, cst.BooleanOperation):
            return self.places(expr.left) | self.places(expr.right)
        if isinstance(expr, cst.IfExp):
            return self.places(expr.body) | self.places(expr.orelse)
        if isinstance(expr, cst.Await):
            return self.places(expr.expression)
        return set()

    def global_place(self, name: str) -> Place | None:
        if name in self.globals_declared or name in self.mutable_globals:
            return ("global", f"{self.module.name}.{name}")
        qualified = self.module.imports.get(name)
        if qualified:
            owner, _, attr = qualified.rpartition(".")
            other = self.project.module_of(owner)
            if other is not None and attr in _mutable_globals(other, self.project):
                return ("global", f"{other.name}.{attr}")
        return None

    # -- pass 1: aliases and handles ------------------------------------------

    def bind(self, target: cst.BaseExpression, value_places: set[Place]) -> None:
        if isinstance(target, cst.Name):
            if target.value in self.globals_declared:
                return
            self.points.setdefault(target.value, set()).update(value_places)
        elif isinstance(target, cst.Tuple | cst.List):
            for el in target.elements:
                self.bind(el.value, value_places)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, value_places)

    def alias_pass(self) -> None:
        for _ in range(2):
            for node in self.nodes:
                kind = type(node)
                if kind is cst.Assign:
                    assert isinstance(node, cst.Assign)
                    value = self.places(node.value)
                    for t in node.targets:
                        self.bind(t.target, value)
                        if isinstance(t.target, cst.Name):
                            self.track_handle(t.target.value, node.value)
                            if isinstance(node.value, cst.Attribute | cst.Subscript | cst.Call):
                                origin = self.param_root(node.value)
                                if origin[0] is not None:
                                    self.derived_from[t.target.value] = origin
                            if isinstance(node.value, cst.Call):
                                klass = self.instance_class(node.value)
                                if klass is not None:
                                    self.instances[t.target.value] = klass
                            if held := self.registry_classes(node.value):
                                self.registry_items[t.target.value] = held
                elif kind is cst.AnnAssign and isinstance(node, cst.AnnAssign) and node.value is not None:
                    self.bind(node.target, self.places(node.value))
                    if isinstance(node.target, cst.Name):
                        klass = self.annotated_class(node.annotation)
                        if klass is not None:
                            self.instances[node.target.value] = klass
                elif (kind is cst.For or kind is cst.CompFor) and isinstance(node, cst.For | cst.CompFor):
                    self.bind(node.target, self.places(node.iter))
                    if isinstance(node.target, cst.Name) and (held := self.registry_classes(node.iter)):
                        self.registry_items[node.target.value] = held
                elif kind is cst.NamedExpr and isinstance(node, cst.NamedExpr):
                    self.bind(node.target, self.places(node.value))
                elif kind is cst.WithItem and isinstance(node, cst.WithItem) and node.asname is not None:
                    target = node.asname.name
                    self.bind(target, self.places(node.item))
                    if isinstance(target, cst.Name):
                        self.track_handle(target.value, node.item)
                        self.track_file(target.value, node.item)

    def track_handle(self, name: str, value: cst.BaseExpression) -> None:
        handle = self.ctx.handle_from(value, self.module, name, self.handles, self.scope)
        if handle is None and not isinstance(value, cst.Call):
            handle = self.handle_of(value)
        elif handle is None and isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            # `with self.connect() as sftp:`: a method of an analysed class that returns a handle
            callee = self.resolve_callee(value.func)
            handle = self.ctx.returned_handle(callee) if callee is not None else None
        if handle is not None:
            if handle.call and handle.name == name and self.ctx.catalog.factories.get(handle.call):
                # created here: every call gets its own handle, so concurrent calls don't share it
                handle = Handle(handle.type, handle.kind, f"{self.fn.name}:{name}", True, handle.capacity_limited,
                                handle.call)
            self.handles[name] = handle

    def track_file(self, name: str, item: cst.BaseExpression) -> None:
        if isinstance(item, cst.Call) and (self.module.qualify(item.func) or "") in {"open", "io.open"}:
            self.file_modes[name] = "file"

    def handle_of(self, expr: cst.BaseExpression) -> Handle | None:
        if isinstance(expr, cst.Name) and expr.value in self.points and expr.value not in self.handles:
            return None  # a parameter or a local holding pipeline data, not a module-level handle
        return self.ctx.handle_of_expr(expr, self.module, self.handles, self.klass, scope=self.scope)

    # -- pass 2: accesses -----------------------------------------------------

    def add(self, write: bool, kind: str, place: Place | None, target: str, node: cst.CSTNode, of: str = "",
            assumed: bool = False, key: str = "", origin: str = "code", via: str = "") -> None:
        self.summary.accesses.add(Access(write, kind, place, target, Site(self.module, node), of, assumed, key,
                                         origin, via))

    def unknown_on(self, handle: Handle, what: str, node: cst.CSTNode, reads: bool = True,
                   writes: bool = True) -> None:
        """Open world: a call we don't model on a handle reads and/or writes that handle's resource: a SaaS
        SDK's declared hosts (any URL on them), else whatever the handle identifies."""
        library = self.ctx.catalog.library_of(handle.call) if handle.call else None
        if library is not None and library.hosts:
            for write in ([False] if reads else []) + ([True] if writes else []):
                for host in library.hosts:
                    self.add(write, "key", None, f"https://{host}/{WILD}", node, assumed=True, origin="fallback")
            return
        why = f"{what} on {handle.name} is not modelled"
        for write in ([False] if reads else []) + ([True] if writes else []):
            self.add(write, "unknown", None, why, node, of=handle_space(handle), assumed=True,
                     key=resource_key(handle), origin="fallback")

    def add_resource(self, handle: Handle, call: str, node: cst.CSTNode) -> None:
        # the object branches would share is the handle itself, not the bucket or collection reached through it
        self.summary.resources.add(
            ResourceUse(handle.kind, handle.root or handle.name, call, handle.thread_safe or handle.fresh,
                        handle.capacity_limited, Site(self.module, node))
        )

    def write_places(self, places: set[Place], node: cst.CSTNode, rebinding: bool = False,
                     assumed: bool = False) -> None:
        for place in places:
            if place == SELF:
                self.add(True, "unknown", None, "the whole object `self` is changed", node, of="memory",
                         assumed=assumed)
                continue
            kind = "container"
            if rebinding:
                kind = "attribute" if place[0] == "self" else "global"
            self.add(True, kind, place, place_label(place), node, assumed=assumed)

    def read_places(self, places: set[Place], node: cst.CSTNode) -> None:
        for place in places:
            if place[0] == "param" or place == SELF:
                continue
            kind = "attribute" if place[0] == "self" else "global"
            self.add(False, kind, place, place_label(place), node)

    def run(self) -> Summary:
        self.alias_pass()
        self.summary.handles = self.handles
        for node in self.nodes:
            kind = type(node)
            if kind is cst.Name:
                assert isinstance(node, cst.Name)
                g = self.global_place(node.value) if node.value not in self.points else None
                if g is not None:
                    self.read_places({g}, node)
            elif kind is cst.Attribute:
                assert isinstance(node, cst.Attribute)
                attr = _self_attr(node)
                if attr is not None and not (self.klass and self.project.method(self.klass, attr)):
                    self.read_places({("self", attr)}, node)
            elif kind is cst.Call:
                assert isinstance(node, cst.Call)
                self.call(node)
            elif kind is cst.Assign:
                assert isinstance(node, cst.Assign)
                for t in node.targets:
                    self.assign_target(t.target, node)
            elif kind is cst.AnnAssign and isinstance(node, cst.AnnAssign) and node.value is not None:
                self.assign_target(node.target, node)
            elif (kind is cst.AugAssign or kind is cst.Del) and isinstance(node, cst.AugAssign | cst.Del):
                self.assign_target(node.target, node, augmented=True)
        return self.summary

    def assign_target(self, target: cst.BaseExpression, node: cst.CSTNode, augmented: bool = False) -> None:
        if isinstance(target, cst.Tuple | cst.List):
            for el in target.elements:
                self.assign_target(el.value, node, augmented)
            return
        if isinstance(target, cst.StarredElement):
            self.assign_target(target.value, node, augmented)
            return
        if isinstance(target, cst.Name):
            if target.value in self.globals_declared:
                self.write_places({("global", f"{self.module.name}.{target.value}")}, node, rebinding=True)
            elif augmented and target.value in self.points:
                self.write_places(self.points[target.value], node)
            return
        attr = _self_attr(target)
        if attr is not None:
            if augmented:
                self.read_places({("self", attr)}, node)
            self.write_places({("self", attr)}, node, rebinding=True)
            return
        if isinstance(target, cst.Attribute | cst.Subscript):
            self.write_places(self.places(target.value), node)

    # -- calls ------------------------------------------------------------------

    def call(self, node: cst.Call) -> None:
        func = node.func
        qualified = self.module.qualify(func) or ""
        found_sql = self.scan_sql(node)
        self.callbacks(node)
        # a call to an analysed function or method
        callee = self.resolve(node)
        if callee is not None:
            self.call_site(callee, node)
            return
        dispatched = self.registry_methods(func)
        if dispatched:
            for method in dispatched:  # any of them may be the one called: each one's effects count
                self.call_site(method, node)
            return
        # dynamic dispatch: getattr(obj, name)(...)
        if isinstance(func, cst.Call) and (self.module.qualify(func.func) or "") == "getattr":
            self.add(True, "unknown", None, "dynamic dispatch through getattr(); the callee is chosen at run time",
                     node, of="memory")
            return
        if qualified == "setattr" and node.args:
            self.write_places(self.places(node.args[0].value), node, rebinding=True)
            return
        if qualified in {"exec", "eval"}:
            self.add(True, "unknown", None, f"{qualified}() runs code that can't be analysed", node, of="any")
            return
        model = self.ctx.catalog.calls.get(qualified)
        if model is not None:
            self.call_model(model, node, qualified, found_sql)
            return
        library = self.unmodelled_library(func, qualified)
        if library or (isinstance(func, cst.Name) and self.unresolved(func.value)):
            # code we can't see received pipeline data: assume it may change it
            # (a factory or a declared-pure call given a handle only wraps or configures it:
            # `sessionmaker(engine)`; what is done through the result is the effect)
            wraps = qualified in self.ctx.catalog.factories or self.ctx.catalog.pure_call(qualified)
            for arg in node.args:
                places = self.places(arg.value)
                if places:
                    self.write_places(places, node, assumed=True)
                handle = (self.handle_of(arg.value) if not wraps and ((not _constructor(qualified)
                          and isinstance(arg.value, cst.Name | cst.Call)) or _self_attr(arg.value)) else None)
                if handle is not None:  # ...and whatever handle it was given: it may read or write through it
                    self.unknown_on(handle, f"passing it to {qualified or 'an unresolved callee'}()", node)
            effectful = (not self.ctx.catalog.pure_call(qualified) and not _constructor(qualified)
                         and qualified not in self.ctx.catalog.factories)  # making a handle is not yet an effect
            if library and not found_sql and effectful:
                self.library_effect(library, qualified, node)
            return
        if isinstance(func, cst.Attribute):
            self.method_call(func, node, found_sql)

    def unmodelled_library(self, func: cst.BaseExpression, qualified: str) -> OpaqueLibrary | None:
        """The library an imported, unanalysed call belongs to, unless it is declared pure (open world)."""
        head = func
        while isinstance(head, cst.Attribute):
            head = head.value
        if not isinstance(head, cst.Name) or head.value not in self.module.imports:
            return None
        if head.value in self.points or self.handle_of(func.value if isinstance(func, cst.Attribute) else func):
            return None
        if not qualified or not self.ctx.external(func, qualified, self.module):
            return None
        return self.ctx.catalog.library_of(qualified)

    def library_effect(self, library: OpaqueLibrary, qualified: str, node: cst.Call) -> None:
        """A function of a library we don't model: an unknown effect on that library's system."""
        handle = Handle(f"opaque:{library.module}", library.kind, library.module, library.thread_safe,
                        library.capacity_limited, qualified)
        method = qualified.rsplit(".", 1)[-1]
        self.unknown_on(handle, f"{qualified}()", node, reads=True, writes=not self.ctx.catalog.reads_only(method))
        self.add_resource(handle, qualified, node)

    def unresolved(self, name: str) -> bool:
        m = self.module
        return not (
            name in m.imports or name in m.functions or name in m.classes or name in m.constants
            or name in _BUILTIN_NAMES or name in self.points or name in self.params
        )

    def resolve(self, node: cst.Call) -> FunctionRef | None:
        return self.resolve_callee(node.func)

    def resolve_callee(self, func: cst.BaseExpression) -> FunctionRef | None:
        """The analysed function or method an expression names (`load`, `helpers.load`, `self._clean`,
        `loader.run` on an instance of an analysed class): what calling it, or handing it over, runs."""
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in {"self", "cls"}:
            if self.klass is not None:
                return self.project.method(self.klass, func.attr.value)
            return None
        if isinstance(func, cst.Attribute):
            klass = self.instance_class(func.value)
            if klass is not None:
                return self.project.method(klass, func.attr.value)
        if isinstance(func, cst.Name) and func.value in self.points:
            return None
        found = self.project.function(self.module.qualify(func))
        if found is None and isinstance(func, cst.Attribute) and func.attr.value in _RUNS_TASK:
            found = self.project.function(self.module.qualify(func.value))  # `load_orders.delay(day)` runs it
        return found

    def annotated_class(self, annotation: cst.Annotation | None) -> ClassRef | None:
        """The analysed class an annotation names (`x: Store`, `"Store"`, `Store | None`, `Optional[Store]`),
        when no analysed class extends it: then the object's methods are that class's own. A class with
        subclasses is left to the caller, who may know which one it hands over (`summaries.expand_virtual`)."""
        expr: cst.BaseExpression | None = annotation.annotation if annotation is not None else None
        for _ in range(3):
            if isinstance(expr, cst.SimpleString):
                text = expr.evaluated_value
                try:
                    expr = cst.parse_expression(text) if isinstance(text, str) else None
                except cst.ParserSyntaxError:
                    return None
            elif isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
                sides = [e for e in (expr.left, expr.right) if not (isinstance(e, cst.Name) and e.value == "None")]
                expr = sides[0] if len(sides) == 1 else None
            elif (isinstance(expr, cst.Subscript) and len(expr.slice) == 1
                  and (self.module.qualify(expr.value) or "") in {"typing.Optional", "Optional"}
                  and isinstance(expr.slice[0].slice, cst.Index)):
                expr = expr.slice[0].slice.value
            else:
                break
        if not isinstance(expr, cst.Name | cst.Attribute):
            return None
        klass = self.project.klass(self.module.qualify(expr))
        return klass if klass is not None and not self.project.subclasses(klass) else None

    def instance_class(self, expr: cst.BaseExpression) -> ClassRef | None:
        """The analysed class an expression is an instance of: `Loader(...)`, a local bound to one, `self.loader`."""
        if isinstance(expr, cst.Call):
            made = self.project.klass(self.module.qualify(expr.func))
            if made is not None:
                return made
            factory = self.resolve_callee(expr.func)
            returned = self.ctx.returned_class(factory) if factory is not None else None
            return returned or self.alternative_constructor(expr.func)
        if isinstance(expr, cst.Name):
            if expr.value in self.instances:
                return self.instances[expr.value]
            if expr.value in self.points:
                return None
            return self.module_instance(expr.value)
        attr = _self_attr(expr)
        if attr is not None and self.klass is not None:
            self.ctx.handles_of_class(self.klass)
            return self.ctx.class_instances.get(self.klass.qualname, {}).get(attr)
        return None

    def registry_methods(self, func: cst.BaseExpression) -> list[FunctionRef]:
        """`SINKS[kind].write(rows)`, `for sink in SINKS.values(): sink.write(rows)`: a method of an object
        taken out of a module-level container literal of the project's objects (`SINKS = {"file":
        FileSink(), "db": DbSink()}`) is the method of every class the container holds that defines it."""
        if not isinstance(func, cst.Attribute):
            return []
        receiver: cst.BaseExpression = func.value
        if isinstance(receiver, cst.Name) and receiver.value in self.registry_items:
            classes = self.registry_items[receiver.value]
        else:
            classes = self.registry_classes(receiver)
        found = [m for klass in classes if (m := self.project.method(klass, func.attr.value)) is not None]
        return sorted({m.qualname: m for m in found}.values(), key=lambda m: m.qualname)

    def registry_classes(self, expr: cst.BaseExpression) -> list[ClassRef]:
        """The analysed classes of the objects `expr` takes out of a module-level container literal:
        `NAME[key]`, `NAME.get(key)`, and (for loops) `NAME`, `NAME.values()`."""
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and \
                expr.func.attr.value in {"get", "values", "pop"}:
            expr = expr.func.value
        if not isinstance(expr, cst.Name) or expr.value in self.points:
            return []
        found = module_constant(expr.value, Scope(self.module, self.project))
        if found is None:
            return []
        container, module = found
        if isinstance(container, cst.Dict):
            items = [e.value for e in container.elements if isinstance(e, cst.DictElement)]
        elif isinstance(container, cst.List | cst.Tuple | cst.Set):
            items = [e.value for e in container.elements]
        else:
            return []
        classes: dict[str, ClassRef] = {}
        for item in items:
            if isinstance(item, cst.Call):
                klass = self.project.klass(module.qualify(item.func))
                if klass is not None:
                    classes[klass.qualname] = klass
        return list(classes.values())

    def alternative_constructor(self, func: cst.BaseExpression) -> ClassRef | None:
        """`Harvest.get_by_id(pk)`, `Config.from_file(p)`: a classmethod of an analysed class builds an
        instance of it, so the methods later called on the result are that class's. Without this
        they resolved to nothing, and `harvest.complete()`, which updates a table, had no effect."""
        if not isinstance(func, cst.Attribute):
            return None
        owner = self.project.klass(self.module.qualify(func.value))
        method = self.project.method(owner, func.attr.value) if owner is not None else None
        if method is None or not _decorated(method, _CLASSMETHOD):
            return None
        return owner

    def module_instance(self, name: str) -> ClassRef | None:
        """The analysed class of a module-level object (`service = OrderService()`, here or imported)."""
        value = self.module.constants.get(name)
        if isinstance(value, cst.Call):
            return self.project.klass(self.module.qualify(value.func))
        found = self.project.singleton(self.module.imports.get(name)) if name in self.module.imports else None
        return found[0] if found is not None else None

    def callbacks(self, node: cst.Call) -> None:
        """Analysed functions passed as arguments (`executor.submit(fn, x)`, `loop.run_in_executor(None,
        fn, x)`, `df.apply(fn)`, `partial(fn, x)`, `Thread(target=fn)`): whatever receives one may call
        it, so its effects are this call's (open world: never dropped because the caller is unseen).
        The positional arguments after a positional function are taken as its own, as `submit`,
        `run_in_executor` and `partial` pass them. Not for calls the catalog declares `inert`
        (`print(fn)` only shows the function)."""
        if self.ctx.catalog.calls_no_argument(self.module.qualify(node.func) or ""):
            return
        for index, arg in enumerate(node.args):
            if arg.star or not isinstance(arg.value, cst.Name | cst.Attribute):
                continue
            fn = self.resolve_callee(arg.value)
            if fn is None:
                continue
            following = [a for a in node.args[index + 1:] if a.keyword is None and not a.star] \
                if arg.keyword is None else []
            self.call_site(fn, node, args=following, func=arg.value)

    def call_site(self, callee: FunctionRef, node: cst.Call, args: Sequence[cst.Arg] | None = None,
                  func: cst.BaseExpression | None = None) -> None:
        """Record a call of `callee` at `node` (or, for a callback, with `args` through `func`)."""
        params = [p for p in callee.params if p not in {"self", "cls"}] if callee.is_method else callee.params
        bound: list[tuple[str, frozenset[Place]]] = []
        handles: list[Handle] = []
        handle_params: list[tuple[str, Handle]] = []
        values: list[tuple[str, str | None]] = []
        classes: list[tuple[str, str]] = []
        positional = 0
        func = node.func if func is None else func
        for arg in (node.args if args is None else args):
            if arg.star:
                places = self.places(arg.value)
                if places:
                    bound.extend((p, frozenset(places)) for p in params)
                continue
            name = arg.keyword.value if arg.keyword is not None else (
                params[positional] if positional < len(params) else "")
            if arg.keyword is None:
                positional += 1
            places = self.places(arg.value)
            if name and places:
                bound.append((name, frozenset(places)))
            if name:
                values.append((name, evaluate(arg.value, self.scope)))
            handle = self.handle_of(arg.value)
            if handle is not None:
                handles.append(handle)
                if name:
                    handle_params.append((name, handle))
                self.add_resource(handle, callee.qualname, node)
            elif name and isinstance(arg.value, cst.Name | cst.Attribute | cst.Call):
                klass = self.instance_class(arg.value)
                if klass is not None:
                    classes.append((name, klass.qualname))
        receiver: frozenset[Place] | None = None
        if isinstance(func, cst.Attribute):
            receiver = frozenset(self.places(func.value)) or None
        self.summary.calls.append(
            CallSite(callee.qualname, tuple(bound), receiver, 0, tuple(handles), handle_params=tuple(handle_params),
                     values=tuple(values), classes=tuple(classes))
        )

    def call_model(self, model: CallModel, node: cst.Call, qualified: str, found_sql: bool = False) -> None:
        if model.kind:
            identity = model.identity or "object"
            name = qualified
            if identity.startswith(("host:", "arg:")):
                value = evaluate(argument(node, identity), self.scope)
                name = host_of(value) if value and identity.startswith("host:") else (value or qualified)
            self.summary.resources.add(
                ResourceUse(model.kind, name, qualified, model.thread_safe, model.capacity_limited,
                            Site(self.module, node))
            )
        self.effect(model.effect, model.target, node, None, None, found_sql, model.prefix)

    def method_call(self, func: cst.Attribute, node: cst.Call, found_sql: bool = False) -> None:
        method = func.attr.value
        receiver = func.value
        handle = self.handle_of(receiver)
        chain = receiver_chain(receiver)
        if handle is None and is_log_call(node, self.module, self.project):
            return  # `self._log.debug(...)`: a message to a person changes no object the pipeline reads
        if handle is not None:
            model = (self.ctx.catalog.methods_of(handle.type, method, chain)
                     or self.ctx.catalog.any_method(method, chain))
            if model is not None or (method not in self.ctx.catalog.pure_methods and RESULT not in handle.type):
                self.add_resource(handle, f"{handle.type}.{method}", node)
            if model is not None:
                self.effect(model.effect, model.target, node, receiver, handle, found_sql, model.prefix,
                            model.location)
                for effect, target, prefix in model.also:
                    self.effect(effect, target, node, receiver, handle, found_sql, prefix)
            elif not found_sql and method not in self.ctx.catalog.pure_methods and RESULT not in handle.type:
                if method in _SQL_METHODS:
                    self.unresolved_sql(node, handle)
                else:
                    self.unknown_on(handle, f"{method}()", node, writes=not self.ctx.catalog.reads_only(method))
            return
        any_model = self.ctx.catalog.any_method(method, chain)
        if any_model is not None:
            self.effect(any_model.effect, any_model.target, node, receiver, None, found_sql, any_model.prefix)
        elif method in _CURSOR_SQL and not found_sql and node.args:
            # `cursor.execute(query)` on a cursor we could not trace: the SQL ran somewhere we can't name
            self.unresolved_sql(node, None)
        if isinstance(receiver, cst.Name) and receiver.value in self.file_modes:
            return
        if any_model is None:
            self.through_param(receiver, method, node, found_sql, read_only=method in PURE)
            if not found_sql and method not in self.ctx.catalog.pure_methods and method not in PURE | MUTATORS:
                self.handles_passed(node, f"{dotted(receiver) or 'an object'}.{method}")
        places = self.places(receiver)
        if not places:
            return
        if method in MUTATORS or is_true(keyword(node, "inplace")):
            self.write_places(places, node)
        elif method in PURE or any_model is not None:
            self.read_places(places, node)
        elif self.collaborator(places):
            self.write_places(places, node)
        else:
            self.read_places(places, node)

    def handles_passed(self, node: cst.Call, callee: str) -> None:
        """`Base.metadata.create_all(engine)`: a method we know nothing of was handed a handle, so it may
        read or write through it (open world: an unknown effect on the handle, never none). A message
        (`log.error("... %s", client)`) only formats what it is given."""
        if _is_message(node, self.module):
            return
        for arg in node.args:
            if not isinstance(arg.value, cst.Name | cst.Attribute | cst.Call):
                continue
            handle = self.handle_of(arg.value)
            if handle is not None and RESULT not in handle.type:
                self.unknown_on(handle, f"passing it to {callee}()", node)
            elif handle is None and isinstance(arg.value, cst.Name) and arg.value.value in self.params \
                    and arg.value.value not in {"self", "cls"}:
                # the parameter may be a handle (`def ensure(engine): meta.create_all(engine)`): if the
                # caller passes one, this is an unknown effect on it (summaries.map_access decides)
                why = f"passing {arg.value.value} to {callee}() is not modelled"
                for write in (False, True):
                    self.add(write, "unknown", ("param", arg.value.value), why, node, of="handle", assumed=True,
                             origin="fallback")

    def through_param(self, receiver: cst.BaseExpression, method: str, node: cst.Call, found_sql: bool,
                      read_only: bool = False) -> None:
        """`client["shop"].orders.insert_many(rows)` with `client` a parameter: if the caller passes a handle,
        this is an unknown effect on it (summaries.map_access and stagefx decide once the argument is known)."""
        if found_sql or method in self.ctx.catalog.pure_methods:
            return
        root, path = self.param_root(receiver)
        if root is None:
            return
        key = "/".join(path)
        via = "" if path else method
        if via:
            self.virtual_call(root, method, node)
        why = f"{method}() through parameter {root} is not modelled"
        self.add(False, "unknown", ("param", root), why, node, of="handle", assumed=True, key=key, origin="fallback",
                 via=via)
        if not read_only and not self.ctx.catalog.reads_only(method):
            self.add(True, "unknown", ("param", root), why, node, of="handle", assumed=True, key=key,
                     origin="fallback", via=via)

    def virtual_call(self, param: str, method: str, node: cst.Call) -> None:
        """`s3.list_files(pattern)` on the parameter `s3`: which method runs depends on what the caller
        passes, so the call is kept with its arguments (in this function's terms) for a caller that knows."""
        bound: list[tuple[str, frozenset[Place]]] = []
        values: list[tuple[str, str | None]] = []
        positional = 0
        for arg in node.args:
            if arg.star:
                return  # `obj.m(*args)`: the binding can't be told; the open-world stand-in stays
            name = arg.keyword.value if arg.keyword is not None else f"#{positional}"
            if arg.keyword is None:
                positional += 1
            places = self.places(arg.value)
            if places:
                bound.append((name, frozenset(places)))
            values.append((name, evaluate(arg.value, self.scope)))
        self.summary.calls.append(CallSite("", tuple(bound), None, 0, values=tuple(values), via=(param, method)))

    def param_root(self, expr: cst.BaseExpression, depth: int = 0) -> tuple[str | None, list[str]]:
        """The parameter an expression is reached from through attributes, subscripts and method results."""
        if depth > 12:
            return None, []
        if isinstance(expr, cst.Name):
            if expr.value in self.params and expr.value not in {"self", "cls"}:
                return expr.value, []
            origin = self.derived_from.get(expr.value)
            return origin if origin is not None else (None, [])
        if isinstance(expr, cst.Attribute):
            root, path = self.param_root(expr.value, depth + 1)
            return root, [*path, expr.attr.value]
        if isinstance(expr, cst.Subscript):
            root, path = self.param_root(expr.value, depth + 1)
            part = subscript_value(expr, self.scope)
            return root, [*path, part] if part and known(part) and not templated(part) and "/" not in part else path
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            method = expr.func.attr.value
            if method in PURE and method not in {"get"}:
                return None, []
            model = self.ctx.catalog.any_method(method, receiver_chain(expr.func.value))
            if model is not None and model.effect:
                return None, []  # `spark.read.csv(p)`: the data a modelled access returned, not the handle
            return self.param_root(expr.func.value, depth + 1)
        return None, []

    def unresolved_sql(self, node: cst.Call, handle: Handle | None) -> None:
        """SQL whose text can't be resolved: an unknown write of the connection's database (every table)."""
        what = "SQL text that could not be resolved"
        where = f" on {handle.name}" if handle is not None else ""
        self.add(True, "unknown", None, f"{what}{where}", node, of="table", assumed=True, origin="fallback")

    def collaborator(self, places: set[Place]) -> bool:
        if self.klass is None:
            return False
        self.ctx.handles_of_class(self.klass)
        collaborators = self.ctx.class_collaborators.get(self.klass.qualname, set())
        return any(p[0] == "self" and p[1] in collaborators for p in places)

    # -- effects on files, keys, tables -------------------------------------------

    def effect(self, effect: str, target: str, node: cst.Call, receiver: cst.BaseExpression | None,
               handle: Handle | None = None, found_sql: bool = False, prefix: str = "", location: str = "") -> None:
        if not effect or not target:
            return
        if target == "sql":
            # SQL arguments are scanned for every call; text we could not resolve is still an effect,
            # but a statement known to be empty (an operator's `pg_postoperator=None`) runs nothing
            if not found_sql and node.args and evaluate(node.args[0].value, self.scope) != "":
                self.unresolved_sql(node, handle)
            return
        if target == "resource":
            # the handle's own resource, as precisely as the handle names it (client/db/collection); a
            # module-level call (`helpers.bulk(client, ...)`) acts on the handle it is given
            if handle is None:
                handle = next((h for h in (self.handle_of(a.value) for a in node.args) if h is not None), None)
            if handle is None:
                qualified = self.module.qualify(node.func) or ""
                handle = Handle(f"opaque:{qualified}", "other", qualified.split(".")[0] or "?", True, False, qualified)
            reads, writes = effect in {"read", "readwrite"}, effect in {"write", "readwrite"}
            url = locate(location, handle, node, self.scope) if location else handle.location
            if url:
                self._io("file", url + WILD if url.endswith("/") else url, node, reads, writes)
            else:
                for write in ([False] if reads else []) + ([True] if writes else []):
                    self.add(write, handle_space(handle), None, handle.name, node,
                             key=resource_key(handle), origin="model")
            return
        kind, _, spec = target.partition(":")
        if kind == "model":
            self.model_effect(effect, node, int(spec or 0))
            return
        if kind == "table" and spec == "self":
            self.model_table_effect(handle.table if handle is not None else None, effect in {"read", "readwrite"},
                                    effect in {"write", "readwrite"}, node, "an ORM manager")
            return
        if kind in {"file", "dir"} and spec == "self":
            value = evaluate(receiver, self.scope) if receiver is not None else None
        elif kind == "object":
            bucket_spec, _, key_spec = spec.partition("/")
            bucket = evaluate(_object_part(node, bucket_spec), self.scope) or WILD
            key = evaluate(_object_part(node, key_spec), self.scope) or WILD
            value, kind = f"s3://{bucket}/{key}", "file"
        else:
            expr = argument(node, target.rstrip("?"))
            if target.endswith("?") and expr is None and not any(a.star for a in node.args):
                return  # `df.to_csv()` / `df.to_json()` with no path return the text: no file is touched
            if kind == "file" and self.in_memory(expr):
                return  # `df.to_csv(buffer)` with `buffer = io.StringIO()`: no file is touched
            value = evaluate(expr, self.scope)
        if prefix:
            # the prefix names the store (`sftp:`, `aws-ssm:`): a name built at run time is still one of its
            # keys, never another store's
            value = prefix + (value if value is not None and (known(value) or templated(value)) else WILD)
        if kind == "url":
            kind = "key"
            if value is None or not (known(value) or templated(value)):
                value = f"{WILD}://{WILD}"  # a URL built at run time is still a URL, never an SFTP path or a secret
        if kind == "dir":
            # making sure a directory exists only reads it (two stages that do so commute); creating
            # or removing one writes the directory and its path
            ensure = effect == "ensure" and (is_true(keyword(node, "exist_ok")) or id(node) in self.exists_tolerated)
            self._io("dir", value, node, ensure, not ensure)
            if not ensure:
                self._io("file", value, node, False, True)
        elif effect == "mode":
            mode_expr = argument(node, "mode:1:mode")
            mode = evaluate(mode_expr, self.scope) if mode_expr is not None else "r"
            mode = mode or "w"
            reads, writes = ("r" in mode or "+" in mode), any(c in mode for c in "wax+")
            if WILD in mode:  # `open(p, "a" if resuming else "w")`: chosen at run time, so either
                reads = writes = True
            self._io(kind, value, node, reads, writes)
        elif effect == "list":
            # listing a folder reads what is in it: any file written below it changes the listing
            self._io(kind, None if value is None else value.rstrip("/") + "/" + WILD, node, True, False)
        elif effect in {"move", "copy"}:
            self._io(kind, value, node, True, effect == "move")
            dest = evaluate(argument(node, "file:1:dst"), self.scope)
            self._io(kind, dest, node, False, True)
        else:
            self._io(kind, value, node, effect in {"read", "readwrite"}, effect in {"write", "readwrite"})

    def in_memory(self, expr: cst.BaseExpression | None, depth: int = 0) -> bool:
        """`expr` is an in-memory buffer (`io.StringIO()`, or a local bound once to one)."""
        if isinstance(expr, cst.Name) and expr.value in self.scope.locals and depth < 4:
            return self.in_memory(self.scope.locals[expr.value], depth + 1)
        return isinstance(expr, cst.Call) and self.ctx.catalog.in_memory(self.module.qualify(expr.func) or "")

    def model_effect(self, effect: str, node: cst.Call, position: int) -> None:
        """ORM calls (`session.add(Order(...))`, `session.query(Order)`): the model class's table."""
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        expr = positional[position] if position < len(positional) else None
        for _ in range(4):  # `row = Order(...)` then `session.add(row)`: the object a local was bound to
            if not (isinstance(expr, cst.Name) and isinstance(self.scope.locals.get(expr.value), cst.Call)):
                break
            expr = self.scope.locals[expr.value]
        table = orm_table(expr, self.module, self.project) if expr is not None else None
        if table is None and isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            manager = self.handle_of(expr.func.value)  # `Order.query.filter_by(...).one()`: a loaded row
            table = manager.table if manager is not None and manager.table else None
        made = expr.func if isinstance(expr, cst.Call) else expr
        if (table is None and self.klass is not None and isinstance(made, cst.Name)
                and made.value in {"cls", "self"}):
            # `session.get(cls, pk)` in a model's classmethod, `session.add(self)` in its method,
            # `row = cls(...)` then `session.add(row)`
            table = model_table(self.klass, self.project)
        reads, writes = effect in {"read", "readwrite"}, effect in {"write", "readwrite"}
        if writes and expr is not None:
            # a foreign key is checked on every write of the model: the parent table is read
            for parent in sorted(references(expr, self.scope)):
                self.add(False, "table", None, parent, node, origin="model")
        if reads and not writes and self.changes_loaded(node):
            writes = True  # the session flushes an UPDATE of what it loaded and the code changed
        self.model_table_effect(table, reads, writes, node, "an ORM object")

    def model_table_effect(self, table: str | None, reads: bool, writes: bool, node: cst.Call, what: str) -> None:
        """Reads/writes of an ORM model's table, or an unknown table effect when it can't be named."""
        for write in ([False] if reads else []) + ([True] if writes else []):
            if table:
                self.add(write, "table", None, table, node, origin="model")
            else:
                self.add(write, "unknown", None, f"{what} whose table could not be resolved", node,
                         of="table", assumed=True, origin="fallback")

    def changes_loaded(self, load: cst.Call) -> bool:
        """Whether an object this ORM read loads is changed later in the function: bound from the read
        (`h = session.get(M, pk)`, `q = session.query(M)`, `for row in q.all():`, through any chain of
        locals), then given an attribute (`h.finished_at = now`, `row.n += 1`, `del h.note`). The
        session's unit of work writes that change back to the model's table when it commits."""
        loaded: set[str] = set()

        def from_load(expr: cst.CSTNode) -> bool:
            return any(n is load or (isinstance(n, cst.Name) and n.value in loaded) for n in _walk(expr))

        for _ in range(4):  # chains of locals settle in a few rounds
            before = len(loaded)
            for node in self.nodes:
                if isinstance(node, cst.Assign) and from_load(node.value):
                    loaded.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))
                elif isinstance(node, cst.For) and isinstance(node.target, cst.Name) and from_load(node.iter):
                    loaded.add(node.target.value)
                elif (isinstance(node, cst.WithItem) and node.asname is not None
                      and isinstance(node.asname.name, cst.Name) and from_load(node.item)):
                    loaded.add(node.asname.name.value)
            if len(loaded) == before:
                break
        if not loaded:
            return False
        for node in self.nodes:
            targets: list[cst.BaseExpression] = []
            if isinstance(node, cst.Assign):
                targets = [t.target for t in node.targets]
            elif isinstance(node, cst.AugAssign | cst.AnnAssign | cst.Del):
                targets = [node.target]
            for target in targets:
                if (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name)
                        and target.value.value in loaded):
                    return True
        return False

    def _io(self, kind: str, value: str | None, node: cst.CSTNode, reads: bool, writes: bool) -> None:
        if kind not in {"file", "dir", "key", "table", "queue"}:
            return
        if value is not None and templated(value):
            # depends on a parameter: each caller fills it in (summaries.map_access, stagefx)
            for write in ([False] if reads else []) + ([True] if writes else []):
                self.add(write, kind, None, value, node)
            return
        if not known(value):
            why = f"{'directory' if kind == 'dir' else kind} name built at run time"
            for write in ([False] if reads else []) + ([True] if writes else []):
                self.add(write, "unknown", None, why, node, of=kind)
            return
        assert value is not None
        if reads:
            self.add(False, kind, None, value, node)
        if writes:
            self.add(True, kind, None, value, node)

    def scan_sql(self, node: cst.Call) -> bool:
        """Table effects of SQL in any argument; whether some SQL text (or a caller's, deferred) was seen."""
        found_any = False
        if self.ctx.catalog.pure_call(self.module.qualify(node.func) or ""):
            return False  # `sql.SQL("... {}")`, `text(...)` build a statement; the call that runs it is scanned
        if _is_message(node, self.module):
            return False  # `log.info("update the records later")`: a message, not a statement
        sql_call = isinstance(node.func, cst.Attribute) and node.func.attr.value in _CURSOR_SQL
        for i, arg in enumerate(node.args):
            value = arg.value
            if not isinstance(value, (*_SIMPLE_LITERALS, cst.Name, cst.BinaryOperation, cst.Attribute, cst.Call)):
                continue
            if (isinstance(value, cst.Call) and not isinstance(value.func, cst.Attribute)
                    and (self.module.qualify(value.func) or "") not in _TEXT_CALLS):
                continue
            text = evaluate(value, self.scope)
            if text is None:
                continue
            if templated(text) and (sqlmod.looks_like_sql(finish(text)) or (sql_call and i == 0)):
                # built from a parameter: each caller fills it in, then it is parsed (summaries.resolve_sql)
                self.add(True, "sql", None, text, node)
                found_any = True
                continue
            for access in sql_accesses(text, Site(self.module, node)):
                self.summary.accesses.add(access)
                found_any = True
        return found_any


#: plain calls whose result can be SQL text (statement builders, a file's text, a path)
_TEXT_CALLS = frozenset({"str", "open", "io.open", "pathlib.Path", "Path", "os.path.join"}) | SQL_COMPOSERS | \
    SA_STATEMENT_CALLS


def on_handle(access: Access, handle: Handle) -> Access:
    """An unmodelled call made through a parameter, once the caller is known to pass `handle` there."""
    key = resource_key(handle) + (f"/{access.key}" if access.key else "")
    return Access(access.write, "unknown", None, f"{access.target} (on {handle.name})", access.site,
                  handle_space(handle), True, key, "fallback")


def resolve_sql(access: Access, text: str) -> list[Access]:
    """A deferred SQL access once a caller filled in its parameters: table accesses, or an unknown write."""
    if templated(text):
        return [access.moved(None, text)]
    found = sql_accesses(text, access.site, access.assumed) if known(text) else []
    if found:
        return found
    return [Access(True, "unknown", None, "SQL text that could not be resolved", access.site, "table", True,
                   origin="fallback")]


def _is_message(call: cst.Call, module: ModuleIndex) -> bool:
    """A call whose text arguments are messages to a person: print, logging, warnings, an exception."""
    if is_log_call(call, module):
        return True
    return (module.qualify(call.func) or "").rsplit(".", 1)[-1].endswith(("Error", "Exception", "Warning"))


def sql_accesses(text: str, site: Site, assumed: bool = False) -> list[Access]:
    """Table accesses of one SQL text (unparseable SQL: an unknown table write); [] when it is not SQL."""
    found = sqlmod.tables(text)
    if found is None:
        return []
    if not found.parsed:
        return [Access(True, "unknown", None, "SQL that could not be parsed", site, "table", assumed)]
    files = [Access(write, "file", None, f, site, "", assumed) if f != "*"
             else Access(write, "unknown", None, "file named by SQL built at run time", site, "file", assumed)
             for write, named in ((False, found.files), (True, found.written_files)) for f in named]
    return ([Access(False, "table", None, t, site, "", assumed) for t in found.reads]
            + [Access(True, "table", None, t, site, "", assumed) for t in found.writes] + files)


def function_scope(fn: FunctionRef | None, module: ModuleIndex, project: Project,
                   nodes: Sequence[cst.CSTNode] | None = None, markers: bool = False) -> Scope:
    """Where a function's names evaluate: its single-assignment locals, then module constants.

    With `markers`, parameters never reassigned evaluate to a marker a caller can fill in.
    """
    if fn is None:
        return Scope(module, project)
    single, counts = local_assignments(nodes if nodes is not None else _walk(fn.node.body))
    params = set(fn.params)
    for p in params & set(counts):
        if counts[p] == 1 and same_value(single[p], p, module):
            counts[p] = 0  # `path = os.path.abspath(path)`: still the caller's path
    return Scope(
        module, project,
        {n: v for n, v in single.items() if counts[n] == 1 and n not in params},
        frozenset(params | {n for n, c in counts.items() if c > 1}),
        params=frozenset(p for p in params if markers and p not in {"self", "cls"} and counts.get(p, 0) == 0),
        owner=fn if fn.is_method else None,
    )


def place_label(place: Place) -> str:
    kind, name = place
    if kind == "self":
        return f"self.{name}" if name else "self"
    if kind == "global":
        return name.rsplit(".", 1)[-1]
    return name


def _returned_params(fn: FunctionRef) -> set[str]:
    params = set(fn.params)
    out: set[str] = set()
    for node in _walk(fn.node.body):
        if isinstance(node, cst.Return) and isinstance(node.value, cst.Name) and node.value.value in params:
            out.add(node.value.value)
    return out


def _mutable_globals(module: ModuleIndex, project: Project) -> frozenset[str]:
    """Module-level names holding mutable state (containers, objects of analysed classes), not constants
    or handles."""
    cached = module.memo.get("mutable_globals")
    if isinstance(cached, frozenset):
        return cached
    names: set[str] = set()
    for node in _walk(module.parsed.tree.body):
        if isinstance(node, cst.Global):
            names.update(n.name.value for n in node.names)
    if True:
        for name, value in module.constants.items():
            if name.isupper() and isinstance(value, (*_SIMPLE_LITERALS, cst.Tuple)):
                continue
            if isinstance(value, (*_SIMPLE_LITERALS, cst.Tuple, cst.Name, cst.Attribute, cst.Lambda)):
                continue
            if isinstance(value, cst.Call):
                q = module.qualify(value.func) or ""
                if not (q in {"set", "list", "dict", "collections.defaultdict", "collections.OrderedDict",
                              "collections.Counter", "collections.deque"} or q.startswith("pandas.")
                        or project.klass(q) is not None):  # `state = AppState()`: its methods change it
                    continue
            names.add(name)
    result = frozenset(names)
    module.memo["mutable_globals"] = result
    return result


def _builtin(name: str) -> bool:
    """`object`, `dict`, `Exception`, `builtins.list`: a base class no library provides."""
    head, _, rest = name.partition(".")
    return head == "builtins" or (not rest and hasattr(builtins, name))


def untraced(fn: FunctionRef, why: str) -> Summary:
    """The summary of a function whose body could not be traced: it may read and write anything (an
    unknown effect), never nothing; a stage calling it then has unknown edges, not coincidental ones."""
    site = Site(fn.module, fn.node)
    return Summary(fn, {Access(write, "unknown", None, why, site, "any", origin="fallback") for write in (False, True)})


def summarize(fn: FunctionRef, ctx: Context, self_values: Mapping[str, str] | None = None) -> Summary:
    """The direct (non-composed) summary of one function; with `self_values`, of one instance's method
    (`self.<attr>` evaluates to what that instance was built with)."""
    return _Function(fn, ctx, self_values).run()
