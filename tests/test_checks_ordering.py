"""Ordering checks: dedup-before-validation, hidden-state-dependency, undeclared-dependency, coincidental-order."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipeline_builders import attr, chain, container, edge, glob, hits, pipeline, stage, stage_sets, table, var

from stagegraph.engine import Options, analyze

# ---------------------------------------------------------------- dedup-before-validation


def orders_etl(first: str, second: str) -> list[tuple[str, ...]]:
    stages = [
        stage("fetch", 1, writes=[var("orders")]),
        stage(first, 2, roles=[first], reads=[var("orders")], writes=[var("orders")]),
        stage(second, 3, roles=[second], reads=[var("orders")], writes=[var("orders")]),
        stage("load", 4, reads=[var("orders")]),
    ]
    return stage_sets("dedup-before-validation", pipeline(stages, chain("fetch", first, second, "load")))


def test_dedup_then_validate_fires_on_the_pair() -> None:
    assert orders_etl("dedup", "validate") == [("dedup", "validate")]


def test_validate_then_dedup_is_the_near_miss() -> None:
    assert orders_etl("validate", "dedup") == []


def test_dedup_without_a_data_path_to_validation_does_not_fire() -> None:
    stages = [stage("dedup", 1, roles=["dedup"]), stage("validate", 2, roles=["validate"])]
    p = pipeline(stages, [edge("dedup", "validate", "order")])
    assert stage_sets("dedup-before-validation", p) == []


def test_only_the_nearest_validation_is_reported() -> None:
    stages = [
        stage("dedup", 1, roles=["dedup"]),
        stage("check_schema", 2, roles=["validate"]),
        stage("check_totals", 3, roles=["validate"]),
    ]
    p = pipeline(stages, chain("dedup", "check_schema", "check_totals"))
    assert stage_sets("dedup-before-validation", p) == [("dedup", "check_schema")]


def test_dedup_hit_points_at_the_validation_call() -> None:
    stages = [stage("dedup", 10, roles=["dedup"]), stage("validate", 11, roles=["validate"])]
    (hit,) = hits("dedup-before-validation", pipeline(stages, chain("dedup", "validate")))
    assert (hit.file, hit.line) == ("etl.py", 11)
    assert "`dedup`" in hit.message and "`validate`" in hit.message


# ---------------------------------------------------------------- hidden-state-dependency


def invoice_run() -> list[tuple[str, ...]]:
    stages = [
        stage("open_period", 1, writes=[attr("self.period_start")]),
        stage("collect", 2, reads=[attr("self.period_start"), attr("self.invoices")],
              writes=[container("self.invoices")]),
        stage("mark_customers", 3, reads=[attr("self.invoices")], writes=[container("SEEN_CUSTOMERS")]),
        stage("write_audit", 4, reads=[attr("self.period_start"), attr("self.invoices")]),
    ]
    edges = [
        edge("open_period", "collect"), edge("collect", "mark_customers"),
        edge("open_period", "write_audit"), edge("collect", "write_audit"),
    ]
    return stage_sets("hidden-state-dependency", pipeline(stages, edges, style="class"))


def test_attribute_set_by_one_stage_and_read_by_another_fires_per_pair() -> None:
    assert invoice_run() == [("open_period", "collect"), ("open_period", "write_audit")]


def test_global_rebinding_counts() -> None:
    stages = [stage("configure", 1, writes=[glob("RUN_DATE")]), stage("extract", 2, reads=[glob("RUN_DATE")])]
    assert stage_sets("hidden-state-dependency", pipeline(stages, chain("configure", "extract"))) == [
        ("configure", "extract")
    ]


def test_tables_and_variables_are_the_normal_hand_off() -> None:
    stages = [
        stage("stage_rows", 1, writes=[table("staging.orders"), var("rows")]),
        stage("merge_rows", 2, reads=[table("staging.orders"), var("rows")]),
    ]
    assert stage_sets("hidden-state-dependency", pipeline(stages, chain("stage_rows", "merge_rows"))) == []


def test_container_mutation_is_not_a_rebinding() -> None:
    stages = [stage("collect", 1, writes=[container("self.invoices")]),
              stage("price", 2, reads=[attr("self.invoices")])]
    assert stage_sets("hidden-state-dependency", pipeline(stages, chain("collect", "price"))) == []


def test_a_connection_a_step_keeps_on_the_object_is_not_hidden_state(tmp_path: Path) -> None:
    """Analysed from code, so the facts layer's name for the handle (`self.conn`) is what the check sees."""
    (tmp_path / "loader.py").write_text(textwrap.dedent("""
        import psycopg2


        class Loader:
            def connect(self):
                self.conn = psycopg2.connect("dbname=dw")

            def configure(self, day):
                self.period = day

            def load(self):
                with self.conn.cursor() as cur:
                    cur.execute("INSERT INTO facts SELECT * FROM staging WHERE day = %s", (self.period,))

            def run(self, day):
                self.connect()
                self.configure(day)
                self.load()
    """))
    report = analyze([tmp_path], Options())
    found = [f.stages for f in report.findings if f.rule == "hidden-state-dependency"]
    assert found == [("configure", "load")]


def test_assumed_effects_are_not_evidence() -> None:
    assumed = attr("self.config")
    guess = type(assumed)(assumed.kind, assumed.target, key=assumed.key, assumed=True)
    stages = [stage("a", 1, writes=[guess]), stage("b", 2, reads=[attr("self.config")])]
    assert stage_sets("hidden-state-dependency", pipeline(stages, chain("a", "b"))) == []


# ---------------------------------------------------------------- undeclared-dependency


