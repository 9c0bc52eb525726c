"""Cost per doubling of input size: `python benchmarks/stage_curve.py --shape chain 250 500 1000 2000 4000`.

Shapes (each generated fresh, audited with `stagegraph audit --format json` in a new process):

- `chain`: one file with N stage functions and a driver calling them as a plain linear chain
  (each stage reads the previous stage's result);
- `calls`: N functions each calling the previous one (call-chain depth; each writes its own file,
  so composed summaries grow along the chain), and a driver calling the last one and a reader;
- `bigfile`: one file holding N small independent pipelines (a driver and three stages each).

Prints CPU time (wall time too, which a busy machine inflates), the peak memory of that run
(`ru_maxrss` from `os.wait4`, per child) and the CPU ratio per doubling. Linear cost shows as a
ratio of about 2 per doubling. A measurement, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def chain(n: int) -> str:
    parts = [f"def stage_{i}(x):\n    return [v + {i} for v in x]\n\n" for i in range(n)]
    body = "".join(f"    x = stage_{i}(x)\n" for i in range(n))
    return "".join(parts) + f"\ndef main():\n    x = [1]\n{body}    print(x)\n"


def calls(n: int) -> str:
    parts = ["def f_0(x):\n    open('/data/out_0.csv', 'w').write(x)\n    return x\n\n"]
    parts += [f"def f_{i}(x):\n    open('/data/out_{i}.csv', 'w').write(x)\n    return f_{i - 1}(x)\n\n"
              for i in range(1, n)]
    reader = "def read_back():\n    return open('/data/out_0.csv').read()\n\n"
    return "".join(parts) + reader + f"def main():\n    f_{n - 1}('x')\n    read_back()\n"


def bigfile(n: int) -> str:
    block = (
        "def extract_{i}():\n    return open('/data/in_{i}.csv').read()\n\n"
        "def clean_{i}(rows):\n    return [r.strip() for r in rows]\n\n"
        "def load_{i}(rows):\n    open('/data/out_{i}.csv', 'w').write(''.join(rows))\n\n"
        "def main_{i}():\n    rows = extract_{i}()\n    rows = clean_{i}(rows)\n    load_{i}(rows)\n\n"
    )
    return "".join(block.format(i=i) for i in range(n))


SHAPES: dict[str, Callable[[int], str]] = {"chain": chain, "calls": calls, "bigfile": bigfile}


def measure(text: str, extra: list[str]) -> tuple[float, float, float, int]:
    """(CPU seconds, wall seconds, peak MB, exit code) of one audit in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gen.py").write_text(text)
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "stagegraph", "audit", tmp, "--format", "json",
                                 "-o", os.path.join(tmp, "report.json"), "--max-file-bytes", "1000000000", *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            raise SystemExit(err.decode()[-2000:])
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="chain")
    parser.add_argument("sizes", nargs="*", type=int, default=[250, 500, 1000, 2000, 4000])
    args, extra = parser.parse_known_args()
    previous: tuple[float, float] | None = None
    for n in args.sizes:
        text = SHAPES[args.shape](n)
        cpu, wall, peak, code = measure(text, extra)
        ratio = f"  x{cpu / previous[0]:.1f} CPU x{peak / previous[1]:.1f} memory" if previous else ""
        print(f"{args.shape} {n:>6}: {cpu:7.2f} s CPU ({wall:6.2f} s wall)  peak {peak:7.0f} MB  "
              f"{len(text) / 1e6:6.2f} MB source  exit {code}{ratio}", flush=True)
        previous = (cpu, peak)


if __name__ == "__main__":
    main()
