"""Engine regressions: effect tracing and graph building on small programs and hand-built facts.

Each test pins a behaviour found on real repositories or by the labelled cases, with the
reason in its docstring; the sound direction (a missed dependency) is the one that matters most.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import networkx as nx

from stagegraph import graph
from stagegraph.engine import analyze
from stagegraph.model import DEPENDENCY_KINDS, Effect, Link, Pipeline, PipelineFacts, Report, Stage


def run(tmp_path: Path, files: dict[str, str]) -> Report:
    for name, code in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))
    return analyze([tmp_path])


def pipeline(report: Report, name: str) -> Pipeline:
    return next(p for p in report.pipelines if p.name == name)


def edge_kinds(p: Pipeline) -> dict[tuple[str, str], str]:
    return {(e.source, e.target): e.kind for e in p.edges}


def depends(p: Pipeline, a: str, b: str) -> bool:
    real = nx.DiGraph((e.source, e.target) for e in p.edges if e.kind in DEPENDENCY_KINDS)
    return real.has_node(a) and real.has_node(b) and (nx.has_path(real, a, b) or nx.has_path(real, b, a))


def test_recursive_and_mutually_recursive_functions_compose(tmp_path: Path) -> None:
    """A self-recursive callee once crashed composition ('Set changed size during iteration') and lost every summary."""
    report = run(tmp_path, {"job.py": """
        def walk(node, out):
            out.append(node)
            for child in node.children:
                walk(child, out)
        def even(n, acc):
            acc.add(n)
            return odd(n - 1, acc) if n else acc
        def odd(n, acc):
            return even(n - 1, acc)
        def report(items):
            return len(items)
        def main(tree):
            items = []
            seen = set()
            walk(tree, items)
            even(4, seen)
            report(items)
    """})
    assert not [d for d in report.diagnostics if d.kind == "internal-error"]
    p = pipeline(report, "main")
    assert depends(p, "walk", "report")  # walk fills items through recursion
    assert not depends(p, "even", "report")


def test_paths_through_parameters_are_filled_in_per_call(tmp_path: Path) -> None:
    """`def read(path): pd.read_csv(path)` called with two constants reads two known files, not 'some file'."""
    report = run(tmp_path, {"job.py": """
        import os
        import pandas as pd
        DATA = "/data"
        def read(path):
            return pd.read_csv(path)
        def write_raw():
            with open(os.path.join(DATA, "raw.csv"), "w") as fh:
                fh.write("x")
        def main():
            write_raw()
            a = read(os.path.join(DATA, "raw.csv"))
            b = read(f"{DATA}/other.csv")
    """})
    p = pipeline(report, "main")
    assert edge_kinds(p)[("write_raw", "read")] == "data"
    assert not depends(p, "write_raw", "read#2")
    assert {e.target for e in p.stage("read#2").reads if e.kind == "file"} == {"/data/other.csv"}


def test_an_unknown_write_conflicts_with_an_unknown_read(tmp_path: Path) -> None:
    """Was UNSAFE: two unknown paths were only linked when both were writes."""
    report = run(tmp_path, {"job.py": """
        import os
        def produce():
            with open(os.environ["OUT"], "w") as fh:
                fh.write("x")
        def consume():
            with open(os.environ["IN"]) as fh:
                return fh.read()
        def main():
            produce()
            consume()
    """})
    assert edge_kinds(pipeline(report, "main"))[("produce", "consume")] == "unknown"


def test_an_unmodelled_library_may_mutate_what_it_is_given(tmp_path: Path) -> None:
    """Was UNSAFE: rows handed to a third-party module we have no model of must be assumed changed."""
    report = run(tmp_path, {"job.py": """
        import vendor_scrubber
        import json
        def extract():
            return [1, 2]
        def scrub(rows):
            vendor_scrubber.scrub_in_place(rows)
        def log(rows):
            json.dumps(rows)
        def export(rows):
            return list(rows)
        def main():
            rows = extract()
            scrub(rows)
            log(rows)
            export(rows)
    """})
    kinds = edge_kinds(pipeline(report, "main"))
    assert kinds[("scrub", "export")] == "unknown"
    assert kinds.get(("log", "export")) == "order"  # json is stdlib: reading rows is not writing them


def test_methods_of_instances_contribute_their_effects(tmp_path: Path) -> None:
    """Was UNSAFE: `Loader(...).load(rows)` and `loader = Loader(); loader.load(rows)` had no effects."""
    report = run(tmp_path, {"job.py": """
        class Loader:
            def load(self, rows):
                with open("/out/rows.txt", "w") as fh:
                    fh.write(str(rows))
        def load_all(rows):
            Loader().load(rows)
        def read_back():
            with open("/out/rows.txt") as fh:
                return fh.read()
        def main():
            load_all([1])
            read_back()
    """})
    assert edge_kinds(pipeline(report, "main"))[("load_all", "read_back")] == "data"


def test_a_global_rebound_with_global_is_state_whatever_its_first_value(tmp_path: Path) -> None:
    """Was UNSAFE: `RUN_ID = None` looked like a constant, so reading it was not an effect."""
    report = run(tmp_path, {"job.py": """
        RUN_ID = None
        def start():
            global RUN_ID
            RUN_ID = 7
        def stamp():
            return RUN_ID
        def main():
            start()
            stamp()
    """})
    p = pipeline(report, "main")
    assert edge_kinds(p)[("start", "stamp")] == "data"
    assert any(f.rule == "hidden-state-dependency" for f in report.findings)


def _stage(sid: str, reads: tuple[Effect, ...] = (), writes: tuple[Effect, ...] = ()) -> Stage:
    return Stage(sid, sid, "etl.py", 1, reads=reads, writes=writes)


def _file(target: str) -> Effect:
    return Effect("file", target, key=target)


def test_wildcards_are_dependencies_but_never_proof() -> None:
    """Same concrete file: data. Same or overlapping pattern: unknown. A bare `*` names nothing certain."""
    cases = {
        ("/data/a.csv", "/data/a.csv"): "data",
        ("/data/stock/*.json", "/data/stock/*.json"): "unknown",
        ("/tmp/*", "/tmp/x.txt"): "unknown",
        ("*", "*"): "unknown",
        ("/data/a.csv", "/data/b.csv"): None,
    }
    for (written, read), expected in cases.items():
        facts = PipelineFacts("p", "p", "plain", "etl.py", 1,
                              (_stage("w", writes=(_file(written),)), _stage("r", reads=(_file(read),))))
        assert edge_kinds(graph.build(facts)).get(("w", "r")) == expected, (written, read)


def test_edges_stay_acyclic_when_data_flows_against_source_order() -> None:
    """Undeclared pairs are oriented by the declared order's linear extension, so reachability stays a DAG."""
    x = _file("/x")
    stages = (_stage("a", reads=(x,)), _stage("b", writes=(x,)), _stage("c", writes=(x,), reads=(x,)))
    facts = PipelineFacts("p", "p", "airflow", "dag.py", 1, stages, declared=(Link("c", "a", "order"),))
    built = graph.build(facts)
    real = nx.DiGraph((e.source, e.target) for e in built.edges if e.kind in DEPENDENCY_KINDS)
    assert nx.is_directed_acyclic_graph(real)
    assert depends(built, "a", "b") and depends(built, "b", "c")


