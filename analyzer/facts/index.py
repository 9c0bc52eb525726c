"""Per-module and project-wide name tables: imports, definitions, constants, positions.

This is the resolver the rest of the facts layer asks "what does this name mean?":
`pd.read_csv` -> `pandas.read_csv`, `dedup` -> `etl.steps.dedup` (across modules, through
aliases, relative imports and package re-exports), `self.price` -> the method of the class.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from ..source import ParsedModule
from .tree import start_positions, walk

_SUPPRESS = re.compile(r"#\s*stagegraph:\s*ignore(?:\[([\w\-, ]+)\])?")


@dataclass(slots=True)
class FunctionRef:
    """A function or method defined in the analysed code."""

    qualname: str  # module.func or module.Class.method
    name: str
    module: ModuleIndex
    node: cst.FunctionDef
    class_name: str | None = None

    @property
    def is_method(self) -> bool:
        return self.class_name is not None

    @property
    def params(self) -> list[str]:
        p = self.node.params
        names = [x.name.value for x in (*p.posonly_params, *p.params)]
        return names

    @property
    def kwonly(self) -> list[str]:
        """Keyword-only parameters (after `*` or `*args`)."""
        return [x.name.value for x in self.node.params.kwonly_params]

    @property
    def defaults(self) -> dict[str, cst.BaseExpression]:
        """Each parameter's default value expression, for those that have one."""
        p = self.node.params
        return {x.name.value: x.default for x in (*p.posonly_params, *p.params, *p.kwonly_params)
                if x.default is not None}

    @property
    def line(self) -> int:
        return self.module.line(self.node)


@dataclass(slots=True)
class ClassRef:
    qualname: str
    name: str
    module: ModuleIndex
    node: cst.ClassDef
    bases: list[str]
    methods: dict[str, FunctionRef] = field(default_factory=dict)
    #: class-level assignments (`steps = [...]`)
    attributes: dict[str, cst.BaseExpression] = field(default_factory=dict)


@dataclass(slots=True)
class ModuleIndex:
    parsed: ParsedModule
    imports: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionRef] = field(default_factory=dict)
    classes: dict[str, ClassRef] = field(default_factory=dict)
    constants: dict[str, cst.BaseExpression] = field(default_factory=dict)
    #: node positions, computed on first use: they cost ~5x the parse, and most modules never report a line
    _positions: dict[cst.CSTNode, tuple[int, int]] | None = None
    suppressions: dict[int, frozenset[str]] = field(default_factory=dict)
    #: per-module results computed once by later passes (mutable globals, handles)
    memo: dict[str, object] = field(default_factory=dict)
    #: modules this one imports with `from x import *`, resolved into `imports` by `Project.build`
    star_imports: list[str] = field(default_factory=list)

    @property
    def relpath(self) -> str:
        return self.parsed.relpath

    @property
    def name(self) -> str:
        return self.parsed.module

    @property
    def positions(self) -> dict[cst.CSTNode, tuple[int, int]]:
        if self._positions is None:
            self._positions = start_positions(self.parsed.tree)
        return self._positions

    def line(self, node: cst.CSTNode) -> int:
        pos = self.positions.get(node)
        return pos[0] if pos else 1

    def column(self, node: cst.CSTNode) -> int:
        pos = self.positions.get(node)
        return pos[1] + 1 if pos else 1

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        """The dotted name an expression refers to (imports resolved), or None if it is not a name."""
        if isinstance(expr, cst.Name):
            name = expr.value
            if name in self.imports:
                return self.imports[name]
            if name in self.functions or name in self.classes or name in self.constants:
                return f"{self.name}.{name}"
            return name
        if isinstance(expr, cst.Attribute):
            base = self.qualify(expr.value)
            return f"{base}.{expr.attr.value}" if base else None
        return None


def analysed_root(parsed: ParsedModule) -> Path | None:
    """The analysed folder, from one module's file and dotted name (report paths may be relative to the
    repository root instead, so the module name is what says how deep the file sits)."""
    if parsed.path is None:
        return None
    root = parsed.path.resolve()
    if root.name == "__init__.py":
        # a package's own module name is its folder's; the analysed folder's own __init__ names nothing
        root = root.parent
        depth = len(parsed.module.split(".")) if parsed.module and parsed.module != "__main__" else 0
    else:
        depth = len(parsed.module.split(".")) if parsed.module else 1
    for _ in range(depth):
        root = root.parent
    return root


