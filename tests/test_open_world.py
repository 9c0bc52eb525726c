"""The open-world effect model: what is not modelled is an unknown effect, never no effect.

Each test states a shape seen failing on real pipelines (in our own words) and the verdict the
open-world rule gives; near-misses pin the precision the resource hierarchy keeps.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stagegraph import catalog
from stagegraph.catalog import CatalogError
from stagegraph.engine import Options, analyze
from stagegraph.model import DEPENDENCY_KINDS, Pipeline

CLI = [sys.executable, "-m", "stagegraph"]


def _pipeline(tmp_path: Path, code: str, extra: dict[str, str] | None = None) -> Pipeline:
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(code))
    for name, text in (extra or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    report = analyze([tmp_path], Options())
    (pipeline,) = [p for p in report.pipelines if p.name == "main"]
    return pipeline


def _kind(pipeline: Pipeline, a: str, b: str) -> str | None:
    for edge in pipeline.edges:
        if {edge.source, edge.target} == {a, b}:
            return edge.kind
    return None


#: two stages calling methods of one client of an SDK stagegraph does not model
LEDGER = """
        from ledger_sdk import LedgerClient

        ledger = LedgerClient()

        def post_entries(rows):
            ledger.append_entries("2024", rows)

        def close_books():
            ledger.lock_period("2024")

        def main(rows):
            post_entries(rows)
            close_books()
    """


def test_unmodelled_sdk_client_methods_are_unknown_effects_on_the_client(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, LEDGER)
    assert _kind(pipeline, "post_entries", "close_books") == "unknown"


def test_two_reads_of_one_client_stay_independent(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        from ledger_sdk import LedgerClient

        ledger = LedgerClient()

        def balance():
            return ledger.get_balance("2024")

        def history():
            return ledger.list_entries("2024")

        def main():
            balance()
            history()
    """)
    assert _kind(pipeline, "balance", "history") == "order"


def test_a_declared_pure_library_adds_no_effect(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import pandas as pd

        def a(df):
            return df.pipe(len)

        def b(df):
            return pd.concat([df, df])

        def main(df):
            a(df)
            b(df)
    """)
    assert _kind(pipeline, "a", "b") == "order"


@pytest.mark.parametrize(("show", "kind"), [("print(publish)", "order"), ("notify_sdk.register(publish)", "data")])
def test_a_function_only_shown_is_not_called_but_one_handed_to_a_library_is(tmp_path: Path, show: str,
                                                                             kind: str) -> None:
    pipeline = _pipeline(tmp_path, f"""
        import notify_sdk

        def publish(frame):
            frame.to_csv("/srv/out/report.csv")

        def fetch():
            {show}
            return 1

        def audit():
            return open("/srv/out/report.csv").read()

        def main(frame):
            fetch()
            audit()
    """)
    # `print` is declared inert (it never calls what it shows); an SDK receiving the function may run it
    assert _kind(pipeline, "fetch", "audit") == kind


@pytest.mark.parametrize(("make", "kind"), [
    ("    try:\n        os.makedirs(folder)\n    except FileExistsError:\n        pass\n", "order"),
    ("    try:\n        os.makedirs(folder)\n    except OSError as e:\n        if e.errno != errno.EEXIST:\n"
     "            raise\n", "order"),
    ("    os.makedirs(folder, exist_ok=True)\n", "order"),
    ("    os.makedirs(folder)\n", "unknown"),  # a new folder of unknown name may be any path another stage uses
    ("    try:\n        os.makedirs(folder)\n    except KeyError:\n        pass\n", "unknown"),
])
def test_making_a_folder_that_may_exist_only_ensures_it(tmp_path: Path, make: str, kind: str) -> None:
    body = textwrap.indent(make, " " * 8)
    pipeline = _pipeline(tmp_path, f"""
        import errno
        import os
        import lz4.frame

        def pack(folder, data):
{body}
            with lz4.frame.open("/srv/out/a.lz4", "wb") as fh:
                fh.write(lz4.frame.compress(data))

        def summary():
            return open("/srv/in/b.csv").read()

        def main(data):
            pack(os.environ["OUT"], data)
            summary()
    """)
    assert _kind(pipeline, "pack", "summary") == kind


def test_sql_text_that_cannot_be_resolved_is_an_unknown_write_of_the_database(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import psycopg2

        def load(conn):
            conn.cursor().execute("INSERT INTO staging.events VALUES (1)")

        def transform(conn, make_sql):
            conn.cursor().execute(make_sql())

        def main(make_sql):
            conn = psycopg2.connect(dbname="events")
            load(conn)
            transform(conn, make_sql)
    """)
    assert _kind(pipeline, "load", "transform") == "unknown"


def test_sql_read_from_a_file_and_composed_sql_resolve_to_tables(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import os
        import psycopg2
        from psycopg2 import sql

        HERE = os.path.dirname(__file__)

        def load(conn):
            conn.cursor().execute("INSERT INTO staging.events VALUES (1)")

        def build(conn):
            with open(os.path.join(HERE, "queries", "build.sql")) as fh:
                conn.cursor().execute(fh.read())

        def wipe(conn, table):
            conn.cursor().execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))

        def main():
            conn = psycopg2.connect(dbname="events")
            load(conn)
            build(conn)
            wipe(conn, "mart.other")
    """, {"queries/build.sql": "INSERT INTO mart.daily SELECT * FROM staging.events"})
    assert _kind(pipeline, "load", "build") == "data"
    assert _kind(pipeline, "build", "wipe") == "order"


def test_sql_files_outside_the_analysed_root_are_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.sql"
    outside.write_text("INSERT INTO secret.table SELECT 1")
    root = tmp_path / "repo"
    root.mkdir()
    pipeline = _pipeline(root, f"""
        def leak(conn):
            conn.cursor().execute(open({str(outside)!r}).read())

        def other(conn):
            conn.cursor().execute("SELECT 1 FROM a")

        def main(conn):
            leak(conn)
            other(conn)
    """)
    targets = {e.target for s in pipeline.stages for e in s.writes}
    assert "secret.table" not in targets


def test_document_store_collections_are_levels_of_one_resource(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import pymongo

        def write_orders(client, docs):
            client["shop"]["orders"].insert_many(docs)

        def read_orders(client):
            return list(client["shop"]["orders"].find())

        def read_users(client):
            return list(client["shop"]["users"].find())

        def main(docs):
            client = pymongo.MongoClient("mongodb://docs")
            write_orders(client, docs)
            read_orders(client)
            read_users(client)
    """)
    assert _kind(pipeline, "write_orders", "read_orders") in DEPENDENCY_KINDS
    assert _kind(pipeline, "write_orders", "read_users") in (None, "order")


