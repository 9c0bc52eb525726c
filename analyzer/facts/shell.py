"""What a shell command line touches (a BashOperator's `bash_command`), from the `[[command]]` catalog.

The line is split into simple commands (`&&`, `||`, `;`, `|`, `&`) with `shlex`; each one's program
and leading words pick a catalog model (`dbt deps`, `psql`, `wget`). Redirections are effects of their
own: `> f` writes `f`, `< f` feeds `f` to the program (`psql < load.sql` runs that file's SQL). A
command the catalog does not know, a program built at run time or a line that does not split is not
modelled: `effects` returns None and the caller keeps its open-world `unknown` (never no effect).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence

from ..catalog import CommandModel, ResourceCatalog
from ..model import Effect
from .stagefx import sql_effects
from .values import WILD

_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "|&"})
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")

#: (reads, writes) of a command line, or None when some part of it is not modelled
Effects = tuple[list[Effect], list[Effect]]


def effects(text: str, catalog: ResourceCatalog, file: str, line: int,
            read_file: Callable[[str], str | None]) -> Effects | None:
    """The effects of `text`; `read_file(name)` returns a file's text (a `.sql` script), else None."""
    words = _words(_JINJA.sub(WILD, text))
    if words is None:
        return None
    reads: list[Effect] = []
    writes: list[Effect] = []
    for command in _commands(words):
        found = _command(command, catalog, file, line, read_file)
        if found is None:
            return None
        reads.extend(found[0])
        writes.extend(found[1])
    return reads, writes


def _words(text: str) -> list[str] | None:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an unclosed quote
        return None


def _commands(words: Sequence[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for word in words:
        if word in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(word)
    return [c for c in out if c]


def _command(words: list[str], catalog: ResourceCatalog, file: str, line: int,
             read_file: Callable[[str], str | None]) -> Effects | None:
    reads: list[Effect] = []
    writes: list[Effect] = []
    plain: list[str] = []
    stdin: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in {">", ">>", "<"} and i + 1 < len(words):
            target = words[i + 1]
            if word == "<":
                stdin = target
            elif (plain and plain[-1].isdigit() and plain[-1] != "1") or target.startswith("&"):
                pass  # `2> err.log`, `2>&1`: where errors go, not the data
            else:
                writes.append(_file(target, file, line))
            if plain and plain[-1].isdigit():
                plain.pop()
            i += 2
            continue
        plain.append(word)
        i += 1
    while plain and _ASSIGNMENT.match(plain[0]):
        plain.pop(0)  # `FOO=bar cmd`: the environment of the command
    if not plain:
        return reads, writes
    if WILD in plain[0]:
        return None  # the program itself is built at run time
    model = catalog.command(plain)
    if model is None:
        return None
    found = _model_effects(model, plain, stdin, file, line, read_file)
    if found is None:
        return None
    if stdin is not None and not any(spec == "sql:stdin" for spec in model.reads):
        reads.append(_file(stdin, file, line))
    return reads + found[0], writes + found[1]


def _model_effects(model: CommandModel, words: list[str], stdin: str | None, file: str, line: int,
                   read_file: Callable[[str], str | None]) -> Effects | None:
    """The model's effects on this command line; None when one it needs can't be named here."""
    reads: list[Effect] = []
    writes: list[Effect] = []
    resolved = not (model.reads or model.writes)
    for specs, out in ((model.reads, reads), (model.writes, writes)):
        for spec in specs:
            kind, _, name = spec.partition(":")
            if kind == "unknown":
                what = f"`{' '.join([model.program, *model.words])}` changes names stagegraph can't see"
                out.append(Effect("unknown", what, file, line, key=f"command:{file}:{line}:{name}", of=name))
                resolved = True
                continue
            value = stdin if name == "stdin" else _option(words, name) if name.startswith("-") else name
            if value is None:
                continue  # this form of the command does not use it (`psql -c` has no stdin script)
            resolved = True
            if kind == "sql":
                text = value if name in {"-c", "--command"} else read_file(value)
                if text is None:
                    reads.append(_file(value, file, line))
                    writes.append(Effect("unknown", f"SQL in {value} that could not be read", file, line,
                                         key=f"command:{file}:{line}:sql", of="table"))
                    continue
                if name not in {"-c", "--command"}:
                    reads.append(_file(value, file, line))
                sql_reads, sql_writes = sql_effects(text, file, line)
                reads.extend(sql_reads)
                writes.extend(sql_writes)
            else:
                out.append(_file(value.rstrip("/") + "/*" if kind == "dir" else value, file, line))
    return (reads, writes) if resolved else None


def _option(words: Sequence[str], option: str) -> str | None:
    """The value given to `option` (`-O f`, `-Of`, `--output=f`, `--output f`)."""
    for i, word in enumerate(words[1:], start=1):
        if word == option:
            return words[i + 1] if i + 1 < len(words) else None
        if option.startswith("--") and word.startswith(option + "="):
            return word[len(option) + 1:]
        if not option.startswith("--") and word.startswith(option) and len(word) > len(option):
            return word[len(option):]
    return None


def _file(path: str, file: str, line: int) -> Effect:
    if path.replace(WILD, "") == "":
        return Effect("unknown", "file name built at run time", file, line, key=f"command:{file}:{line}:file",
                      of="file")
    return Effect("file", path, file, line, key=path)
