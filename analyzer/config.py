"""Configuration: `[tool.stagegraph]` in pyproject.toml or a standalone `stagegraph.toml`, merged with CLI flags.

The file is found by walking up from the analysed path (stopping at the repository root), or
given with `--config FILE`. Every effective value remembers where it came from (the default,
`FILE:key`, or the command line) so `stagegraph config` can explain a surprising result.
Unknown keys and unknown rule ids are errors naming the key and the file: a typo must never
silently turn a setting off.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import Diagnostic, Severity

if TYPE_CHECKING:
    from .engine import Options

SEVERITIES = ("error", "warning", "note")
FAIL_ON = ("error", "warning", "note", "never")
DEFAULT_MAX_FILE_BYTES = 2_000_000
DEFAULT_FAIL_ON = "warning"
STANDALONE_NAME = "stagegraph.toml"

#: every key a config file may hold, in the order `stagegraph config` prints them
KEYS = (
    "include", "exclude", "rule-catalogs", "resource-catalogs", "role-catalogs", "select", "extend-select",
    "disable", "ignore", "per-file-ignores", "severity", "fail-on", "max-file-bytes", "out-dir", "baseline",
)
_PATH_LIST_KEYS = ("include", "rule-catalogs", "resource-catalogs", "role-catalogs")
_STRING_LIST_KEYS = ("exclude", "disable", "ignore", "select", "extend-select")


class ConfigError(ValueError):
    """The configuration is wrong; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration of one run. `sources` maps each key to where its value came from."""

    include: tuple[Path, ...] = ()
    exclude: tuple[str, ...] = ()
    rule_catalogs: tuple[Path, ...] = ()
    resource_catalogs: tuple[Path, ...] = ()
    role_catalogs: tuple[Path, ...] = ()
    disable: frozenset[str] = frozenset()
    #: None: every rule; else only these (`select` plus `extend-select`)
    select: frozenset[str] | None = None
    extend_select: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    #: (gitignore-style pattern, rule ids) pairs: findings in matching files are left out
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    fail_on: str = DEFAULT_FAIL_ON
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    out_dir: Path | None = None
    baseline: Path | None = None
    file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    #: paths the config file named outside its repository, refused (see `_confine`)
    refused: tuple[Diagnostic, ...] = ()

    def options(self, only_files: frozenset[str] | None = None) -> Options:
        """The engine options this configuration stands for."""
        from .engine import Options

        selected = None if self.select is None else self.select | self.extend_select
        return Options(
            exclude=self.exclude,
            max_file_bytes=self.max_file_bytes,
            disabled_rules=self.disable | self.ignore,
            selected_rules=selected,
            per_file_ignores=self.per_file_ignores,
            severities=dict(self.severity),
            extra_rules=self.rule_catalogs,
            extra_resources=self.resource_catalogs,
            extra_roles=self.role_catalogs,
            only_files=only_files,
            diagnostics=self.refused,
        )

    def value(self, key: str) -> Any:
        return getattr(self, key.replace("-", "_"))


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the command line said; None (or empty) means 'not given'. Lists add to the file's lists."""

    exclude: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    severity: Mapping[str, str] = field(default_factory=dict)
    fail_on: str | None = None
    max_file_bytes: int | None = None
    out_dir: Path | None = None
    baseline: Path | None = None
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()


# ------------------------------------------------------------------ finding and reading the file

def find_config_file(start: Path) -> Path | None:
    """The nearest stagegraph.toml, or pyproject.toml with [tool.stagegraph], from `start` up to the repo root."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        standalone = folder / STANDALONE_NAME
        if standalone.is_file():
            return standalone
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "stagegraph" in _read_toml(pyproject).get("tool", {}):
            return pyproject
        if (folder / ".git").exists():
            return None
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def read_table(path: Path) -> tuple[dict[str, Any], str]:
    """The stagegraph table of a config file and the prefix used to name its keys in messages."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("stagegraph", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.stagegraph] must be a table")
        return table, "tool.stagegraph."
    return data, ""


# ------------------------------------------------------------------ validation

def _string_list(path: Path, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {key} must be a list of strings")
    return list(value)


def _confine(path: Path, values: dict[str, Any], prefix: str) -> list[Diagnostic]:
    """Drop paths a discovered config file names outside its repository, one diagnostic each.

    The config of the analysed repository is the repository's author speaking (in a PR bot, the PR
    author): it may not make stagegraph read catalogs or code, or write reports, anywhere else.
    Such paths are honoured only from the command line (or a `--config` file the user chose).
    """
    from .confine import inside, repo_root

    root = repo_root(path.parent)
    try:
        shown = path.resolve().relative_to(root).as_posix()
    except ValueError:
        shown = path.name
    refused: list[Diagnostic] = []
    for key in (*_PATH_LIST_KEYS, "out-dir", "baseline"):
        if key not in values:
            continue
        given = values[key] if isinstance(values[key], tuple) else (values[key],)
        kept = tuple(p for p in given if inside(p, root))
        for p in given:
            if p not in kept:
                refused.append(Diagnostic(shown, "unresolved", f"{prefix}{key}: {p} is outside the repository "
                                          f"({root}); ignored (give it on the command line instead)",
                                          code="outside-repo"))
        if isinstance(values[key], tuple):
            values[key] = kept
        elif not kept:
            del values[key]
    return refused


def _parse_file(path: Path) -> dict[str, Any]:
    """Validated values from one config file, keyed by the file's key names; paths made absolute."""
    table, prefix = read_table(path)
    base = path.parent
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(
                f"{path}: unknown key {prefix + key!r} (allowed: {', '.join(KEYS)})"
            )
        name = prefix + key
        if key in _PATH_LIST_KEYS:
            values[key] = tuple(base / p for p in _string_list(path, name, value))
        elif key in _STRING_LIST_KEYS:
            values[key] = tuple(_string_list(path, name, value))
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {name} must be a table of \"pattern\" = [rule ids]")
            values[key] = tuple((pattern, frozenset(_string_list(path, f"{name}.{pattern}", rules)))
                                for pattern, rules in value.items())
        elif key == "severity":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {name} must be a table of rule = \"error\" | \"warning\" | \"note\"")
            for rule, level in value.items():
                if level not in SEVERITIES:
                    raise ConfigError(f"{path}: {name}.{rule} must be one of {', '.join(SEVERITIES)}, not {level!r}")
            values[key] = dict(value)
        elif key == "fail-on":
            if value not in FAIL_ON:
                raise ConfigError(f"{path}: {name} must be one of {', '.join(FAIL_ON)}, not {value!r}")
            values[key] = value
        elif key == "max-file-bytes":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{path}: {name} must be a positive integer")
            values[key] = value
        else:  # out-dir, baseline
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{path}: {name} must be a path (a string)")
            values[key] = base / value
    return values


