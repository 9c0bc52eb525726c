"""Diff mode: analyse a git ref from git objects and keep only what the change introduced.

The base side is read with `git ls-tree` and `git cat-file --batch`, never by checking out:
the work tree and index are untouched. Both sides go through the same `analyze_modules`, so
findings are comparable by fingerprint. The graph delta compares real dependencies by
(pipeline id, from-stage name, to-stage name, kind) and parallel groups by their stage names,
since stage ids and lines move with unrelated edits.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .confine import git_command, git_env
from .model import DEPENDENCY_KINDS, Diagnostic, EdgeKey, GraphDelta, GroupKey, Pipeline, Report

__all__ = ["DiffError", "EdgeKey", "GraphDelta", "GroupKey", "analyze_ref", "compare", "run"]

if TYPE_CHECKING:
    from .engine import Options


class DiffError(RuntimeError):
    """Diff mode cannot run (not a git repo, unknown ref); the message says what to do."""


# ------------------------------------------------------------------ git plumbing

def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(git_command(repo, *args), input=stdin, capture_output=True, check=False,
                              timeout=300, env=git_env())
    except OSError as exc:
        raise DiffError(f"cannot run git: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DiffError(f"git {args[0]} timed out") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiffError(f"git {args[0]} failed: {message[-1] if message else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def toplevel(path: Path) -> Path:
    folder = path if path.is_dir() else path.parent
    try:
        out = _git(folder, "rev-parse", "--show-toplevel")
    except DiffError as exc:
        raise DiffError(f"--diff-base needs a git repository: {folder} is not in one") from exc
    return Path(out.decode("utf-8").strip()).resolve()


def resolve_commit(repo: Path, ref: str) -> str:
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode("ascii").strip()
    except DiffError as exc:
        raise DiffError(
            f"--diff-base {ref}: no such commit in {repo} (fetch it first, e.g. `git fetch origin`)"
        ) from exc


def list_blobs(repo: Path, commit: str, pathspecs: Sequence[str]) -> list[tuple[str, str]]:
    """(repo-relative path, blob sha) of regular Python files at `commit` under `pathspecs`."""
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *pathspecs)
    blobs: list[tuple[str, str]] = []
    for record in out.decode("utf-8", "surrogateescape").split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, sha = meta.split()
        if kind == "blob" and mode in ("100644", "100755") and path.endswith(".py"):
            blobs.append((path, sha))
    return blobs


def read_blobs(repo: Path, shas: Iterable[str]) -> dict[str, bytes]:
    """Blob contents by sha, through one `git cat-file --batch` process."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out = _git(repo, "cat-file", "--batch", stdin=("\n".join(wanted) + "\n").encode("ascii"))
    blobs: dict[str, bytes] = {}
    pos = 0
    for _ in wanted:
        header_end = out.index(b"\n", pos)
        sha, _kind, size = out[pos:header_end].decode("ascii").split()
        start = header_end + 1
        blobs[sha] = out[start:start + int(size)]
        pos = start + int(size) + 1
    return blobs


# ------------------------------------------------------------------ analysing a ref

def renames(repo: Path, commit: str) -> dict[str, str]:
    """Base path -> work-tree path of files git's rename detection pairs (`git diff -M`)."""
    out = _git(repo, "diff", "--name-status", "-M", "-z", "--no-ext-diff", commit, "--")
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    moved: dict[str, str] = {}
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status.startswith(("R", "C")):
            if status.startswith("R"):
                moved[fields[i + 1]] = fields[i + 2]
            i += 3
        else:
            i += 2
    return moved


