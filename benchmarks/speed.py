"""Issue 14's figures, each next to its baseline, measured in the same run as whole processes.

    python benchmarks/speed.py /tmp/luigi                 # a checkout (e.g. luigi's tree, 259 files)
    python benchmarks/speed.py /tmp/luigi --rounds 3 --previous /path/to/old/bin/stagegraph

Runs, in A B A B order (`--rounds` times), on the same tree:
- the bare parse: `libcst.parse_module` of every discovered file, in a fresh process;
- `audit --no-cache --jobs 1` (one process) and `--jobs 2`;
- `audit` with a cold cache (a fresh folder) and then warm (the same folder again);
- the previous release, when `--previous` names its executable.
Prints medians and ratios. A measurement, not a test: timings on a shared machine are noise, so
only ratios taken in the same run mean anything.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_PARSE = """
import sys, libcst
from pathlib import Path
from stagegraph.source import discover
for src in discover([Path(sys.argv[1])]).files:
    try:
        libcst.parse_module(src.path.read_text(encoding="utf-8"))
    except Exception:
        pass
"""


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--previous", help="the previous release's stagegraph executable")
    args = parser.parse_args()
    tree = args.tree.resolve()
    audit = [sys.executable, "-m", "stagegraph", "audit", str(tree), "--format", "json", "-o", "/dev/null"]
    with tempfile.TemporaryDirectory(prefix="stagegraph-speed-") as tmp:
        runs: dict[str, list[float]] = {}
        for round_number in range(args.rounds):
            warm = Path(tmp, f"cache-{round_number}")
            plan: list[tuple[str, list[str]]] = [
                ("bare libcst parse", [sys.executable, "-c", BARE_PARSE, str(tree)]),
                ("audit --jobs 1 (no cache)", [*audit, "--no-cache", "--jobs", "1"]),
                ("audit --jobs 2 (no cache)", [*audit, "--no-cache", "--jobs", "2"]),
                ("audit, cold cache", [*audit, "--cache-dir", str(warm)]),
                ("audit, warm cache", [*audit, "--cache-dir", str(warm)]),
            ]
            if args.previous:
                plan.append(("previous release", [args.previous, "audit", str(tree), "--format", "json",
                                                  "-o", "/dev/null"]))
            for label, argv in plan:
                runs.setdefault(label, []).append(timed(argv, tree))
        medians = {label: statistics.median(values) for label, values in runs.items()}
    bare = medians["bare libcst parse"]
    single = medians["audit --jobs 1 (no cache)"]
    cold = medians["audit, cold cache"]
    print(f"{tree} ({args.rounds} rounds, A B A B; medians)")
    for label, seconds in medians.items():
        print(f"  {label:<28} {seconds:7.2f} s   {seconds / bare:5.2f}x bare parse   {seconds / single:5.2f}x one job")
    print(f"  warm / cold cache: {medians['audit, warm cache'] / cold:.1%}")


if __name__ == "__main__":
    main()
