"""Static evaluation of the strings that name things: paths, table names, cache keys, URLs.

Resolves literals, module constants (across analysed modules), f-strings, `+`, `%`/`.format`,
`os.path.join`, `pathlib.Path(...)` and `/`. Parts that can't be known become `*`, so two
stages naming `/data/stock/{self.date}.json` compare as the pattern `/data/stock/*.json`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from ..model import FRESH
from .index import ClassRef, FunctionRef, ModuleIndex, Project, analysed_root, class_body_value, named_arguments
from .tree import walk

WILD = "*"
#: a parameter's value inside a summary: `\x00path\x00`, filled in at each call site
MARK = "\x00"
_MARKER = re.compile("\x00([^\x00]*)\x00")
_MAX_DEPTH = 12
_PATH_CTORS = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath", "Path"})
_JOINERS = frozenset({"os.path.join", "posixpath.join", "ntpath.join"})
_PERCENT = re.compile(r"%(\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc]")
_BRACES = re.compile(r"\{[^{}]*\}")


@dataclass(slots=True)
class Scope:
    """Where names are looked up: a function's single-assignment locals, then module constants."""

    module: ModuleIndex
    project: Project | None = None
    locals: Mapping[str, cst.BaseExpression] = field(default_factory=dict)
    #: names that must not fall back to module constants (parameters, loop variables...)
    shadowed: frozenset[str] = frozenset()
    #: parameters: evaluated to a marker so callers can substitute their argument's value
    params: frozenset[str] = frozenset()
    #: the method whose body this is, so `self.table` can read a class-level constant
    owner: FunctionRef | None = None
    #: what `self.<attr>` holds for one known instance (a custom operator built with these arguments)
    self_values: Mapping[str, str] = field(default_factory=dict)


def known(value: str | None) -> bool:
    """A value with at least one literal character (not just wildcards or parameter markers)."""
    return value is not None and _MARKER.sub("", value).replace(WILD, "") != ""


def templated(value: str | None) -> bool:
    """A value that still names a parameter of the function it was found in."""
    return value is not None and MARK in value


def substitute(value: str, values: dict[str, str | None]) -> str:
    """Fill parameter markers with the caller's argument values (unknown ones become `*`)."""
    def fill(m: re.Match[str]) -> str:
        got = values.get(m.group(1))
        return got if got is not None else WILD

    return _squash(_MARKER.sub(fill, value))


def finish(value: str) -> str:
    """A value with any parameter markers left over turned into wildcards."""
    return _squash(_MARKER.sub(WILD, value))


def shared(value: str | None) -> str | None:
    """A value made once and seen by every stage that uses it (a module constant, a class attribute, a
    value the driver hands to several stages): its fresh part (`model.FRESH`) is one name to all of
    them, compared as the pattern `*`."""
    return value.replace(FRESH, WILD) if value is not None and FRESH in value else value


def fresh(value: str | None) -> bool:
    """A name with a part made fresh by the code that names it (see FRESH)."""
    return value is not None and FRESH in value


def _squash(text: str) -> str:
    return re.sub(r"\*+", WILD, text)


def evaluate(expr: cst.BaseExpression | None, scope: Scope, depth: int = 0) -> str | None:
    """The string an expression evaluates to, with `*` for unknown parts; None when nothing is known."""
    if expr is None or depth > _MAX_DEPTH:
        return None
    value = _eval(expr, scope, depth)
    return _squash(value) if value is not None else None