def analyze_ref(targets: Sequence[Path], commit: str, options: Options) -> Report:
    """The report `analyze(targets)` would give if the work tree were at `commit`.

    A file git sees as renamed since `commit` is reported under its new path (its module name
    stays the old one, so the base's imports still resolve), so a pure rename changes no fingerprint.
    """
    from .engine import analyze_modules, parse_sources
    from .source import SKIP_DIRS, common_root, decode, excluded, module_name, report_root, too_large

    root = common_root(targets)
    repo = toplevel(root)
    shown_root = report_root(targets, options.root).relative_to(repo).as_posix()
    pathspecs: list[str] = []
    for target in targets:
        absolute = Path(os.path.abspath(target)).resolve()
        try:
            rel = absolute.relative_to(repo).as_posix()
        except ValueError as exc:
            raise DiffError(f"{target} is outside the git repository {repo}") from exc
        pathspecs.append("." if rel == "." else ":(literal)" + rel)
    root_rel = root.relative_to(repo).as_posix()
    moved = renames(repo, commit)
    blobs = list_blobs(repo, commit, pathspecs)

    def under(path: str, folder: str) -> str:
        return PurePosixPath(path).relative_to(folder).as_posix() if folder != "." else path

    chosen: list[tuple[str, str, str]] = []
    for path, sha in blobs:
        local = under(path, root_rel)
        dirs = PurePosixPath(local).parts[:-1]
        if any(d in SKIP_DIRS or d.endswith(".egg-info") for d in dirs) or excluded(local, options.exclude):
            continue
        shown = moved.get(path, path)
        try:
            rel = under(shown, shown_root)
        except ValueError:  # renamed out of the analysed folder: keep the base name
            rel = under(path, shown_root)
        chosen.append((rel, sha, module_name(local)))
    contents = read_blobs(repo, (sha for _, sha, _ in chosen))

    def text_of(data: bytes, rel: str) -> str | Diagnostic:
        if len(data) > options.max_file_bytes:
            return too_large(rel, len(data), options.max_file_bytes)
        return decode(rel, data)

    parsed, diagnostics = parse_sources(
        ((rel, lambda rel=rel, sha=sha: text_of(contents[sha], rel)) for rel, sha, _ in sorted(chosen)),  # type: ignore[misc]
        modules={rel: module for rel, _, module in chosen}, max_memory=options.max_memory,
    )
    return analyze_modules(parsed, diagnostics, options, files_analysed=len(parsed))


# ------------------------------------------------------------------ comparing two reports

def _stage_name(pipeline: Pipeline, stage_id: str) -> str:
    for stage in pipeline.stages:
        if stage.id == stage_id:
            return stage.name
    return stage_id


def dependency_keys(report: Report) -> set[EdgeKey]:
    return {
        EdgeKey(p.id, _stage_name(p, e.source), _stage_name(p, e.target), e.kind)
        for p in report.pipelines for e in p.edges if e.kind in DEPENDENCY_KINDS
    }


def group_keys(report: Report) -> set[GroupKey]:
    return {
        GroupKey(p.id, tuple(sorted(_stage_name(p, s) for s in g.stages)))
        for p in report.pipelines for g in p.parallel_groups
    }


def compare(base: Report, head: Report, base_ref: str, base_commit: str) -> tuple[Report, GraphDelta]:
    """The head report with only findings new relative to `base` (the others in `unchanged`), and the delta."""
    from .baseline import apply

    base_prints = frozenset(fp for f in base.findings for fp in f.prints)
    head_prints = {fp for f in head.findings for fp in f.prints}
    new_only = apply(head, base_prints)
    base_edges, head_edges = dependency_keys(base), dependency_keys(head)
    base_groups, head_groups = group_keys(base), group_keys(head)
    delta = GraphDelta(
        base_ref=base_ref,
        base_commit=base_commit,
        dependencies_added=tuple(sorted(head_edges - base_edges)),
        dependencies_removed=tuple(sorted(base_edges - head_edges)),
        parallel_groups_gained=tuple(sorted(head_groups - base_groups)),
        parallel_groups_lost=tuple(sorted(base_groups - head_groups)),
        new_findings=len(head_prints - base_prints),
        fixed_findings=len(base_prints - head_prints),
        unchanged_findings=len(head_prints & base_prints),
    )
    return replace(new_only, delta=delta), delta


def run(targets: Sequence[Path], ref: str, options: Options, head: Report) -> tuple[Report, GraphDelta]:
    """Diff mode end to end: resolve `ref`, analyse it from git objects, compare with `head`."""
    repo = toplevel(_common(targets))
    commit = resolve_commit(repo, ref)
    base = analyze_ref(targets, commit, options)
    return compare(base, head, ref, commit)


def _common(targets: Sequence[Path]) -> Path:
    from .source import common_root

    return common_root(targets)


# ------------------------------------------------------------------ presenting the delta

def to_dict(delta: GraphDelta) -> dict[str, Any]:
    """The `"delta"` key of the JSON report (rendered by `stagegraph.render.json`)."""
    from .render.json import delta_to_dict

    return delta_to_dict(delta)


def from_dict(data: dict[str, Any]) -> GraphDelta:
    from .render.json import delta_from_dict

    return delta_from_dict(data)
