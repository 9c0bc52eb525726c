#!/usr/bin/env python3
"""Run stagegraph on the field corpus (real public pipelines, labelled blind) and score it.

For each label in benchmarks/field/labels/ the snapshot of its repository is looked up in the snapshot
folder (DIR/<owner>+<name>/repo, or DIR/<owner>+<name> being the git directory itself), the tree at
`source.commit` is extracted into a temporary folder with `git ls-tree` + `git cat-file --batch` (no
work tree, no hooks, no checkout), `stagegraph audit <tree>/<source.path> --format json` runs on it and
the report is scored with the rules of ../shared/tools/score.py.

Prints a per-case table, per-style totals and, last, one line of JSON with the totals. Exit status is 0
(this is a benchmark, not a gate) unless the usage is wrong (2) or --strict is given and some
dependent pair was called independent (1).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SHARED_SCORER = REPO_ROOT.parent / "shared" / "tools" / "score.py"
DEFAULT_SNAPSHOTS = "/work/.mirror"
DEFAULT_CMD = "stagegraph audit {path} --format json"
# Never let a snapshot's own git configuration run anything: no fsmonitor, no hooks, no pager.
GIT_SAFE = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "--no-pager"]
TREE_MARKER = ".complete.json"
COUNT_KEYS = (
    "stages_found", "stages_missed", "depends_ok", "unsafe_called_safe", "independent_ok",
    "independent_missed", "pairs_unscored", "pairs_either_way", "hazards_found", "hazards_missed",
    "extra_findings",
)


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class body runs
    spec.loader.exec_module(module)
    return module


def load_scorer(path: Path | None = None) -> tuple[ModuleType, str]:
    """The scoring functions of ../shared/tools/score.py, else the copy in scoring.py beside this file."""
    candidate = path or SHARED_SCORER
    if candidate.is_file():
        try:
            return _load_module("_stagegraph_field_score", candidate), str(candidate)
        except Exception as exc:  # a broken shared scorer must not stop the benchmark
            print(f"warning: cannot import {candidate} ({exc}); using benchmarks/field/scoring.py", file=sys.stderr)
    return _load_module("_stagegraph_field_scoring_copy", HERE / "scoring.py"), str(HERE / "scoring.py")


table: ModuleType = _load_module("_stagegraph_field_table", HERE / "table.py")


# ------------------------------------------------------------------ snapshots and extraction


def is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def find_snapshot(snapshots: Path, repo: str) -> Path | None:
    owner, _, name = repo.partition("/")
    wanted = f"{owner}+{name}"
    candidates = [snapshots / wanted]
    if not candidates[0].exists() and snapshots.is_dir():
        candidates += [p for p in snapshots.iterdir() if p.name.lower() == wanted.lower()]
    for folder in candidates:
        for gitdir in (folder / "repo", folder / "repo" / ".git", folder):
            if is_git_dir(gitdir):
                return gitdir
    return None


def git(
    gitdir: Path, *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_PAGER="cat", GIT_OPTIONAL_LOCKS="0")
    return subprocess.run(
        ["git", f"--git-dir={gitdir}", *GIT_SAFE, *args],
        input=stdin, capture_output=True, timeout=timeout, env=env, check=False,
    )


def has_commit(gitdir: Path, commit: str) -> bool:
    return git(gitdir, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def safe_relpath(path: str) -> Path | None:
    """`path` from a tree listing as a relative path, or None when it could escape the folder."""
    parts = path.split("/")
    if not parts or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
        return None
    return Path(*parts)


class SnapshotError(Exception):
    """The snapshot cannot give this tree (a reason to skip the case, not a run error)."""


def extract_tree(gitdir: Path, commit: str, dest: Path) -> dict[str, Any]:
    """Write the blobs of `commit` under `dest`; symlinks, gitlinks and blobs the snapshot lacks are skipped."""
    listing = git(gitdir, "ls-tree", "-r", "-z", "--full-tree", commit, timeout=300)
    if listing.returncode != 0:
        raise SnapshotError(f"git ls-tree failed: {listing.stderr.decode(errors='replace').strip()[-300:]}")
    entries: list[tuple[str, Path]] = []
    stats: dict[str, Any] = {"files": 0, "missing_blobs": 0, "symlinks": 0, "gitlinks": 0, "unsafe_paths": 0}
    missing: list[str] = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split(" ")
        if mode == "120000":
            stats["symlinks"] += 1
            continue
        if mode == "160000" or kind == "commit":
            stats["gitlinks"] += 1
            continue
        if kind != "blob":
            continue
        rel = safe_relpath(raw_path.decode("utf-8", errors="surrogateescape"))
        if rel is None:
            stats["unsafe_paths"] += 1
            continue
        entries.append((oid, rel))
    dest.mkdir(parents=True, exist_ok=True)
    # An empty .git marks the extracted tree as a repository root, so stagegraph's search for a
    # stagegraph.toml stops here as it would in a checkout (instead of climbing into the temp folder).
    (dest / ".git").mkdir(exist_ok=True)
    if not entries:
        stats["missing_paths"] = missing
        return stats
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_OPTIONAL_LOCKS="0")
    proc = subprocess.Popen(
        ["git", f"--git-dir={gitdir}", *GIT_SAFE, "cat-file", "--batch"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for oid, _ in entries:
                proc.stdin.write(oid.encode() + b"\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    root = dest.resolve()
    try:
        for _oid, rel in entries:
            header = proc.stdout.readline().decode().split()
            if len(header) < 2:
                raise SnapshotError("git cat-file --batch stopped early")
            if header[1] == "missing" or len(header) < 3:
                stats["missing_blobs"] += 1
                missing.append(rel.as_posix())
                continue
            size = int(header[2])
            body = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            target = dest / rel
            if not target.resolve().is_relative_to(root):
                stats["unsafe_paths"] += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            stats["files"] += 1
    finally:
        proc.stdout.close()
        proc.wait(timeout=60)
        writer.join(timeout=60)
    stats["missing_paths"] = missing
    return stats


class TreeCache:
    """Extracted trees keyed by repo+commit: each is extracted once per run (once ever with --cache-dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def get(self, gitdir: Path, repo: str, commit: str) -> tuple[Path, dict[str, Any], bool]:
        key = f"{repo.replace('/', '+')}@{commit}"
        with self._guard:
            lock = self._locks[key]
        with lock:
            final = self.root / key
            marker = final / TREE_MARKER
            if marker.is_file():
                return final / "tree", json.loads(marker.read_text()), True
            work = Path(tempfile.mkdtemp(prefix=f"{key}.part-", dir=self.root))
            try:
                started = time.monotonic()
                stats = extract_tree(gitdir, commit, work / "tree")
                stats["extract_seconds"] = round(time.monotonic() - started, 2)
                (work / TREE_MARKER).write_text(json.dumps(stats))
                if final.exists():
                    shutil.rmtree(final)  # an unfinished earlier extraction
                work.rename(final)
            finally:
                if work.exists():
                    shutil.rmtree(work, ignore_errors=True)
            return final / "tree", stats, False


# ------------------------------------------------------------------ running the analyzer


def resolve_argv(cmd: str, target: Path) -> list[str]:
    argv = [a.replace("{path}", str(target)) for a in shlex.split(cmd)]
    if argv and argv[0] == "stagegraph":
        beside = Path(sys.executable).parent / "stagegraph"  # the venv this runner runs in
        argv[0] = str(beside) if beside.is_file() else (shutil.which("stagegraph") or "stagegraph")
    elif argv and "/" in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = os.path.abspath(argv[0])  # the analyzer runs in another folder: resolve from here
    if "{path}" not in cmd:
        argv.append(str(target))
    return argv


def run_analyzer(argv: list[str], cwd: Path, timeout: float) -> tuple[dict[str, Any] | None, str]:
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    except OSError as exc:
        return None, f"could not run {argv[0]}: {exc}"
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the analyzer this runner started
        proc.communicate()
        return None, f"timed out after {timeout:g} s"
    if proc.returncode not in (0, 1):
        return None, f"exit {proc.returncode}: {err.strip()[-300:]}"
    try:
        report = json.loads(out)
    except json.JSONDecodeError as exc:
        return None, f"output is not JSON: {exc}; stderr: {err.strip()[-200:]}"
    if not isinstance(report, dict):
        return None, "output is not a JSON object"
    return report, ""


# ------------------------------------------------------------------ one case


@dataclass
class Case:
    id: str
    label: dict[str, Any]
    path: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def style(self) -> str:
        return str(self.label.get("style", "?"))

    @property
    def source(self) -> dict[str, str]:
        return dict(self.label["source"])


@dataclass
class Result:
    case: Case
    status: str  # ok | error | skipped
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    unsafe: list[dict[str, str]] = field(default_factory=list)
    missed_stages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extract: dict[str, Any] = field(default_factory=dict)
    pipeline: str | None = None

    def row(self) -> dict[str, Any]:
        src = self.case.source if isinstance(self.case.label.get("source"), dict) else {}
        return {
            "case": self.case.id,
            "style": self.case.style,
            "repo": src.get("repo"),
            "commit": src.get("commit"),
            "path": src.get("path"),
            "status": self.status,
            "reason": self.reason,
            "pipeline_matched": self.pipeline,
            **{k: self.counts.get(k, 0) for k in COUNT_KEYS},
            "unsafe_pairs": self.unsafe,
            "missed_stages": self.missed_stages,
            "notes": self.notes,
            "label_warnings": self.case.warnings,
            "seconds": self.seconds,
            "extract": self.extract,
        }


def details(
    scorer: ModuleType, label: dict[str, Any], report: dict[str, Any]
) -> tuple[str | None, list[str], list[dict[str, str]]]:
    """The pipeline score_case picks, the labelled stages it lacks and the UNSAFE pairs, as structured data."""
    order = list(label.get("order", []))
    pipeline = scorer.pick_pipeline(report, label["pipeline"])
    if pipeline is None or not set(order) & {s["name"] for s in pipeline.get("stages", [])}:
        pipeline = scorer.merged_pipeline(report, set(order))
    if pipeline is None:
        return None, order, []
    ids = scorer.stage_ids(pipeline)
    closure = scorer.reachable(pipeline)
    unsafe = []
    for pair in label.get("pairs", []):
        if pair.get("confidence") == "low":
            continue
        a, b = ids.get(pair["a"]), ids.get(pair["b"])
        if a is None or b is None:
            continue
        said_depends = b in closure.get(a, set()) or a in closure.get(b, set())
        truth = "depends" if pair.get("dep_kind") == "control" else pair["relation"]
        if truth == "depends" and not said_depends:
            unsafe.append({"a": pair["a"], "b": pair["b"], "dep_kind": str(pair.get("dep_kind", "")),
                           "via": str(pair.get("via", "?"))})
    return str(pipeline.get("id")), [s for s in order if s not in ids], unsafe


def run_case(case: Case, snapshots: Path, cache: TreeCache, cmd: str, timeout: float, scorer: ModuleType) -> Result:
    src = case.source
    repo, commit, spath = src["repo"], src["commit"], src["path"]
    gitdir = find_snapshot(snapshots, repo)
    if gitdir is None:
        return Result(case, "skipped", f"no snapshot of {repo} in {snapshots} (fetch github:{repo})")
    if not has_commit(gitdir, commit):
        return Result(case, "skipped", f"snapshot {gitdir} lacks commit {commit[:12]}")
    try:
        tree, stats, cached = cache.get(gitdir, repo, commit)
    except (SnapshotError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        return Result(case, "skipped", f"cannot extract {repo}@{commit[:12]}: {exc}")
    extract = {**{k: v for k, v in stats.items() if k != "missing_paths"}, "cached": cached}
    target = tree / spath if spath not in ("", ".") else tree
    if not target.exists():
        lacks = f" ({stats.get('missing_blobs')} blobs missing from the snapshot)" if stats.get("missing_blobs") else ""
        return Result(case, "error", f"source.path {spath!r} is not in {repo}@{commit[:12]}{lacks}", extract=extract)
    started = time.monotonic()
    reuse = REPORTS.path(cmd, repo, commit, spath)
    report = REPORTS.load(reuse)
    error = ""
    if report is None:
        # cwd: the folder holding the tree, not the tree, so `python -m ...` commands never import snapshot code
        report, error = run_analyzer(resolve_argv(cmd, target), tree.parent, timeout)
        if report is not None:
            REPORTS.store(reuse, report)
    seconds = round(time.monotonic() - started, 2)
    if report is None:
        return Result(case, "error", error, seconds=seconds, extract=extract)
    try:
        row = scorer.score_case(case.id, case.label, report)
        pipeline, missed, unsafe = details(scorer, case.label, report)
    except (KeyError, TypeError, AttributeError) as exc:
        return Result(case, "error", f"scoring failed ({type(exc).__name__}: {exc}); run table.py --check",
                      seconds=seconds, extract=extract)
    counts = {k: int(row.get(k, 0)) for k in COUNT_KEYS}
    notes = [str(n) for n in row.get("notes", []) if not str(n).startswith("UNSAFE: ")]
    if len(unsafe) != counts["unsafe_called_safe"]:
        notes.append(f"runner found {len(unsafe)} UNSAFE pairs, scorer {counts['unsafe_called_safe']}")
    prefix = "" if spath in ("", ".") else spath.strip("/") + "/"
    lacking = [p for p in stats.get("missing_paths", []) if p.startswith(prefix) or p == spath.strip("/")]
    if lacking:
        shown = ", ".join(lacking[:3]) + (f" (+{len(lacking) - 3} more)" if len(lacking) > 3 else "")
        notes.append(f"snapshot lacks {len(lacking)} file(s) under source.path (>= 4 MiB or LFS): {shown}")
    return Result(case, "ok", counts=counts, unsafe=unsafe, missed_stages=missed, notes=notes,
                  seconds=seconds, extract=extract, pipeline=pipeline)


class ReportCache:
    """Reports of earlier runs, keyed by the analyzer's own source, the command and the snapshot.

    A change to `analyzer/` or `rules/` (or to the command) misses the cache, so a reused report is
    always what the current code would print; labels are scored afresh every time. This is what lets
    the before-stop hook (which cuts the run at 40 s) print a full summary after one full run.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.code = self._fingerprint() if folder is not None else ""

    @staticmethod
    def _fingerprint() -> str:
        digest = hashlib.sha256()
        for base in (REPO_ROOT / "analyzer", REPO_ROOT / "rules"):
            for path in sorted(base.rglob("*")):
                if path.is_file() and path.suffix in {".py", ".toml", ".j2", ".json"}:
                    digest.update(str(path.relative_to(REPO_ROOT)).encode())
                    digest.update(path.read_bytes())
        return digest.hexdigest()

    def path(self, cmd: str, repo: str, commit: str, spath: str) -> Path | None:
        if self.folder is None:
            return None
        key = hashlib.sha256("\0".join((self.code, cmd, repo, commit, spath)).encode()).hexdigest()
        return self.folder / f"{key}.json"

    def load(self, path: Path | None) -> dict[str, Any] | None:
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a corrupt entry is rebuilt, never trusted
        return data if isinstance(data, dict) and "pipelines" in data else None

    def store(self, path: Path | None, report: dict[str, Any]) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report), encoding="utf-8")
        tmp.replace(path)


REPORTS = ReportCache(None)


# ------------------------------------------------------------------ totals and printing


def frac(n: int, m: int) -> str:
    return f"{n}/{m}"


def pct(n: int, m: int) -> float | None:
    return round(100.0 * n / m, 1) if m else None


def totals(results: Iterable[Result]) -> dict[str, int]:
    out = dict.fromkeys(COUNT_KEYS, 0)
    for r in results:
        for k in COUNT_KEYS:
            out[k] += r.counts.get(k, 0)
    return out


def cells(t: dict[str, int]) -> list[str]:
    return [
        frac(t["stages_found"], t["stages_found"] + t["stages_missed"]),
        frac(t["depends_ok"], t["depends_ok"] + t["unsafe_called_safe"]),
        str(t["unsafe_called_safe"]),
        frac(t["independent_ok"], t["independent_ok"] + t["independent_missed"]),
        frac(t["hazards_found"], t["hazards_found"] + t["hazards_missed"]),
        str(t["extra_findings"]),
    ]


HEAD = ["case", "style", "stages", "depends", "UNSAFE", "indep", "hazards", "extra", "secs"]


def print_table(rows: list[list[str]], out: Any) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        line = "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        print(line.rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def summarise(results: list[Result], wall: float, scorer_path: str) -> dict[str, Any]:
    ran = [r for r in results if r.status == "ok"]
    t = totals(ran)
    recalls = {
        "stage_recall": (t["stages_found"], t["stages_found"] + t["stages_missed"]),
        "depends_recall": (t["depends_ok"], t["depends_ok"] + t["unsafe_called_safe"]),
        "independent_recall": (t["independent_ok"], t["independent_ok"] + t["independent_missed"]),
        "hazard_recall": (t["hazards_found"], t["hazards_found"] + t["hazards_missed"]),
    }
    summary: dict[str, Any] = {
        "cases": sum(1 for r in results if r.status != "skipped"),
        "skipped": sum(1 for r in results if r.status == "skipped"),
        "run_errors": sum(1 for r in results if r.status == "error"),
    }
    for key in ("stage_recall", "unsafe_called_safe", "unsafe_pairs", "depends_recall", "independent_recall",
                "pairs_unscored", "hazard_recall", "false_warnings_per_pipeline", "seconds"):
        if key in recalls:
            summary[key] = frac(*recalls[key])
            summary[key + "_pct"] = pct(*recalls[key])
        elif key == "unsafe_called_safe":
            summary[key] = t["unsafe_called_safe"]
        elif key == "unsafe_pairs":
            summary[key] = [f"{r.case.id}: {u['a']} -> {u['b']}" for r in ran for u in r.unsafe]
        elif key == "pairs_unscored":
            summary[key] = t["pairs_unscored"]
        elif key == "false_warnings_per_pipeline":
            summary[key] = round(t["extra_findings"] / len(ran), 2) if ran else None
        else:
            summary[key] = round(wall, 1)
    summary["pairs_either_way"] = t["pairs_either_way"]
    summary["extra_findings"] = t["extra_findings"]
    summary["scorer"] = "shared/tools/score.py" if scorer_path == str(SHARED_SCORER) else scorer_path
    return summary


def report_text(results: list[Result], out: Any) -> None:
    skipped = [r for r in results if r.status == "skipped"]
    for r in skipped:
        print(f"SKIPPED {r.case.id}: {r.reason}", file=out)
    if skipped:
        print(file=out)
    shown = [r for r in results if r.status != "skipped"]
    if not shown:
        print("no case ran", file=out)
        return
    rows = [HEAD]
    for r in shown:
        if r.status == "ok":
            rows.append([r.case.id, r.case.style, *cells(totals([r])), f"{r.seconds:.1f}"])
        else:
            rows.append([r.case.id, r.case.style, "ERROR", "", "", "", "", "", f"{r.seconds:.1f}"])
    print_table(rows, out)
    print(file=out)
    for r in shown:
        lines: list[str] = []
        if r.status == "error":
            lines.append(f"RUN ERROR: {r.reason}")
        for u in r.unsafe:
            lines.append(f"UNSAFE: {u['a']} -> {u['b']} via {u['via']}")
        if r.missed_stages:
            lines.append("missed stages: " + ", ".join(r.missed_stages))
        extra: dict[str, int] = defaultdict(int)
        for n in r.notes:
            if n.startswith("unlabelled finding "):
                extra[n[len("unlabelled finding "):]] += 1
            else:
                lines.append(n)
        if r.counts.get("pairs_unscored"):
            lines.append(f"pairs unscored (a stage not found): {r.counts['pairs_unscored']}")
        if extra:
            lines.append("extra findings: " + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(extra.items())))
        lines += [f"label warning: {w}" for w in r.case.warnings]
        if lines:
            print(f"{r.case.id}:", file=out)
            for line in lines:
                print(f"    {line}", file=out)
    print(file=out)
    by_style: dict[str, list[Result]] = defaultdict(list)
    for r in shown:
        by_style[r.case.style].append(r)
    rows = [["style", "cases", *HEAD[2:]]]
    for style in sorted(by_style):
        group = by_style[style]
        ok = [r for r in group if r.status == "ok"]
        errors = len(group) - len(ok)
        label = f"{len(ok)}" + (f" (+{errors} err)" if errors else "")
        rows.append([style, label, *cells(totals(ok)), f"{sum(r.seconds for r in group):.1f}"])
    ok_all = [r for r in shown if r.status == "ok"]
    rows.append(["TOTAL", str(len(ok_all)), *cells(totals(ok_all)), f"{sum(r.seconds for r in shown):.1f}"])
    print_table(rows, out)
    print(file=out)


# ------------------------------------------------------------------ main


def load_cases(labels: Path, reserved: set[str] | None) -> tuple[list[Case], list[tuple[str, str]]]:
    cases, unusable = [], []
    for checked in table.validate_all(labels, reserved):
        if checked.fatal or checked.label is None:
            unusable.append((checked.id, "; ".join(checked.fatal)))
            continue
        warnings = [f"INVALID: {e}" for e in checked.errors]
        cases.append(Case(checked.id, checked.label, checked.path, warnings))
    return cases, unusable


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--labels", type=Path, default=HERE / "labels", help="label folder (default: %(default)s)")
    ap.add_argument("--snapshots", type=Path, default=None,
                    help=f"snapshot folder (default: $STAGEGRAPH_FIELD_SNAPSHOTS, else {DEFAULT_SNAPSHOTS})")
    ap.add_argument("--case", action="append", default=[], metavar="ID", help="run only this case (repeatable)")
    ap.add_argument("--style", action="append", default=[], choices=sorted(table.STYLES),
                    help="run only cases of this style (repeatable)")
    ap.add_argument("--cmd", default=DEFAULT_CMD,
                    help="analyzer command; {path} is the audited path (default: %(default)r)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per case (default: %(default)s)")
    ap.add_argument("--jobs", "-j", type=int, default=2, help="cases run at once (default: %(default)s)")
    ap.add_argument("--reports-dir", type=Path, default=None,
                    help="reuse reports of earlier runs made by the same analyzer source (default: "
                         "$STAGEGRAPH_FIELD_REPORTS, else ~/.cache/stagegraph/field-reports)")
    ap.add_argument("--no-reuse", action="store_true", help="run the analyzer on every case, reusing nothing")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="keep extracted trees here across runs (default: a temporary folder removed at the end)")
    ap.add_argument("--json-out", type=Path, default=None, help="write per-case rows and the summary to this file")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a dependent pair is called independent")
    ap.add_argument("--reserved", type=Path, default=table.DEFAULT_RESERVED, help="reserved-repos list")
    ap.add_argument("--scorer", type=Path, default=None, help="score.py to import (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    if args.timeout <= 0:
        ap.error("--timeout must be positive")
    if not args.labels.is_dir():
        ap.error(f"no label folder {args.labels}")
    snapshots = args.snapshots or Path(os.environ.get("STAGEGRAPH_FIELD_SNAPSHOTS") or DEFAULT_SNAPSHOTS)
    scorer, scorer_path = load_scorer(args.scorer)
    if scorer_path != str(SHARED_SCORER):
        print(f"note: scoring with {scorer_path}", file=sys.stderr)
    reserved = table.read_reserved(args.reserved)
    if reserved is None:
        print(f"warning: {args.reserved} not found: reserved repositories are NOT checked", file=sys.stderr)

    started = time.monotonic()
    cases, unusable = load_cases(args.labels, reserved)
    known = {c.id for c in cases} | {u[0] for u in unusable}
    unknown = [c for c in args.case if c not in known]
    if unknown:
        ap.error(f"no label with id {', '.join(unknown)} in {args.labels}")
    if args.case:
        cases = [c for c in cases if c.id in args.case]
        unusable = [u for u in unusable if u[0] in args.case]
    if args.style:
        cases = [c for c in cases if c.style in args.style]
        unusable = [u for u in unusable if u[0] in args.case]  # their style is unknown

    results: dict[str, Result] = {}
    for case_id, reason in unusable:
        stub = Case(case_id, {}, args.labels / f"{case_id}.json")
        results[case_id] = Result(stub, "skipped", f"unusable label: {reason}")

    own_cache = args.cache_dir is None
    global REPORTS
    if not args.no_reuse:
        REPORTS = ReportCache(args.reports_dir or Path(os.environ.get("STAGEGRAPH_FIELD_REPORTS")
                                                      or Path.home() / ".cache" / "stagegraph" / "field-reports"))
    cache_root = Path(tempfile.mkdtemp(prefix="stagegraph-field-")) if own_cache else args.cache_dir
    cache_root.mkdir(parents=True, exist_ok=True)
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            cache = TreeCache(cache_root)
            futures = {pool.submit(run_case, c, snapshots, cache, args.cmd, args.timeout, scorer): c for c in cases}
            for done, future in enumerate(as_completed(futures), start=1):
                case = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # one broken case must not lose the others
                    result = Result(case, "error", f"runner failed: {type(exc).__name__}: {exc}")
                results[case.id] = result
                print(f"[{done}/{len(cases)}] {case.id}: {result.status} {result.seconds:.1f}s", file=sys.stderr)
    finally:
        if own_cache:
            shutil.rmtree(cache_root, ignore_errors=True)

    ordered = [results[k] for k in sorted(results)]
    wall = time.monotonic() - started
    summary = summarise(ordered, wall, scorer_path)
    report_text(ordered, sys.stdout)
    if args.json_out is not None:
        by_style: dict[str, dict[str, int]] = {}
        for style in sorted({r.case.style for r in ordered if r.status == "ok"}):
            by_style[style] = totals(r for r in ordered if r.status == "ok" and r.case.style == style)
        payload = {"summary": summary, "by_style": by_style, "rows": [r.row() for r in ordered]}
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    sys.stdout.flush()
    print(json.dumps(summary))
    return 1 if args.strict and summary["unsafe_called_safe"] else 0


if __name__ == "__main__":
    sys.exit(main())