def _eval(expr: cst.BaseExpression, scope: Scope, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return WILD
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    if isinstance(expr, cst.ConcatenatedString):
        left, right = _eval(expr.left, scope, depth + 1), _eval(expr.right, scope, depth + 1)
        return (left or WILD) + (right or WILD)
    if isinstance(expr, cst.FormattedString):
        out = []
        for part in expr.parts:
            if isinstance(part, cst.FormattedStringText):
                out.append(part.value.replace("{{", "{").replace("}}", "}"))
            elif isinstance(part, cst.FormattedStringExpression):
                inner = _eval(part.expression, scope, depth + 1) if part.format_spec is None else None
                out.append(inner or WILD)
        return "".join(out)
    if isinstance(expr, cst.Integer | cst.Float):
        return expr.value
    if isinstance(expr, cst.Name):
        return _name(expr.value, scope, depth)
    if isinstance(expr, cst.Attribute):
        if expr.attr.value == "parent":  # pathlib: Path(__file__).parent
            inner = _eval(expr.value, scope, depth + 1)
            return _dirname(inner) if inner is not None else WILD
        if expr.attr.value in {"name", "stem", "suffix"} and _is_path(expr.value, scope):
            # pathlib: `Path(p).stem` names a task or a file after its source (`hior_items_new`)
            inner = _eval(expr.value, scope, depth + 1)
            if inner is None:
                return WILD
            base = inner.rstrip("/").rsplit("/", 1)[-1]
            stem, dot, suffix = base.rpartition(".") if "." in base.lstrip(".") else (base, "", "")
            return {"name": base, "stem": stem, "suffix": dot + suffix}[expr.attr.value]
        if expr.attr.value in _FRESH_ATTRS and isinstance(expr.value, cst.Name | cst.Call):
            inner = _eval(expr.value, scope, depth + 1)
            if fresh(inner):  # `tmp.name`, `uuid4().hex`
                return inner
        if isinstance(expr.value, cst.Name) and expr.value.value == "self" and expr.attr.value in scope.self_values:
            return shared(scope.self_values[expr.attr.value])
        if (isinstance(expr.value, cst.Name) and expr.value.value in {"self", "cls"}
                and scope.owner is not None and scope.project is not None):
            found = scope.project.class_constant(scope.owner, expr.attr.value)
            if found is not None:
                return shared(_eval(found[0], Scope(found[1], scope.project), depth + 1))
            return WILD
        qualified = scope.module.qualify(expr)
        if qualified and scope.project is not None:
            owner, _, attr = qualified.rpartition(".")
            module = scope.project.module_of(owner)
            if module is not None and attr in module.constants:
                return shared(_eval(module.constants[attr], Scope(module, scope.project), depth + 1))
            klass = scope.project.klass(owner)
            found = _class_attribute(klass, attr, scope.project) if klass is not None else None
            if found is not None:  # `Publications.__tablename__`: an analysed class's own attribute
                return shared(_eval(found[0], Scope(found[1], scope.project), depth + 1))
            member = _enum_member(owner, attr, scope, depth)
            if member is not None:
                return member
        return WILD
    if isinstance(expr, cst.BinaryOperation):
        left, right = _eval(expr.left, scope, depth + 1), _eval(expr.right, scope, depth + 1)
        if isinstance(expr.operator, cst.Add):
            return (left or WILD) + (right or WILD)
        if isinstance(expr.operator, cst.Divide):  # pathlib: base / "name"
            return _join([left or WILD, right or WILD])
        if isinstance(expr.operator, cst.Modulo) and left is not None:
            return _PERCENT.sub(WILD, left)
        return None
    if isinstance(expr, cst.Call):
        return _call(expr, scope, depth)
    if isinstance(expr, cst.Subscript):
        if not isinstance(expr.value, cst.Name):
            inner = _eval(expr.value, scope, depth + 1)
            if fresh(inner):  # `uuid4().hex[:8]`: still a name no other run makes
                return inner
        return _lookup(expr, scope, depth)
    if isinstance(expr, cst.IfExp):
        return WILD
    return None


_DICT_MUTATORS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__"})


def _lookup(expr: cst.Subscript, scope: Scope, depth: int) -> str:
    """`CONFIG["fund_list"]` with CONFIG a module-level dict literal no code in its module changes."""
    if not isinstance(expr.value, cst.Name):
        return WILD
    name = expr.value.value
    if name in scope.locals or name in scope.shadowed or name in scope.params:
        return WILD
    module: ModuleIndex | None = scope.module
    if name not in scope.module.constants and name in scope.module.imports and scope.project is not None:
        owner, _, name = scope.module.imports[name].rpartition(".")
        module = scope.project.module_of(owner)
    if module is None or not isinstance(module.constants.get(name), cst.Dict) or name in _changed_names(module):
        return WILD
    key = subscript_value(expr, scope)
    if key is None or not known(key) or WILD in key or MARK in key:
        return WILD
    inner = Scope(module, scope.project)
    found: cst.BaseExpression | None = None
    for element in module.constants[name].elements:  # type: ignore[attr-defined]
        if not isinstance(element, cst.DictElement):
            return WILD  # `**other`: any key may come from it
        if evaluate(element.key, inner) == key:
            found = element.value  # the last one wins, as in Python
    return (shared(_eval(found, inner, depth + 1)) or WILD) if found is not None else WILD


def _changed_names(module: ModuleIndex) -> frozenset[str]:
    """Module-level names whose contents some code in the module changes (`d[k] = v`, `d.update()`...)."""
    cached = module.memo.get("changed_names")
    if isinstance(cached, frozenset):
        return cached
    names: set[str] = set()
    for node in walk(module.parsed.tree):
        targets: list[cst.BaseExpression] = []
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, cst.AugAssign | cst.AnnAssign | cst.Del):
            targets = [node.target]
        elif (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
              and node.func.attr.value in _DICT_MUTATORS and isinstance(node.func.value, cst.Name)):
            names.add(node.func.value.value)
        elif isinstance(node, cst.Global):
            names.update(n.name.value for n in node.names)
        for target in targets:
            if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
                names.add(target.value.value)
    found = frozenset(names)
    module.memo["changed_names"] = found
    return found


def module_file(module: ModuleIndex) -> str:
    """`__file__` as a path under the analysed folder (from the module's dotted name, not its report path)."""
    parsed = module.parsed
    stem = parsed.module.replace(".", "/") if parsed.module and parsed.module != "__main__" else ""
    if parsed.path is not None and parsed.path.name == "__init__.py":
        return f"{stem}/__init__.py" if stem else "__init__.py"
    return f"{stem}.py" if stem else parsed.relpath.rsplit("/", 1)[-1]


