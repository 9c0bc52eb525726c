"""Load and strictly validate the data catalogs in `rules/*.toml` (and users' extra catalogs).

Library knowledge (which call touches which resource, which names mark a stage's role) and
rule documentation are data; an unknown key is an error naming the file and the key, so a
typo in a user's catalog never silently disables a model.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .model import Rule


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file and the key."""


def rules_dir() -> Path:
    """Where the bundled catalogs live: inside the wheel, or `rules/` of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_rules", here.parent / "rules"):
        if (candidate / "rules.toml").is_file():
            return candidate
    raise CatalogError(f"bundled rule catalogs not found next to {here}")


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: invalid TOML: {exc}") from exc


def _check_keys(
    path: Path, where: str, entry: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str]
) -> None:
    allowed_set = set(allowed)
    for key in entry:
        if key not in allowed_set:
            raise CatalogError(f"{path}: unknown key {key!r} in {where} (allowed: {', '.join(sorted(allowed_set))})")
    for key in required:
        if key not in entry:
            raise CatalogError(f"{path}: {where} is missing required key {key!r}")


# ---------------------------------------------------------------- rules.toml

_RULE_KEYS = ("id", "severity", "title", "summary", "why", "bad", "good", "fix", "tags")
_RULE_REQUIRED = ("id", "severity", "title", "summary", "why", "bad", "good", "fix")


def load_rules(extra: Iterable[Path] = ()) -> dict[str, Rule]:
    files = [*bundled("rules"), *extra]
    return _load_rules(tuple(files))


@cache
def _load_rules(files: tuple[Path, ...]) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for path in files:
        data = _read(path)
        _check_keys(path, "the top level", data, ("rule",), ())
        for i, entry in enumerate(data.get("rule", [])):
            where = f"[[rule]] #{i + 1}"
            _check_keys(path, where, entry, _RULE_KEYS, _RULE_REQUIRED)
            if entry["severity"] not in ("error", "warning", "note"):
                raise CatalogError(f"{path}: {where}: severity must be error, warning or note")
            rules[entry["id"]] = Rule(
                **{k: entry[k] for k in _RULE_REQUIRED}, tags=tuple(entry.get("tags", ()))
            )
    return rules


# ---------------------------------------------------------------- resources.toml

@dataclass(frozen=True, slots=True)
class Factory:
    """A call that creates a handle on a shared resource (engine, connection, client, lock)."""

    call: str
    kind: str
    type: str
    thread_safe: bool = True
    capacity_limited: bool = False
    identity: str = "object"  # "object" (the variable), "host:ARG", "arg:ARG"


@dataclass(frozen=True, slots=True)
class CommandModel:
    """What a shell command touches: `program` (its basename) followed by the words in `words`.

    Effects are `dir:NAME` / `file:NAME` (literal, relative to where the command runs), `file:-O` (the
    value of an option), `sql:stdin` (SQL read from the file redirected in: `psql < x.sql`), `sql:-c` /
    `sql:-f` (SQL text, or a SQL file, given by an option) and `unknown:KIND` (an unknown effect on
    every name of that kind: `dbt run` writes tables it names in its own project). `reads` and
    `writes` both empty: the command touches nothing (`echo`, `dbt debug`).
    """

    program: str
    words: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OperatorModel:
    """What an operator class (matched by its last name) reads and writes, named by its arguments.

    Each effect is `KIND:TEMPLATE` with KIND file, key, table or sql: the template is literal text with
    `{kw}` / `{N:kw}` slots filled with that argument's value (`*` when it is not known), so
    `file:s3://{s3_bucket}/{s3_key}` is the object an `S3CreateObjectOperator` puts; `sql:{query}` is the
    SQL text an argument holds.
    """

    name: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    #: arguments that, given (and not False/None), make the operator do more than the model says
    #: (`TriggerDagRunOperator(wait_for_completion=True)` runs the other DAG's tasks before it ends)
    unless: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MethodModel:
    """A method of a handle type (or of any object when type is '*')."""

    type: str
    names: tuple[str, ...]
    returns: str = ""
    effect: str = ""  # "read" | "write" | "readwrite" | ""
    #: "file:ARG", "key:ARG", "table:ARG", "queue:ARG", "object:KW/KW", "sql", "model:N", "resource",
    #: "table:self" (the table of the ORM manager it is called on)
    target: str = ""
    inplace_kw: str = ""
    prefix: str = ""  # prepended to the evaluated name (`global_temp.` for Spark's global temp views)
    #: each call hands out a handle of its own (a pool checkout): branches that each check one out
    #: share only the base, so the returned handle is as safe to share as the base is
    checkout: bool = False
    #: only when the receiver is reached through one of these attributes (`spark.read.csv`, `df.write.csv`);
    #: the nearest such attribute in the chain decides (`spark.read.csv(a).write.csv(b)` writes b)
    receiver: tuple[str, ...] = ()
    #: the object-store URL the returned sub-object (or the effect) is on: `s3://{0:bucket_name}/{1:key}`,
    #: `{self}{0:key}` (the receiver's location, then an argument)
    location: str = ""
    #: further (effect, target, prefix) of the same call: SFTP's `get(remote, local)` reads the remote
    #: file and writes the local one (`also = ["write file:1:localpath"]`, a prefix as a third word)
    also: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CallModel:
    """A module-level call that touches a resource or has a read/write effect."""

    call: str
    kind: str = ""
    effect: str = ""
    target: str = ""
    identity: str = ""
    thread_safe: bool = True
    capacity_limited: bool = False
    returns: str = ""
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class OpaqueLibrary:
    """A library whose objects are handles on an external system we do not model call by call."""

    module: str
    kind: str = "other"
    thread_safe: bool = True
    capacity_limited: bool = False
    #: the only web hosts the library talks to (a SaaS SDK): what we can't model of it is an unknown
    #: read/write of those hosts' URLs, which never meets another host's or a file or a table
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceCatalog:
    factories: dict[str, Factory] = field(default_factory=dict)
    methods: tuple[MethodModel, ...] = ()
    calls: dict[str, CallModel] = field(default_factory=dict)
    types: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)  # type -> (kind, thread_safe, capacity)
    #: third-party modules whose functions never mutate their arguments (stdlib is assumed so too);
    #: a call into any other unanalysed module is assumed to mutate what it is given
    pure_modules: frozenset[str] = frozenset()
    #: module prefixes whose calls reach an external system (longest prefix wins over `pure_modules`)
    opaque: dict[str, OpaqueLibrary] = field(default_factory=dict)
    #: calls declared to have no external effect, even inside an opaque library (`sqlalchemy.text`)
    pure_calls: frozenset[str] = frozenset()
    #: methods that name no data on any handle (`close`, `commit`, `cursor`): no effect of their own
    pure_methods: frozenset[str] = frozenset()
    #: name prefixes of unmodelled methods taken to only read (`get_`, `list_`, `fetch`): the fallback then
    #: records an unknown read, so two stages that only look at one system stay independent
    read_prefixes: tuple[str, ...] = ()
    #: exception classes (fnmatch patterns on qualified names) that mean an external system failed: a
    #: handler that drops one loses data just like a broad `except Exception`
    failures: tuple[str, ...] = ()
    #: constructors of in-memory file objects (`io.StringIO`, `io.BytesIO`): `df.to_csv(buffer)` is no file
    buffers: frozenset[str] = frozenset()
    #: shell commands (a BashOperator's `bash_command`): what each program, with its leading words, touches
    commands: tuple[CommandModel, ...] = ()
    #: orchestrator operators whose effects their arguments name (`S3CreateObjectOperator`), by class name
    operators: Mapping[str, OperatorModel] = field(default_factory=dict)
    #: (type, method name) -> the `methods` naming it, in catalog order (built with the catalog)
    method_index: Mapping[tuple[str, str], tuple[MethodModel, ...]] = field(default_factory=dict, compare=False)
    #: calls that only look at a function handed to them, never call it (`print(fn)`, `isinstance(fn, ...)`)
    inert: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.method_index and self.methods:
            object.__setattr__(self, "method_index", _method_index(self.methods))

    def pure_call(self, qualified: str) -> bool:
        """`qualified` is declared to have no external effect: it, or a module or class it lies in, is
        listed (`pyspark.sql.functions` covers `pyspark.sql.functions.arrays_overlap`)."""
        parts = qualified.split(".")
        return any(".".join(parts[:i]) in self.pure_calls for i in range(len(parts), 0, -1))

    def reads_only(self, method: str) -> bool:
        name = method.lower()
        return any(name == p.rstrip("_") or name.startswith(p) for p in self.read_prefixes)

    def library_of(self, qualified: str) -> OpaqueLibrary | None:
        """How the open-world rule treats a call into `qualified`: None when it is declared pure.

        The longest declared prefix decides; a module listed nowhere is opaque (sound by default).
        """
        parts = qualified.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.opaque:
                return self.opaque[prefix]
            if prefix in self.pure_modules:
                return None
        if parts[0] in sys.stdlib_module_names:
            return None  # the standard library's effects are modelled call by call ([[call]], [[opaque]])
        return OpaqueLibrary(parts[0])

    def methods_of(self, type_name: str, method: str, chain: Sequence[str] = ()) -> MethodModel | None:
        """The model of `method` on `type_name`; `chain` is the receiver's attribute names, nearest first."""
        found = self.method_index.get((type_name, method), ())
        if not found:
            return None
        markers = {r for m in found for r in m.receiver}
        nearest = next((attr for attr in chain if attr in markers), None)
        for model in found:
            if (nearest in model.receiver) if nearest is not None else not model.receiver:
                return model
        return None

    def any_method(self, method: str, chain: Sequence[str] = ()) -> MethodModel | None:
        return self.methods_of("*", method, chain)

    def command(self, words: Sequence[str]) -> CommandModel | None:
        """The model of a command line's words (program first), the one naming most leading words."""
        if not words:
            return None
        program = words[0].rsplit("/", 1)[-1]
        found = [c for c in self.commands if c.program == program and tuple(words[1:1 + len(c.words)]) == c.words]
        return max(found, key=lambda c: len(c.words)) if found else None

    def calls_no_argument(self, qualified: str) -> bool:
        """`qualified` never calls a function passed to it (`print`, `repr`, `isinstance`): handing it an
        analysed function is not a call of that function."""
        return qualified in self.inert

    def in_memory(self, qualified: str) -> bool:
        """A constructor of an in-memory buffer (`io.StringIO`): writing a file into it touches no file."""
        return qualified in self.buffers


