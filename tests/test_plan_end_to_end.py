"""Issue 15's definition of done, on the bundled legacy ETL example (in a temp copy, never in place):
instrument it, run it on sample data, plan from the records, fan out the best group behind a flag,
and check every version gives the same results (files written, SQL run, HTTP calls made)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from legacy_run.sample import run_job, write_sample

from stagegraph.cli import main

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "fixtures" / "legacy_etl"
NIGHTLY = "jobs/nightly_orders.py::main"
EXCLUDE = ["--exclude", "vendor"]  # a generated lookup table: no stages, slow to analyse


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.py"))}


def test_instrument_run_plan_and_fan_out_the_legacy_etl_example(tmp_path: Path) -> None:
    example = tmp_path / "legacy_etl"
    shutil.copytree(LEGACY, example, ignore=shutil.ignore_patterns("__pycache__"))
    baseline = run_job(example, write_sample(tmp_path / "data-original"), seed=0)

    _cli("instrument", str(example), *EXCLUDE)
    timings = tmp_path / "timings.jsonl"
    env = {"STAGEGRAPH_TIMINGS": str(timings)}
    assert run_job(example, write_sample(tmp_path / "data-run0"), seed=0, env=env) == baseline
    for seed in range(1, 6):
        run_job(example, write_sample(tmp_path / f"data-run{seed}"), seed=seed, env=env)

    plan = json.loads(_cli("plan", str(example), "--timings", str(timings), "--format", "json", *EXCLUDE))
    nightly = next(p for p in plan["pipelines"] if p["id"] == NIGHTLY)
    assert len(nightly["stages"]) == 18 and all(s["samples"] == 6 for s in nightly["stages"])
    assert nightly["unmeasured"] == []
    assert 0 < nightly["fanout"] < nightly["today"]
    assert nightly["today"] == pytest.approx(sum(s["p50"] for s in nightly["stages"]))  # a plain driver: in sequence
    assert {"fetch_customers", "fetch_fx_rates"} <= {s["stage"] for s in nightly["stages"] if s["bound"] == "io"}
    best = plan["best_group"]
    assert best is not None and best.startswith(NIGHTLY + "#")
    group = next(g for g in nightly["groups"] if g["id"] == best)
    assert group["applicable"] == "" and group["saving_p50"] > 0

    _cli("instrument", str(example), "--undo", *EXCLUDE)
    assert _tree(example) == _tree(LEGACY)  # undo removed exactly what instrument added

    _cli("fanout", str(example), "--apply", best, "--flag", "NIGHTLY_FANOUT", "--timeout", "60", *EXCLUDE)
    driver = (example / "jobs" / "nightly_orders.py").read_text(encoding="utf-8")
    assert 'os.environ.get("NIGHTLY_FANOUT", "")' in driver and "ThreadPoolExecutor(max_workers=" in driver
    assert run_job(example, write_sample(tmp_path / "data-sequential"), seed=0) == baseline
    fanned = run_job(example, write_sample(tmp_path / "data-fanout"), seed=0, env={"NIGHTLY_FANOUT": "1"})
    assert fanned == baseline