def test_implied_unknown_edges_are_dropped_without_losing_an_ordering() -> None:
    """One unknown write links every pair: keep only the unknown edges no other path implies."""
    anything = Effect("unknown", "path built at run time", of="file")
    stages = tuple(_stage(f"s{i}", reads=(anything,), writes=(anything,)) for i in range(8))
    built = graph.build(PipelineFacts("p", "p", "plain", "etl.py", 1, stages))
    assert len(built.edges) == 7  # a chain, not 28 edges
    for i in range(8):
        for j in range(i + 1, 8):
            assert depends(built, f"s{i}", f"s{j}")


def test_parallel_groups_are_steps_that_keep_stages_with_slack() -> None:
    """x has slack over the whole schedule: it appears in every step, so contention with it is never missed."""
    t = _file("/t")
    stages = (_stage("x"), _stage("p", writes=(t,)), _stage("q", reads=(t,), writes=(_file("/u"),)),
              _stage("r", reads=(_file("/u"),)))
    built = graph.build(PipelineFacts("p", "p", "plain", "etl.py", 1, stages))
    assert [g.stages for g in built.parallel_groups] == [("x", "p"), ("x", "q"), ("x", "r")]


def test_luigi_unresolved_requirement_stays_within_its_package(tmp_path: Path) -> None:
    """An unresolvable requires() once took in every root task of the repository (353-stage pipelines)."""
    task = """
        import luigi
        class {name}(luigi.Task):
            def output(self):
                return luigi.LocalTarget("/data/{name}.txt")
            def run(self):
                with self.output().open("w") as fh:
                    fh.write("x")
    """
    report = run(tmp_path, {
        "jobs/registry.py": """
            import luigi
            from jobs.tasks import Alpha
            class Driver(luigi.Task):
                kind = luigi.Parameter()
                def requires(self):
                    return REGISTRY[self.kind]()
                def run(self):
                    pass
            REGISTRY = {}
        """,
        "jobs/tasks.py": task.format(name="Alpha"),
        "other/unrelated.py": task.format(name="Omega"),
    })
    driver = pipeline(report, "Driver")
    assert "Alpha" in {s.name for s in driver.stages}
    assert "Omega" not in {s.name for s in driver.stages}
    assert any(d.kind == "unresolved" for d in report.diagnostics)