def test_every_effect_carries_its_provenance(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import pandas as pd
        from ledger_sdk import LedgerClient

        ledger = LedgerClient()

        def a():
            pd.read_csv("/data/in.csv").to_csv("/data/out.csv")
            ledger.push("x")

        def b():
            return 1

        def main():
            a()
            b()
    """)
    stage = pipeline.stage("a")
    origins = {(e.kind, e.origin) for e in stage.writes}
    assert ("file", "code") in origins
    assert ("unknown", "fallback") in origins


@pytest.mark.parametrize(("entry", "message"), [
    ({"type": "x", "names": ["put"], "effect": "write", "target": "bucket:0"}, "unknown target 'bucket:0'"),
    ({"type": "x", "names": ["put"], "effect": "writes", "target": "file:0"}, "unknown effect 'writes'"),
    ({"type": "x", "names": ["put"], "effect": "write"}, "effect and target go together"),
])
def test_catalog_effects_and_targets_are_validated(tmp_path: Path, entry: dict[str, object], message: str) -> None:
    path = tmp_path / "resources-extra.toml"
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in entry.items())
    path.write_text(f"[[method]]\n{body}\n")
    with pytest.raises(CatalogError, match=message) as info:
        catalog._load_resources((path,))
    assert str(path) in str(info.value) and "[[method]] #1" in str(info.value)


@pytest.mark.parametrize("entry", [
    'modules = ["vendor_sdk"]\nkind = "other"\nhosts = ["api.vendor.example"]',
    'modules = ["vendor_sdk"]\nkind = "http"\nhosts = ["https://api.vendor.example/v1"]',
])
def test_sdk_hosts_are_validated(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "resources-extra.toml"
    path.write_text(f"[[opaque]]\n{entry}\n")
    with pytest.raises(CatalogError, match="hosts must be lower-case host names") as info:
        catalog._load_resources((path,))
    assert str(path) in str(info.value) and "[[opaque]] #1" in str(info.value)


@pytest.mark.parametrize(("other", "kind"), [
    ('requests.post("https://track.customer.io/api/v2/entity", json=ids, timeout=10)', "order"),
    ('open("/srv/out/deleted.csv", "w").write(str(ids))', "order"),
    ('requests.post("https://api.airtable.com/v0/app/feedback", json=ids, timeout=10)', "unknown"),
])
def test_a_saas_sdk_reaches_only_its_own_hosts(tmp_path: Path, other: str, kind: str) -> None:
    pipeline = _pipeline(tmp_path, f"""
        import requests
        from pyairtable import Api

        api = Api("token")

        def forget_in_airtable(ids):
            api.table("app", "feedback").batch_delete(ids)

        def forget_elsewhere(ids):
            {other}

        def main(ids):
            forget_in_airtable(ids)
            forget_elsewhere(ids)
    """)
    assert _kind(pipeline, "forget_in_airtable", "forget_elsewhere") == kind


def test_why_explains_a_pair_with_provenance(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(LEDGER))
    proc = subprocess.run([*CLI, "why", str(tmp_path), "main", "close_books", "post_entries"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "open-world fallback" in proc.stdout
    assert "verdict: post_entries -> close_books is unknown" in proc.stdout
    bad = subprocess.run([*CLI, "why", str(tmp_path), "main", "nope", "post_entries"], capture_output=True, text=True)
    assert bad.returncode == 2 and "has no stage 'nope'" in bad.stderr


def test_a_shell_command_may_touch_anything(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import os
        import sqlite3

        def restore(dump):
            os.system(f"pg_restore -d shop {dump}")

        def count(path):
            conn = sqlite3.connect(path)
            return conn.execute("SELECT count(*) FROM orders").fetchone()

        def unrelated():
            return sqlite3.connect("/tmp/other.db")

        def main(dump):
            restore(dump)
            count("/data/shop.db")
            unrelated()
    """)
    assert _kind(pipeline, "restore", "count") == "unknown"


def test_the_audited_package_imports_itself_by_its_own_name(tmp_path: Path) -> None:
    """`search/` audited inside a git repository: `from search.api import f` is the analysed module `api`."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    package = tmp_path / "src" / "search"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "api.py").write_text(textwrap.dedent("""
        OUT = "/data/index.json"

        def build_index():
            with open(OUT, "w") as fh:
                fh.write("{}")

        def read_index():
            with open(OUT) as fh:
                return fh.read()

        def unrelated():
            return 1
    """))
    (package / "tasks.py").write_text(textwrap.dedent("""
        from search.api import build_index, read_index, unrelated

        def main():
            build_index()
            unrelated()
            read_index()
    """))
    report = analyze([package], Options(root=tmp_path))
    (pipeline,) = [p for p in report.pipelines if p.name == "main"]
    assert _kind(pipeline, "build_index", "read_index") == "data"
    assert _kind(pipeline, "build_index", "unrelated") == "order"


def test_an_object_of_our_own_class_handed_to_stages_is_not_proven_apart(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        class Warehouse:
            def restore(self, dump):
                self.cursor.execute(open(dump).read())

            def count(self):
                return self.cursor.execute("SELECT count(*) FROM orders")

        def prepare(wh, dump):
            wh.restore(dump)

        def check(wh):
            return wh.count()

        def main(dump):
            wh = Warehouse()
            prepare(wh, dump)
            check(wh)
    """)
    assert _kind(pipeline, "prepare", "check") == "unknown"