def _outer_packages(modules: Iterable[ModuleIndex]) -> tuple[str, ...]:
    """`pkg.sub`, `sub`: the package names above the analysed folder, when it is inside a package;
    the folder's own name when it is a namespace package (`app/` without `__init__.py`, whose
    modules import each other as `app.models`)."""
    for module in sorted(modules, key=lambda m: m.parsed.path is not None and m.parsed.path.name == "__init__.py"):
        root = analysed_root(module.parsed)
        if root is None:
            continue
        names: list[str] = []
        folder = root
        while (folder / "__init__.py").is_file() and len(names) < 4:
            names.insert(0, folder.name)
            folder = folder.parent
        if not names and root.name.isidentifier() and not keyword.iskeyword(root.name):
            # a namespace package (PEP 420: no __init__.py) imports itself by its folder's name too
            names = [root.name]
        return tuple(".".join(names[i:]) for i in range(len(names)))
    return ()


class _Substitute(cst.CSTTransformer):
    """Replace names by expressions (a class body's earlier attributes, inside a later one)."""

    def __init__(self, values: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.values = values

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        value = self.values.get(original.value)
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]) \
            if isinstance(value, cst.BinaryOperation) else (value or updated)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)  # `x.name` names no variable

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)  # nor does `f(name=...)`


def class_body_value(owner: ClassRef, attr: str, depth: int = 0) -> cst.BaseExpression | None:
    """A class attribute's value with the class's own earlier attributes it uses filled in.

    Names in a class body are the class's own first: in `output = "./out/" + name`, `name` is the
    attribute set above it (never a module constant of that name). One set below it, or a chain
    deeper than a few levels, leaves the value unresolved."""
    value = owner.attributes[attr]
    order = list(owner.attributes)
    nodes = list(walk(value))
    labels = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)} | \
        {id(n.keyword) for n in nodes if isinstance(n, cst.Arg) and n.keyword is not None}
    used = {n.value for n in nodes if isinstance(n, cst.Name) and n.value in owner.attributes and id(n) not in labels}
    if not used:
        return value
    if depth >= 4 or any(order.index(name) >= order.index(attr) for name in used):
        return None
    filled: dict[str, cst.BaseExpression] = {}
    for name in used:
        inner = class_body_value(owner, name, depth + 1)
        if inner is None:
            return None
        filled[name] = inner
    result = value.visit(_Substitute(filled))
    return result if isinstance(result, cst.BaseExpression) else None


def _exported(module: ModuleIndex) -> dict[str, str]:
    """What `from module import *` binds: name -> the qualified name it refers to."""
    names: dict[str, str] = {}
    for name in [*module.functions, *module.classes, *module.constants]:
        names[name] = f"{module.name}.{name}"
    for name, qualified in module.imports.items():
        names.setdefault(name, qualified)
    listed = module.constants.get("__all__")
    if isinstance(listed, cst.List | cst.Tuple):
        wanted = {e.value.evaluated_value for e in listed.elements
                  if isinstance(e.value, cst.SimpleString) and isinstance(e.value.evaluated_value, str)}
        return {n: q for n, q in names.items() if n in wanted}
    return {n: q for n, q in names.items() if not n.startswith("_")}


