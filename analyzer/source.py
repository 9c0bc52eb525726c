"""Find the Python files to analyse, read and decode them, and parse each one exactly once.

Every failure here (undecodable bytes, Python 2, a syntax error, a huge generated file,
a symlink loop, an unreadable file) becomes a `Diagnostic`; nothing escapes as an exception.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import io
import itertools
import os
import re
import stat
import subprocess
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import pathspec

from .confine import git_command, git_env
from .isolation import ParseWorker, WorkerDied
from .model import Diagnostic

if TYPE_CHECKING:  # libcst is imported where a file is parsed: a cache hit (the hook) never loads it
    import libcst as cst

DEFAULT_MAX_BYTES = 2_000_000

#: Folders of tools' caches: skipped without a word, they never hold code anyone wrote.
CACHE_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".stagegraph-cache"}
)

#: Folders that never hold the user's pipeline code.
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "node_modules", "site-packages",
        "__pycache__", ".tox", ".nox", ".eggs", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        "build", "dist", ".stagegraph-cache",
    }
)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file chosen for analysis: where it is on disk and how the report names it."""

    path: Path
    relpath: str  # POSIX, relative to the report root (the repository root on the command line)
    #: dotted module name, from the path under the analysed folder (how the code imports itself)
    module: str = ""


@dataclass(slots=True)
class ParsedModule:
    """One parsed file. `module` is the dotted name derived from its path under the root."""

    relpath: str
    module: str
    text: str
    tree: cst.Module
    lines: list[str] = field(default_factory=list)
    #: where the file is on disk (None for text from git objects); lets framework adapters read
    #: files that sit next to the code, such as an Airflow DAG's `.sql` templates
    path: Path | None = None


@dataclass(slots=True)
class Discovery:
    root: Path
    files: list[SourceFile]
    diagnostics: list[Diagnostic]


def common_root(paths: Sequence[Path]) -> Path:
    """The folder every reported path is relative to."""
    resolved = [p.resolve() for p in paths]
    dirs = [p if p.is_dir() else p.parent for p in resolved]
    return Path(os.path.commonpath([str(d) for d in dirs])) if dirs else Path.cwd()


def report_root(paths: Sequence[Path], root: Path | None) -> Path:
    """The folder report paths are relative to: `root` when it holds every path, else the analysed root."""
    base = common_root(paths) if paths else Path.cwd()
    if root is None:
        return base
    top = root.resolve()
    return top if base == top or top in base.parents else base


def repository_root(start: Path) -> Path:
    """The git top level of `start`, else the current folder: where CodeQL and ruff root their paths."""
    folder = start if start.is_dir() else start.parent
    try:
        proc = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                              text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return Path.cwd().resolve()
    top = proc.stdout.strip()
    return Path(top).resolve() if proc.returncode == 0 and top else Path.cwd().resolve()


class Listed:
    """The files git tracks or would track under a folder. Membership is checked on the path as
    walked first and resolved (symlinks followed) only when that misses: resolving every file of a
    large tree is most of what discovery costs, and the pre-commit hook pays it on every commit."""

    def __init__(self, top: Path, names: Sequence[str]) -> None:
        self._top = top
        self._names = names
        self._raw = {os.path.join(top, name) for name in names}
        self._resolved: set[Path] | None = None

    @property
    def resolved(self) -> set[Path]:
        if self._resolved is None:
            self._resolved = {(self._top / name).resolve() for name in self._names}
        return self._resolved

    def __contains__(self, path: object) -> bool:
        """Whether `path` (absolute) is listed; raises OSError/RuntimeError when it can't be resolved."""
        if not isinstance(path, Path):
            return False
        if str(path) in self._raw and not path.is_symlink():  # a tracked symlink may point outside
            return True
        return path.resolve() in self.resolved