def test_undeclared_real_edge_in_a_framework_pipeline_fires() -> None:
    stages = [stage("stage_clicks", 1, writes=[table("staging.clicks")]),
              stage("build_funnel", 2, reads=[table("staging.clicks")])]
    p = pipeline(stages, [edge("stage_clicks", "build_funnel", declared=False, via=["staging.clicks"])],
                 style="airflow")
    (hit,) = hits("undeclared-dependency", p)
    assert hit.stages == ("stage_clicks", "build_funnel")
    assert hit.line == 2 and "staging.clicks" in hit.message


def test_parallel_siblings_writing_one_table_are_one_finding() -> None:
    """Three tasks the scheduler may run in any order, each pair through the same table: one finding
    naming the group (not three pairs); a pair through other data stays a finding of its own."""
    stages = [stage(n, i, reads=[table("pub")], writes=[table("pub")]) for i, n in enumerate("abc", start=1)]
    stages.append(stage("d", 4, reads=[table("funders")]))
    undeclared = [edge(x, y, declared=False, via=["pub"]) for x, y in (("a", "b"), ("a", "c"), ("b", "c"))]
    p = pipeline(stages, [*undeclared, edge("c", "d", declared=False, via=["funders"])], style="airflow")
    assert sorted(stage_sets("undeclared-dependency", p)) == [("a", "b", "c"), ("c", "d")]


def test_one_writer_and_its_readers_stay_pairs() -> None:
    """A writer and two readers of one table: each reader depends on the writer, not on the other."""
    stages = [stage("load", 1, writes=[table("stg")]), stage("hub", 2, reads=[table("stg")]),
              stage("sat", 3, reads=[table("stg")])]
    p = pipeline(stages, [edge("load", "hub", declared=False, via=["stg"]),
                          edge("load", "sat", declared=False, via=["stg"])], style="airflow")
    assert sorted(stage_sets("undeclared-dependency", p)) == [("load", "hub"), ("load", "sat")]


def test_declared_edges_and_order_edges_do_not_fire() -> None:
    stages = [stage("a", 1), stage("b", 2), stage("c", 3)]
    p = pipeline(stages, [edge("a", "b"), edge("b", "c", "order", declared=True)], style="airflow")
    assert stage_sets("undeclared-dependency", p) == []


def test_plain_and_class_pipelines_have_no_declarations_to_miss() -> None:
    stages = [stage("a", 1), stage("b", 2)]
    for style in ("plain", "class"):
        p = pipeline(stages, [edge("a", "b", declared=False)], style=style)  # type: ignore[arg-type]
        assert stage_sets("undeclared-dependency", p) == []


def test_unknown_edges_are_not_undeclared_dependencies() -> None:
    """An unproven independence is not a proven dependency: no error (the edge stays in the graph)."""
    stages = [stage("a", 1), stage("b", 2)]
    p = pipeline(stages, [edge("a", "b", "unknown", declared=False, via=["unknown: dynamic dispatch"])],
                 style="luigi")
    assert stage_sets("undeclared-dependency", p) == []
    control = pipeline(stages, [edge("a", "b", "control", declared=False)], style="prefect")
    assert stage_sets("undeclared-dependency", control) == [("a", "b")]


# ---------------------------------------------------------------- coincidental-order


def test_sequential_independent_stages_are_noted_once_per_group() -> None:
    stages = [stage("fetch_orders", 1), stage("fetch_fx_rates", 2), stage("convert", 3)]
    edges = [edge("fetch_orders", "fetch_fx_rates", "order"), edge("fetch_orders", "convert"),
             edge("fetch_fx_rates", "convert")]
    (hit,) = hits("coincidental-order", pipeline(stages, edges))
    assert hit.stages == ("fetch_orders", "fetch_fx_rates")
    assert hit.line == 2
    assert "could start together" in hit.message


def test_groups_without_an_order_edge_are_not_noted() -> None:
    stages = [stage("a", 1), stage("b", 2), stage("c", 3)]
    # a and b are unordered already (nothing in the code orders them): no opportunity to point out
    p = pipeline(stages, [edge("a", "c"), edge("b", "c")])
    assert stage_sets("coincidental-order", p) == []


def test_real_dependencies_are_not_coincidental() -> None:
    stages = [stage("a", 1), stage("b", 2)]
    assert stage_sets("coincidental-order", pipeline(stages, chain("a", "b"))) == []


def test_overlapping_groups_do_not_repeat_the_same_ordering() -> None:
    # x -> y is coincidental; p -> q is real: step 0 is {x, y, p}, step 1 is {x, y, q} (x, y have slack);
    # both groups carry the x -> y advice, which must be given once
    stages = [stage("x", 1), stage("y", 2), stage("p", 3), stage("q", 4)]
    p = pipeline(stages, [edge("x", "y", "order"), edge("p", "q")])
    assert [g.stages for g in p.parallel_groups] == [("x", "y", "p"), ("x", "y", "q")]
    assert stage_sets("coincidental-order", p) == [("x", "y", "p")]


def test_hidden_state_is_a_hand_off_between_different_stages() -> None:
    """A method reading what its own previous call set (`run_cli` twice) is not a hidden hand-off."""
    from dataclasses import replace

    state = attr("self.sp")
    first = replace(stage("run_cli", 1, writes=[state]), qualname="hooks.Hook.run_cli")
    second = replace(stage("run_cli#2", 2, reads=[state]), name="run_cli", qualname="hooks.Hook.run_cli")
    p = pipeline([first, second], [edge("run_cli", "run_cli#2", via=["self.sp"])], style="class")
    assert stage_sets("hidden-state-dependency", p) == []