@pytest.mark.parametrize(("text", "reads", "writes"), [
    # DDL changes what every later reader sees: a write, never only a read
    ("drop table if exists mart.daily cascade;", (), ("mart.daily",)),
    ("DROP TABLE a.x, a.y", (), ("a.x", "a.y")),
    ("ALTER TABLE a.b ADD COLUMN c int", ("a.b",), ("a.b",)),
    ("ALTER TABLE a.b RENAME TO c", ("a.b", "c"), ("a.b", "c")),
    # COPY ... FROM loads the table; COPY ... TO reads it
    ("COPY raw.orders FROM STDIN WITH CSV HEADER", (), ("raw.orders",)),
    ("COPY raw.orders TO STDOUT", ("raw.orders",), ()),
    # a schema or a database holds every table in it
    ("CREATE SCHEMA IF NOT EXISTS staging", (), ("staging.*",)),
    ("DROP SCHEMA staging CASCADE", (), ("staging.*",)),
    ("CREATE DATABASE shop", (), ("*",)),
    # an index holds no rows; building one reads its table
    ("DROP INDEX ix_orders", (), ()),
    ("CREATE INDEX ix ON semantic.events (date)", ("semantic.events",), ()),
    # maintenance changes no rows: it reads what it names, alone or in a script
    ("LOCK TABLE staging.audit_runs IN ACCESS EXCLUSIVE MODE", ("staging.audit_runs",), ()),
    ("VACUUM ANALYZE mart.daily", ("mart.daily",), ()),
    ("LOCK TABLE a IN SHARE MODE; INSERT INTO a SELECT * FROM b", ("a", "b"), ("a",)),
    # a transaction around the statements is still SQL
    ("BEGIN;\nALTER TABLE x_new RENAME TO x;\nCOMMIT;", ("x", "x_new"), ("x", "x_new")),
    ("START TRANSACTION; DELETE FROM t WHERE id = 1; COMMIT;", ("t",), ("t",)),
])
def test_sql_statements_name_the_tables_they_change(text: str, reads: tuple[str, ...],
                                                      writes: tuple[str, ...]) -> None:
    from stagegraph.facts.sql import tables

    got = tables(text)
    assert got is not None and got.parsed
    assert (got.reads, got.writes) == (reads, writes)


@pytest.mark.parametrize(("text", "reads", "writes"), [
    # a `*` the code left for an unknown name is a wildcard table, beside the SQL's own stars
    ("SELECT * from *", ("*",), ()),
    ("SELECT * FROM raw_*", ("raw_*",), ()),
    ("SELECT t.*, COUNT(*) FROM a t JOIN stage.* u ON 1 = 1", ("a", "stage.*"), ()),
    ("SELECT price * 2 FROM sales", ("sales",), ()),
    ("SELECT count(*) FILTER (WHERE x = '*') OVER (PARTITION BY w) AS n FROM events", ("events",), ()),
    ("INSERT INTO * SELECT * FROM a", ("a",), ("*",)),
    # Jinja statements are dropped, so every branch's tables count; expressions are unknown names
    ("CREATE TABLE t_{{ params.p }} AS SELECT * FROM a {% if x %} WHERE id NOT IN (SELECT id FROM b) {% endif %}",
     ("a", "b"), ("t_*",)),
])
def test_unknown_parts_of_sql_are_wildcards_not_parse_failures(text: str, reads: tuple[str, ...],
                                                                writes: tuple[str, ...]) -> None:
    from stagegraph.facts.sql import tables

    got = tables(text)
    assert got is not None and got.parsed
    assert (got.reads, got.writes) == (reads, writes)


@pytest.mark.parametrize(("text", "files", "written"), [
    ("COPY raw.orders FROM '/data/orders.csv' WITH CSV", ("/data/orders.csv",), ()),
    ("COPY mart.daily TO '/exports/daily.csv' (FORMAT csv)", (), ("/exports/daily.csv",)),
    ("COPY (SELECT * FROM a) TO 'out/part_{{ ds }}.parquet' (FORMAT parquet)", (), ("out/part_*.parquet",)),
    ("COPY raw.orders FROM STDIN", (), ()),
])
def test_copy_names_the_file_it_reads_or_writes(text: str, files: tuple[str, ...], written: tuple[str, ...]) -> None:
    from stagegraph.facts.sql import tables

    got = tables(text)
    assert got is not None and (got.files, got.written_files) == (files, written)