def test_fast_positions_agree_with_libcst_position_provider() -> None:
    """`start_positions` replaces PositionProvider (4x faster); it must agree on every node of every fixture."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    from stagegraph.facts.tree import start_positions

    root = Path(__file__).resolve().parents[1]
    checked = 0
    for path in sorted((root / "fixtures").rglob("*.py")) + sorted((root / "analyzer").rglob("*.py")):
        try:
            module = cst.parse_module(path.read_bytes())
        except (cst.ParserSyntaxError, SyntaxError, UnicodeDecodeError, RecursionError):
            continue
        expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        got = start_positions(module)
        for node, where in expected.items():
            assert got.get(node) == (where.start.line, where.start.column), (path, type(node).__name__)
        checked += len(expected)
    assert checked > 10_000


def test_reports_do_not_depend_on_hash_seeds(tmp_path: Path) -> None:
    """Which of two equal effects' locations is reported once depended on set order (PYTHONHASHSEED)."""
    import os
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_etl"
    outputs = set()
    for seed in ("1", "2", "3"):
        proc = subprocess.run(
            [sys.executable, "-m", "stagegraph", "audit", str(example), "--format", "json"],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=False,
        )
        assert proc.returncode in (0, 1), proc.stderr
        outputs.add(proc.stdout)
    assert len(outputs) == 1


def test_elements_reached_through_sorted_or_list_are_the_callers(tmp_path: Path) -> None:
    """Was UNSAFE: `for o in sorted(orders): o["x"] = ...` mutates the caller's rows, not a fresh copy."""
    report = run(tmp_path, {"job.py": """
        def stamp(orders):
            for order in sorted(orders, key=lambda o: o["ts"]):
                order["seq"] = 1
        def flag(orders):
            for order in list(orders):
                order["flag"] = True
        def export(orders):
            return [o["seq"] for o in orders]
        def main(orders):
            stamp(orders)
            flag(orders)
            export(orders)
    """})
    kinds = edge_kinds(pipeline(report, "main"))
    assert kinds[("stamp", "export")] == "data"
    assert kinds[("flag", "export")] == "data"


def test_asyncio_gather_is_an_existing_fan_out_and_unpacks_per_result(tmp_path: Path) -> None:
    """`a, b = await gather(x(), y())`: x and y already run together; a holds only x's result."""
    report = run(tmp_path, {"job.py": """
        import asyncio
        async def fetch_users():
            return []
        async def fetch_orders():
            return []
        async def enrich(user):
            return user
        async def join(users, orders):
            return users + orders
        async def main():
            users, orders = await asyncio.gather(fetch_users(), fetch_orders())
            enriched = await asyncio.gather(*(enrich(u) for u in users))
            return await join(enriched, orders)
    """})
    p = pipeline(report, "main")
    kinds = edge_kinds(p)
    assert ("fetch_users", "fetch_orders") not in kinds  # not even "coincidental": they already run together
    assert kinds[("fetch_users", "enrich")] == "data"
    assert not depends(p, "fetch_orders", "enrich")  # enrich may start before fetch_orders ends
    assert {s.id: s.fanout.mechanism for s in p.stages if s.fanout} == {
        "fetch_users": "gather", "fetch_orders": "gather", "enrich": "gather"}
    fanout = [f for f in report.findings if f.rule == "unbounded-fanout"]
    assert [f.stages for f in fanout] == [("enrich",)]


def test_steps_listed_in_a_loop_are_stages_linked_by_unknown_edges(tmp_path: Path) -> None:
    """`for step in STEPS: data = step(data)` runs each listed function: stages, never called independent."""
    report = run(tmp_path, {"job.py": """
        def clean(rows):
            return rows
        def enrich(rows):
            return rows
        def load(rows):
            print(rows)
        STEPS = (clean, enrich)
        def main(data):
            for step in STEPS:
                data = step(data)
            for step in [load]:
                step(data)
    """})
    p = pipeline(report, "main")
    assert [s.id for s in p.stages] == ["clean", "enrich", "load"]
    assert edge_kinds(p)[("clean", "enrich")] == "unknown"
    assert depends(p, "clean", "load") and depends(p, "enrich", "load")


