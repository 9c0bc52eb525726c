"""`instrument` and `fanout` on every fixture style: the code still parses, undo is exact, re-running
changes nothing, and programs written to be run (tests/data/runnable) give the same results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stagegraph import fanout, instrument
from stagegraph.cli import main
from stagegraph.engine import Options
from stagegraph.model import Report

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
RUNNABLE = Path(__file__).parent / "data" / "runnable"


def _copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / src.name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.expect.json", "expected.json", "__pycache__"))
    if src.name == "cases":  # every other case: all plain/class shapes stay covered at half the suite time
        for n, case in enumerate(sorted(p for p in dest.iterdir() if p.is_dir())):
            if n % 2:
                shutil.rmtree(case)
    return dest


def _shape(report: Report) -> list[tuple[str, tuple[tuple[str, str, int], ...], tuple[object, ...]]]:
    return [(p.id, tuple((s.id, s.file, s.line) for s in p.stages), p.edges) for p in report.pipelines]


@pytest.mark.parametrize("tree", ["cases", "frameworks", "legacy_etl"])
def test_instrument_every_fixture_style_parses_round_trips_and_is_idempotent(tree: str, tmp_path: Path) -> None:
    root = _copy(FIXTURES / tree, tmp_path)
    before = {p: p.read_text(encoding="utf-8") for p in root.rglob("*.py")}
    options = Options(exclude=("vendor",))  # legacy_etl's generated table: no stages, slow to analyse
    report, found_root = instrument.analyze_original([root], options)
    outcome = instrument.instrument(report, found_root)
    assert outcome.changes, "nothing was instrumented"
    styles = {p.style for p in report.pipelines}
    decorated = sum(c.decorated for c in outcome.changes)
    wrapped = sum(c.wrapped for c in outcome.changes)
    assert wrapped > 0 if styles & {"plain", "class"} else True
    assert decorated > 0 if styles & instrument.FRAMEWORK_STYLES else True
    for change in outcome.changes:
        compile(change.after, change.file, "exec")  # still Python
        assert instrument.strip(change.after) == change.before  # undo removes exactly what was added
    instrument.write(found_root, outcome)
    again, _ = instrument.analyze_original([root], options)
    assert _shape(again) == _shape(report)  # the analysis never sees the instrumentation
    assert instrument.instrument(again, found_root).changes == ()  # idempotent
    instrument.write(found_root, instrument.undo(found_root, [c.file for c in outcome.changes]))
    assert {p: p.read_text(encoding="utf-8") for p in root.rglob("*.py")} == before


def _run(folder: Path, script: str, env: dict[str, str] | None = None) -> str:
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, script], cwd=folder, capture_output=True, text=True, timeout=60,
                          env=environment)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(("program", "script", "timed"), [
    ("plain_driver", "main.py", {"fetch_orders", "fetch_rates", "fetch_customers", "merge", "score", "report"}),
    ("class_driver", "main.py", {"collect", "lock", "total"}),
    ("prefect_flow", "flows.py", {"pull_spend", "pull_sessions", "attribute"}),
])
def test_instrumented_programs_give_the_same_results_and_record_every_stage(
    program: str, script: str, timed: set[str], tmp_path: Path
) -> None:
    folder = _copy(RUNNABLE / program, tmp_path)
    expected = _run(folder, script)
    result = CliRunner().invoke(main, ["instrument", str(folder)])
    assert result.exit_code == 0, result.output
    log = tmp_path / "timings.jsonl"
    assert _run(folder, script, {"STAGEGRAPH_TIMINGS": str(log)}) == expected
    ends = [r for r in _records(log) if r["event"] == "end"]
    assert {r["stage"] for r in ends} == timed
    assert len({r["run"] for r in ends}) == 1
    assert all(r["outcome"] == "ok" and r["wall_s"] >= 0 and r["cpu_s"] >= 0 and r["pipeline"] for r in ends)
    starts = [r for r in _records(log) if r["event"] == "start"]
    assert len(starts) == len(ends)


def test_fanout_runs_the_group_in_threads_behind_the_flag_with_the_same_results(tmp_path: Path) -> None:
    folder = _copy(RUNNABLE / "plain_driver", tmp_path)
    expected = _run(folder, "main.py")
    result = CliRunner().invoke(main, ["fanout", str(folder), "--apply", "main.py::main#1", "--flag", "FAN",
                                       "--timeout", "30"])
    assert result.exit_code == 0, result.output
    code = (folder / "main.py").read_text(encoding="utf-8")
    assert "ThreadPoolExecutor(max_workers=3" in code and ".result(timeout=30)" in code
    assert "# a comment that must survive" in code
    assert _run(folder, "main.py") == expected  # flag unset: the original sequential code
    assert _run(folder, "main.py", {"FAN": "1"}) == expected
    again = CliRunner().invoke(main, ["fanout", str(folder), "--apply", "main.py::main#1"])
    assert again.exit_code == 1 and "contains stagegraph code" in again.output


def test_fanout_reraises_a_branch_exception(tmp_path: Path) -> None:
    folder = _copy(RUNNABLE / "plain_driver", tmp_path)
    report, root = instrument.analyze_original([folder])
    change = fanout.apply(report, root, "main.py::main#1", "FAN")
    broken = change.after.replace("    time.sleep(0.05)\n    return {\"EUR\": 1.0}",
                                  "    raise LookupError('rates are down')")
    (folder / "main.py").write_text(broken, encoding="utf-8")
    proc = subprocess.run([sys.executable, "main.py"], cwd=folder, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "FAN": "1"})
    assert proc.returncode != 0 and "LookupError: rates are down" in proc.stderr


@pytest.mark.parametrize(("program", "spec", "reason"), [
    ("plain_driver", "main.py::main:merge,fetch_orders", "merge depends on fetch_orders"),
    ("plain_driver", "main.py::main#3", "not a plain"),  # score is submitted to a pool, not called
    ("plain_driver", "main.py::main#9", "has 3 parallel groups"),
    ("prefect_flow", "flows.py::nightly#1", "prefect pipeline"),
    ("class_driver", "main.py::Close.run:collect,total", "total depends on collect"),
])
def test_fanout_refuses_what_it_cannot_prove_safe(program: str, spec: str, reason: str, tmp_path: Path) -> None:
    folder = _copy(RUNNABLE / program, tmp_path)
    report, root = instrument.analyze_original([folder])
    with pytest.raises(fanout.FanoutRefused, match=reason):
        fanout.apply(report, root, spec)


SHARED_CONNECTION = """import sqlite3

