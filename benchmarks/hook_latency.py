"""Measure the pre-commit hook's latency on one changed file of a generated 300-file repository.

Not a timed test (timings on shared CI machines are noise); run it by hand and record the
numbers in docs/performance.md:

    python benchmarks/hook_latency.py            # import context, warm cache, --full; median of 5 runs
    python benchmarks/hook_latency.py --runs 9 --files 300 --previous /path/to/old/bin/stagegraph

Each row is a whole process; "python start-up" and "import floor" (importing the modules every
analysing run needs) are the baselines the hook's own work sits on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = '''\
"""Stages of pipeline {n}."""
import json


def extract(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def dedup(rows):
    seen = set()
    out = []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            out.append(row)
    return out


def validate(rows):
    return [row for row in rows if row.get("amount") is not None]


def load(rows, path):
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\\n")
'''

DRIVER = '''\
"""Driver of pipeline {n}."""
from pkg{n}.stages import dedup, extract, load, validate
from pkg{n}.util0 import helper0


def main():
    rows = extract("in{n}.jsonl")
    rows = validate(rows)
    rows = dedup(rows)
    rows = helper0(rows)
    load(rows, "out{n}.jsonl")
'''

UTIL = '''\
"""Helper module {i} of package {n}."""


def helper{i}(rows):
    total = 0
    for row in rows:
        total += len(row)
    return rows if total >= 0 else []
'''


def generate(root: Path, files: int) -> Path:
    """A git repo with `files` Python files: packages of __init__, stages, driver and helpers."""
    per_package = 10
    for n in range(files // per_package):
        pkg = root / f"pkg{n}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("", encoding="utf-8")
        (pkg / "stages.py").write_text(STAGES.format(n=n), encoding="utf-8")
        (pkg / "driver.py").write_text(DRIVER.format(n=n), encoding="utf-8")
        for i in range(per_package - 3):
            (pkg / f"util{i}.py").write_text(UTIL.format(n=n, i=i), encoding="utf-8")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", "generated"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    return root / "pkg7" / "stages.py"


def measure(root: Path, argv: list[str], runs: int) -> tuple[float, str]:
    timings: list[float] = []
    output = ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=root, capture_output=True, text=True)
        timings.append(time.perf_counter() - start)
        output = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()
    return statistics.median(timings), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--previous", help="the previous release's stagegraph executable, measured alongside")
    args = parser.parse_args()
    stagegraph = [sys.executable, "-m", "stagegraph"]
    with tempfile.TemporaryDirectory(prefix="stagegraph-bench-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        changed = generate(root, args.files)
        rel = changed.relative_to(root).as_posix()
        count = sum(1 for _ in root.rglob("*.py"))
        cache = ["--cache-dir", str(Path(tmp) / "cache")]
        print(f"repository: {count} Python files; changed file: {rel}; median of {args.runs} runs")
        rows: list[tuple[str, list[str]]] = [
            ("python start-up", [sys.executable, "-c", "pass"]),
            ("import floor", [sys.executable, "-c", "import stagegraph.cli, stagegraph.facts, stagegraph.graph"]),
            ("hook, no cache", [*stagegraph, "hook", "--no-cache", rel]),
            ("hook, warm cache", [*stagegraph, "hook", *cache, rel]),
            ("hook --full, no cache", [*stagegraph, "hook", "--full", "--no-cache", rel]),
            ("--help (start-up)", [*stagegraph, "--help"]),
        ]
        if args.previous:
            rows.append(("previous release hook", [args.previous, "hook", rel]))
        for label, argv in rows:
            seconds, last = measure(root, argv, args.runs)
            print(f"  {label:<24} {seconds:6.2f} s   {last[:90] if label.startswith(('hook', 'prev')) else ''}")


if __name__ == "__main__":
    main()
