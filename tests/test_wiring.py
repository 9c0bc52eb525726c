"""How real projects wire their drivers: star imports, aliased step functions, namespace packages,
plain drivers over framework flows, classes that orchestrate other classes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from stagegraph.engine import Options, analyze
from stagegraph.facts.index import Project, index_module
from stagegraph.model import Pipeline, Report
from stagegraph.source import ParsedModule, parse_text


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, code in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))


def _audit(root: Path) -> Report:
    return analyze([root], Options())


def _pipeline(report: Report, name: str) -> Pipeline:
    hits = [p for p in report.pipelines if p.name == name]
    assert hits, [p.name for p in report.pipelines]
    return max(hits, key=lambda p: len(p.stages))


def _names(pipeline: Pipeline) -> list[str]:
    return [s.name for s in pipeline.stages]


def test_star_import_binds_public_names_and_respects_all(tmp_path: Path) -> None:
    _write(tmp_path, {
        "helpers.py": """
            __all__ = ["fetch", "store"]
            def fetch():
                return open("/in/a.txt").read()
            def store(x):
                open("/out/b.txt", "w").write(x)
            def hidden(x):
                open("/out/c.txt", "w").write(x)
        """,
        "run.py": """
            from helpers import *
            def go():
                x = fetch()
                store(x)
                hidden(x)
        """,
    })
    assert _names(_pipeline(_audit(tmp_path), "go")) == ["fetch", "store", "hidden"]
    parsed = [parse_text(f"{m}.py", (tmp_path / f"{m}.py").read_text(), m) for m in ("helpers", "run")]
    project = Project.build([index_module(m) for m in parsed if isinstance(m, ParsedModule)])
    run = project.modules["run"]
    assert run.imports["fetch"] == "helpers.fetch" and run.imports["store"] == "helpers.store"
    assert "hidden" not in run.imports  # not in __all__: the star import does not bind it


def test_sql_table_functions_read_files(tmp_path: Path) -> None:
    """`FROM read_parquet('/data/x.parquet')` in DuckDB SQL reads that file: a stage writing it comes first."""
    _write(tmp_path, {
        "job.py": """
            import duckdb
            def fetch(path):
                with open(path, "wb") as fh:
                    fh.write(b"..")
            def load(conn, path):
                conn.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{path}')")
            def other(conn):
                conn.execute("CREATE TABLE u AS SELECT * FROM read_csv_auto('/data/other.csv')")
            def main():
                fetch("/data/x.parquet")
                conn = duckdb.connect("/data/w.db")
                load(conn, "/data/x.parquet")
                other(conn)
        """,
    })
    p = _pipeline(_audit(tmp_path), "main")
    reads = {s.name: {e.target for e in s.reads if e.kind == "file"} for s in p.stages}
    assert reads["load"] == {"/data/x.parquet"} and reads["other"] == {"/data/other.csv"}
    assert any(e.source == "fetch" and e.target == "load" and e.kind == "data" for e in p.edges)


def test_unknown_spark_call_through_a_parameter_may_read_files(tmp_path: Path) -> None:
    """`spark.read.csv(path)` on a session passed in is unmodelled: it may read the file an earlier stage
    wrote (object-store URLs included), so the two are never called independent."""
    _write(tmp_path, {
        "job.py": """
            from pyspark.sql import SparkSession
            def stage_csv(df, out_dir):
                df.to_csv(out_dir + "/states.csv")
            def build_dim(spark, in_dir):
                spark.read.csv(in_dir + "/states.csv").write.parquet("/lake/dim")
            def main(df, out_dir, in_dir):
                spark = SparkSession.builder.getOrCreate()
                stage_csv(df, out_dir)
                build_dim(spark, in_dir)
        """,
    })
    p = _pipeline(_audit(tmp_path), "main")
    assert any(e.source == "stage_csv" and e.target == "build_dim" and e.kind in ("data", "unknown")
               for e in p.edges), p.edges


def test_aliased_step_mains_are_named_by_their_alias_and_linked_through_leaves(tmp_path: Path) -> None:
    """`from a import main as fetch`: a `main` in every step module says nothing, the alias does; the
    dependency between two sub-drivers comes from what their own stages read and write."""
    _write(tmp_path, {
        "a.py": """
            def get():
                return open("/in/x.txt").read()
            def put(x):
                open("/mid/x.txt", "w").write(x)
            def main():
                put(get())
        """,
        "b.py": """
            def get():
                return open("/mid/x.txt").read()
            def put(x):
                open("/out/x.txt", "w").write(x)
            def main():
                put(get())
        """,
        "helpers.py": """
            def tidy(rows):
                return rows
        """,
        "run.py": """
            from a import main as fetch
            from b import main as publish
            from helpers import tidy as t
            def go():
                fetch()
                publish()
                t([])
        """,
    })
    p = _pipeline(_audit(tmp_path), "go")
    assert _names(p) == ["fetch", "publish", "tidy"]  # `tidy` is unique: its own name stays
    assert any(e.source == "fetch" and e.target == "publish" and e.kind == "data" for e in p.edges)


def test_plain_driver_calling_prefect_flows_is_kept(tmp_path: Path) -> None:
    _write(tmp_path, {
        "flows.py": """
            from prefect import flow
            @flow
            def one():
                open("/mid/a.txt", "w").write("x")
            @flow
            def two():
                return open("/mid/a.txt").read()
        """,
        "main.py": """
            from flows import one, two
            def run_all():
                one()
                two()
        """,
    })
    p = _pipeline(_audit(tmp_path), "run_all")
    assert p.style == "plain" and _names(p) == ["one", "two"]
    assert any(e.source == "one" and e.target == "two" and e.kind == "data" for e in p.edges)


def test_orchestrator_class_runs_other_classes_and_imported_singletons(tmp_path: Path) -> None:
    """`Extract(cfg).run()`, `job = Load(cfg); job.run()` and `service.publish()` on a module-level
    instance imported from elsewhere are stages of the orchestrating method."""
    _write(tmp_path, {
        "services.py": """
            class Board:
                def publish(self):
                    open("/out/board.txt", "w").write("done")
            board = Board()
        """,
        "steps.py": """
            class Extract:
                def __init__(self, cfg):
                    self.cfg = cfg
                def run(self):
                    open("/mid/a.txt", "w").write("x")
            class Load:
                def __init__(self, cfg):
                    self.cfg = cfg
                def run(self):
                    return open("/mid/a.txt").read()
        """,
        "main.py": """
            from services import board
            from steps import Extract, Load
            class Main:
                def run(self, cfg):
                    Extract(cfg).run()
                    job = Load(cfg)
                    job.run()
                    board.publish()
        """,
    })
    p = _pipeline(_audit(tmp_path), "Main.run")
    assert [s.id for s in p.stages] == ["run", "run#2", "publish"]
    assert [s.qualname for s in p.stages] == ["steps.Extract.run", "steps.Load.run", "services.Board.publish"]
    assert any(e.source == "run" and e.target == "run#2" and e.kind == "data" for e in p.edges)
