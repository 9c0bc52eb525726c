"""Checks about running stages at once: shared-resource-contention, unbounded-fanout, missing-timeout."""

from __future__ import annotations

from pipeline_builders import chain, edge, hits, pipeline, signal, stage, stage_sets, table, var

from stagegraph.model import (
    EXECUTOR_CAPPED,
    EXECUTOR_UNCAPPED,
    GATHER_UNBOUNDED,
    REMOTE_NO_TIMEOUT,
    TASK_PER_ROW,
    WAIT_NO_TIMEOUT,
    FanOut,
    Resource,
)

CONN = Resource("database", "conn", call="psycopg2.connect", thread_safe=False)
ENGINE = Resource("database", "engine", call="sqlalchemy.create_engine", thread_safe=True, capacity_limited=True)
S3 = Resource("cloud", "s3", call="boto3.client", thread_safe=True)
POOL = FanOut("executor", "ThreadPoolExecutor()", line=32, capped=False)
CAPPED = FanOut("executor", "ThreadPoolExecutor(max_workers=8)", line=32, capped=True)


def image_fanout(fanout: FanOut = POOL, driver_signals: tuple[str, ...] = ()) -> object:
    stages = [
        stage("list_images", 30, writes=[var("keys")], resources=[CONN]),
        stage("make_thumbnail", 32, reads=[var("keys")], resources=[S3, CONN], fanout=fanout),
    ]
    lines = {EXECUTOR_UNCAPPED: 31, EXECUTOR_CAPPED: 31, TASK_PER_ROW: 32, WAIT_NO_TIMEOUT: 33}
    sigs = [signal(kind, lines[kind], f"{kind} detail") for kind in driver_signals]
    return pipeline(stages, chain("list_images", "make_thumbnail"), signals=sigs)


# ---------------------------------------------------------------- shared-resource-contention


def test_fanout_branches_sharing_one_connection_fire_keyed_on_the_resource() -> None:
    (hit,) = hits("shared-resource-contention", image_fanout())  # type: ignore[arg-type]
    assert hit.stages == ("make_thumbnail",) and hit.key == "database:conn"
    assert "`conn`" in hit.message and "not safe" in hit.message


def test_capacity_limited_resource_in_a_fanout_of_unknown_width_fires() -> None:
    s = stage("load_partition", 5, resources=[ENGINE], fanout=FanOut("pool", "Pool(n)", 5, None))
    assert stage_sets("shared-resource-contention", pipeline([s])) == [("load_partition",)]


def test_a_fanout_known_to_have_no_cap_is_reported_once_by_unbounded_fanout() -> None:
    """The cause (no cap) is one finding: unbounded-fanout's; a thread-unsafe handle still is contention."""
    s = stage("load_partition", 5, resources=[ENGINE], fanout=FanOut("pool", "Pool()", 5, False))
    assert stage_sets("shared-resource-contention", pipeline([s])) == []
    assert stage_sets("unbounded-fanout", pipeline([s])) == [("load_partition",)]
    unsafe = stage("load_partition", 5, resources=[ENGINE, CONN], fanout=FanOut("pool", "Pool()", 5, False))
    (hit,) = hits("shared-resource-contention", pipeline([unsafe]))
    assert hit.key == "database:conn"


def test_a_plain_loop_is_not_concurrent() -> None:
    s = stage("per_key", 5, resources=[CONN], fanout=FanOut("loop", "for k in keys", 5))
    assert stage_sets("shared-resource-contention", pipeline([s])) == []


def test_pooled_engine_shared_by_sequential_stages_of_a_group_is_not_contention() -> None:
    stages = [
        stage("load", 72, writes=[table("staging.orders")], resources=[ENGINE]),
        stage("refresh_customer_dim", 73, reads=[table("staging.customers")], resources=[ENGINE]),
        stage("publish_report", 74, reads=[table("staging.orders")], resources=[ENGINE]),
    ]
    edges = [edge("load", "refresh_customer_dim", "order"), edge("refresh_customer_dim", "publish_report", "order"),
             edge("load", "publish_report")]
    p = pipeline(stages, edges)
    assert any("database:engine" in g.shared_resources for g in p.parallel_groups)
    assert stage_sets("shared-resource-contention", p) == []