def _method_index(methods: tuple[MethodModel, ...]) -> dict[tuple[str, str], tuple[MethodModel, ...]]:
    """(type, method name) -> the models naming it, in catalog order: asked for every method call."""
    index: dict[tuple[str, str], list[MethodModel]] = {}
    for model in methods:
        for name in model.names:
            index.setdefault((model.type, name), []).append(model)
    return {key: tuple(models) for key, models in index.items()}


_FACTORY_KEYS = ("call", "kind", "type", "thread_safe", "capacity_limited", "identity")
_METHOD_KEYS = ("type", "names", "returns", "effect", "target", "inplace_kw", "prefix", "checkout", "receiver",
                "location", "also")
_CALL_KEYS = ("call", "kind", "effect", "target", "identity", "thread_safe", "capacity_limited", "returns", "prefix")
_LIBRARY_KEYS = ("modules", "mutates_arguments")
_OPAQUE_KEYS = ("modules", "kind", "thread_safe", "capacity_limited", "hosts")
_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_PURE_KEYS = ("calls", "methods", "buffers", "inert")
_FALLBACK_KEYS = ("read_prefixes",)
_COMMAND_KEYS = ("program", "words", "reads", "writes")
_OPERATOR_KEYS = ("class", "reads", "writes", "unless")
_OPERATOR_EFFECT = re.compile(r"(?:file|key|table|sql):(?:[^{}]|\{(?:\d+:)?\w+\})+")
_COMMAND_EFFECT = re.compile(r"(?:dir|file):[^\s:]+|sql:(?:stdin|-\w|--[\w-]+)|unknown:(?:table|file|key|any)")
_EFFECTS = {"read", "write", "readwrite", "mode", "move", "copy", "mutate", "ensure", "list", ""}
#: what a catalog `target` may say: where the name comes from, per effect kind
_TARGET = re.compile(
    r"(?:sql|resource|file:self|dir:self|table:self|model:\d+|object:(?:\d+:)?\w+/(?:\d+:)?\w+|(?:file|dir|key|queue|table|url|arg|mode):\d*(?::[\w|]+)?\??)?"
)
#: a `location` template: literal URL text with `{self}` and `{N:kw}` / `{kw}` slots
_LOCATION = re.compile(r"(?:[^{}]|\{(?:self|\d+:\w+|\w+)\})*")
_KINDS = {"database", "http", "filesystem", "cache", "queue", "cloud", "lock", "process", "other", ""}