def dotted(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` as a string, without resolving imports."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = dotted(expr.value)
        return f"{base}.{expr.attr.value}" if base else None
    return None


def _absolute(module: str, level: int, target: str | None, is_package: bool) -> str:
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: max(len(parts) - (level - 1), 0)]
    base = ".".join(parts)
    if target:
        return f"{base}.{target}" if base else target
    return base


#: import paths a library's own import hook redirects: Flask (before 1.0) served `flask.ext.sqlalchemy`
#: as `flask_sqlalchemy`, so models of the real module apply to code written against the old path
_REDIRECTS = (("flask.ext.", "flask_"),)


def _import_name(node: cst.BaseExpression) -> str:
    return dotted(node) or ""


def _redirected(name: str) -> str:
    for old, new in _REDIRECTS:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def index_module(parsed: ParsedModule) -> ModuleIndex:
    """Build the name table of one module (one pass over its top-level statements; positions come later)."""
    index = ModuleIndex(parsed)
    is_package = parsed.relpath.endswith("__init__.py")
    for lineno, text in enumerate(parsed.lines, start=1):
        if "stagegraph" in text:
            m = _SUPPRESS.search(text)
            if m:
                rules = frozenset(r.strip() for r in (m.group(1) or "*").split(",") if r.strip())
                index.suppressions[lineno] = rules
    _collect(parsed.tree.body, index, is_package, top=True)
    return index


def _collect(body: Iterable[cst.CSTNode], index: ModuleIndex, is_package: bool, top: bool) -> None:
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                _collect_small(small, index, is_package)
        elif isinstance(stmt, cst.FunctionDef) and top:
            name = stmt.name.value
            index.functions[name] = FunctionRef(f"{index.name}.{name}", name, index, stmt)
        elif isinstance(stmt, cst.ClassDef) and top:
            _collect_class(stmt, index)
        elif isinstance(stmt, cst.If | cst.Try | cst.With):
            # imports and constants under `if TYPE_CHECKING:` / `try: import x except ImportError`
            for block in _blocks(stmt):
                _collect(block, index, is_package, top)


def _blocks(stmt: cst.CSTNode) -> list[Iterable[cst.CSTNode]]:
    out: list[Iterable[cst.CSTNode]] = []
    body = getattr(stmt, "body", None)
    if isinstance(body, cst.IndentedBlock):
        out.append(body.body)
    if isinstance(stmt, cst.Try):
        for handler in stmt.handlers:
            if isinstance(handler.body, cst.IndentedBlock):
                out.append(handler.body.body)
    orelse = getattr(stmt, "orelse", None)
    if isinstance(orelse, cst.Else) and isinstance(orelse.body, cst.IndentedBlock):
        out.append(orelse.body.body)
    elif isinstance(orelse, cst.If):
        out.extend(_blocks(orelse))
    return out


def _collect_small(small: cst.BaseSmallStatement, index: ModuleIndex, is_package: bool) -> None:
    if isinstance(small, cst.Import):
        for alias in small.names:
            full = _import_name(alias.name)
            if alias.asname and isinstance(alias.asname.name, cst.Name):
                index.imports[alias.asname.name.value] = _redirected(full)
            else:
                head = full.split(".")[0]
                index.imports.setdefault(head, head)
    elif isinstance(small, cst.ImportFrom):
        level = len(small.relative)
        mod = _import_name(small.module) if small.module else None
        base = _absolute(index.name, level, mod, is_package) if level else (mod or "")
        if isinstance(small.names, cst.ImportStar):
            if base:
                index.star_imports.append(base)
            return
        for alias in small.names:
            name = _import_name(alias.name)
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            index.imports[local] = _redirected(f"{base}.{name}" if base else name)
    elif isinstance(small, cst.Assign):
        for target in small.targets:
            if isinstance(target.target, cst.Name):
                index.constants[target.target.value] = small.value
    elif isinstance(small, cst.AnnAssign) and small.value is not None and isinstance(small.target, cst.Name):
        index.constants[small.target.value] = small.value


def _collect_class(node: cst.ClassDef, index: ModuleIndex) -> None:
    name = node.name.value
    bases = [index.qualify(arg.value) or "" for arg in node.bases]
    ref = ClassRef(f"{index.name}.{name}", name, index, node, bases)
    if isinstance(node.body, cst.IndentedBlock):
        for stmt in node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                mname = stmt.name.value
                ref.methods[mname] = FunctionRef(f"{ref.qualname}.{mname}", mname, index, stmt, class_name=name)
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name):
                                ref.attributes[target.target.value] = small.value
                    elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value:
                        ref.attributes[small.target.value] = small.value
    index.classes[name] = ref


@dataclass(slots=True)
class Project:
    """Every analysed module, plus lookups across them."""

    modules: dict[str, ModuleIndex]
    functions: dict[str, FunctionRef] = field(default_factory=dict)
    classes: dict[str, ClassRef] = field(default_factory=dict)
    _suffix: dict[str, list[str]] = field(default_factory=dict)
    #: analysed subclasses of each class (by qualname), computed on first use
    _children: dict[str, list[ClassRef]] | None = None
    #: analysed methods by their name, computed on first use
    _methods: dict[str, list[FunctionRef]] | None = None
    #: per class, the attribute names its methods assign on `self`
    _assigned: dict[str, frozenset[str]] = field(default_factory=dict)
    #: dotted names of the packages the analysed folder sits in (`search` when `search/` itself is
    #: audited): `from search.api import f` then names the analysed module `api`
    _outer: tuple[str, ...] = ()

    @classmethod
    def build(cls, modules: Iterable[ModuleIndex]) -> Project:
        project = cls({m.name: m for m in modules})
        for module in project.modules.values():
            for fn in module.functions.values():
                project.functions[fn.qualname] = fn
            for klass in module.classes.values():
                project.classes[klass.qualname] = klass
                for method in klass.methods.values():
                    project.functions[method.qualname] = method
        for key in [*project.functions, *project.classes, *project.modules]:
            parts = key.split(".")
            for i in range(1, len(parts)):
                project._suffix.setdefault(".".join(parts[i:]), []).append(key)
        project._outer = _outer_packages(project.modules.values())
        project._resolve_star_imports()
        return project

    def _resolve_star_imports(self) -> None:
        """`from helpers import *` binds every public name of an analysed `helpers` (its `__all__` when
        that is a literal list) as if imported one by one; explicit bindings of the importer win.
        Chains (`a` star-imports `b`, which star-imports `c`) settle in a few rounds."""
        importers = [m for m in self.modules.values() if m.star_imports]
        for _ in range(4):
            changed = False
            for module in importers:
                for target in module.star_imports:
                    source = self.module_of(target)
                    if source is None or source is module:
                        continue
                    for name, qualified in _exported(source).items():
                        if (name not in module.imports and name not in module.functions
                                and name not in module.classes and name not in module.constants):
                            module.imports[name] = qualified
                            changed = True
            if not changed:
                break

    def _canonical(self, qualified: str, depth: int = 0) -> str | None:
        """Map an import-qualified name onto a key of this project (suffix match, re-exports)."""
        if qualified in self.functions or qualified in self.classes or qualified in self.modules:
            return qualified
        for outer in self._outer:
            marker = f"{outer}."
            if qualified.startswith(marker):
                inner = qualified[len(marker):]
            elif f".{marker}" in qualified:
                # `src.pipeline.x` from a repository that imports the analysed folder through a plain
                # directory above it (the "src layout")
                inner = qualified.split(f".{marker}", 1)[1]
            else:
                continue
            if inner in self.functions or inner in self.classes or inner in self.modules:
                return inner
        hits = self._suffix.get(qualified)
        if hits and len(hits) == 1:
            return hits[0]
        if depth < 4 and "." in qualified:
            mod, _, attr = qualified.rpartition(".")
            # the owner is found the way any name is (outer packages, suffixes, its own re-exports),
            # so `pkg.sub.f` reaches `f` re-exported by `sub/__init__.py` when `pkg/` is audited
            owner_key = self._canonical(mod, depth + 1)
            owner = self.modules.get(owner_key) if owner_key else None
            if owner is not None and attr in owner.imports and owner.imports[attr] != qualified:
                return self._canonical(owner.imports[attr], depth + 1)
        return None

    def singleton(self, qualified: str | None) -> tuple[ClassRef, str] | None:
        """A module-level instance of an analysed class (`service = OrderService()` in `services.py`,
        imported elsewhere): its class and qualified name."""
        if not qualified or "." not in qualified:
            return None
        mod, _, var = qualified.rpartition(".")
        owner = self.module_of(mod)
        value = owner.constants.get(var) if owner is not None else None
        if owner is None or not isinstance(value, cst.Call):
            return None
        klass = self.klass(owner.qualify(value.func))
        return (klass, f"{owner.name}.{var}") if klass is not None else None

    def shared_name(self, name: str) -> bool:
        """Whether more than one analysed function, class or module ends in `name` (`main` in every step)."""
        return len(self._suffix.get(name, ())) > 1

    def function(self, qualified: str | None) -> FunctionRef | None:
        key = self._object_key(qualified)
        return self.functions.get(key) if key else None

    def klass(self, qualified: str | None) -> ClassRef | None:
        key = self._object_key(qualified)
        return self.classes.get(key) if key else None

    def _object_key(self, qualified: str | None) -> str | None:
        """The key of the function or class `qualified` names. `pkg.title` names the submodule
        `pkg/title.py`, but when `pkg/__init__.py` does `from .title import title`, the attribute
        `pkg.title` is that function (the import rebinds it), which is what `pkg.title(x)` calls."""
        key = self._canonical(qualified) if qualified else None
        if key is None or key not in self.modules:
            return key
        package, _, attr = key.rpartition(".")
        owner = self.modules.get(package) if package else None
        rebound = owner.imports.get(attr) if owner is not None else None
        if not rebound or rebound == key:
            return None
        return self._canonical(rebound)

    def method(self, klass: ClassRef, name: str, depth: int = 0) -> FunctionRef | None:
        """A method by name, looking through analysed base classes."""
        if name in klass.methods:
            return klass.methods[name]
        if depth < 6:
            for base in klass.bases:
                parent = self.klass(base)
                if parent is not None and parent is not klass:
                    found = self.method(parent, name, depth + 1)
                    if found:
                        return found
        return None

    def class_constant(self, fn: FunctionRef, attr: str) -> tuple[cst.BaseExpression, ModuleIndex] | None:
        """The class-level value `self.<attr>` has in a method, when it is provably that one value.

        `table = "artists"` on the class (or an analysed base) and `self.table` in its method. Not
        when an analysed subclass overrides the attribute (the method runs for it too), and not
        when any method in the hierarchy assigns `self.<attr>` (an instance value may shadow it).
        """
        klass = fn.module.classes.get(fn.class_name) if fn.class_name is not None else None
        return self.receiver_constant(klass, attr, exact=False) if klass is not None else None

    def receiver_constant(
        self, klass: ClassRef, attr: str, exact: bool,
    ) -> tuple[cst.BaseExpression, ModuleIndex] | None:
        """The class-level value `self.<attr>` has when `self` is a `klass` object: its nearest definition
        in the lineage (a subclass's override wins over the base method's class).

        `exact`: `self` is that very class (Luigi builds the task class it was asked for); otherwise `self`
        may be an analysed subclass, so one that overrides the attribute makes it unknown. Never when a
        method `self` may run assigns `self.<attr>` (an instance value may shadow the class one)."""
        lineage = self.lineage(klass)
        descendants = [] if exact else self._descendants(klass)
        if any(attr in self._self_assigned(c) or "*" in self._self_assigned(c) for c in [*lineage, *descendants]):
            return None
        if any(attr in c.attributes for c in descendants):
            return None
        for owner in lineage:
            if attr in owner.attributes:
                value = class_body_value(owner, attr)
                return (value, owner.module) if value is not None else None
        return None

    def lineage(self, klass: ClassRef) -> list[ClassRef]:
        """The class and its analysed bases, nearest first (depth-first, as a simple MRO stand-in)."""
        out: list[ClassRef] = []
        todo = [klass]
        while todo and len(out) < 32:
            current = todo.pop(0)
            if current in out:
                continue
            out.append(current)
            todo.extend(b for b in (self.klass(base) for base in current.bases) if b is not None)
        return out

    def methods_named(self, name: str) -> list[FunctionRef]:
        """Every analysed method called `name`, whatever its class (sorted by qualname)."""
        if self._methods is None:
            methods: dict[str, list[FunctionRef]] = {}
            for fn in sorted(self.functions.values(), key=lambda f: f.qualname):
                if fn.is_method:
                    methods.setdefault(fn.name, []).append(fn)
            self._methods = methods
        return self._methods.get(name, [])

    def subclasses(self, klass: ClassRef) -> list[ClassRef]:
        """The analysed classes that extend `klass`, directly or not."""
        return self._descendants(klass)

    def _descendants(self, klass: ClassRef) -> list[ClassRef]:
        if self._children is None:
            children: dict[str, list[ClassRef]] = {}
            for candidate in self.classes.values():
                for base in candidate.bases:
                    parent = self.klass(base)
                    if parent is not None and parent is not candidate:
                        children.setdefault(parent.qualname, []).append(candidate)
            self._children = children
        out: list[ClassRef] = []
        todo = list(self._children.get(klass.qualname, ()))
        while todo and len(out) < 256:
            current = todo.pop()
            if current not in out and current is not klass:
                out.append(current)
                todo.extend(self._children.get(current.qualname, ()))
        return out

    def _self_assigned(self, klass: ClassRef) -> frozenset[str]:
        found = self._assigned.get(klass.qualname)
        if found is None:
            names: set[str] = set()
            for method in klass.methods.values():
                for node in walk(method.node.body):
                    targets: list[cst.BaseExpression] = []
                    if isinstance(node, cst.Assign):
                        targets = [t.target for t in node.targets]
                    elif isinstance(node, cst.AugAssign | cst.AnnAssign):
                        targets = [node.target]
                    for target in targets:
                        for sub in walk(target):
                            if (isinstance(sub, cst.Attribute) and isinstance(sub.value, cst.Name)
                                    and sub.value.value in {"self", "cls"}):
                                names.add(sub.attr.value)
                    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "setattr":
                        names.add("*")  # setattr(self, name, ...) can assign any attribute
            found = frozenset(names)
            self._assigned[klass.qualname] = found
        return found

    def module_of(self, qualified: str) -> ModuleIndex | None:
        key = self._canonical(qualified)
        return self.modules.get(key) if key else None


def named_arguments(params: Sequence[str], args: Sequence[cst.Arg], positional: int = 0) -> list[tuple[str, cst.Arg]]:
    """Which parameter each (non-star) argument binds: keywords by name, the rest by position."""
    out: list[tuple[str, cst.Arg]] = []
    for arg in args:
        if arg.star:
            continue
        if arg.keyword is not None:
            out.append((arg.keyword.value, arg))
        else:
            out.append((params[positional] if positional < len(params) else f"*{positional}", arg))
            positional += 1
    return out
