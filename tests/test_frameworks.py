"""Airflow, Luigi and Kedro adapters: labelled fixture cases plus one targeted test per construct.

The frameworks are never installed: every test analyses source text only. Labelled cases live in
fixtures/frameworks/<case>/ beside <case>.expect.json (the shared score.py format); a pair labelled
`depends` must be reachable through data/control/unknown edges, `independent` must not be.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from labels import model_depends, pick_model

from stagegraph.engine import Options, analyze
from stagegraph.model import Pipeline, Report

FIXTURES = Path(__file__).parents[1] / "fixtures" / "frameworks"
SHARED = Path(__file__).parents[2] / "shared" / "examples"
MY_PREFIXES = ("airflow_", "luigi_", "kedro_")
CASES = sorted(p.name[: -len(".expect.json")] for p in FIXTURES.glob("*.expect.json") if p.name.startswith(MY_PREFIXES))

pick = pick_model
depends = model_depends


def edge(pipeline: Pipeline, a: str, b: str):  # type: ignore[no-untyped-def]
    ids = {s.name: s.id for s in pipeline.stages}
    return next((e for e in pipeline.edges if e.source == ids[a] and e.target == ids[b]), None)


def run(tmp_path: Path, files: dict[str, str]) -> Report:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return analyze([tmp_path], Options())


# ---------------------------------------------------------------- labelled cases


@pytest.mark.parametrize("case", CASES)
def test_labelled_case(case: str) -> None:
    label = json.loads((FIXTURES / f"{case}.expect.json").read_text(encoding="utf-8"))
    report = analyze([FIXTURES / case], Options())
    pipeline = pick(report, label["pipeline"], label.get("style"))
    assert pipeline.style == label["style"]
    names = {s.name for s in pipeline.stages}
    assert set(label["order"]) <= names
    for pair in label["pairs"]:
        if pair.get("confidence") == "low":
            continue
        said = depends(pipeline, pair["a"], pair["b"])
        assert said == (pair["relation"] == "depends"), f"{case}: {pair}"
    by_id = {s.id: s.name for s in pipeline.stages}
    found = {(f.rule, frozenset(by_id.get(s, s) for s in f.stages)) for f in report.findings
             if f.pipeline == pipeline.id}
    for hazard in label["hazards"]:
        assert (hazard["kind"], frozenset(hazard["stages"])) in found, f"{case}: {hazard} not in {found}"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared examples not present")
@pytest.mark.parametrize("case", ["warehouse_dag", "luigi_inventory", "kedro_pricing"])
def test_shared_examples_have_no_unsafe_pair(case: str) -> None:
    label = json.loads((SHARED / f"{case}.expect.json").read_text(encoding="utf-8"))
    report = analyze([SHARED / f"{case}.py"], Options())
    pipeline = pick(report, label["pipeline"])
    for pair in label["pairs"]:
        if pair["relation"] == "depends":
            assert depends(pipeline, pair["a"], pair["b"]), pair
        else:
            assert not depends(pipeline, pair["a"], pair["b"]), pair


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared examples not present")
def test_warehouse_dag_reports_only_the_undeclared_funnel_dependency() -> None:
    report = analyze([SHARED / "warehouse_dag.py"], Options())
    serious = [(f.rule, f.stages) for f in report.findings if f.severity in ("warning", "error")]
    assert serious == [("undeclared-dependency", ("stage_clicks", "build_funnel"))]


def test_large_dag_has_forty_tasks_in_groups() -> None:
    report = analyze([FIXTURES / "airflow_ecommerce_nightly"], Options())
    pipeline = pick(report, "ecommerce_nightly")
    assert len(pipeline.stages) >= 40
    assert {s.name.split(".")[0] for s in pipeline.stages} >= {"extract", "quality", "snapshots", "marts", "reports"}


# ---------------------------------------------------------------- Airflow constructs

AIRFLOW_HEAD = """
    from airflow import DAG
    from airflow.operators.python import PythonOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.bash import BashOperator
    from airflow.providers.postgres.operators.postgres import PostgresOperator
    from airflow.models.baseoperator import chain, cross_downstream
    from airflow.utils.task_group import TaskGroup

    def sql(task_id, text):
        return None