def test_parallel_group_sharing_an_unsafe_connection_fires() -> None:
    sqlite = Resource("database", "/data/app.db", call="sqlite3.connect", thread_safe=False)
    stages = [stage("load_a", 1, resources=[sqlite]), stage("load_b", 2, resources=[sqlite]), stage("c", 3)]
    p = pipeline(stages, [edge("load_a", "load_b", "order")])
    hit_list = hits("shared-resource-contention", p)
    assert [(h.stages, h.key) for h in hit_list] == [(("load_a", "load_b"), "database:/data/app.db")]
    assert hit_list[0].line == 2


def test_stages_with_a_real_dependency_are_not_a_parallel_group() -> None:
    stages = [stage("a", 1, resources=[CONN]), stage("b", 2, resources=[CONN])]
    assert stage_sets("shared-resource-contention", pipeline(stages, chain("a", "b"))) == []


# ---------------------------------------------------------------- unbounded-fanout


def test_driver_signals_are_attributed_to_the_fanout_stage_once() -> None:
    p = image_fanout(driver_signals=(EXECUTOR_UNCAPPED, TASK_PER_ROW))
    (hit,) = hits("unbounded-fanout", p)  # type: ignore[arg-type]
    assert hit.stages == ("make_thumbnail",)
    assert "executor-uncapped detail" in hit.message and "task-per-row detail" in hit.message


def test_capped_executor_is_the_near_miss() -> None:
    p = image_fanout(fanout=CAPPED, driver_signals=(EXECUTOR_CAPPED,))
    assert stage_sets("unbounded-fanout", p) == []  # type: ignore[arg-type]


def test_uncapped_fanout_fact_alone_fires() -> None:
    assert stage_sets("unbounded-fanout", image_fanout()) == [("make_thumbnail",)]  # type: ignore[arg-type]


def test_gather_inside_a_stage_fires_on_that_stage() -> None:
    s = stage("enrich_all", 5, signals=[signal(GATHER_UNBOUNDED, 7, "asyncio.gather(*tasks)")])
    (hit,) = hits("unbounded-fanout", pipeline([s]))
    assert (hit.stages, hit.line) == (("enrich_all",), 7)


def test_driver_signal_without_a_fanout_stage_stays_on_its_line() -> None:
    p = pipeline([stage("a", 1)], signals=[signal(EXECUTOR_UNCAPPED, 9, "Pool() with no processes")])
    (hit,) = hits("unbounded-fanout", p)
    assert (hit.stages, hit.line) == ((), 9)


# ---------------------------------------------------------------- missing-timeout


def test_driver_wait_is_attributed_to_the_fanout_stage() -> None:
    (hit,) = hits("missing-timeout", image_fanout(driver_signals=(WAIT_NO_TIMEOUT,)))  # type: ignore[arg-type]
    assert (hit.stages, hit.line) == (("make_thumbnail",), 33)


def test_remote_call_without_timeout_in_a_stage_fires() -> None:
    s = stage("fetch_fx_rates", 3, signals=[signal(REMOTE_NO_TIMEOUT, 24, "get request to URL without timeout=")])
    assert stage_sets("missing-timeout", pipeline([s])) == [("fetch_fx_rates",)]


def test_no_signal_no_finding() -> None:
    assert stage_sets("missing-timeout", image_fanout()) == []  # type: ignore[arg-type]


def test_one_finding_per_fanout_stage_names_every_risky_resource() -> None:
    throttled = Resource("http", "api.example.com", thread_safe=True, capacity_limited=True)
    s = stage("push", 5, resources=[throttled, CONN], fanout=FanOut("executor", "ThreadPoolExecutor(n)", 32, None))
    (hit,) = hits("shared-resource-contention", pipeline([s]))
    assert hit.key == "database:conn,http:api.example.com"
    assert hit.message.index("`conn`") < hit.message.index("`api.example.com`")


def test_capacity_limited_resource_under_a_capped_fanout_is_a_near_miss() -> None:
    s = stage("load_partition", 5, resources=[ENGINE, S3], fanout=CAPPED)
    assert stage_sets("shared-resource-contention", pipeline([s])) == []


def test_a_bare_result_in_a_shared_helper_is_one_finding() -> None:
    wait = signal(WAIT_NO_TIMEOUT, 70, "result() without timeout", file="utils.py")
    p = pipeline([stage(n, i + 1, signals=[wait]) for i, n in enumerate(("fit_a", "fit_b", "fit_c"))])
    (hit,) = hits("missing-timeout", p)
    assert (hit.stages, hit.file, hit.line) == (("fit_a", "fit_b", "fit_c"), "utils.py", 70)