def bundled(stem: str) -> list[Path]:
    """The bundled catalog `stem.toml` plus any `stem-*.toml` split beside it, in name order."""
    folder = rules_dir()
    return [folder / f"{stem}.toml", *sorted(folder.glob(f"{stem}-*.toml"))]


def load_resources(extra: Iterable[Path] = ()) -> ResourceCatalog:
    return _load_resources(tuple([*bundled("resources"), *extra]))


@cache
def _load_resources(files: tuple[Path, ...]) -> ResourceCatalog:
    factories: dict[str, Factory] = {}
    methods: list[MethodModel] = []
    calls: dict[str, CallModel] = {}
    types: dict[str, tuple[str, bool, bool]] = {}
    pure: set[str] = set()
    opaque: dict[str, OpaqueLibrary] = {}
    pure_calls: set[str] = set()
    pure_methods: set[str] = set()
    read_prefixes: list[str] = []
    failures: list[str] = []
    buffers: set[str] = set()
    inert: set[str] = set()
    commands: list[CommandModel] = []
    operators: dict[str, OperatorModel] = {}
    for path in files:
        data = _read(path)
        _check_keys(path, "the top level", data,
                    ("factory", "method", "call", "library", "opaque", "pure", "fallback", "failure", "command",
                     "operator"), ())
        for i, entry in enumerate(data.get("operator", [])):
            where = f"[[operator]] #{i + 1}"
            _check_keys(path, where, entry, _OPERATOR_KEYS, ("class",))
            reads, writes = _effect_specs(path, where, entry, "operator", _OPERATOR_EFFECT,
                                          "file|key|table|sql:TEMPLATE with {kw} or {N:kw} slots")
            for name in _as_list(entry["class"]):
                operators[name] = OperatorModel(name, reads, writes, tuple(_as_list(entry.get("unless", []))))
        for i, entry in enumerate(data.get("command", [])):
            where = f"[[command]] #{i + 1}"
            _check_keys(path, where, entry, _COMMAND_KEYS, ("program",))
            reads, writes = _effect_specs(path, where, entry, "command", _COMMAND_EFFECT,
                                          "dir:NAME, file:NAME, file:-OPTION, sql:stdin, sql:-OPTION or unknown:KIND")
            for program in _as_list(entry["program"]):
                commands.append(CommandModel(program, tuple(_as_list(entry.get("words", []))), reads, writes))
        for i, entry in enumerate(data.get("failure", [])):
            _check_keys(path, f"[[failure]] #{i + 1}", entry, ("exceptions",), ("exceptions",))
            failures.extend(_as_list(entry["exceptions"]))
        for i, entry in enumerate(data.get("fallback", [])):
            _check_keys(path, f"[[fallback]] #{i + 1}", entry, _FALLBACK_KEYS, ())
            # matched against the lower-cased method name (`withColumn` is `withcolumn`)
            read_prefixes.extend(p.lower() for p in _as_list(entry.get("read_prefixes", [])))
        for i, entry in enumerate(data.get("opaque", [])):
            where = f"[[opaque]] #{i + 1}"
            _check_keys(path, where, entry, _OPAQUE_KEYS, ("modules",))
            _check_kind(path, where, entry.get("kind", "other"))
            hosts = tuple(_as_list(entry.get("hosts", [])))
            if hosts and (entry.get("kind") != "http" or not all(isinstance(h, str) and _HOST.fullmatch(h)
                                                                    for h in hosts)):
                raise CatalogError(f"{path}: {where}: hosts must be lower-case host names of a kind = \"http\" "
                                   f"library, got {list(hosts)!r}")
            for module in _as_list(entry["modules"]):
                opaque[module] = OpaqueLibrary(module, entry.get("kind", "other"), entry.get("thread_safe", True),
                                               entry.get("capacity_limited", False), hosts)
        for i, entry in enumerate(data.get("pure", [])):
            where = f"[[pure]] #{i + 1}"
            _check_keys(path, where, entry, _PURE_KEYS, ())
            pure_calls.update(_as_list(entry.get("calls", [])))
            pure_methods.update(_as_list(entry.get("methods", [])))
            buffers.update(_as_list(entry.get("buffers", [])))
            inert.update(_as_list(entry.get("inert", [])))
        for i, entry in enumerate(data.get("library", [])):
            where = f"[[library]] #{i + 1}"
            _check_keys(path, where, entry, _LIBRARY_KEYS, ("modules", "mutates_arguments"))
            if not entry["mutates_arguments"]:
                pure.update(entry["modules"])
        for i, entry in enumerate(data.get("factory", [])):
            where = f"[[factory]] #{i + 1}"
            _check_keys(path, where, entry, _FACTORY_KEYS, ("call", "kind", "type"))
            _check_kind(path, where, entry.get("kind", ""))
            for call in _as_list(entry["call"]):
                f = Factory(**{**entry, "call": call})
                factories[call] = f
                types.setdefault(f.type, (f.kind, f.thread_safe, f.capacity_limited))
        for i, entry in enumerate(data.get("method", [])):
            where = f"[[method]] #{i + 1}"
            _check_keys(path, where, entry, _METHOD_KEYS, ("type", "names"))
            _check_effect(path, where, entry)
            if not isinstance(entry.get("checkout", False), bool):
                raise CatalogError(f"{path}: {where}: checkout must be true or false")
            if not _LOCATION.fullmatch(entry.get("location", "")):
                raise CatalogError(f"{path}: {where}: location must be a URL template of {{self}} and "
                                   f"{{N:keyword}} slots, got {entry.get('location')!r}")
            receiver = _as_list(entry.get("receiver", []))
            if not all(isinstance(r, str) and r.isidentifier() for r in receiver):
                raise CatalogError(f"{path}: {where}: receiver must be attribute names, got {receiver!r}")
            also = []
            for j, extra in enumerate(_as_list(entry.get("also", []))):
                words = extra.split() if isinstance(extra, str) else []
                if len(words) not in {2, 3}:
                    raise CatalogError(f"{path}: {where}: also #{j + 1} must be 'EFFECT TARGET [PREFIX]', "
                                       f"got {extra!r}")
                _check_effect(path, f"{where} also #{j + 1}", {"effect": words[0], "target": words[1]})
                also.append((words[0], words[1], words[2] if len(words) == 3 else ""))
            for type_name in _as_list(entry["type"]):
                methods.append(MethodModel(**{**entry, "type": type_name, "names": tuple(entry["names"]),
                                              "receiver": tuple(receiver), "also": tuple(also)}))
        for i, entry in enumerate(data.get("call", [])):
            where = f"[[call]] #{i + 1}"
            _check_keys(path, where, entry, _CALL_KEYS, ("call",))
            _check_kind(path, where, entry.get("kind", ""))
            _check_effect(path, where, entry)
            for call in _as_list(entry["call"]):
                calls[call] = CallModel(**{**entry, "call": call})
    return ResourceCatalog(factories, tuple(methods), calls, types, frozenset(pure), opaque,
                           frozenset(pure_calls), frozenset(pure_methods), tuple(read_prefixes), tuple(failures),
                           frozenset(buffers), tuple(commands), operators, inert=frozenset(inert))


