"""Measure the pre-commit hook's latency on one changed file of a generated 300-file repository.

Not a timed test (timings on shared CI machines are noise); run it by hand and record the
numbers in docs/pre-commit.md:

    python benchmarks/hook_latency.py            # import-context hook vs --full, median of 5 runs
    python benchmarks/hook_latency.py --runs 9 --files 300
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
    args = parser.parse_args()
    stagegraph = [sys.executable, "-m", "stagegraph"]
    with tempfile.TemporaryDirectory(prefix="stagegraph-bench-") as tmp:
        root = Path(tmp)
        changed = generate(root, args.files)
        rel = changed.relative_to(root).as_posix()
        count = sum(1 for _ in root.rglob("*.py"))
        print(f"repository: {count} Python files; changed file: {rel}; median of {args.runs} runs")
        for label, extra in (("hook (import context)", []), ("hook --full", ["--full"])):
            seconds, last = measure(root, [*stagegraph, "hook", *extra, rel], args.runs)
            print(f"  {label:<22} {seconds:6.2f} s   {last}")
        seconds, _ = measure(root, [*stagegraph, "--help"], args.runs)
        print(f"  {'--help (start-up)':<22} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