conn = sqlite3.connect("shop.db")


def read_a():
    return conn.execute("SELECT * FROM a").fetchall()


def read_b():
    return conn.execute("SELECT * FROM b").fetchall()


def main():
    a = read_a()
    b = read_b()
    return a, b
"""


def test_fanout_refuses_unknown_edges_and_unsafe_shared_resources(tmp_path: Path) -> None:
    legacy = _copy(FIXTURES / "legacy_etl", tmp_path)
    report, root = instrument.analyze_original([legacy], Options(exclude=("vendor",)))
    with pytest.raises(fanout.FanoutRefused, match="unknown edge"):
        fanout.apply(report, root, "etl/reconcile.py::Reconciliation.run:load_ledger,load_payments")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "job.py").write_text(SHARED_CONNECTION, encoding="utf-8")
    report, root = instrument.analyze_original([tmp_path / "shared"])
    with pytest.raises(fanout.FanoutRefused, match=r"share database:shop\.db, which is not safe to share"):
        fanout.apply(report, root, "job.py::main#1")


def test_awaited_stage_calls_get_the_async_wrapper_and_undo_exactly() -> None:
    source = "async def main(x):\n    rows = await fetch(\n        x,\n    )\n    return rows\n"
    wrapper = instrument.MetadataWrapper(instrument.cst.parse_module(source))
    target = instrument.Target("fetch", "p.py::main", 2, "fetch")
    code, wrapped, _, _ = instrument._apply(wrapper, [target], [])
    assert wrapped == 1
    assert 'await _stagegraph_stage_async("fetch", "p.py::main", fetch,' in code
    assert instrument.strip(code) == source


def test_fanout_class_driver_and_hoisting_across_independent_stages(tmp_path: Path) -> None:
    folder = _copy(RUNNABLE / "class_driver", tmp_path)
    expected = _run(folder, "main.py")
    report, root = instrument.analyze_original([folder])
    change = fanout.apply(report, root, "main.py::Close.run#1", "FAN")
    (folder / "main.py").write_text(change.after, encoding="utf-8")
    assert _run(folder, "main.py", {"FAN": "1"}) == expected
    assert _run(folder, "main.py") == expected


OTEL_STAND_IN = '''"""Stand-in for opentelemetry.trace: spans are appended to $SPANS as JSON lines."""
import json
import os


class _Span:
    def __init__(self, name, attributes):
        self.record = {"name": name, **attributes}

    def set_attribute(self, key, value):
        self.record[key] = value

    def record_exception(self, error):
        self.record["exception"] = type(error).__name__

    def end(self):
        with open(os.environ["SPANS"], "a") as fh:
            fh.write(json.dumps(self.record) + "\\n")


class _Tracer:
    def start_span(self, name, attributes=None):
        return _Span(name, dict(attributes or {}))


def get_tracer(name):
    return _Tracer()
'''


def test_instrumented_code_emits_opentelemetry_spans_when_importable(tmp_path: Path) -> None:
    folder = _copy(RUNNABLE / "class_driver", tmp_path)
    (folder / "opentelemetry").mkdir()
    (folder / "opentelemetry" / "__init__.py").write_text("", encoding="utf-8")
    (folder / "opentelemetry" / "trace.py").write_text(OTEL_STAND_IN, encoding="utf-8")
    expected = _run(folder, "main.py")
    assert CliRunner().invoke(main, ["instrument", str(folder)]).exit_code == 0
    spans = tmp_path / "spans.jsonl"
    assert _run(folder, "main.py", {"SPANS": str(spans)}) == expected  # no file: records go to the logger
    recorded = _records(spans)
    assert {r["name"] for r in recorded} == {"collect", "lock", "total"}
    assert all(r["stagegraph.pipeline"] == "main.py::Close.run" and r["stagegraph.outcome"] == "ok" for r in recorded)
    from stagegraph.timings import parse

    timings = parse("\n".join(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "name": r["name"], "traceId": "t", "startTimeUnixNano": "0", "endTimeUnixNano": "1000",
        "attributes": [{"key": k, "value": {"stringValue": str(v)}} for k, v in r.items() if k != "name"]}]}]}]})
        for r in recorded))
    assert {t.stage for t in timings.stages} == {"collect", "lock", "total"}


def test_cli_dry_run_and_diff_write_nothing_and_usage_errors_exit_2(tmp_path: Path) -> None:
    folder = _copy(RUNNABLE / "class_driver", tmp_path)
    before = (folder / "main.py").read_text(encoding="utf-8")
    dry = CliRunner().invoke(main, ["instrument", str(folder), "--dry-run"])
    assert dry.exit_code == 0 and "would change main.py (3 calls wrapped, 0 definitions decorated)" in dry.output
    diff = CliRunner().invoke(main, ["instrument", str(folder), "--diff", "--pipeline", "main.py::Close.run"])
    assert diff.exit_code == 0
    assert '+        _stagegraph_stage("collect", "main.py::Close.run", self.collect)' in diff.output
    assert (folder / "main.py").read_text(encoding="utf-8") == before
    assert CliRunner().invoke(main, ["instrument", str(folder), "--pipeline", "nope"]).exit_code == 2
    assert CliRunner().invoke(main, ["instrument", str(folder), "--dry-run", "--diff"]).exit_code == 2
    (tmp_path / "bad.csv").write_text("stage,p50\nx,1\n", encoding="utf-8")
    bad = CliRunner().invoke(main, ["plan", str(folder), "--timings", str(tmp_path / "bad.csv")])
    assert bad.exit_code == 2 and "stage,p50,p95,p99" in bad.output