def _effect_specs(path: Path, where: str, entry: Mapping[str, Any], what: str, grammar: re.Pattern[str],
                  expected: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An entry's `reads` and `writes`, each spec checked against `grammar` (an error names the entry)."""
    reads, writes = tuple(_as_list(entry.get("reads", []))), tuple(_as_list(entry.get("writes", [])))
    for spec in (*reads, *writes):
        if not grammar.fullmatch(spec):
            raise CatalogError(f"{path}: {where}: unknown {what} effect {spec!r} (expected {expected})")
    return reads, writes


def _check_effect(path: Path, where: str, entry: Mapping[str, Any]) -> None:
    """An effect or target the engine does not understand is an error, never a silently dropped model."""
    effect, target = entry.get("effect", ""), entry.get("target", "")
    if effect not in _EFFECTS:
        allowed = ", ".join(sorted(_EFFECTS - {""}))
        raise CatalogError(f"{path}: {where}: unknown effect {effect!r} (allowed: {allowed})")
    if not _TARGET.fullmatch(target):
        raise CatalogError(f"{path}: {where}: unknown target {target!r} (expected sql, resource, model:N, file:self, "
                           "object:[N:]KW/[N:]KW, or file|key|queue|table|url|arg:N[:keyword][?])")
    if bool(effect) != bool(target) and effect not in {"mutate"}:
        raise CatalogError(f"{path}: {where}: effect and target go together (got effect={effect!r}, target={target!r})")


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def _check_kind(path: Path, where: str, kind: str) -> None:
    if kind not in _KINDS:
        raise CatalogError(f"{path}: {where}: unknown resource kind {kind!r}")


# ---------------------------------------------------------------- roles.toml

@dataclass(frozen=True, slots=True)
class RoleModel:
    role: str
    name_patterns: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()  # qualified calls or '*.method' names that mark the role in a body
    sql: tuple[str, ...] = ()  # SQL fragments (DISTINCT ON, ROW_NUMBER() OVER)


_ROLE_KEYS = ("role", "name_patterns", "calls", "sql")


def load_roles(extra: Iterable[Path] = ()) -> tuple[RoleModel, ...]:
    return _load_roles(tuple([*bundled("roles"), *extra]))


@cache
def _load_roles(files: tuple[Path, ...]) -> tuple[RoleModel, ...]:
    roles: list[RoleModel] = []
    for path in files:
        data = _read(path)
        _check_keys(path, "the top level", data, ("role",), ())
        for i, entry in enumerate(data.get("role", [])):
            where = f"[[role]] #{i + 1}"
            _check_keys(path, where, entry, _ROLE_KEYS, ("role",))
            roles.append(
                RoleModel(
                    entry["role"],
                    tuple(entry.get("name_patterns", ())),
                    tuple(entry.get("calls", ())),
                    tuple(entry.get("sql", ())),
                )
            )
    return tuple(roles)
