"""The pre-commit path: check the pipelines the changed files belong to, fast, and report compactly.

A changed stage module matters through the driver that calls it, so the hook analyses the
changed files plus their *import context*: every module that imports them (transitively, to
reach the drivers) and everything those import (to resolve the driver's other stages). The
context comes from a cheap regex scan of import lines, not a parse, so one changed file in a
large repo parses only a handful of modules. `--full` analyses the whole tree instead, for
code that wires stages together in ways imports do not show (string registries, plugins).
Paths are relative to the repository root, as in a full `audit`, so fingerprints match.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from .engine import Options
from .model import Diagnostic, Report

_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<from>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#;]+)"
    r"|import[ \t]+(?P<modules>[^\n#;]+))",
    re.MULTILINE,
)


def _names(text: str) -> list[str]:
    return [part.split(" as ")[0].strip() for part in text.strip("() \t\n").replace("\\\n", " ").split(",")
            if part.strip()]


def imported_modules(module: str, is_package: bool, text: str) -> set[str]:
    """Dotted names a module's source may import (absolute form; a superset is fine)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for match in _IMPORT.finditer(text):
        if match.group("modules"):
            for name in _names(match.group("modules")):
                found.add(name)
            continue
        origin = match.group("from") or ""
        dots = len(origin) - len(origin.lstrip("."))
        base = origin[dots:]
        if dots:
            anchor = package.split(".") if package else []
            anchor = anchor[: len(anchor) - (dots - 1)] if dots > 1 else anchor
            base = ".".join([*anchor, base] if base else anchor)
        if base:
            found.add(base)
        for name in _names(match.group("names") or ""):
            if name != "*":
                found.add(f"{base}.{name}" if base else name)
    return found


def import_context(files: dict[str, str], changed: Iterable[str]) -> set[str]:
    """Root-relative files to analyse for `changed`: they, their importers (transitively) and all their imports."""
    from .source import module_name

    by_suffix: dict[str, set[str]] = {}
    for rel in files:
        parts = module_name(rel).split(".")
        for i in range(len(parts)):  # a src/ layout imports `etl.x` for src/etl/x.py
            by_suffix.setdefault(".".join(parts[i:]), set()).add(rel)
    imports: dict[str, set[str]] = {}
    for rel, text in files.items():
        targets: set[str] = set()
        for name in imported_modules(module_name(rel), rel.endswith("__init__.py"), text):
            targets |= by_suffix.get(name, set())
        targets.discard(rel)
        imports[rel] = targets
    importers: dict[str, set[str]] = {rel: set() for rel in files}
    for rel, targets in imports.items():
        for target in targets:
            importers[target].add(rel)
    context = _closure(set(changed) & set(files), importers)
    return _closure(context, imports)


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def changed_relpaths(root: Path, files: Sequence[Path]) -> frozenset[str]:
    """The changed Python files as root-relative POSIX paths (others are not ours to check)."""
    result: set[str] = set()
    for given in files:
        # resolve the folder we run in, not the file: a symlinked checkout must match `root`
        absolute = Path(os.path.normpath(given if given.is_absolute() else Path.cwd().resolve() / given))
        if absolute.suffix != ".py":
            continue
        try:
            result.add(PurePosixPath(absolute.relative_to(root)).as_posix())
        except ValueError:
            continue
    return frozenset(result)


def run_hook(targets: Sequence[Path], files: Sequence[Path], options: Options, full: bool = False
             ) -> tuple[Report, frozenset[str]]:
    """The report for the pipelines touching `files`, and the changed files it covered."""
    from dataclasses import replace

    from . import source
    from .engine import cached_facts, finish, make_report, read_isolated

    root = source.report_root(targets, options.root)
    changed = changed_relpaths(root, files)
    if not changed:
        return make_report((), (), (), 0), changed
    found = source.discover(targets, options.exclude, options.root)
    texts: dict[str, str | Diagnostic] = {}
    chosen = [src.relpath for src in found.files]
    if not full:
        for src in found.files:
            texts[src.relpath] = source.read_source(src, options.max_file_bytes)
        context = import_context({rel: t for rel, t in texts.items() if isinstance(t, str)}, changed)
        chosen = [rel for rel in chosen if rel in context]
    paths = {src.relpath: src for src in found.files}
    # the import scan already read the files: analyse those texts rather than reading them again
    chosen_texts = {rel: texts[rel] if rel in texts else read_isolated(
        rel, lambda rel=rel: source.read_source(paths[rel], options.max_file_bytes))  # type: ignore[misc]
        for rel in chosen}
    only = replace(options, only_files=changed)
    outcome, lines = cached_facts(chosen_texts, {rel: src.path for rel, src in paths.items()},
                                  {rel: src.module for rel, src in paths.items()}, only, found.root)
    diagnostics = [d for d in [*found.diagnostics, *outcome.parse_diagnostics] if d.file in changed]
    report = finish(outcome, lines, diagnostics, only, files_analysed=len(outcome.parsed))
    return report, changed


def render_compact(report: Report, changed: frozenset[str]) -> str:
    """A few lines for a commit log: findings with their code line, unreadable changed files, one summary line."""
    from .render.safe import sanitize
    from .render.text import code_frame, counts_line, finding_line, plural, suppression_lines

    report = sanitize(report)

    lines = []
    for f in report.findings:
        lines.append(finding_line(f))
        lines.extend(frame[2:] for frame in code_frame(f.line, f.column, f.snippet))
    for d in report.diagnostics:
        where = f"{d.file}:{d.line}" if d.line else d.file
        lines.append(f"{where}: not analysed ({d.kind}): {d.message}")
    lines.extend(line for p, line in zip(report.suppression_problems, suppression_lines(report), strict=True)
                 if p.file in changed)
    s = report.summary
    counts = dict(s.findings_by_severity)
    known = "".join(f", {n} {what}" for n, what in ((s.baselined, "baselined"), (s.suppressed, "suppressed")) if n)
    touching = "touching it" if len(changed) == 1 else "touching them"
    lines.append(
        f"stagegraph: {plural(len(changed), 'changed file')}, {plural(s.pipelines, 'pipeline')} {touching} "
        f"({plural(s.files_analysed, 'file')} analysed): {counts_line(counts)}{known}"
    )
    return "\n".join(lines) + "\n"