def _check_rule_ids(config: Config) -> None:
    from .catalog import CatalogError, load_rules

    try:
        known = load_rules(config.rule_catalogs)
    except CatalogError as exc:
        raise ConfigError(str(exc)) from exc
    checked = [("disable", sorted(config.disable)), ("ignore", sorted(config.ignore)),
               ("select", sorted(config.select or ())), ("extend-select", sorted(config.extend_select)),
               ("severity", sorted(config.severity)),
               ("per-file-ignores", sorted({r for _, rules in config.per_file_ignores for r in rules} - {"*"}))]
    for key, ids in checked:
        for rule in ids:
            if rule not in known:
                where = config.sources.get(key, key)
                raise ConfigError(f"{where}: unknown rule id {rule!r} (`stagegraph rules` lists them)")


# ------------------------------------------------------------------ merging

def load_config(start: Path, explicit: Path | None = None, overrides: Overrides = Overrides()) -> Config:
    """The effective configuration: defaults, then the config file, then the command line."""
    path = explicit if explicit is not None else find_config_file(start)
    if explicit is not None and not explicit.is_file():
        raise ConfigError(f"{explicit}: no such configuration file")
    file_values = _parse_file(path) if path is not None else {}
    prefix = "tool.stagegraph." if path is not None and path.name == "pyproject.toml" else ""
    refused = _confine(path, file_values, prefix) if path is not None and explicit is None else []
    display = _display(path) if path is not None else ""
    sources: dict[str, str] = {key: "default" for key in KEYS}
    for key in file_values:
        sources[key] = f"{display}:{prefix}{key}"

    def merged_list(key: str, cli: Sequence[str]) -> tuple[str, ...]:
        values = tuple(file_values.get(key, ()))
        if cli:
            sources[key] = "command line" if not values else f"{sources[key]} + command line"
            values += tuple(v for v in cli if v not in values)
        return values

    exclude = merged_list("exclude", overrides.exclude)
    disable = merged_list("disable", overrides.disable)
    extend_select = merged_list("extend-select", overrides.extend_select)
    select: tuple[str, ...] | None = file_values.get("select")
    if overrides.select:  # as ruff: --select replaces the file's selection
        select = tuple(overrides.select)
        sources["select"] = "command line"
    severity: dict[str, Severity] = dict(file_values.get("severity", {}))
    if overrides.severity:
        for rule, level in overrides.severity.items():
            if level not in SEVERITIES:
                raise ConfigError(f"--severity {rule}={level}: level must be one of {', '.join(SEVERITIES)}")
            severity[rule] = level  # type: ignore[assignment]
        from_file = "severity" in file_values
        sources["severity"] = f"{sources['severity']} + command line" if from_file else "command line"

    def scalar(key: str, cli: Any, default: Any) -> Any:
        if cli is not None:
            sources[key] = "command line"
            return cli
        return file_values.get(key, default)

    config = Config(
        include=file_values.get("include", ()),
        exclude=exclude,
        rule_catalogs=file_values.get("rule-catalogs", ()),
        resource_catalogs=file_values.get("resource-catalogs", ()),
        role_catalogs=file_values.get("role-catalogs", ()),
        disable=frozenset(disable),
        select=frozenset(select) if select is not None else None,
        extend_select=frozenset(extend_select),
        ignore=frozenset(file_values.get("ignore", ())),
        per_file_ignores=file_values.get("per-file-ignores", ()),
        severity=severity,
        fail_on=scalar("fail-on", overrides.fail_on, DEFAULT_FAIL_ON),
        max_file_bytes=scalar("max-file-bytes", overrides.max_file_bytes, DEFAULT_MAX_FILE_BYTES),
        out_dir=scalar("out-dir", overrides.out_dir, None),
        baseline=scalar("baseline", overrides.baseline, None),
        file=path,
        sources=sources,
        refused=tuple(refused),
    )
    _check_rule_ids(config)
    return config


def _display(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def describe(config: Config) -> str:
    """`stagegraph config`: every effective value and where it came from."""
    lines = [f"# configuration file: {_display(config.file) if config.file else '(none found; all defaults)'}"]
    for key in KEYS:
        value = config.value(key)
        lines.append(f"{key:<18} = {_format_value(value):<40}  # {config.sources.get(key, 'default')}")
    return "\n".join(lines) + "\n"


def _format_value(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, Path):
        return f'"{_display(value)}"'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else list(value)
        return "[" + ", ".join(_format_value(v) for v in items) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_format_value(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)
