"""Timings and the fan-out plan on hand-built pipelines with answers worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_builders import FILE, edge, pipeline, stage

from stagegraph import plan as planning
from stagegraph.capacity import Pool, scan
from stagegraph.model import ParallelGroup, Report, Resource
from stagegraph.timings import Record, StageTimes, Timings, TimingsError, _group, max_quantile, parse, quantile

PID = f"{FILE}::main"
ENGINE = Resource("database", "engine", capacity_limited=True)
ONE_CONN = Resource("database", "conn", thread_safe=False)


def times(**walls: float | list[float]) -> Timings:
    """Timings with the given wall samples per stage (a float is one sample), CPU share 0."""
    records = []
    for name, value in walls.items():
        for n, wall in enumerate(value if isinstance(value, list) else [value]):
            records.append(Record(name, PID, f"r{n}", wall, 0.0))
    return _group("test", "jsonl", records)


def report(*pipelines: object) -> Report:
    return Report("test", tuple(pipelines), (), ())  # type: ignore[arg-type]


# ------------------------------------------------------------------ percentiles and the max of a fan-out

def test_quantiles_are_nearest_rank_values_that_were_observed() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (quantile(values, 0.5), quantile(values, 0.95), quantile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert quantile([3.0], 0.99) == 3.0


def test_max_quantile_of_a_fast_branch_and_a_constant_one() -> None:
    uniform = [float(v) for v in range(1, 101)]
    assert max_quantile([uniform, [10.0] * 100], 0.99) == 99.0
    assert max_quantile([uniform, [10.0] * 100], 0.05) == 10.0  # the constant branch is the floor


def test_tail_amplification_four_branches_each_fast_at_p99() -> None:
    # 0.5% of calls are slow: each branch's p99 is fast, but P(all 4 fast) = 0.995**4 = 0.980 < 0.99
    samples = [0.010] * 995 + [0.100] * 5
    pipe = pipeline([stage(n, i) for i, n in enumerate("abcd")], groups=[ParallelGroup(tuple("abcd"))])
    result = planning.build(report(pipe), times(a=samples, b=samples, c=samples, d=samples))
    (group,) = result.pipelines[0].groups
    assert group.slowest_p99 == 0.010
    assert group.p99_max == 0.100
    assert group.tail_amplification == pytest.approx(10.0)
    assert group.p50_max == 0.010
    assert group.sequential_p50 == pytest.approx(0.040)
    assert group.saving_p50 == pytest.approx(0.030)
    assert any("per-branch timeout" in a for a in group.advice)


# ------------------------------------------------------------------ critical path, makespan, Amdahl, blockers

def _four(unknown: bool = False) -> object:
    stages = [stage("a", 1), stage("b", 2), stage("c", 3), stage("d", 4)]
    edges = [edge("a", "b", "data"), edge("b", "c", "unknown" if unknown else "order"), edge("c", "d", "data")]
    return pipeline(stages, edges, groups=[ParallelGroup(("a", "c")), ParallelGroup(("b", "d"))])


def test_critical_path_and_makespan_today_vs_fanned_out() -> None:
    result = planning.build(report(_four()), times(a=1.0, b=4.0, c=2.5, d=3.0))
    (p,) = result.pipelines
    assert (p.today, p.today_path) == (10.5, ("a", "b", "c", "d"))
    assert (p.fanout, p.fanout_path) == (5.5, ("c", "d"))
    assert p.work == 10.5
    assert p.serial_fraction == pytest.approx(5.5 / 10.5)
    assert p.max_speedup == pytest.approx(10.5 / 5.5)
    assert [g.id for g in p.groups] == [f"{PID}#2", f"{PID}#1"]  # b+d saves 3.0, a+c saves 1.0
    assert p.groups[0].saving_p50 == pytest.approx(3.0)
    assert dict((s, start) for s, start, _ in p.schedule) == {"a": 0.0, "c": 0.0, "b": 1.0, "d": 2.5}
    assert p.blockers == ()


def test_unknown_edge_pins_its_stages_and_is_named_as_the_blocker() -> None:
    result = planning.build(report(_four(unknown=True)), times(a=1.0, b=4.0, c=2.5, d=3.0))
    (p,) = result.pipelines
    assert p.fanout == 10.5  # nothing may move around b and c
    assert p.groups == ()  # a+c and b+d both contain a pinned stage
    (blocker,) = p.blockers
    # proving b, c independent frees c, but b -> d (implied through c, and possibly an unknown edge the
    # report left out as implied) stays: a -> b -> d = 8 s, so the gain is 10.5 - 8 = 2.5 s
    assert (blocker.source, blocker.target, blocker.gain) == ("b", "c", 2.5)
    assert {s.stage for s in p.stages if s.pinned} == {"b", "c"}


def test_stages_sharing_an_unsafe_resource_keep_their_order_and_leave_the_group() -> None:
    stages = [stage("a", 1, resources=[ONE_CONN]), stage("b", 2, resources=[ONE_CONN]), stage("c", 3)]
    pipe = pipeline(stages, [edge("a", "b", "order"), edge("b", "c", "order")],
                    groups=[ParallelGroup(("a", "b", "c"))])
    (p,) = planning.build(report(pipe), times(a=1.0, b=1.0, c=1.0)).pipelines
    assert p.fanout == 2.0
    (group,) = p.groups
    assert group.stages == ("a", "c")
    assert group.excluded == ("b: shares a resource that is not safe to share",)


# ------------------------------------------------------------------ CPU vs I/O, capacity

def test_cpu_bound_branches_do_not_overlap_under_threads() -> None:
    records = [Record(n, PID, "r", 1.0, 0.9) for n in ("x", "y")]
    pipe = pipeline([stage("x", 1), stage("y", 2)], [edge("x", "y", "order")])
    (p,) = planning.build(report(pipe), _group("t", "jsonl", records)).pipelines
    (group,) = p.groups
    assert group.parallel_p50 == pytest.approx(1.8)  # the GIL runs 0.9 + 0.9 s of CPU one at a time
    assert group.saving_p50 == pytest.approx(0.2)
    assert [s.bound for s in p.stages] == ["cpu", "cpu"]
    assert any("use processes" in a for a in group.advice)


def test_capacity_check_reads_the_pool_and_caps_the_workers() -> None:
    stages = [stage(n, i, resources=[ENGINE]) for i, n in enumerate("xyz", 1)]
    pipe = pipeline(stages, [edge("x", "y", "order"), edge("y", "z", "order")])
    pool = Pool("engine", "sqlalchemy-engine", 4, "pool_size=4, max_overflow=0", "db.py", 12)
    (p,) = planning.build(report(pipe), times(x=1.0, y=1.0, z=1.0), [pool], concurrent_runs=2).pipelines
    (group,) = p.groups
    (check,) = group.capacity
    assert (check.members, check.needed, check.capacity, check.ok) == (3, 6, 4, False)
    assert "3 branches on database:engine x 2 concurrent runs = 6 at once (connections)" in check.message
    assert "db.py:12 allows 4" in check.message
    assert group.worker_cap == 2


def test_scan_reads_pool_sizes_and_executor_caps(tmp_path: Path) -> None:
    (tmp_path / "db.py").write_text(
        "import psycopg2\nfrom sqlalchemy import create_engine\nfrom concurrent.futures import ThreadPoolExecutor\n"
        "engine = create_engine(URL, pool_size=20, max_overflow=0)\n"
        "conn = psycopg2.connect(DSN)\n"
        "with ThreadPoolExecutor(max_workers=8) as pool:\n    pass\n", encoding="utf-8")
    found = {(p.name, p.kind, p.capacity, p.line) for p in scan(tmp_path)}
    assert found == {("engine", "sqlalchemy-engine", 20, 4), ("conn", "connection", 1, 5), ("pool", "executor", 8, 6)}


# ------------------------------------------------------------------ reading every format

def test_reads_instrument_json_lines_and_skips_start_events() -> None:
    lines = [
        {"event": "start", "stage": "a", "pipeline": PID, "run": "r1"},
        {"event": "end", "stage": "a", "pipeline": PID, "run": "r1", "wall_s": 0.5, "cpu_s": 0.1, "outcome": "ok"},
        {"event": "end", "stage": "a", "pipeline": PID, "run": "r2", "wall_s": 0.7, "cpu_s": 0.1, "outcome": "error"},
    ]
    (a,) = parse("\n".join(json.dumps(x) for x in lines)).stages
    assert (a.walls, a.errors, a.runs) == ((0.5, 0.7), 1, ("r1", "r2"))
    assert a.cpu_ratio == pytest.approx(0.2)


def test_reads_otlp_and_jaeger_exports() -> None:
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"name": "a", "traceId": "t1", "startTimeUnixNano": "1000000000", "endTimeUnixNano": "1250000000",
         "attributes": [{"key": "stagegraph.pipeline", "value": {"stringValue": PID}}]}]}]}]}
    (a,) = parse(json.dumps(otlp)).stages
    assert (a.stage, a.pipeline, a.walls) == ("a", PID, (0.25,))
    jaeger = {"data": [{"traceID": "t", "spans": [{"operationName": "b", "traceID": "t", "duration": 500000,
                                                   "tags": [{"key": "error", "value": True}]}]}]}
    (b,) = parse(json.dumps(jaeger)).stages
    assert (b.stage, b.pipeline, b.walls, b.errors) == ("b", None, (0.5,), 1)


def test_reads_a_percentile_csv_as_synthetic_samples() -> None:
    timings = parse("stage,p50,p95,p99\nload,1.0,2.0,4.0\n")
    (load,) = timings.stages
    assert load.synthetic and len(load.walls) == 100
    assert (load.quantile(0.5), load.quantile(0.95), load.quantile(0.99)) == (1.0, 2.0, 4.0)
    assert max(load.walls) == pytest.approx(4.5)  # the p95 -> p99 slope continued one percent


def test_stage_times_without_a_pipeline_match_by_stage_id() -> None:
    timings = Timings("t", "csv", (StageTimes("a", None, (1.0,)), StageTimes("a", "other::p", (9.0,))))
    assert timings.for_pipeline(PID, ["a"])["a"].walls == (1.0,)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("stage,p50\nx,1\n", "columns"),
    ("stage,p50,p95,p99\nx,3,2,1\n", "p50 <= p95"),
    ('{"stage": "a"}\n', "wall_s"),
    ("{not json\n", "not a JSON line"),
])
def test_bad_timings_are_errors_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(TimingsError, match=message):
        parse(text)


def test_report_sections_highlight_the_critical_path_and_escape_names() -> None:
    from stagegraph.render.timings import add_to

    result = planning.build(report(_four()), times(a=1.0, b=4.0, c=2.5, d=3.0))
    html = add_to("html", "<html><main><p>report</p></main></html>", result)
    assert html.index('id="fanout-plan"') < html.index("</main>")
    assert html.count('fill="#c0392b"') == 2  # c and d, the critical path with fan-out
    odd = pipeline([stage("<b>", 1), stage("x", 2)], [edge("<b>", "x", "order")])
    assert "<b>" not in add_to("html", "<main></main>", planning.build(report(odd), times(**{"<b>": 1.0, "x": 1.0})))
    markdown = add_to("markdown", "# report\n", result)
    assert "## Fan-out plan from measured timings" in markdown and "**c** → **d**" in markdown
    assert add_to("sarif", "{}", result) == "{}"
