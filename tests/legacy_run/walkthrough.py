"""Reproduce docs/plan.md's walkthrough: `python tests/legacy_run/walkthrough.py [RUNS]`.

Copies fixtures/legacy_etl into a temporary folder, instruments it, runs the nightly job RUNS times
on sample data (stand-ins for the database and the APIs, see run_job.py), plans, fans out the best
group and times the job with the flag off and on. Prints each command and its real output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from legacy_run.sample import run_job, write_sample

ROOT = Path(__file__).resolve().parents[2]


def stagegraph(cwd: Path, *args: str) -> str:
    command = ["stagegraph", *args]
    print(f"\n$ {' '.join(command)}")
    proc = subprocess.run([sys.executable, "-m", "stagegraph", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(proc.stdout + proc.stderr, end="")
    return proc.stdout


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        example = work / "legacy_etl"
        shutil.copytree(ROOT / "fixtures" / "legacy_etl", example)
        stagegraph(work, "instrument", "legacy_etl", "--exclude", "vendor")
        env = {"STAGEGRAPH_TIMINGS": str(work / "timings.jsonl")}
        started = time.perf_counter()
        for seed in range(runs):
            run_job(example, write_sample(work / f"run{seed}"), seed=seed, env=env)
        print(f"\n# {runs} runs of jobs.nightly_orders on sample data in {time.perf_counter() - started:.1f} s")
        print("$ head -2 timings.jsonl")
        print("".join((work / "timings.jsonl").read_text(encoding="utf-8").splitlines(True)[:2]), end="")
        stagegraph(work, "plan", "legacy_etl", "--timings", "timings.jsonl", "--exclude", "vendor",
                   "--pipeline", "jobs/nightly_orders.py::main")
        plan = json.loads(stagegraph(work, "plan", "legacy_etl", "--timings", "timings.jsonl", "--format", "json",
                                     "--exclude", "vendor", "--concurrent-runs", "8",
                                     "--pipeline", "jobs/nightly_orders.py::main") or "{}")
        print("  (json output above; best group:", plan.get("best_group"), ")")
        stagegraph(work, "instrument", "legacy_etl", "--undo", "--exclude", "vendor")
        best = plan["best_group"]
        stagegraph(work, "fanout", "legacy_etl", "--apply", best, "--flag", "NIGHTLY_FANOUT", "--diff",
                   "--exclude", "vendor")
        stagegraph(work, "fanout", "legacy_etl", "--apply", best, "--flag", "NIGHTLY_FANOUT", "--exclude", "vendor")
        modes = (("sequential (flag unset)", {}), ("fanned out (NIGHTLY_FANOUT=1)", {"NIGHTLY_FANOUT": "1"}))
        for label, flag in modes:
            walls = []
            results = []
            for seed in range(5):
                t = time.perf_counter()
                results.append(run_job(example, write_sample(work / f"{label[:3]}{seed}"), seed=seed, env=flag))
                walls.append(time.perf_counter() - t)
            print(f"# {label}: median wall of 5 runs {sorted(walls)[2]:.3f} s (process start included)")


if __name__ == "__main__":
    main()