def test_values_carried_out_of_a_loop_keep_their_producer(tmp_path: Path) -> None:
    """Was UNSAFE: the loop body's second walk bound `acc` to objects no recorded stage writes."""
    report = run(tmp_path, {"job.py": """
        def step(acc, x):
            return acc + [x]
        def final(acc):
            print(acc)
        def main(items):
            acc = []
            for x in items:
                acc = step(acc, x)
            final(acc)
    """})
    assert edge_kinds(pipeline(report, "main"))[("step", "final")] == "data"


def test_values_stored_in_driver_containers_and_self_attributes_keep_their_producer(tmp_path: Path) -> None:
    """Was UNSAFE: `results["a"] = extract(); load(results["a"])` and `self.rows = self.fetch()` lost the edge."""
    report = run(tmp_path, {"job.py": """
        def extract():
            return [1]
        def other():
            return [2]
        def load(rows):
            print(rows)
        def main():
            results = {}
            results["a"] = extract()
            batch = []
            batch.append(other())
            load(results["a"])
            load(batch)
        class Job:
            def fetch(self):
                return [1]
            def clean(self):
                return [x for x in self.rows if x]
            def store(self, rows):
                print(rows)
            def run(self):
                self.rows = self.fetch()
                self.clean()
                self.store(self.rows)
    """})
    plain = edge_kinds(pipeline(report, "main"))
    assert plain[("extract", "load")] == "data" and plain[("other", "load#2")] == "data"
    job = edge_kinds(pipeline(report, "Job.run"))
    assert job[("fetch", "clean")] == "data" and job[("fetch", "store")] == "data"
    assert not [f for f in report.findings if f.rule == "hidden-state-dependency"]  # the driver hands it over


def test_driver_io_on_a_stage_result_orders_that_stage_before_readers(tmp_path: Path) -> None:
    """Was UNSAFE: `df = fetch(); df.to_csv(OUT); load_from(OUT)` - the driver's own write hands fetch's data over."""
    report = run(tmp_path, {"job.py": """
        import pandas as pd
        OUT = "/data/orders.csv"
        def fetch():
            return pd.DataFrame()
        def load_from(path):
            return pd.read_csv(path)
        def unrelated():
            return pd.read_csv("/data/other.csv")
        def main():
            df = fetch()
            df.to_csv(OUT)
            load_from(OUT)
            unrelated()
    """})
    kinds = edge_kinds(pipeline(report, "main"))
    assert kinds[("fetch", "load_from")] == "data"
    assert kinds.get(("load_from", "unrelated")) == "order"


def test_driver_writes_through_an_opened_handle_order_the_producer_first(tmp_path: Path) -> None:
    """`with open(OUT, "w") as fh: json.dump(rows, fh)` in a driver hands the producing stage's rows over."""
    report = run(tmp_path, {"job.py": """
        import json
        OUT = "/data/rows.json"
        def fetch():
            return [1]
        def other():
            return [2]
        def read_back():
            with open(OUT) as fh:
                return json.load(fh)
        def main():
            rows = fetch()
            extra = other()
            with open(OUT, "w") as fh:
                json.dump(rows, fh)
            read_back()
    """})
    kinds = edge_kinds(pipeline(report, "main"))
    assert kinds[("fetch", "read_back")] == "data"
    assert kinds.get(("other", "read_back")) == "order"  # other's data is not what was written


def test_a_function_called_twice_is_two_stages_named_apart(tmp_path: Path) -> None:
    """The second call of a step is `upload#2`, in its name as in its id (the name is what reports,
    diagrams and labels show); a loop walked twice to bind carried values never counts its calls again."""
    report = run(tmp_path, {"etl.py": """
import shutil

def upload(src, dst):
    shutil.copy(src, dst)

def build(files):
    return sorted(files)

def main(files):
    files = build(files)
    for f in files:
        upload(f, "/srv/public/" + f)
    for f in files:
        upload(f, "/srv/private/" + f)
    upload("index.html", "/srv/public/index.html")
"""})
    (pipeline,) = [p for p in report.pipelines if p.name == "main"]
    assert [(s.name, s.id.rsplit("::", 1)[-1]) for s in pipeline.stages] == [
        ("build", "build"), ("upload", "upload"), ("upload#2", "upload#2"), ("upload#3", "upload#3")]
