"""Cost per doubling of stages in one driver: `python benchmarks/stage_curve.py 250 500 1000 2000 4000`.

Generates one file with N stage functions and a driver calling them as a plain linear chain
(each stage reads the previous stage's result), runs `stagegraph audit --format json` on it in a
fresh process and prints CPU time (wall time too, which a busy machine inflates) and peak
memory (ru_maxrss of the children). Linear cost shows as a ratio of about 2 per doubling. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def chain(n: int) -> str:
    parts = [f"def stage_{i}(x):\n    return [v + {i} for v in x]\n\n" for i in range(n)]
    body = "".join(f"    x = stage_{i}(x)\n" for i in range(n))
    return "".join(parts) + f"\ndef main():\n    x = [1]\n{body}    print(x)\n"


def measure(n: int, extra: list[str]) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "chain.py").write_text(chain(n))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "stagegraph", "audit", tmp, "--format", "json",
                               "--max-file-bytes", "100000000", *extra],
                              capture_output=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(proc.stderr.decode()[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, after.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[250, 500, 1000, 2000, 4000])
    args, extra = parser.parse_known_args()
    previous = None
    for n in args.sizes:
        cpu, wall, peak = measure(n, extra)
        ratio = f"  x{cpu / previous:.1f}" if previous else ""
        print(f"{n:>6} stages: {cpu:7.2f} s CPU ({wall:6.2f} s wall)  peak {peak:7.0f} MB (max so far){ratio}",
              flush=True)
        previous = cpu


if __name__ == "__main__":
    main()