def _dirname(path: str) -> str:
    """`os.path.dirname` / `Path.parent` of a partly known path: unknown stays unknown, never `.`."""
    head, sep, tail = path.rstrip("/").rpartition("/")
    if not sep:
        # a bare name is in the working directory, but an unknown part may hide separators
        return WILD if WILD in tail or MARK in tail else "."
    return head if head else "/"


def _format(template: str, call: cst.Call, scope: Scope, depth: int) -> str:
    """`"...{}...{name}".format(a, name=b)` with the arguments that evaluate filled in, `*` for the rest."""
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    named = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    counter = iter(range(len(positional) + 1000))

    def fill(m: re.Match[str]) -> str:
        field_name = m.group(0)[1:-1].split("!")[0].split(":")[0]
        if field_name == "":
            index = next(counter)
            expr = positional[index] if index < len(positional) else None
        elif field_name.isdigit():
            expr = positional[int(field_name)] if int(field_name) < len(positional) else None
        else:
            expr = named.get(field_name)
        value = _eval(expr, scope, depth + 1) if expr is not None else None
        return value if value is not None else WILD

    return _BRACES.sub(fill, template)


def _name(name: str, scope: Scope, depth: int) -> str | None:
    if name == "__file__":
        return module_file(scope.module)
    if name in scope.params:
        return f"{MARK}{name}{MARK}"
    if name in scope.shadowed:
        return WILD
    if name in scope.locals:
        return _eval(scope.locals[name], scope, depth + 1)
    found = module_constant(name, scope)
    if found is not None:
        return shared(_eval(found[0], Scope(found[1], scope.project), depth + 1))
    return WILD


_PATH_TYPES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PosixPath"})


def _is_path(expr: cst.BaseExpression, scope: Scope) -> bool:
    """`expr` is a pathlib path: `Path(...)`, or its `.parent` / `/ "x"` / `.with_suffix(...)`."""
    if isinstance(expr, cst.Call):
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in {"with_suffix", "with_name", "resolve",
                                                                             "absolute", "joinpath"}:
            return _is_path(expr.func.value, scope)
        return (scope.module.qualify(expr.func) or "") in _PATH_TYPES
    if isinstance(expr, cst.Attribute) and expr.attr.value == "parent":
        return _is_path(expr.value, scope)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Divide):
        return _is_path(expr.left, scope)
    return False


def module_constant(name: str, scope: Scope) -> tuple[cst.BaseExpression, ModuleIndex] | None:
    """The module-level value `name` is bound to: in this module, or in the analysed one it is imported from."""
    module = scope.module
    if name in module.constants:
        return module.constants[name], module
    if name in module.imports and scope.project is not None:
        owner, _, attr = module.imports[name].rpartition(".")
        other = scope.project.module_of(owner)
        if other is not None and attr in other.constants:
            return other.constants[attr], other
    return None