"""


def _dag(body: str) -> str:
    return textwrap.dedent(AIRFLOW_HEAD) + "\nwith DAG('d') as dag:\n" + textwrap.indent(textwrap.dedent(body), "    ")


def test_airflow_shift_with_lists_declares_every_pair(tmp_path: Path) -> None:
    report = run(tmp_path, {"d.py": _dag("""
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
        d = EmptyOperator(task_id="d")
        a >> [b, c] >> d
        d << a
    """)})
    p = pick(report, "d")
    declared = {(e.source, e.target) for e in p.edges if e.kind == "order"}
    assert {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "d")} <= declared


def test_airflow_chain_pairs_equal_lists_and_cross_downstream_crosses(tmp_path: Path) -> None:
    report = run(tmp_path, {"d.py": _dag("""
        a1 = EmptyOperator(task_id="a1")
        a2 = EmptyOperator(task_id="a2")
        b1 = EmptyOperator(task_id="b1")
        b2 = EmptyOperator(task_id="b2")
        c1 = EmptyOperator(task_id="c1")
        c2 = EmptyOperator(task_id="c2")
        chain([a1, a2], [b1, b2])
        cross_downstream([b1, b2], [c1, c2])
    """)})
    declared = {(e.source, e.target) for e in pick(report, "d").edges if e.kind == "order"}
    assert ("a1", "b1") in declared and ("a2", "b2") in declared and ("a1", "b2") not in declared
    assert {("b1", "c1"), ("b1", "c2"), ("b2", "c1"), ("b2", "c2")} <= declared


def test_airflow_taskgroup_stands_for_roots_and_leaves(tmp_path: Path) -> None:
    report = run(tmp_path, {"d.py": _dag("""
        start = EmptyOperator(task_id="start")
        end = EmptyOperator(task_id="end")
        with TaskGroup("g") as g:
            x = EmptyOperator(task_id="x")
            y = EmptyOperator(task_id="y")
            x >> y
        start >> g >> end
    """)})
    declared = {(e.source, e.target) for e in pick(report, "d").edges if e.kind == "order"}
    assert ("start", "g.x") in declared and ("g.y", "end") in declared
    assert ("start", "g.y") not in declared and ("g.x", "end") not in declared


def test_airflow_undeclared_sql_dependency_and_set_upstream(tmp_path: Path) -> None:
    report = run(tmp_path, {"d.py": _dag("""
        w = PostgresOperator(task_id="w", sql="INSERT INTO s.t SELECT * FROM s.src")
        r = PostgresOperator(task_id="r", sql="INSERT INTO s.out SELECT * FROM s.t")
        r2 = PostgresOperator(task_id="r2", sql="INSERT INTO s.out2 SELECT * FROM s.t")
        r2.set_upstream(w)
    """)})
    p = pick(report, "d")
    assert not edge(p, "w", "r").declared and edge(p, "w", "r2").declared  # type: ignore[union-attr]
    rules = {(f.rule, f.stages) for f in report.findings}
    assert ("undeclared-dependency", ("w", "r")) in rules


def test_airflow_xcom_push_pull_and_bash_is_opaque(tmp_path: Path) -> None:
    report = run(tmp_path, {"d.py": _dag("""
        def push(**ctx):
            ctx["ti"].xcom_push(key="n", value=1)

        def pull(**ctx):
            return ctx["ti"].xcom_pull(task_ids="push", key="n")

        p1 = PythonOperator(task_id="push", python_callable=push)
        p2 = PythonOperator(task_id="pull", python_callable=pull)
        sh = BashOperator(task_id="sh", bash_command="./notify.sh {{ ti.xcom_pull(task_ids='pull') }}")
        p1 >> p2 >> sh
    """)})
    p = pick(report, "d")
    assert edge(p, "push", "pull").kind == "data"  # type: ignore[union-attr]
    assert edge(p, "pull", "sh").kind == "data"  # type: ignore[union-attr]
    assert edge(p, "push", "sh").kind == "unknown"  # type: ignore[union-attr]


def test_airflow_taskflow_results_and_expand(tmp_path: Path) -> None:
    report = run(tmp_path, {"flow.py": """
        from airflow.decorators import dag, task

        @dag(dag_id="tf")
        def tf():
            @task
            def items():
                return [1, 2]

            @task
            def double(x):
                return x * 2

            @task
            def other():
                return 3

            double.partial().expand(x=items())
            other()

        tf()
    """})
    p = pick(report, "tf")
    assert p.style == "airflow-taskflow"
    assert depends(p, "items", "double") and not depends(p, "items", "other")
    stage = next(s for s in p.stages if s.name == "double")
    assert stage.fanout is not None and stage.fanout.mechanism == "expand"
    assert edge(p, "items", "double").declared  # type: ignore[union-attr]


def test_airflow_sql_file_and_params_template(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "load.sql").write_text("INSERT INTO {{ params.table }} SELECT * FROM raw.x", encoding="utf-8")
    report = run(tmp_path, {"d.py": _dag("""
        a = PostgresOperator(task_id="a", sql="sql/load.sql", params={"table": "mart.x"})
        b = PostgresOperator(task_id="b", sql="SELECT * FROM mart.x")
        a >> b
    """)})
    p = pick(report, "d")
    assert edge(p, "a", "b").kind == "data"  # type: ignore[union-attr]


def test_airflow_dynamic_task_ids_are_diagnosed_with_unknown_links(tmp_path: Path) -> None:
    report = run(tmp_path, {"d.py": _dag("""
        start = EmptyOperator(task_id="start")
        for name in load_names_from_config():
            t = EmptyOperator(task_id=f"load_{name}")
            start >> t
        other = EmptyOperator(task_id="other")
    """)})
    p = pick(report, "d")
    assert any(d.kind == "unresolved" and "load_*" in d.message for d in report.diagnostics)
    assert edge(p, "load_*", "other").kind == "unknown"  # type: ignore[union-attr]


# ---------------------------------------------------------------- Luigi constructs


def test_luigi_dict_requires_maps_input_keys(tmp_path: Path) -> None:
    report = run(tmp_path, {"t.py": """
        import luigi

        class A(luigi.Task):
            def output(self):
                return luigi.LocalTarget("/a.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("a")

        class B(luigi.Task):
            def output(self):
                return luigi.LocalTarget("/b.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("b")

        class C(luigi.Task):
            def requires(self):
                return {"a": A(), "b": B()}
            def output(self):
                return luigi.LocalTarget("/c.txt")
            def run(self):
                with self.input()["a"].open() as f, self.output().open("w") as out:
                    out.write(f.read())
    """})
    p = pick(report, "C", "luigi")
    assert depends(p, "A", "C") and not depends(p, "B", "C")
    assert any(e.kind == "order" and e.declared for e in p.edges if {e.source, e.target} == {"B", "C"})


def test_luigi_contrib_bases_that_do_not_end_in_task_are_tasks(tmp_path: Path) -> None:
    """`CopyToTable`, `PostgresQuery`: luigi.contrib's loaders are tasks, and a project base over one
    (`class LoadPostgres(CopyToTable)`) makes its subclasses tasks; before, the root task was dropped."""
    report = run(tmp_path, {"t.py": """
        import luigi
        from luigi.contrib.postgres import CopyToTable

        class LoadPostgres(CopyToTable):
            host = "db"

        class Extract(luigi.Task):
            def output(self):
                return luigi.LocalTarget("/extract.csv")
            def run(self):
                self.output().open("w").write("a")

        class LoadIds(LoadPostgres):
            table = "ids"
            def requires(self):
                return Extract()
    """})
    p = pick(report, "LoadIds", "luigi")
    assert {s.name for s in p.stages} >= {"Extract", "LoadIds"}
    # CopyToTable's own run() loads its input: a real dependency, although no analysed run() reads it
    assert depends(p, "Extract", "LoadIds")
    (load,) = [s for s in p.stages if s.name == "LoadIds"]
    assert [(e.kind, e.target) for e in load.writes] == [("table", "ids")]  # the class's `table`


def test_luigi_unresolved_requires_is_diagnosed(tmp_path: Path) -> None:
    report = run(tmp_path, {"t.py": """
        import luigi
        REG = {}

        class A(luigi.Task):
            def output(self):
                return luigi.LocalTarget("/a.txt")
            def run(self):
                self.output().open("w").write("a")

        class B(luigi.Task):
            def requires(self):
                return REG["a"]()
            def output(self):
                return luigi.LocalTarget("/b.txt")
            def run(self):
                self.output().open("w").write(self.input().open().read())
    """})
    p = pick(report, "B", "luigi")
    assert any(d.kind == "unresolved" and "B.requires()" in d.message for d in report.diagnostics)
    assert edge(p, "A", "B").kind == "unknown"  # type: ignore[union-attr]


# ---------------------------------------------------------------- Kedro constructs


def test_kedro_list_dict_and_params_inputs(tmp_path: Path) -> None:
    report = run(tmp_path, {"p.py": """
        from kedro.pipeline import node, pipeline

        def f(a): return a
        def g(a, b, cfg): return a
        def h(x, y): return x

        def create_pipeline():
            return pipeline([
                node(f, "raw", "a", name="f"),
                node(g, ["a", "other", "params:cfg"], "b", name="g"),
                node(h, {"x": "params:cfg", "y": "other"}, "c", name="h"),
            ])
    """})
    p = pick(report, "create_pipeline", "kedro")
    assert depends(p, "f", "g") and not depends(p, "g", "h") and not depends(p, "f", "h")
    assert edge(p, "f", "g").declared  # type: ignore[union-attr]
    assert all("params:" not in e.target for s in p.stages for e in s.reads)


def test_kedro_broken_catalog_is_one_diagnostic_and_the_rest_still_maps(tmp_path: Path) -> None:
    """A catalog PyYAML can't parse is named in a diagnostic (never dropped silently); the other catalog
    still maps its datasets to files, and the nodes still connect by dataset name."""
    report = run(tmp_path, {
        "conf/base/catalog.yml": "raw:\n  type: pandas.CSVDataset\n  filepath: data/01_raw/raw.csv\n",
        "conf/local/catalog.yml": "clean: [unclosed\n",
        "src/p.py": """
            from kedro.pipeline import node, pipeline

            def f(a): return a
            def g(a): return a

            def create_pipeline():
                return pipeline([node(f, "raw", "clean", name="f"), node(g, "clean", "out", name="g")])
        """,
    })
    broken = [d for d in report.diagnostics if d.code == "kedro-catalog"]
    assert [(d.file, d.kind) for d in broken] == [("conf/local/catalog.yml", "syntax-error")]
    p = pick(report, "create_pipeline", "kedro")
    assert depends(p, "f", "g")
    assert any(e.kind == "file" and e.target == "data/01_raw/raw.csv" for e in p.stage("f").reads)


def test_kedro_inputs_and_outputs_built_with_dict_keywords(tmp_path: Path) -> None:
    # `inputs=dict(datos="table", n="params:n")` is the mapping `{"datos": "table", ...}`: before, it
    # was a dataset name built at run time, an unknown read that met every other node
    report = run(tmp_path, {"p.py": """
        from kedro.pipeline import Node, pipeline

        def pca(datos, n): return datos
        def umap(datos, metodo, n): return datos
        def merge(a, b): return a

        def create_pipeline():
            return pipeline([
                Node(func=pca, inputs=dict(datos="table", n="params:pca_n"), outputs="pca_out", name="pca"),
                Node(func=umap, inputs=dict(datos="table", metodo="params:m", n="params:umap_n"),
                     outputs=dict(out="umap_out"), name="umap"),
                Node(func=merge, inputs=dict(a="pca_out", b="umap_out"), outputs="merged", name="merge"),
            ])
    """})
    p = pick(report, "create_pipeline", "kedro")
    assert not depends(p, "pca", "umap")
    assert depends(p, "pca", "merge") and depends(p, "umap", "merge")
    assert not [e for s in p.stages for e in s.reads if e.kind == "unknown"]


def test_kedro_node_taken_from_a_list_and_unreadable_elements_are_reported(tmp_path: Path) -> None:
    """`prepare[0]` in a node list is that node; an element that is no node stagegraph can read is an
    `unresolved` diagnostic, never silently dropped (it was, and the pipeline looked complete)."""
    report = run(tmp_path, {"p.py": """
        from kedro.pipeline import node, pipeline

        def f(a): return a
        def g(a): return a

        def create_pipeline():
            prepare = [node(f, "raw", "clean", name="prepare"), node(g, "clean", "x", name="unused")]
            return pipeline([prepare[0], node(g, "clean", "model", name="train"), make_extra()])
    """})
    p = pick(report, "create_pipeline", "kedro")
    assert {s.name for s in p.stages} == {"prepare", "train"}
    assert depends(p, "prepare", "train")
    assert [d.message for d in report.diagnostics if d.kind == "unresolved"] == [
        "make_extra() in a pipeline's node list is not a node stagegraph can read; its datasets are not known"]


def test_kedro_plus_and_namespace(tmp_path: Path) -> None:
    report = run(tmp_path, {"p.py": """
        from kedro.pipeline import node, pipeline

        def f(a): return a

        base = pipeline([node(f, "in", "out", name="f")])

        def create_pipeline():
            one = pipeline(base, namespace="one")
            two = pipeline(base, namespace="two", inputs={"in": "one.out"})
            return one + two
    """})
    p = pick(report, "create_pipeline", "kedro")
    assert {s.name for s in p.stages} == {"one.f", "two.f"}
    assert depends(p, "one.f", "two.f")


def test_custom_operators_with_a_task_id_are_tasks_and_sql_is_found_under_the_root(tmp_path: Path) -> None:
    """Real DAGs use in-house operators and `template_searchpath=Variable.get(...)`: neither may hide a task."""
    (tmp_path / "sql" / "marts").mkdir(parents=True)
    (tmp_path / "sql" / "marts" / "dim_store.sql").write_text("INSERT INTO marts.dim_store SELECT * FROM raw.stores")
    (tmp_path / "sql" / "marts" / "fact_sales.sql").write_text(
        "INSERT INTO marts.fact_sales SELECT s.* FROM raw.sales s LEFT JOIN marts.dim_store d USING (store_id)")
    report = run(tmp_path, {
        "dags/ops.py": """
            from airflow.models import BaseOperator
            class WarehouseSqlOperator(BaseOperator):
                def __init__(self, sql, **kwargs):
                    super().__init__(**kwargs)
                    self.sql = sql
        """,
        "dags/marts.py": """
            import airflow
            from airflow.models import Variable
            from ops import WarehouseSqlOperator
            dag = airflow.DAG("marts", template_searchpath=Variable.get("sql_path"))
            dim_store = WarehouseSqlOperator(task_id="dim_store", sql="marts/dim_store.sql", dag=dag)
            fact_sales = WarehouseSqlOperator(task_id="fact_sales", sql="marts/fact_sales.sql", dag=dag)
            audit = WarehouseSqlOperator(task_id="audit", sql="SELECT 1", dag=dag)
            audit >> dim_store
            audit >> fact_sales
        """,
    })
    marts = pick(report, "marts")
    assert {s.name for s in marts.stages} == {"dim_store", "fact_sales", "audit"}
    undeclared = [f for f in report.findings if f.rule == "undeclared-dependency"]
    assert [(f.stages, "marts.dim_store" in f.message) for f in undeclared] == [(("dim_store", "fact_sales"), True)]


def test_a_mapped_task_group_given_a_task_call_makes_that_task_once(tmp_path: Path) -> None:
    """The expand input `list_items()` was evaluated twice (to bind and to fan out): a second
    `list_items__1` task appeared that the DAG does not have."""
    report = run(tmp_path, {"dags/d.py": """
        import pendulum
        from airflow import DAG
        from airflow.decorators import task, task_group

        @task
        def list_items():
            return [1, 2]

        @task_group(group_id="per_item")
        def per_item(item):
            @task
            def handle(item):
                return item
            handle(item)

        with DAG("per_item_dag", start_date=pendulum.datetime(2026, 1, 1)):
            per_item.expand(item=list_items())
    """})
    (pipeline,) = report.pipelines
    assert [s.name for s in pipeline.stages] == ["list_items", "per_item.handle"]
    assert edge(pipeline, "list_items", "per_item.handle").kind == "data"


def test_the_tasks_of_one_uncapped_mapped_group_are_one_unbounded_fanout(tmp_path: Path) -> None:
    report = run(tmp_path, {"dags/d.py": """
        import pendulum
        import requests
        from airflow import DAG
        from airflow.decorators import task, task_group

        @task
        def list_users():
            return requests.get("https://crm.example.com/users", timeout=10).json()

        @task_group(group_id="forget")
        def forget(user):
            @task
            def in_crm(user):
                requests.delete(f"https://crm.example.com/users/{user}", timeout=10)

            @task
            def in_mailer(user):
                requests.delete(f"https://mail.example.com/contacts/{user}", timeout=10)

            in_crm(user)
            in_mailer(user)

        with DAG("forget_users", start_date=pendulum.datetime(2026, 1, 1)):
            forget.expand(user=list_users())
    """})
    fanouts = [f for f in report.findings if f.rule == "unbounded-fanout"]
    assert [f.stages for f in fanouts] == [("forget.in_crm", "forget.in_mailer")]