def test_a_drop_then_a_copy_into_the_same_table_is_a_real_dependency(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        import psycopg2

        conn = psycopg2.connect("dbname=shop")

        def reset():
            conn.cursor().execute("DROP TABLE IF EXISTS staging.orders")

        def load(fh):
            conn.cursor().copy_expert("COPY staging.orders FROM STDIN WITH CSV", fh)

        def export(fh):
            conn.cursor().copy_expert("COPY public.customers TO STDOUT WITH CSV", fh)

        def main(fh):
            reset()
            load(fh)
            export(fh)
    """)
    assert _kind(pipeline, "reset", "load") == "data"
    assert _kind(pipeline, "load", "export") == "order"  # different tables: coincidental


def test_a_handle_handed_to_a_method_we_do_not_model_is_an_unknown_effect_on_it(tmp_path: Path) -> None:
    # `Base.metadata.create_all(engine)`: the declarative base is a plain value, but what it does with
    # the engine it is given is not modelled, so it may write any table of that database
    pipeline = _pipeline(tmp_path, """
        import sqlalchemy as sa
        from sqlalchemy.orm import declarative_base

        import db

        Base = declarative_base()

        def drop_orders():
            with db.connection_engine().begin() as con:
                con.execute(sa.text("DROP TABLE IF EXISTS orders"))

        def create_models(models_base):
            models_base.metadata.create_all(db.connection_engine())

        def load_orders():
            with db.connection_engine().begin() as con:
                con.execute(sa.text("INSERT INTO orders SELECT * FROM staging_orders"))

        def main():
            drop_orders()
            create_models(Base)
            load_orders()
    """, {"db.py": "import sqlalchemy as sa\n\n\ndef connection_engine():\n"
                   "    return sa.create_engine('postgresql://db/shop')\n"})
    assert _kind(pipeline, "drop_orders", "create_models") == "unknown"
    assert _kind(pipeline, "create_models", "load_orders") == "unknown"
    assert _kind(pipeline, "drop_orders", "load_orders") == "data"


@pytest.mark.parametrize(("change", "kind"), [
    ("", "data"),  # a config dict nobody changes: its entry names the file
    ('CONFIG["list"] = sys.argv[1]', "unknown"),  # ...changed at run time: the entry proves nothing
    ('CONFIG.update(json.load(open("override.json")))', "unknown"),
])
def test_a_module_config_dict_names_a_path_only_while_nothing_changes_it(tmp_path: Path, change: str,
                                                                         kind: str) -> None:
    pipeline = _pipeline(tmp_path, f"""
        import json
        import sys
        import pandas as pd

        CONFIG = {{"list": "raw/list.csv", "other": "raw/other.csv"}}

        def scrape():
            pd.DataFrame().to_csv("./raw/list.csv")

        def clean():
            pd.read_csv(CONFIG["list"]).to_parquet("clean/list.parquet")

        def main():
            {change or "pass"}
            scrape()
            clean()
    """)
    assert _kind(pipeline, "scrape", "clean") == kind


def test_the_folder_of_an_unknown_path_is_unknown_not_the_working_directory(tmp_path: Path) -> None:
    """`os.path.dirname(path)` of a path known only at run time used to be `.`, so every stage that
    created its output folder wrote the same proven file: a false data edge between unrelated stages."""
    pipeline = _pipeline(tmp_path, """
        import os

        def save_a(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)

        def save_b(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)

        def main():
            save_a(os.environ["A"])
            save_b(os.environ["B"])
    """)
    (stage,) = [s for s in pipeline.stages if s.name == "save_a"]
    # making sure a folder exists only reads it, so two stages doing so commute even if it is one folder
    assert [(r.kind, r.of) for r in stage.reads] == [("unknown", "dir")] and stage.writes == ()
    assert _kind(pipeline, "save_a", "save_b") == "order"


def test_airflow_variables_are_keys_of_the_metadata_store(tmp_path: Path) -> None:
    """`Variable.get` reads one key and `Variable.set` writes one, instead of an unknown effect of a
    process library on everything: two reads stay independent, a set then a get of one key is data."""
    pipeline = _pipeline(tmp_path, """
        from airflow.models import Variable

        def read_bucket():
            return Variable.get("bucket")

        def read_bucket_again():
            return Variable.get("bucket", default_var="raw")

        def mark_run():
            Variable.set("last_run", "now")

        def read_mark():
            return Variable.get("last_run")

        def main():
            read_bucket()
            read_bucket_again()
            mark_run()
            read_mark()
    """)
    assert _kind(pipeline, "read_bucket", "read_bucket_again") == "order"
    assert _kind(pipeline, "read_bucket_again", "mark_run") == "order"
    assert _kind(pipeline, "mark_run", "read_mark") == "data"


@pytest.mark.parametrize("text", ["begin to write the report", "analyze the results now", "lock the door please"])
def test_prose_that_starts_like_sql_is_not_a_statement(text: str) -> None:
    from stagegraph.facts.sql import tables

    got = tables(text)
    assert got is None or not (got.parsed and (got.reads or got.writes))


def test_messages_to_a_person_run_no_sql(tmp_path: Path) -> None:
    """`log.info("update the records later")` used to be an unparseable statement, an unknown write of
    every table, ordering the stage with every stage that touches one."""
    pipeline = _pipeline(tmp_path, """
        import logging
        import sqlite3

        from ledger_sdk import LedgerClient

        log = logging.getLogger(__name__)
        ledger = LedgerClient()

        def announce():
            log.info("update the records later")
            log.error("ledger %s is slow", ledger)  # formats the client, never acts through it
            print("delete the temporary files when done")
            raise ValueError("select a day first") if False else None

        def load():
            sqlite3.connect("shop.db").execute("INSERT INTO orders VALUES (1)")

        def main():
            announce()
            load()
    """)
    (stage,) = [s for s in pipeline.stages if s.name == "announce"]
    assert stage.reads == () and stage.writes == ()
    assert _kind(pipeline, "announce", "load") == "order"


def test_a_project_class_extending_a_library_handle_keeps_its_models(tmp_path: Path) -> None:
    """`class WarehouseHook(PostgresHook)`: run() is inherited, so its SQL names tables; a method we can't
    see is an unknown effect on the hook, never no effect."""
    pipeline = _pipeline(tmp_path, """
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        class WarehouseHook(PostgresHook):
            def role(self):
                return "etl"

        def load():
            WarehouseHook(postgres_conn_id="dwh").run("INSERT INTO mart.orders SELECT * FROM staging.orders")

        def sync():
            WarehouseHook(postgres_conn_id="dwh").sync_everything()

        def main():
            load()
            sync()
    """)
    (load,) = [s for s in pipeline.stages if s.name == "load"]
    assert [w.target for w in load.writes] == ["mart.orders"]
    (sync,) = [s for s in pipeline.stages if s.name == "sync"]
    assert [w.kind for w in sync.writes] == ["unknown"]
    assert _kind(pipeline, "load", "sync") == "unknown"


def test_a_task_run_through_delay_brings_its_effects(tmp_path: Path) -> None:
    """`load.delay(day)` runs the task `load`: its file write is the driver stage's, not no effect; a
    signature (`load.s(day)`) runs nothing yet."""
    tasks = """
        from celery import Celery

        app = Celery("etl")

        @app.task
        def load(day):
            with open("/srv/out/day.csv", "w") as fh:
                fh.write(day)
    """
    pipeline = _pipeline(tmp_path, """
        from tasks import load

        def send(day):
            load.delay(day).get()

        def sign(day):
            return load.s(day)

        def report():
            with open("/srv/out/day.csv") as fh:
                return fh.read()

        def main(day):
            send(day)
            sign(day)
            report()
    """, {"tasks.py": textwrap.dedent(tasks)})
    assert _kind(pipeline, "send", "report") == "data"
    assert _kind(pipeline, "sign", "report") in (None, "order")


def test_a_frame_written_without_a_path_is_text_not_a_file(tmp_path: Path) -> None:
    """`df.to_json()` / `df.to_csv()` with no path return the text: no file of a name unknown at run
    time (which would meet every file); the keyword spelling of the path still names the file."""
    pipeline = _pipeline(tmp_path, """
        import pandas as pd

        def api_payload():
            return pd.read_csv("in/a.csv").to_json(orient="records")

        def export():
            pd.read_csv("in/b.csv").to_csv(path_or_buf="out/b.csv")

        def preview():
            return pd.read_csv("out/b.csv").to_csv()

        def main():
            api_payload()
            export()
            preview()
    """)
    assert _kind(pipeline, "api_payload", "export") == "order"
    assert _kind(pipeline, "export", "preview") == "data"


@pytest.mark.parametrize(("text", "reads"), [
    ("SET batch = 500;\nSELECT * FROM brine.customers_temp WHERE n < $batch;", ("brine.customers_temp",)),
    ("SET search_path TO staging; SELECT * FROM orders", ("orders",)),
    ("USE warehouse; SELECT * FROM a", ("a",)),
])
def test_session_settings_before_a_statement_are_still_sql(text: str, reads: tuple[str, ...]) -> None:
    from stagegraph.facts.sql import tables

    got = tables(text)
    assert got is not None and got.parsed and got.reads == reads


def test_a_sql_operators_text_is_sql_whatever_it_looks_like() -> None:
    """A SQL operator's `sql=` that we don't recognise is SQL we could not parse (an unknown write of
    every table), never no effect."""
    from stagegraph.facts.stagefx import sql_effects

    assert sql_effects("!vendor syntax we do not know", "dag.py", 3) == ([], [])
    _reads, writes = sql_effects("!vendor syntax we do not know", "dag.py", 3, certain=True)
    assert [(e.kind, e.of) for e in writes] == [("unknown", "table")]


def test_a_standard_library_object_shared_through_a_module_is_not_proven_apart(tmp_path: Path) -> None:
    """`ready = threading.Event()` in a project module, set by one stage and read by another: its methods
    are not the pure methods of a literal (`CODES.items()`), so the pair is never independent."""
    pipeline = _pipeline(tmp_path, """
        from shared import CODES, ready

        def describe():
            with open("out/codes.txt", "w") as fh:
                fh.write(str(sorted(CODES.items())))

        def count():
            with open("out/count.txt", "w") as fh:
                fh.write(str(len(CODES.keys())))

        def announce():
            ready.clear()

        def wait_for_it():
            return ready.wait(5)

        def main():
            describe()
            count()
            announce()
            wait_for_it()
    """, {"shared.py": "import threading\n\nCODES = {'a': 1}\nready = threading.Event()\n"})
    assert _kind(pipeline, "announce", "wait_for_it") in DEPENDENCY_KINDS
    assert _kind(pipeline, "describe", "count") == "order"


@pytest.mark.parametrize(("subclass", "bound"), [
    ("class LateJob(Job):\n    def retarget(self):\n        self.target = '/srv/out/late.csv'\n", False),
    ("class LateJob(Job):\n    pass\n", True),
])
def test_a_subclass_assigning_the_attribute_keeps_an_inherited_step_unknown(tmp_path: Path, subclass: str,
                                                                            bound: bool) -> None:
    """In `Job.run()` `self` may be a `LateJob`: if one of its methods assigns `self.target`, the class
    value proves nothing; if none does, the inherited `load()` writes Job's file."""
    (tmp_path / "jobs.py").write_text(textwrap.dedent("""
        import pandas as pd


        class Base:
            target = "/srv/out/base.csv"

            def load(self):
                pd.DataFrame().to_csv(self.target)

            def summary(self):
                return pd.read_csv("/srv/in/summary.csv")


        class Job(Base):
            target = "/srv/out/job.csv"

            def run(self):
                self.load()
                self.summary()


    """) + subclass)
    report = analyze([tmp_path], Options())
    (pipeline,) = [p for p in report.pipelines if p.name == "Job.run"]
    written = {(e.kind, e.target) for e in pipeline.stage("load").writes}
    assert (("file", "/srv/out/job.csv") in written) is bound



#: files named through helpers: one return of a value evaluates with the call's arguments bound
HELPERS = """
        import os
        from paths import dated

        OUT = "/data/out"

        def _named(kind, day="latest"):
            return os.path.join(OUT, f"{day}_{kind}.csv")

        def {helper}

        def write_a():
            open(_named("a"), "w").write("x")

        def write_b():
            open({b_path}, "w").write("y")

        def read_a():
            return open(dated("a"), "r").read()

        def main():
            write_a()
            write_b()
            read_a()
    """


@pytest.mark.parametrize(("helper", "b_path", "expected"), [
    # a helper calling a helper with a keyword argument: its own file
    ("b_file():\n            return _named(kind='b')", "b_file()", "order"),
    # a local bound once, then returned
    ("b_file():\n            name = _named('b', day='latest')\n            return name", "b_file()", "order"),
    # two returns: which file is not known, so independence is not proven
    ("b_file(old=True):\n            if old:\n                return '/data/out/latest_a.csv'\n"
     "            return _named('b')", "b_file()", "unknown"),
    # the same file through a helper: a real conflict
    ("b_file():\n            return _named('a')", "b_file()", "data"),
])
def test_a_helper_returning_a_path_names_each_callers_file(tmp_path: Path, helper: str, b_path: str,
                                                           expected: str) -> None:
    code = HELPERS.replace("{helper}", helper).replace("{b_path}", b_path)
    paths = 'import os\n\n\ndef dated(kind):\n    return os.path.join("/data/out", "latest_" + kind + ".csv")\n'
    pipeline = _pipeline(tmp_path, code, {"paths.py": paths})
    assert _kind(pipeline, "write_a", "write_b") == expected
    assert _kind(pipeline, "write_a", "read_a") == "data"  # through a helper imported from another module


@pytest.mark.xfail(strict=True, reason="a driver's inline work is attributed to every stage whose result it "
                   "uses, so two pure helpers called by it both 'write' its output (fixtures/GAPS.md)")
def test_inline_work_on_two_helpers_results_relates_neither_helper() -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "cases" / "path_helpers"
    report = analyze([fixture], Options())
    (merge,) = [p for p in report.pipelines if p.name == "merge"]
    assert _kind(merge, "stats_file", "prices_file") in (None, "order")


@pytest.mark.parametrize("builder", ["oracledb.makedsn('db', 1521, service_name='ORCL')",
                                     "make_dsn(host='db', dbname='shop')"])
def test_building_a_connection_string_touches_no_database(tmp_path: Path, builder: str) -> None:
    """A DSN builder only formats text: a stage that builds one next to a stage writing a table of
    another database is no conflict (before, the builder was an unknown read of every table)."""
    pipeline = _pipeline(tmp_path, f"""
        import sqlite3

        import oracledb
        from psycopg2.extensions import make_dsn

        def describe():
            return {builder}

        def export(rows):
            conn = sqlite3.connect("staging.db")
            conn.execute("INSERT INTO staged (n) VALUES (1)")

        def main(rows):
            export(rows)
            describe()
    """)
    assert _kind(pipeline, "export", "describe") == "order"


#: an ORM row loaded by one stage, then changed or only read; another stage reads the table
LOADED = """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import sessionmaker

        Session = sessionmaker(create_engine("postgresql://db/ops"))

        class Run:
            __tablename__ = "runs"

        def close(pk):
            with Session() as session:
                run = session.query(Run).filter_by(id=pk).first()
                {change}
                session.commit()

        def report(pk):
            with Session() as session:
                return session.get(Run, pk)

        def main(pk):
            close(pk)
            report(pk)
    """


@pytest.mark.parametrize(("change", "expected"), [
    ("run.state = 'closed'", "data"),           # the session writes the change back: an UPDATE of runs
    ("run.retries += 1", "data"),
    ("print(run.state)", "order"),              # only read: two readers of one table commute
])
def test_an_orm_object_changed_after_loading_writes_its_table(tmp_path: Path, change: str, expected: str) -> None:
    pipeline = _pipeline(tmp_path, LOADED.replace("{change}", change))
    assert _kind(pipeline, "close", "report") == expected


def test_methods_of_an_object_a_project_factory_returns_are_that_class_s(tmp_path: Path) -> None:
    """`make_sink().write(rows)`: without the factory's return class the method had no effect at all,
    and the stage reading the file looked free to run first (a closed-world hole)."""
    pipeline = _pipeline(tmp_path, """
        class Sink:
            def write(self, rows):
                open("/srv/out.txt", "w").write(str(rows))

        def make_sink():
            sink = Sink()
            return sink

        def save(rows):
            make_sink().write(rows)

        def show():
            return open("/srv/out.txt").read()

        def main(rows):
            save(rows)
            show()
    """)
    assert _kind(pipeline, "save", "show") == "data"


@pytest.mark.parametrize("use", [
    "SINKS[kind].write(rows)",
    "sink = SINKS.get(kind)\n            sink.write(rows)",
    "for sink in SINKS.values():\n                sink.write(rows)",
])
def test_a_method_of_an_object_kept_in_a_module_registry_is_called(tmp_path: Path, use: str) -> None:
    """`SINKS = {"file": FileSink(), "log": LogSink()}`: the object a stage takes out is any of them, so
    each class's method counts (before, the call resolved to nothing and had no effect: UNSAFE)."""
    pipeline = _pipeline(tmp_path, """
        class FileSink:
            def write(self, rows):
                open("/srv/out.txt", "w").write(str(rows))

        class LogSink:
            def write(self, rows):
                print(rows)

        SINKS = {"file": FileSink(), "log": LogSink()}

        def save(rows, kind):
            {use}

        def show():
            return open("/srv/out.txt").read()

        def main(rows):
            save(rows, "file")
            show()
    """.replace("{use}", use))
    assert _kind(pipeline, "save", "show") == "data"


def test_a_client_s_own_headers_and_cookies_are_configuration(tmp_path: Path) -> None:
    """`s.headers.update(...)` on each task's own session reaches no system: two tasks fetching from
    different hosts stay independent (it was an unknown effect on the session, so on its web API)."""
    pipeline = _pipeline(tmp_path, """
        import requests

        def session_for(token):
            s = requests.Session()
            s.headers.update({"Authorization": token})
            s.cookies.set("lang", "en")
            return s

        def prices():
            s = session_for("a")
            return s.get("https://prices.example.com/v1/all", timeout=10).json()

        def holdings():
            s = requests.Session()
            s.headers.update({"User-Agent": "etl"})
            return s.get("https://funds.example.org/holdings", timeout=10).json()

        def main():
            prices()
            holdings()
    """)
    assert _kind(pipeline, "prices", "holdings") == "order"


@pytest.mark.parametrize("mode", ['"a" if resuming else "w"', "MODE", "choose_mode()"])
def test_a_file_opened_with_a_mode_chosen_at_run_time_may_be_written(tmp_path: Path, mode: str) -> None:
    """`open(out, "a" if resuming else "w")`: the mode is not known, so the file may be written. It was
    neither read nor written, and the stage reading the file after it looked free to run first."""
    pipeline = _pipeline(tmp_path, f"""
        import os

        MODE = os.environ.get("OUT_MODE", "w")

        def choose_mode():
            return "a" if os.path.exists("/data/out.csv") else "w"

        def scrape(resuming):
            out = open("/data/out.csv", {mode})
            out.write("x")

        def clean():
            return open("/data/out.csv").read()

        def main():
            scrape(False)
            clean()
    """)
    assert _kind(pipeline, "scrape", "clean") == "data"


#: helpers that call methods of an object they are handed; only their callers know its class
HANDED_OBJECTS = """
        import json

        class Store:
            def write_a(self, rows):
                with open("/data/a.json", "w") as fh:
                    json.dump(rows, fh)

            def read_b(self):
                with open("/data/b.json") as fh:
                    return json.load(fh)

            def export(self, name, rows=()):
                with open(f"/exports/{name}.json", "w") as fh:
                    json.dump(list(rows), fh)

        def _really_save(store, rows):
            store.write_a(rows)

        def _save(store, rows):
            _really_save(store, rows)

        def _export(store, name):
            store.export(name)

        def sync(rows):
            _save(Store(), rows)

        def report():
            return Store().read_b()

        def publish():
            _export(Store(), name="daily")

        def read_a():
            return open("/data/a.json").read()

        def read_daily():
            return open("/exports/daily.json").read()

        def read_weekly():
            return open("/exports/weekly.json").read()

        def main(rows):
            sync(rows)
            report()
            publish()
            read_a()
            read_daily()
            read_weekly()
    """


@pytest.mark.parametrize(("a", "b", "kind"), [
    # `_save` -> `_really_save` -> `store.write_a(rows)`: resolved at `sync`, which makes the Store
    ("sync", "read_a", "data"),
    ("sync", "report", "free"),
    # the method's parameters are bound to the virtual call's arguments (keyword, default)
    ("publish", "read_daily", "data"),
    ("publish", "read_weekly", "free"),
    ("sync", "publish", "free"),
])
def test_a_method_called_on_a_parameter_is_the_method_of_the_class_the_caller_passes(
        tmp_path: Path, a: str, b: str, kind: str) -> None:
    # before: a method on a parameter that is not a handle had no effect in the helper's summary, so
    # `sync` wrote nothing and `read_a` looked free to run first (UNSAFE). "free": no edge but the
    # call order (only neighbours in the code get one)
    found = _kind(_pipeline(tmp_path, HANDED_OBJECTS), a, b)
    assert (found in {None, "order"}) if kind == "free" else found == kind


def test_a_method_called_on_a_parameter_of_an_unknown_class_keeps_its_stand_in(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, """
        from vendor_sdk import Client

        def _push(client, rows):
            client.push_rows(rows)

        def _pull(client):
            return client.pull_rows()

        def push(rows):
            _push(Client(), rows)

        def pull():
            return _pull(Client())

        def main(rows):
            push(rows)
            pull()
    """)
    assert _kind(pipeline, "push", "pull") == "unknown"


def test_a_recursive_helper_calling_a_method_on_its_parameter_settles(tmp_path: Path) -> None:
    # `_walk(client, join(path, name))` builds a new argument value each round of the fixed point;
    # the carried virtual call must settle, not fall back to "a recursive call cycle that did not settle"
    pipeline = _pipeline(tmp_path, """
        import os

        def _walk(client, path):
            for name in client.listdir(path):
                yield from _walk(client, os.path.join(path, name))

        def list_remote(client):
            return list(_walk(client, "/inbox"))

        def write_local(rows):
            open("/tmp/out.txt", "w").write(str(rows))

        def main(client, rows):
            list_remote(client)
            write_local(rows)
    """)
    effects = [e.target for s in pipeline.stages for e in (*s.reads, *s.writes)]
    assert not [t for t in effects if "did not settle" in t]
    assert _kind(pipeline, "list_remote", "write_local") in {None, "order"}


def test_a_handle_parameter_passed_into_unmodelled_code_is_an_unknown_effect_on_it(tmp_path: Path) -> None:
    # `ensure(engine)` hands its parameter to code we can't see: if the caller passes a handle, the
    # call may read or write through it. Before, only a handle the function made itself counted.
    pipeline = _pipeline(tmp_path, """
        import sqlalchemy as sa

        ENGINE = sa.create_engine("postgresql://db/shop")
        meta = sa.MetaData()

        def ensure(engine):
            meta.create_all(engine)

        def create_schema():
            ensure(ENGINE)

        def read_orders():
            with ENGINE.connect() as conn:
                return conn.execute(sa.text("SELECT * FROM orders")).all()

        def main():
            create_schema()
            read_orders()
    """)
    assert _kind(pipeline, "create_schema", "read_orders") == "unknown"


def test_a_secret_read_is_a_key_of_its_own_store(tmp_path: Path) -> None:
    # `get_secret_value` reads a secret; before, it was an unknown read of the AWS client's files,
    # which met any object written through another client (here: an S3 upload)
    pipeline = _pipeline(tmp_path, """
        import os
        import boto3

        def token():
            client = boto3.client("secretsmanager")
            return client.get_secret_value(SecretId=os.environ["SECRET"])["SecretString"]

        def publish(rows):
            boto3.client("s3").put_object(Bucket="exports", Key="items.json", Body=str(rows))

        def rotate():
            boto3.client("secretsmanager").put_secret_value(SecretId="app/token", SecretString="x")

        def main(rows):
            token()
            publish(rows)
            rotate()
    """)
    assert _kind(pipeline, "token", "publish") in {None, "order"}
    assert _kind(pipeline, "publish", "rotate") in {None, "order"}
    # an unknown secret id may be the one rotated: not proven apart
    assert _kind(pipeline, "token", "rotate") == "unknown"


def test_a_function_that_cannot_be_traced_may_touch_anything(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash tracing one function is a diagnostic naming it, and its stages' edges are unknown: the
    function is not taken for one that touches nothing (which would make its stage free to move)."""
    from stagegraph.facts import effects

    real = effects._Function.run

    def flaky(self: effects._Function) -> effects.Summary:
        if self.fn.name == "load":
            raise KeyError("boom")
        return real(self)

    monkeypatch.setattr(effects._Function, "run", flaky)
    (tmp_path / "pipeline.py").write_text(textwrap.dedent("""
        import pandas as pd

        def extract():
            pd.read_csv("/srv/in.csv").to_parquet("/srv/stage.parquet")

        def load():
            pd.read_parquet("/srv/stage.parquet").to_sql("orders", "sqlite:///x.db")

        def main():
            extract()
            load()
    """))
    report = analyze([tmp_path], Options(jobs=1))
    (pipeline,) = [p for p in report.pipelines if p.name == "main"]
    assert _kind(pipeline, "extract", "load") == "unknown"
    assert [(d.kind, d.message) for d in report.diagnostics] == [
        ("internal-error", "could not trace effects of load: KeyError('boom')")]


@pytest.mark.parametrize(("made", "shared"), [
    ("f'/srv/tmp/{uuid.uuid4().hex}.csv'", False),
    ("os.path.join('/srv/tmp', next(tempfile._get_candidate_names()))", False),
    ("tempfile.NamedTemporaryFile(dir='/srv/tmp').name", False),
    ("TMP", True),  # a module constant: one name, made once, for every step
])
def test_a_name_each_step_makes_fresh_never_meets_another_steps(tmp_path: Path, made: str, shared: bool) -> None:
    code = f"""
        import os, tempfile, uuid
        import pandas as pd

        TMP = f"/srv/tmp/{{uuid.uuid4()}}.csv"

        def first(df):
            path = {made}
            df.to_csv(path)
            os.rename(path, "/srv/out/first.csv")

        def second(df):
            path = {made}
            df.to_csv(path)
            os.rename(path, "/srv/out/second.csv")

        def main(df):
            first(df)
            second(df)
    """
    pipeline = _pipeline(tmp_path, code)
    assert (_kind(pipeline, "first", "second") in DEPENDENCY_KINDS) is shared, pipeline.edges


@pytest.mark.parametrize("bases", ["", "(object)", "(dict)"])
def test_a_class_extending_a_builtin_is_our_own_class_not_a_library_handle(tmp_path: Path, bases: str) -> None:
    """`class Client(object)` made in a stage and handed to its helper: its methods are resolved there
    (the wait without a timeout inside `run_job` reaches the stage), not taken for a library object."""
    code = f"""
        class Client{bases}:
            def run_job(self, sql):
                job = self.submit(sql)
                return job.result()

            def submit(self, sql):
                return sql

        def import_dates(client):
            client.run_job("SELECT 1")

        def init_db():
            client = Client()
            import_dates(client)

        def report(rows):
            print(rows)

        def main():
            init_db()
            report([])
    """
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(code))
    report = analyze([tmp_path], Options())
    assert [(f.rule, f.stages) for f in report.findings if f.rule == "missing-timeout"] == [
        ("missing-timeout", ("init_db",))]


SFTP = """
        import paramiko
        import pandas as pd
        import requests

        WEBHOOK = load_setting("webhook")

        class Remote:
            def connect(self):
                client = paramiko.SSHClient()
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
                client.connect("sftp.example.com", timeout=30)
                return client.open_sftp()

        REMOTE = Remote()

        def fetch_orders():
            with REMOTE.connect() as sftp:
                sftp.get("/outgoing/orders.csv", "/srv/in/orders.csv")

        def fetch_stock():
            with REMOTE.connect() as sftp:
                sftp.get("/outgoing/stock.csv", "/srv/in/stock.csv")

        def load_orders():
            pd.read_csv("/srv/in/orders.csv").to_parquet("/srv/stage/orders.parquet")

        def notify():
            requests.post(WEBHOOK, json={"done": True}, timeout=10)

        def archive():
            with REMOTE.connect() as sftp:
                sftp.rename("/outgoing/orders.csv", "/archive/orders.csv")

        def main():
            fetch_orders()
            fetch_stock()
            load_orders()
            notify()
            archive()
    """


@pytest.mark.parametrize(("a", "b", "related"), [
    ("fetch_orders", "load_orders", True),   # `get` writes the local copy the next step reads
    ("fetch_orders", "fetch_stock", False),  # two remote files, two local files
    ("fetch_orders", "archive", True),       # the remote file is moved away after it was read
    ("fetch_stock", "archive", False),
    ("fetch_stock", "notify", False),        # a URL built at run time is a URL, never an SFTP path
])
def test_sftp_files_are_keys_of_the_server_and_get_writes_the_local_copy(tmp_path: Path, a: str, b: str,
                                                                         related: bool) -> None:
    pipeline = _pipeline(tmp_path, SFTP)
    assert (_kind(pipeline, a, b) in DEPENDENCY_KINDS) is related, pipeline.edges


def test_catalog_also_entries_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[method]]\ntype = "x.Client"\nnames = ["get"]\neffect = "read"\ntarget = "key:0"\n'
                   'also = ["scribble file:1"]\n')
    with pytest.raises(CatalogError, match="unknown effect 'scribble'"):
        catalog._load_resources((bad,))
