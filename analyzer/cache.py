"""The result cache: an unchanged set of files is never analysed twice.

What is cached is everything up to and including the graphs (pipelines, the diagnostics of
reading, parsing and fact extraction, suppression comments): the part that costs seconds. Checks,
severities, rule selection and ignores run again on every hit, so changing them never needs a
fresh analysis. The key covers everything that part depends on:

- every analysed file's root-relative path, dotted module name and content (SHA-256 of the text,
  or of the diagnostic that replaced it: too large, undecodable);
- the tool version and the entry format;
- the catalogs that shape facts (bundled `rules/*.toml`, user resource and role catalogs);
- the files adapters read beside the code: `.sql`, `.yml` and `.yaml` files of the repository
  (Airflow templates, Kedro catalogs), and which folders above the analysed one are packages.

The facts layer resolves names across modules on libcst trees, so its work is not separable
per file yet; the key is therefore the whole set, and a one-file change is a fresh analysis.

Entries are JSON (never pickle: a planted entry can at worst change a report, never run code),
written atomically (temp file + rename), and carry their format, tool version, key and a
SHA-256 of their body: an entry that fails any of those checks, or does not decode into the
model's records, is a miss and is rebuilt. A cache folder that cannot be created or written
is silently not used: the cache is an optimisation and must never change or break a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, model

#: bump when the encoding of an entry or the meaning of a key changes
FORMAT = 1
#: entries kept per cache folder (least recently used beyond this are removed)
MAX_ENTRIES = 32
#: files beside the code that adapters read (see the module docstring)
SIDE_SUFFIXES = (".sql", ".yml", ".yaml")
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".nox",
                        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".stagegraph-cache"})


def default_dir() -> Path:
    """The platform's user cache folder for stagegraph (`STAGEGRAPH_CACHE_DIR` overrides it).

    Outside the repository by default, so a checkout can't plant entries for its own audit.
    """
    override = os.environ.get("STAGEGRAPH_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "stagegraph" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "stagegraph"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stagegraph"


# ------------------------------------------------------------------ what one entry holds


@dataclass(frozen=True, slots=True)
class FactsOutcome:
    """The cached part of a run: graphs, their diagnostics and suppression comments, in run order."""

    pipelines: tuple[model.Pipeline, ...]
    #: diagnostics of reading and parsing (the hook keeps only the changed files' ones)
    parse_diagnostics: tuple[model.Diagnostic, ...]
    #: diagnostics of fact extraction and graph building
    diagnostics: tuple[model.Diagnostic, ...]
    suppressions: dict[str, dict[int, frozenset[str]]]
    #: root-relative paths of the files that parsed (their lines give findings their snippets)
    parsed: tuple[str, ...]


_RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (*(getattr(model, name) for name in dir(model)), FactsOutcome)
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ in (model.__name__, __name__)
}


def encode(value: object) -> Any:
    """A JSON-ready form of records, tuples, lists, sets and dicts that `decode` turns back exactly."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _RECORDS.get(name) is not type(value):
            raise TypeError(f"not a cacheable record: {name}")
        return {"C": name, "F": [encode(getattr(value, f.name)) for f in dataclasses.fields(value)]}
    if isinstance(value, tuple):
        return {"T": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, frozenset):
        return {"S": sorted((encode(v) for v in value), key=repr)}
    if isinstance(value, dict):
        return {"D": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"not cacheable: {type(value).__name__}")


def decode(data: Any) -> Any:
    """The inverse of `encode`; anything it did not produce raises ValueError."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict) and len(data) in (1, 2):
        if set(data) == {"C", "F"}:
            cls = _RECORDS.get(data["C"]) if isinstance(data["C"], str) else None
            if cls is None or not isinstance(data["F"], list):
                raise ValueError(f"unknown record in cache entry: {data['C']!r}")
            fields = dataclasses.fields(cls)
            if len(fields) != len(data["F"]):
                raise ValueError(f"record {data['C']} has {len(data['F'])} fields, expected {len(fields)}")
            return cls(*(decode(v) for v in data["F"]))
        tag, items = next(iter(data.items()))
        if len(data) == 1 and isinstance(items, list):
            if tag == "T":
                return tuple(decode(v) for v in items)
            if tag == "S":
                return frozenset(decode(v) for v in items)
            if tag == "D":
                return {decode(k): decode(v) for k, v in items}
    raise ValueError("malformed cache entry")


# ------------------------------------------------------------------ keys


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def file_digest(text: str | model.Diagnostic) -> str:
    """The content part of a file's key: its text, or the diagnostic that stands for it."""
    return digest("text", text) if isinstance(text, str) else digest("diagnostic", repr(text))


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror}".encode()


def catalogs_digest(extra: Iterable[Path]) -> str:
    """The bundled catalogs and the user's extra resource/role catalogs, by content."""
    from .catalog import CatalogError, rules_dir

    parts: list[str | bytes] = []
    try:
        bundled = sorted(rules_dir().glob("*.toml"))
    except CatalogError:
        bundled = []
    for path in [*bundled, *extra]:
        parts += [str(path), _file_bytes(path)]
    return digest(*parts)