def _git_listed(folder: Path) -> Listed | None:
    """Files git tracks or would track under `folder` (None when not in a work tree)."""
    try:
        proc = subprocess.run(
            git_command(folder, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."),
            capture_output=True, env=git_env(), stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    names = [name for name in proc.stdout.decode("utf-8", "replace").split("\0") if name]
    return Listed(folder.resolve(), names)


#: Skipped folders that are also common package names: skipped only when they are not a package
#: (`matrixstore/build/__init__.py` is the user's code; `build/lib/...` from setuptools is not)
_OUTPUT_DIRS = frozenset({"build", "dist", "env"})


def _skipped_dir(name: str, path: Path) -> bool:
    if name in _OUTPUT_DIRS and (path / "__init__.py").is_file():
        return False
    if name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    try:
        return (path / "pyvenv.cfg").exists()
    except OSError:  # an unreadable folder: os.walk reports it when it tries to list it
        return False


def _walk(folder: Path, diagnostics: list[Diagnostic], root: Path, listed: Listed | None = None
          ) -> Iterator[Path]:
    seen_dirs: set[tuple[int, int]] = set()

    def unlistable(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else folder
        diagnostics.append(Diagnostic(_rel(where, root), "unreadable", f"cannot read folder: {_why(exc)}"))

    for current, dirnames, filenames in os.walk(folder, followlinks=True, onerror=unlistable):
        here = Path(current)
        try:
            st = here.stat()
        except OSError as exc:
            diagnostics.append(Diagnostic(_rel(here, root), "unreadable", f"cannot read folder: {exc.strerror}"))
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            diagnostics.append(
                Diagnostic(_rel(here, root), "skipped", "symlink loop: this folder was already visited")
            )
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        kept = []
        for d in sorted(dirnames):
            if not _skipped_dir(d, here / d):
                kept.append(d)
            elif d not in CACHE_DIRS and _holds_tracked(here / d, listed):
                why = "a virtualenv" if (here / d / "pyvenv.cfg").exists() else "build output or third-party code"
                diagnostics.append(Diagnostic(_rel(here / d, root) + "/", "skipped",
                                              f"folder skipped by default ({why}); name it as a PATH to analyse it"))
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield here / name


def _holds_tracked(folder: Path, listed: Listed | None) -> bool:
    """Whether a skipped folder is worth mentioning: outside git always, in a work tree when git tracks files in it."""
    if listed is None:
        return True
    top = folder.resolve()
    return any(top in path.parents for path in listed.resolved)


def _rel(path: Path, root: Path) -> str:
    try:
        return PurePosixPath(Path(os.path.abspath(path)).relative_to(root)).as_posix()
    except ValueError:
        return path.as_posix()


def discover(paths: Sequence[Path], exclude: Iterable[str] = (), root: Path | None = None) -> Discovery:
    """Python files under `paths`, respecting .gitignore in a work tree, skipping venvs and build output.

    Report paths are relative to `root` (see `report_root`); module names to the analysed folder.
    """
    base = common_root(paths) if paths else Path.cwd()
    root = report_root(paths, root)
    diagnostics: list[Diagnostic] = []
    patterns = list(exclude)
    chosen: dict[str, SourceFile] = {}
    for given in paths:
        if not given.exists() and not given.is_symlink():
            diagnostics.append(Diagnostic(given.as_posix(), "unreadable", "no such file or folder"))
            continue
        if not given.is_dir() and not given.is_file() and given.exists():
            diagnostics.append(not_a_file(_rel(Path(os.path.abspath(given)), root), given))
            continue
        if given.is_file() or (given.is_symlink() and not given.is_dir()):
            candidates: Iterable[Path] = [given]
            listed = None
        else:
            listed = _git_listed(given)
            candidates = _walk(given, diagnostics, root, listed)
        for path in candidates:
            absolute = Path(os.path.abspath(path))
            rel = _rel(absolute, root)
            if listed is not None and not excluded(rel, patterns) and _special(path):
                # git never lists a FIFO or socket; say so rather than skip it silently
                diagnostics.append(not_a_file(rel, path))
                continue
            if listed is not None:
                try:
                    if absolute not in listed:
                        continue
                except (OSError, RuntimeError):
                    diagnostics.append(Diagnostic(rel, "unreadable", "symlink loop: the path cannot be resolved"))
                    continue
            local = _rel(absolute, base)
            if excluded(rel, patterns) or (local != rel and excluded(local, patterns)):
                continue
            chosen.setdefault(rel, SourceFile(absolute, rel, module_name(local)))
    return Discovery(root, [chosen[k] for k in sorted(chosen)], diagnostics)


def excluded(relpath: str, patterns: Iterable[str]) -> bool:
    """`--exclude` semantics: gitignore patterns (`vendor/`, `**/gen_*.py`, `!keep.py`), and, as before, a
    glob that matches the whole relative path or any one of its parts."""
    patterns = tuple(patterns)
    if not patterns:
        return False
    if gitignore_spec(patterns).match_file(relpath):
        return True
    parts = PurePosixPath(relpath).parts
    return any(fnmatch.fnmatch(relpath, pat) or any(fnmatch.fnmatch(p, pat) for p in parts)
               for pat in patterns if not pat.startswith("!"))


@functools.lru_cache(maxsize=64)
def gitignore_spec(patterns: Sequence[str]) -> pathspec.GitIgnoreSpec:
    """A compiled gitignore-style pattern list (pathspec's implementation of git's rules)."""
    return pathspec.GitIgnoreSpec.from_lines(list(patterns))


def module_name(relpath: str) -> str:
    """Dotted module name for a root-relative path (`etl/jobs/load.py` -> `etl.jobs.load`)."""
    parts = list(PurePosixPath(relpath).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(p.replace("-", "_") for p in parts) or "__main__"


_PY2_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*print\s+[^\s(=]"), "a print statement"),
    (re.compile(r"^\s*except\s+[\w.]+\s*,\s*\w+\s*:"), "'except X, e:'"),
    (re.compile(r"^\s*exec\s+[\"'\w]"), "an exec statement"),
    (re.compile(r"\bur[\"']"), "a ur'' string"),
    (re.compile(r"^\s*raise\s+\w+\s*,"), "'raise E, msg'"),
    (re.compile(r"\b0[0-7]+\b(?!\.)"), "an old octal literal"),
    (re.compile(r"`[^`]+`"), "backtick repr"),
)


def _python2_hint(text: str) -> str | None:
    for line in text.splitlines()[:2000]:
        for pattern, what in _PY2_HINTS[:5]:
            if pattern.search(line):
                return what
    return None


def _special(path: Path) -> bool:
    """A FIFO, socket or device (symlinks followed); False for regular files and for anything unreadable."""
    try:
        mode = path.stat().st_mode
    except (OSError, RuntimeError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def not_a_file(relpath: str, path: Path) -> Diagnostic:
    """A FIFO, socket or device where a source file was expected: never opened (a FIFO blocks forever)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0
    what = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return Diagnostic(relpath, "unreadable", f"not analysed: this is {what}, not a regular file", code="not-a-file")


def read_source(source: SourceFile, max_bytes: int = DEFAULT_MAX_BYTES) -> str | Diagnostic:
    """The decoded text of a file, honouring PEP 263 coding cookies. Only regular files are read.

    The file is opened non-blocking and checked with fstat, so a FIFO swapped in after discovery
    still cannot block the run.
    """
    try:
        if not stat.S_ISREG(source.path.stat().st_mode):
            return not_a_file(source.relpath, source.path)
        fd = os.open(source.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, RuntimeError) as exc:
        return Diagnostic(source.relpath, "unreadable", f"cannot read file: {_why(exc)}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return not_a_file(source.relpath, source.path)
        if info.st_size > max_bytes:
            return too_large(source.relpath, info.st_size, max_bytes)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return Diagnostic(source.relpath, "unreadable", f"cannot read file: {_why(exc)}")
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew since fstat
        return too_large(source.relpath, len(data), max_bytes)
    return decode(source.relpath, data)


def too_large(relpath: str, size: int, max_bytes: int) -> Diagnostic:
    return Diagnostic(
        relpath, "too-large",
        f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (raise max-file-bytes to analyse it)",
    )


def decode(relpath: str, data: bytes) -> str | Diagnostic:
    """Source bytes as text, honouring PEP 263 coding cookies (from disk or from a git object alike)."""
    if b"\0" in data[:8192]:
        return Diagnostic(relpath, "encoding-error", "file looks binary (it contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if _COOKIE.search(b"\n".join(data.splitlines()[:2])):
            return Diagnostic(relpath, "encoding-error", f"bad coding declaration: {exc.msg}")
        encoding = "utf-8"  # no cookie: Python reads UTF-8, and the decode below says where it fails
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        where = ""
        if isinstance(exc, UnicodeDecodeError):
            line = data[: exc.start].count(b"\n") + 1
            where = f" at line {line}"
        return Diagnostic(
            relpath, "encoding-error",
            f"cannot decode as {encoding}{where}; add a coding declaration or re-save as UTF-8",
        )
    return text.removeprefix("\ufeff")


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
#: CPython refuses more than 200 nested brackets and 100 indentation levels; deeper is generated or hostile
MAX_BRACKET_DEPTH = 200
MAX_INDENT_DEPTH = 100


def _too_deep(text: str) -> str | None:
    depth = deepest = 0
    for ch in re.sub(r"[^()\[\]{}]+", "", text):
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    if deepest > MAX_BRACKET_DEPTH:
        return f"brackets nested {deepest} levels deep (Python allows {MAX_BRACKET_DEPTH})"
    indents = {len(line) - len(line.lstrip(" \t")) for line in text.splitlines() if line.strip()}
    levels = len(indents)
    if levels > MAX_INDENT_DEPTH:
        return f"{levels} indentation levels (Python allows {MAX_INDENT_DEPTH})"
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError):
        return "symlink loop"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


#: CPython-accepted code nested deeper than this is parsed by libcst in a worker process first
RISKY_DEPTH = 100
#: deeper than this, a file is not analysed: libcst's parse time grows steeply with nesting (a
#: 2,000-deep subscript chain takes a minute) and every walk of the tree recurses once per level
MAX_DEPTH = 300


def ast_depth(tree: ast.AST) -> int:
    """How deeply CPython's tree nests (iterative: the measure itself must not recurse)."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


@dataclass(frozen=True, slots=True)
class Screened:
    """What CPython's parser says of a text it accepts: how deep it nests, and the line ranges of
    its top-level statements (1-based, first line with decorators to last line), in order."""

    depth: int
    statements: tuple[tuple[int, int], ...]


def screen(text: str) -> Screened | SyntaxError | str:
    """Run CPython's own parser first: depth and statements, its SyntaxError, or why it is too deep.

    CPython's parser checks its own stack and rejects pathological nesting cleanly, where libcst's
    native parser can crash the process or run for minutes.
    """
    try:
        tree = compile(text, "<screen>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg):
            return f"code is nested too deeply to analyse ({exc.msg})"
        return exc
    except (RecursionError, MemoryError):
        return "code is nested too deeply to analyse (Python's own parser refuses it)"
    except ValueError as exc:  # e.g. NUL bytes
        return SyntaxError(str(exc))
    body: list[ast.stmt] = tree.body if isinstance(tree, ast.Module) else []
    statements = tuple((min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))]),
                        node.end_lineno or node.lineno) for node in body)
    return Screened(ast_depth(tree), statements)


#: a file larger than this is parsed by libcst in pieces of about this size (see `parse_in_pieces`)
PIECE_BYTES = 256 * 1024


_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def pieces(text: str, statements: Sequence[tuple[int, int]], size: int | None = None) -> list[str]:
    """`text` cut between top-level statements into pieces of about `size` characters (a single
    statement larger than that is a piece of its own); joined, the pieces are `text`.

    A cut falls right after a statement's last line, never inside one (nor between two statements
    sharing a line), so each piece is a valid module on its own.
    """
    size = PIECE_BYTES if size is None else size
    lines = _PHYSICAL_LINE.findall(text)  # as CPython counts lines (str.splitlines also cuts at \f, \x1c...)
    offsets = list(itertools.accumulate((len(line) for line in lines), initial=0))
    cuts: list[int] = []  # line indexes (0-based) where a new piece starts
    piece_start = 0
    for index, (_first, last) in enumerate(statements):
        following = statements[index + 1][0] if index + 1 < len(statements) else None
        if following is not None and following > last and offsets[last] - offsets[piece_start] >= size:
            cuts.append(last)
            piece_start = last
    bounds = [0, *cuts, len(lines)]
    return ["".join(lines[a:b]) for a, b in itertools.pairwise(bounds) if a < b]


def libcst_parse(relpath: str, text: str) -> cst.Module | tuple[str, int | None]:
    """Parse with libcst: the module, or a syntax-error message and line (also run in the parse worker)."""
    import libcst as cst

    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        hint = _python2_hint(text)
        if hint:
            return f"looks like Python 2 code ({hint}); stagegraph analyses Python 3 only", max(exc.raw_line, 1)
        message = str(exc.message).strip().splitlines()[0] if exc.message else "invalid syntax"
        return f"cannot parse: {message}", max(exc.raw_line, 1)
    except RecursionError:
        return "cannot parse: code is nested too deeply", None
    except cst.CSTValidationError as exc:  # e.g. an identifier Python would reject
        return f"cannot parse: {exc}", None
    except (MemoryError, ValueError) as exc:
        return f"cannot parse: {exc}", None


def parse_in_pieces(relpath: str, text: str, statements: Sequence[tuple[int, int]]) \
        -> cst.Module | tuple[str, int | None]:
    """Parse a large file piece by piece (see `pieces`) and join the pieces into one module.

    libcst's native parser holds about 500 bytes per byte of source while it parses (a 30 MB file
    peaked at 15.8 GB); a piece at a time bounds that peak by the piece. The joined module prints
    back to exactly `text` (each piece does, and every piece infers the newline and indent the
    first one does), so positions are those of one parse; when a piece infers others, the file
    is parsed whole instead.
    """
    parts = pieces(text, statements)
    if len(parts) < 2:
        return libcst_parse(relpath, text)
    body: list[cst.BaseStatement] = []
    modules: list[cst.Module] = []
    line = 1
    for part in parts:
        parsed = libcst_parse(relpath, part)
        if isinstance(parsed, tuple):  # report the line in the whole file
            return parsed[0], (parsed[1] + line - 1 if parsed[1] is not None else None)
        line += len(_PHYSICAL_LINE.findall(part))
        if modules:
            # the previous piece's footer and this piece's header lead this piece's first statement
            lead = [*modules[-1].footer, *parsed.header]
            if parsed.body:
                first = parsed.body[0]
                body.append(first.with_changes(leading_lines=[*lead, *first.leading_lines]))
                body.extend(parsed.body[1:])
                parsed = parsed.with_changes(header=(), body=())
            else:
                parsed = parsed.with_changes(header=(), footer=[*lead, *parsed.footer])
        else:
            body.extend(parsed.body)
        modules.append(parsed)
    if len({(m.default_newline, m.default_indent) for m in modules}) > 1:
        return libcst_parse(relpath, text)  # a piece inferred another newline or indent than the first
    return modules[0].with_changes(body=body, footer=modules[-1].footer,
                                   has_trailing_newline=modules[-1].has_trailing_newline)


_worker: ParseWorker | None = None


def _parse_worker() -> ParseWorker:
    global _worker
    if _worker is None:
        import atexit

        _worker = ParseWorker()
        atexit.register(_worker.close)
    return _worker


def parse_text(relpath: str, text: str, module: str = "") -> ParsedModule | Diagnostic:
    """Parse decoded source with libcst; syntax errors, Python 2 and pathological nesting become one diagnostic.

    CPython's parser screens the text first. Code it rejects as too deep never reaches libcst; code
    deeper than `MAX_DEPTH` is skipped; code deeper than `RISKY_DEPTH`, and code CPython calls a
    syntax error (libcst may still accept newer syntax), is parsed in a worker process first, so a
    native crash there costs this file only.
    """
    if text.count("(") + text.count("[") + text.count("{") > MAX_BRACKET_DEPTH:
        deep = _too_deep(text)
        if deep:
            return Diagnostic(relpath, "syntax-error", f"code is nested too deeply to analyse: {deep}",
                              code="too-deep")
    screened = screen(text)
    if isinstance(screened, str):
        return Diagnostic(relpath, "syntax-error", screened, code="too-deep")
    if isinstance(screened, Screened) and screened.depth > MAX_DEPTH:
        return Diagnostic(relpath, "skipped", f"code is nested {screened.depth} levels deep; stagegraph analyses "
                          f"files nested up to {MAX_DEPTH} levels", code="too-deep")
    if isinstance(screened, SyntaxError) or screened.depth > RISKY_DEPTH:
        try:
            outcome = _parse_worker().parse(text)
        except WorkerDied as exc:
            return Diagnostic(relpath, "internal-error", f"cannot parse: {exc}; the rest was analysed",
                              code="parser-crash")
        if not outcome.get("ok"):
            line = outcome.get("line")
            return Diagnostic(relpath, "syntax-error", str(outcome.get("message", "cannot parse")),
                              line=line if isinstance(line, int) else None)
    if isinstance(screened, Screened) and len(text) > PIECE_BYTES:
        result = parse_in_pieces(relpath, text, screened.statements)
    else:
        result = libcst_parse(relpath, text)
    if isinstance(result, tuple):
        return Diagnostic(relpath, "syntax-error", result[0], line=result[1])
    return ParsedModule(relpath, module or module_name(relpath), text, result, text.splitlines())