def _join(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out = part if part.startswith("/") or not out else out.rstrip("/") + "/" + part
    return out


def _call(call: cst.Call, scope: Scope, depth: int) -> str | None:
    func = call.func
    qualified = scope.module.qualify(func) or ""
    args = [a.value for a in call.args if a.keyword is None and not a.star]
    if qualified in _JOINERS or qualified in _PATH_CTORS or qualified.endswith(".joinpath"):
        parts = [_eval(a, scope, depth + 1) or WILD for a in args]
        if qualified.endswith(".joinpath") and isinstance(func, cst.Attribute):
            parts.insert(0, _eval(func.value, scope, depth + 1) or WILD)
        return _join(parts) if parts else None
    if qualified in {"str", "os.fspath", "os.path.abspath", "os.path.normpath", "os.path.expanduser",
                     "os.path.realpath"} and args:
        return _eval(args[0], scope, depth + 1)
    if qualified in _FRESH_CALLS:
        return _fresh_name(call, qualified, scope, depth)
    if qualified == "next" and len(args) == 1 and isinstance(args[0], cst.Call):
        inner = _eval(args[0], scope, depth + 1)  # `next(tempfile._get_candidate_names())`
        return inner if fresh(inner) else None
    if qualified == "os.path.dirname" and args:
        inner = _eval(args[0], scope, depth + 1)
        return _dirname(inner) if inner is not None else None
    if qualified == "os.path.basename" and args:
        inner = _eval(args[0], scope, depth + 1)
        return inner.rstrip("/").rsplit("/", 1)[-1] if inner is not None else None
    if isinstance(func, cst.Attribute):
        method = func.attr.value
        base = _eval(func.value, scope, depth + 1)
        if method == "format" and base is not None:
            return _format(base, call, scope, depth)
        if method in {"with_suffix", "with_name"} and base is not None and args:
            suffix = _eval(args[0], scope, depth + 1) or WILD
            stem = base.rsplit(".", 1)[0] if method == "with_suffix" else base.rsplit("/", 1)[0] + "/"
            return stem + suffix
        if method in {"resolve", "absolute", "expanduser"} and base is not None:
            return base
        if method in {"lower", "upper", "casefold"} and base is not None:
            return _case(base, method)
        if method in {"strip", "lstrip", "rstrip"} and base is not None:
            chars = _eval(args[0], scope, depth + 1) if args else None
            if args and (chars is None or WILD in chars):
                return WILD if base.strip() else base
            return getattr(base, method)(chars)  # type: ignore[no-any-return]
        if method == "replace" and base is not None and len(args) >= 2:
            old = _eval(args[0], scope, depth + 1)
            new = _eval(args[1], scope, depth + 1)
            if old is None or WILD in old or not old:
                return WILD
            return base.replace(old, new if new is not None else WILD)
        if method in {"read", "read_text"}:
            return _file_text(func.value, scope, depth)
        if method == "format" and base is None:
            return None
    statement = sa_statement(call, scope)
    if statement is not None:
        return statement
    helper = scope.project.function(qualified) if scope.project is not None and qualified else None
    if helper is not None and not helper.is_method:
        return _returned(helper, call, scope, depth)
    if qualified in SQL_COMPOSERS and args:
        # psycopg2.sql.SQL("... {} ...") / sql.Identifier("t"): the SQL text with its pieces filled in
        if qualified.endswith(("Identifier", "Literal")):
            parts = [_eval(a, scope, depth + 1) or WILD for a in args]
            return ".".join(parts)
        return _eval(args[0], scope, depth + 1)
    return None


#: calls whose result is a name no other call makes (see FRESH); the temp-file ones take a folder
_FRESH_CALLS = frozenset({
    "uuid.uuid1", "uuid.uuid4", "secrets.token_hex", "secrets.token_urlsafe", "tempfile._get_candidate_names",
    "tempfile.mktemp", "tempfile.mkdtemp", "tempfile.TemporaryDirectory", "tempfile.NamedTemporaryFile",
})
_FRESH_ATTRS = frozenset({"name", "hex", "urn"})


def _fresh_name(call: cst.Call, qualified: str, scope: Scope, depth: int) -> str:
    """A fresh name: `mkdtemp(suffix, prefix, dir)` is `<dir>/<prefix><unique><suffix>`, the rest `<unique>`."""
    if not qualified.startswith("tempfile.") or qualified.endswith("_get_candidate_names"):
        return FRESH
    named = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    order = ("suffix", "prefix", "dir") if qualified.endswith(("mktemp", "mkdtemp", "TemporaryDirectory")) else ()
    parts = {k: v for k, v in zip(order, positional, strict=False)} | named

    def part(name: str, default: str) -> str:
        expr = parts.get(name)
        return (_eval(expr, scope, depth + 1) or WILD) if expr is not None else default

    return _join([part("dir", WILD), part("prefix", "") + FRESH + part("suffix", "")])


#: calls that give back the path they are handed, spelled another way (see `same_value`)
_SAME_PATH = frozenset({"str", "os.fspath", "os.path.abspath", "os.path.normpath", "os.path.expanduser",
                        "os.path.realpath", *_PATH_CTORS})


def same_value(expr: cst.BaseExpression, name: str, module: ModuleIndex) -> bool:
    """`name = os.path.abspath(name)`, `name = Path(name).resolve()`: the name is rebound to the path it
    already held, so the value a caller passed still names the file."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) \
            and expr.func.attr.value in {"resolve", "absolute", "expanduser"} and not expr.args:
        expr = expr.func.value
    if not isinstance(expr, cst.Call) or len(expr.args) != 1 or expr.args[0].keyword or expr.args[0].star:
        return False
    arg = expr.args[0].value
    return (isinstance(arg, cst.Name) and arg.value == name
            and (module.qualify(expr.func) or "") in _SAME_PATH)


def local_assignments(nodes: Iterable[cst.CSTNode]) -> tuple[dict[str, cst.BaseExpression], dict[str, int]]:
    """Each local name's last assigned expression and how often it is assigned (`x = ...`, `with
    ... as x`): a name assigned once evaluates to its expression, one assigned more is unknown.

    Dispatches on the concrete node type: libcst's isinstance checks go through ABCMeta, and this
    runs over every node of every summarised function."""
    single: dict[str, cst.BaseExpression] = {}
    counts: dict[str, int] = {}
    for node in nodes:
        kind = type(node)
        if kind is cst.Assign:
            assert isinstance(node, cst.Assign)
            for t in node.targets:
                split = _path_split(t.target, node.value)
                if split is not None:  # `head, tail = os.path.split(path)`
                    for name, part in split:
                        counts[name] = counts.get(name, 0) + 1
                        single[name] = part
                    continue
                if type(t.target) is cst.Name:
                    name = t.target.value  # type: ignore[attr-defined]
                    counts[name] = counts.get(name, 0) + 1
                    single[name] = node.value
        elif kind is cst.WithItem:
            assert isinstance(node, cst.WithItem)
            if node.asname is not None and type(node.asname.name) is cst.Name:
                # `with open(SQL_FILE) as fh: text = fh.read()`: fh evaluates to what it was opened from
                name = node.asname.name.value  # type: ignore[attr-defined]
                counts[name] = counts.get(name, 0) + 1
                single[name] = node.item
        elif kind is cst.AnnAssign:
            assert isinstance(node, cst.AnnAssign)
            if node.value is not None and type(node.target) is cst.Name:
                name = node.target.value  # type: ignore[attr-defined]
                counts[name] = counts.get(name, 0) + 1
                single[name] = node.value
        elif kind in _REBINDS:
            target = node.target  # type: ignore[attr-defined]
            if type(target) is cst.Name:
                counts[target.value] = counts.get(target.value, 0) + 2  # rebound: never a single value
    return single, counts


def _path_split(target: cst.BaseExpression, value: cst.BaseExpression
                ) -> tuple[tuple[str, cst.BaseExpression], tuple[str, cst.BaseExpression]] | None:
    """`head, tail = os.path.split(p)` as `head = os.path.dirname(p)` and `tail = os.path.basename(p)`."""
    if not (type(target) is cst.Tuple and len(target.elements) == 2 and type(value) is cst.Call
            and len(value.args) == 1 and not value.args[0].keyword and not value.args[0].star):
        return None
    func = value.func
    if not (type(func) is cst.Attribute and func.attr.value == "split" and type(func.value) is cst.Attribute
            and func.value.attr.value == "path" and type(func.value.value) is cst.Name):
        return None
    names = [e.value for e in target.elements]
    if not all(type(n) is cst.Name for n in names):
        return None
    head, tail = (n.value for n in names)  # type: ignore[attr-defined]

    def part(fn: str) -> cst.BaseExpression:
        return cst.Call(cst.Attribute(func.value, cst.Name(fn)), [cst.Arg(value.args[0].value)])

    return (head, part("dirname")), (tail, part("basename"))


#: what makes a function's result more than one expression of its parameters (see `_returned`)
_NOT_ONE_VALUE: frozenset[type[cst.CSTNode]] = frozenset({cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Yield,
                                                           cst.Await})

#: statements that rebind a name without giving it one value
_REBINDS = frozenset({cst.AugAssign, cst.For, cst.NamedExpr})


def function_returns(fn: FunctionRef, blocking: frozenset[type[cst.CSTNode]]
                     ) -> tuple[list[cst.Return], dict[str, cst.BaseExpression], dict[str, int]] | None:
    """A function's `return` statements and its locals (`local_assignments`), from one walk of its
    body; None when a node of a `blocking` type is in it (a nested function, a `yield`: then its
    returns are not all its own, or its result is not one value)."""
    nodes = list(walk(fn.node.body))
    returns: list[cst.Return] = []
    for node in nodes:
        kind = type(node)
        if kind in blocking:
            return None
        if kind is cst.Return:
            returns.append(node)  # type: ignore[arg-type]
    single, counts = local_assignments(nodes)
    return returns, single, counts


def _returned(fn: FunctionRef, call: cst.Call, scope: Scope, depth: int) -> str | None:
    """What a call of an analysed function returns, when its body returns one value: that expression,
    evaluated with each parameter bound to what the call passes (or its default). Path and name
    helpers (`def out(name): return os.path.join(OUT_DIR, f"{name}.csv")`) then give each caller its
    own file instead of a name built at run time. Any other shape (several returns, a generator, a
    nested function, `*args` at the call) is not evaluated."""
    if any(arg.star for arg in call.args):
        return None
    shape = function_returns(fn, _NOT_ONE_VALUE)
    if shape is None or len(shape[0]) != 1:
        return None
    returns, single, counts = shape
    returned = returns[0].value
    if returned is None:
        return None
    params = {*fn.params, *fn.kwonly}
    bound: dict[str, cst.BaseExpression] = {}
    for name, arg in named_arguments(fn.params, call.args):
        value = _eval(arg.value, scope, depth + 1)
        if name in params and value is not None:
            bound[name] = cst.SimpleString(repr(value))
    for name, default in fn.defaults.items():
        bound.setdefault(name, default)
    names = {n: v for n, v in single.items() if counts[n] == 1 and n not in params}
    names.update({n: v for n, v in bound.items() if n not in counts})
    unknown = frozenset((params - set(names)) | {n for n, c in counts.items() if c > 1 or n in params})
    return _eval(returned, Scope(fn.module, scope.project, names, unknown), depth + 1)


#: psycopg2/psycopg SQL composition: `sql.SQL(text).format(sql.Identifier(name))`
SQL_COMPOSERS = frozenset({
    f"{m}.sql.{c}" for m in ("psycopg2", "psycopg") for c in ("SQL", "Identifier", "Literal", "Composed")
} | {"sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text"})

#: SQLAlchemy Core statement constructors, by the statement they start (dialect inserts included)
_SA_ROOTS = {
    **{f"{m}.{verb}": verb for m in ("sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression", "sqlalchemy.future")
       for verb in ("select", "insert", "update", "delete", "exists")},
    **{f"sqlalchemy.dialects.{d}.insert": "insert" for d in ("postgresql", "mysql", "sqlite")},
    **{f"sqlalchemy.dialects.{d}.{d}.insert": "insert" for d in ("postgresql", "mysql", "sqlite")},
}
#: methods of a Table (or `Model.__table__`) that start a statement on it
_SA_TABLE_VERBS = frozenset({"insert", "select", "update", "delete"})
#: methods that refine a statement (clauses, options); their arguments may name more tables
_SA_CLAUSES = frozenset({
    "values", "where", "filter", "filter_by", "order_by", "group_by", "having", "limit", "offset", "returning",
    "on_conflict_do_nothing", "on_conflict_do_update", "on_duplicate_key_update", "execution_options", "distinct",
    "prefix_with", "with_for_update", "options", "correlate", "params", "add_columns", "with_only_columns", "join",
    "outerjoin", "join_from", "select_from", "from_select", "subquery", "cte", "scalar_subquery", "union",
    "union_all", "inline", "ordered_values", "set_", "label", "alias", "exists", "fetch", "slice", "with_hint",
})
_UPSERTS = frozenset({"on_conflict_do_nothing", "on_conflict_do_update", "on_duplicate_key_update"})


#: plain calls that start a SQLAlchemy statement (`select(Run)`): their value is SQL to scan
SA_STATEMENT_CALLS = frozenset(_SA_ROOTS)


def orm_table(expr: cst.BaseExpression, module: ModuleIndex, project: Project) -> str | None:
    """The table of an ORM model class or instance: `__tablename__`, else the class name in snake case."""
    if isinstance(expr, cst.Call):
        expr = expr.func
    klass = project.klass(module.qualify(expr)) if isinstance(expr, cst.Name | cst.Attribute) else None
    return model_table(klass, project) if klass is not None else None


def model_table(klass: ClassRef, project: Project) -> str | None:
    """The table an ORM model class maps to: `__tablename__`, a Django model's `Meta.db_table` or
    `<app>_<model>`, else the class name in snake case (SQLAlchemy's declarative default)."""
    declared = _tablename(klass, project)
    if declared is not None:
        return declared or None
    if any(b.startswith("django.db.models.") for c in project.lineage(klass) for b in c.bases):
        return _django_table(klass, project)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", klass.name).lower()


def is_orm_model(klass: ClassRef, project: Project) -> bool:
    """A class mapped to a table: `__tablename__`/`__table__` along its lineage, or a library base named
    `Model` (Flask-SQLAlchemy's `db.Model`, `django.db.models.Model`)."""
    for owner in project.lineage(klass):
        if "__tablename__" in owner.attributes or "__table__" in owner.attributes:
            return True
        if any(b.rsplit(".", 1)[-1] == "Model" and project.klass(b) is None for b in owner.bases):
            return True
    return False


def _django_table(klass: ClassRef, project: Project) -> str | None:
    """`class Meta: db_table = "..."` (None when it can't be resolved), else Django's default name:
    the app label (`Meta.app_label`, else the package holding `models`) and the model's name, lowered."""
    meta: dict[str, str | None] = {}
    for stmt in klass.node.body.body if isinstance(klass.node.body, cst.IndentedBlock) else ():
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == "Meta":
            for small in (s for line in stmt.body.body if isinstance(line, cst.SimpleStatementLine)
                          for s in line.body):
                if isinstance(small, cst.Assign) and isinstance(small.targets[0].target, cst.Name):
                    meta[small.targets[0].target.value] = evaluate(small.value, Scope(klass.module, project))
    if "db_table" in meta:
        table = meta["db_table"]
        return table if table and known(table) and WILD not in table else None
    parts = klass.module.name.split(".")
    app = meta.get("app_label") or (parts[parts.index("models") - 1] if "models" in parts[1:] else
                                    parts[-2] if len(parts) > 1 else parts[0])
    return f"{app}_{klass.name.lower()}" if app and known(app) else None


def _tablename(klass: ClassRef, project: Project) -> str | None:
    """`__tablename__` along the class's analysed lineage: the name, "" when it can't be resolved,
    None when no class declares one."""
    if not any("__tablename__" in c.attributes for c in project.lineage(klass)):
        return None
    found = _class_attribute(klass, "__tablename__", project)
    if found is None:
        return ""
    name = evaluate(found[0], Scope(found[1], project))
    return name if known(name) and WILD not in (name or "") else ""


def _enum_member(owner: str, attr: str, scope: Scope, depth: int) -> str | None:
    """`Table.ORDERS.value` / `.name` of a member of an analysed `enum.Enum` subclass."""
    assert scope.project is not None
    enum_name, _, member = owner.rpartition(".")
    klass = scope.project.klass(enum_name) if attr in {"value", "name"} else None
    if klass is None or not any(b.startswith("enum.") for c in scope.project.lineage(klass) for b in c.bases):
        return None
    if attr == "name":
        return member
    found = _class_attribute(klass, member, scope.project)
    return _eval(found[0], Scope(found[1], scope.project), depth + 1) if found is not None else None


def _class_attribute(klass: ClassRef, attr: str, project: Project) -> tuple[cst.BaseExpression, ModuleIndex] | None:
    for owner in project.lineage(klass):
        if attr in owner.attributes:
            value = class_body_value(owner, attr)
            return (value, owner.module) if value is not None else None
    return None


def sa_statement(call: cst.Call, scope: Scope) -> str | None:
    """SQL standing for a SQLAlchemy Core statement (`insert(Model).values(...).on_conflict_do_nothing()`,
    `select(A.x).join(B)`, `table.delete().where(...)`), so the statement's tables are found the way a SQL
    string's are. The written table is the root's first argument; every model or table the statement
    names anywhere is read. None when `call` is not such a statement."""
    if scope.project is None:
        return None
    chain: list[cst.Call] = []
    node: cst.BaseExpression = call
    hops = 0
    while len(chain) < 64:
        if isinstance(node, cst.Name) and isinstance(scope.locals.get(node.value), cst.Call) and hops < 4:
            node = scope.locals[node.value]  # `stmt = insert(t).from_select(...)`, then `stmt.on_duplicate_...`
            hops += 1
            continue
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            break
        if (scope.module.qualify(node.func) or "") in _SA_ROOTS:
            break  # `mysql.insert(t)`: a dialect's constructor reached through its module
        method = node.func.attr.value
        if method in _SA_TABLE_VERBS and _table_of(node.func.value, scope) is not None:
            break
        if method not in _SA_CLAUSES:
            return None
        chain.append(node)
        node = node.func.value
    if not isinstance(node, cst.Call):
        return None
    qualified = scope.module.qualify(node.func) or ""
    verb = _SA_ROOTS.get(qualified)
    args = [a.value for a in node.args if a.keyword is None and not a.star]
    subject = args[0] if args else None
    if verb is None and isinstance(node.func, cst.Attribute) and node.func.attr.value in _SA_TABLE_VERBS:
        verb, subject = node.func.attr.value, node.func.value  # `funders.insert()`
    if verb is None:
        return None
    target: str | None = None
    if verb in {"insert", "update", "delete"}:
        target = (_table_of(subject, scope) if subject is not None else None) or WILD
    named = _tables_named([a.value for c in [node, *chain] for a in c.args], scope)
    if verb in {"insert", "update"} and subject is not None:
        # a foreign key is checked on every insert or update: the parent table is read
        named |= references(subject, scope)
    reads = sorted(named - {target}) if target else sorted(named)
    methods = {c.func.attr.value for c in chain if isinstance(c.func, cst.Attribute)}
    source = f"SELECT * FROM {', '.join(reads)}" if reads else ""
    if verb in {"select", "exists"}:
        return source or f"SELECT * FROM {WILD}"
    where = f" WHERE EXISTS ({source})" if source else ""
    if verb == "insert":
        text = f"INSERT INTO {target} {source or 'DEFAULT VALUES'}"
        return text + (" ON CONFLICT DO NOTHING" if methods & _UPSERTS else "")
    if verb == "update":
        return f"UPDATE {target} SET sg_column = 1{where}"
    return f"DELETE FROM {target}{where}"


def _table_of(expr: cst.BaseExpression, scope: Scope) -> str | None:
    """The table an expression stands for: an ORM model (or `Model.__table__`), a `Table("name", ...)`
    or `table("name")`, or a module constant bound to one."""
    assert scope.project is not None
    if isinstance(expr, cst.Attribute) and expr.attr.value == "__table__":
        expr = expr.value
    if isinstance(expr, cst.Name | cst.Attribute):
        klass = scope.project.klass(scope.module.qualify(expr))
        if klass is not None:
            return orm_table(expr, scope.module, scope.project)
        found = None
        if isinstance(expr, cst.Name):
            found = (scope.locals[expr.value], scope.module) if expr.value in scope.locals \
                else module_constant(expr.value, scope)
        if found is not None and isinstance(found[0], cst.Call):
            return _table_of(found[0], Scope(found[1], scope.project))
        return None
    if isinstance(expr, cst.Call):
        qualified = scope.module.qualify(expr.func) or ""
        if qualified.rsplit(".", 1)[-1] in {"Table", "table"} and qualified.startswith("sqlalchemy") and expr.args:
            name = evaluate(expr.args[0].value, scope)
            return name if known(name) else WILD
    return None


def references(expr: cst.BaseExpression, scope: Scope) -> set[str]:
    """Tables a model or Table's foreign keys point at (`ForeignKey("funders.id")` -> funders)."""
    assert scope.project is not None
    if isinstance(expr, cst.Call):
        expr = expr.func
    if isinstance(expr, cst.Attribute) and expr.attr.value == "__table__":
        expr = expr.value
    sources: list[tuple[cst.BaseExpression, ModuleIndex]] = []
    klass = scope.project.klass(scope.module.qualify(expr)) if isinstance(expr, cst.Name | cst.Attribute) else None
    if klass is not None:
        sources = [(v, c.module) for c in scope.project.lineage(klass) for v in c.attributes.values()]
    elif isinstance(expr, cst.Name):
        found = module_constant(expr.value, scope)
        sources = [found] if found is not None else []
    out: set[str] = set()
    for value, module in sources:
        for node in walk(value):
            if not (isinstance(node, cst.Call) and node.args):
                continue
            called = module.qualify(node.func) or ""
            if called.startswith("sqlalchemy") and called.endswith("ForeignKey"):
                name = evaluate(node.args[0].value, Scope(module, scope.project))
                if name is not None:
                    out.add(name.rsplit(".", 1)[0] if "." in name else WILD)
    return out


def _tables_named(exprs: list[cst.BaseExpression], scope: Scope) -> set[str]:
    """Every table a statement's arguments name: models (`Funder`, `Funder.federal`) and tables."""
    assert scope.project is not None
    out: set[str] = set()
    for expr in exprs:
        for node in walk(expr):
            if isinstance(node, cst.Name | cst.Attribute):
                table = _table_of(node, scope)
                if table is not None and (table == WILD or _is_model_or_table(node, scope)):
                    out.add(table)
    return out


def _is_model_or_table(expr: cst.BaseExpression, scope: Scope) -> bool:
    """A class that declares a table (`__tablename__`/`__table__` in its lineage), or a Table object."""
    assert scope.project is not None
    klass = scope.project.klass(scope.module.qualify(expr))
    if klass is None:
        return True  # `_table_of` found a Table object
    return any("__tablename__" in c.attributes or "__table__" in c.attributes for c in scope.project.lineage(klass))


#: SQL files larger than this are not read (a dump, not a statement)
_MAX_SQL_FILE = 512 * 1024


def subscript_value(expr: cst.Subscript, scope: Scope) -> str | None:
    """What a single-index subscript's key evaluates to (`db["orders"]` -> `orders`), else None."""
    element = expr.slice[0].slice if len(expr.slice) == 1 else None
    return evaluate(element.value, scope) if isinstance(element, cst.Index) else None


def _case(text: str, method: str) -> str:
    """Lower/upper-case the literal parts of a value; a parameter's part becomes `*` (its case is not known
    until a caller fills it in, and the caller's value would arrive unchanged)."""
    return str(getattr(_MARKER.sub(WILD, text), method)()).replace(WILD.lower(), WILD)


def _opened_path(expr: cst.BaseExpression, scope: Scope, depth: int) -> str | None:
    """The path behind `open(p)` / `Path(p)` / a local bound to one (`with open(p) as fh`)."""
    if isinstance(expr, cst.Name) and expr.value in scope.locals:
        expr = scope.locals[expr.value]
    if isinstance(expr, cst.Call):
        qualified = scope.module.qualify(expr.func) or ""
        if qualified in {"open", "io.open", "codecs.open"} and expr.args:
            return _eval(expr.args[0].value, scope, depth + 1)
    return _eval(expr, scope, depth + 1)


def _file_text(expr: cst.BaseExpression, scope: Scope, depth: int) -> str | None:
    """The text of a `.sql` file the code reads (`open(SQL_PATH).read()`, `Path(p).read_text()`).

    Only files inside the analysed root are read, and only `.sql` files: the point is to see the SQL a
    stage runs, never to read arbitrary files the analysed code names.
    """
    path = _opened_path(expr, scope, depth)
    if path is None or WILD in path or MARK in path or not path.lower().endswith(".sql"):
        return None
    located = locate_file(scope.module, path)
    if located is None:
        return None
    try:
        if located.stat().st_size > _MAX_SQL_FILE:
            return None
        return located.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def locate_file(module: ModuleIndex, name: str) -> Path | None:
    """A file the code names, looked up beside the module, then under the analysed root; never outside it."""
    root = analysed_root(module.parsed)
    if root is None or module.parsed.path is None:
        return None
    here = module.parsed.path.resolve().parent
    candidates = [Path(name)] if name.startswith("/") else [here / name, root / name]
    if name.startswith("/"):
        # an absolute path in a container (`/opt/airflow/dags/sql/x.sql`): try its tail under the root
        parts = Path(name).parts[1:]
        candidates = [root.joinpath(*parts[i:]) for i in range(len(parts))]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            continue
        if resolved.is_file() and resolved.is_relative_to(root):
            return resolved
    return None


def receiver_values(project: Project, fn: FunctionRef, receiver: ClassRef, exact: bool) -> dict[str, str]:
    """What the `self.<attr>` the method reads hold when `self` is a `receiver` object, for the
    attributes one summary of the whole hierarchy cannot pin down (a subclass overrides them).
    Empty when `fn` is not a method of the receiver's lineage. See `Project.receiver_constant`."""
    owner = fn.module.classes.get(fn.class_name) if fn.class_name else None
    if owner is None or owner not in project.lineage(receiver):
        return {}
    values: dict[str, str] = {}
    read = {node.attr.value for node in walk(fn.node.body)
            if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self"}
    for attr in sorted(read):
        if project.class_constant(fn, attr) is not None:
            continue  # already one value for the whole hierarchy
        found = project.receiver_constant(receiver, attr, exact)
        value = evaluate(found[0], Scope(found[1], project)) if found is not None else None
        if value is not None and known(value):
            values[attr] = value
    return values