def side_files_digest(repository: Path, analysed: Path) -> str:
    """The files beside the code that adapters read, and the package folders above the analysed one."""
    parts: list[str | bytes] = []
    for folder, dirs, files in os.walk(repository):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(SIDE_SUFFIXES):
                path = Path(folder, name)
                parts += [path.relative_to(repository).as_posix(), _file_bytes(path)]
    above = analysed.resolve()
    for _ in range(5):  # `_outer_packages` looks at most four packages up
        parts.append(f"{above.name}:{(above / '__init__.py').is_file()}")
        above = above.parent
    return digest(*parts)


@functools.cache
def code_digest() -> str:
    """stagegraph's own source, by content: an edited checkout (same version number) never reuses
    what an older analyzer concluded."""
    here = Path(__file__).resolve().parent
    return digest(*(part for path in sorted(here.rglob("*.py"))
                    for part in (path.relative_to(here).as_posix(), _file_bytes(path))))


def run_key(files: Sequence[tuple[str, str, str]], catalogs: str, side_files: str) -> str:
    """The key of one run: the analyzer's code, (relpath, module, content digest) of every file,
    catalogs, side files."""
    rows = "\n".join(f"{rel}\t{module}\t{content}" for rel, module, content in sorted(files))
    return digest(f"stagegraph {__version__} cache format {FORMAT}", code_digest(), catalogs, side_files, rows)


# ------------------------------------------------------------------ the store


class Cache:
    """A folder of entries; every failure to read one is a miss, every failure to write is ignored."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"v{FORMAT}" / f"{key}.json"

    def load(self, key: str) -> FactsOutcome | None:
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        outcome = _parse_entry(raw, key)
        if outcome is None:
            self._discard(path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by pruning
        return outcome

    def store(self, key: str, outcome: FactsOutcome) -> None:
        body = json.dumps(encode(outcome), ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        header = json.dumps({"format": FORMAT, "tool": __version__, "key": key, "size": len(body),
                             "sha256": hashlib.sha256(body).hexdigest()}).encode()
        path = self._path(key)
        if _write_atomic(path, header + b"\n" + body):
            self._prune(path.parent)

    def _discard(self, path: Path) -> None:
        _unlink(path)

    def _prune(self, folder: Path) -> None:
        entries = []
        for path in folder.glob("*.json"):
            try:
                entries.append((path.stat().st_mtime_ns, path.name, path))
            except OSError:
                continue
        for *_, path in sorted(entries, reverse=True)[MAX_ENTRIES:]:
            _unlink(path)


def _write_atomic(path: Path, data: bytes) -> bool:
    """Write `data` to `path` through a temp file and a rename; False (nothing written) when the
    folder is read-only, full or missing: the run goes on without a cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temp, path)
        except BaseException:
            _unlink(Path(temp))
            raise
    except OSError:
        return False
    return True


class Marks:
    """A small set of digests remembered in the cache folder across runs, e.g. the diagrams `dot`
    could not lay out in time (so the next run does not wait for the same timeout again).

    `scope` names what the marks mean (it includes the limit they were made under): marks made
    under another scope are not read. Safe to share between threads; every failure to read is an
    empty set and every failure to write is ignored, as for the result cache.
    """

    LIMIT = 256

    def __init__(self, folder: Path, name: str, scope: str) -> None:
        self.path = folder / f"v{FORMAT}" / f"{name}.json"
        self.scope = scope
        self._lock = threading.Lock()
        self._marks: list[str] | None = None

    def _load(self) -> list[str]:
        if self._marks is None:
            try:
                data = json.loads(self.path.read_bytes())
                ok = isinstance(data, dict) and data.get("scope") == self.scope and data.get("tool") == __version__
                marks = data.get("marks") if ok else None
                self._marks = [m for m in marks if isinstance(m, str)] if isinstance(marks, list) else []
            except (OSError, ValueError, RecursionError):
                self._marks = []
        return self._marks

    def __contains__(self, mark: object) -> bool:
        with self._lock:
            return mark in self._load()

    def add(self, mark: str) -> None:
        with self._lock:
            marks = [*[m for m in self._load() if m != mark][-(self.LIMIT - 1):], mark]
            self._marks = marks
            body = {"tool": __version__, "scope": self.scope, "marks": marks}
            _write_atomic(self.path, json.dumps(body).encode())


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _parse_entry(raw: bytes, key: str) -> FactsOutcome | None:
    """The entry's outcome if every check passes (format, version, key, size, checksum, records), else None."""
    header_bytes, newline, body = raw.partition(b"\n")
    if not newline:
        return None
    try:
        header = json.loads(header_bytes)
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("tool") != __version__:
            return None
        if header.get("key") != key or header.get("size") != len(body):
            return None
        if header.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        outcome = decode(json.loads(body.decode("utf-8", "surrogatepass")))
    except (ValueError, TypeError, RecursionError):
        return None
    return outcome if isinstance(outcome, FactsOutcome) else None
