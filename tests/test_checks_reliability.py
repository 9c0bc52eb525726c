"""Checks about failures and records: swallowed-exception, order-dependent-state, non-idempotent-retry."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

from pipeline_builders import hits, pipeline, signal, stage, stage_sets

from stagegraph.engine import Options, analyze
from stagegraph.model import BROAD_EXCEPT_SWALLOW, ORDER_DEPENDENT_STATE, RETRY_NONIDEMPOTENT, FanOut

BRANCH = FanOut("executor", "pool.submit", 10, capped=True)


def test_except_pass_in_a_stage_fires_on_the_handler_line() -> None:
    s = stage("send", 52, signals=[signal(BROAD_EXCEPT_SWALLOW, 43, "except Exception: pass")])
    (hit,) = hits("swallowed-exception", pipeline([s]))
    assert (hit.stages, hit.line) == (("send",), 43)
    assert "except Exception: pass" in hit.message


def test_logged_only_counts_in_a_fanout_branch() -> None:
    logged = signal(BROAD_EXCEPT_SWALLOW, 20, "except Exception: logged only")
    (hit,) = hits("swallowed-exception", pipeline([stage("worker", 10, signals=[logged], fanout=BRANCH)]))
    assert hit.stages == ("worker",) and hit.message.startswith("fan-out branch `worker`")


def test_logged_only_in_a_sequential_stage_counts_too() -> None:
    """The field corpus: log-and-go-on in a batch stage loses the data while the run reports success."""
    logged = signal(BROAD_EXCEPT_SWALLOW, 20, "except Exception: logged only")
    (hit,) = hits("swallowed-exception", pipeline([stage("load", 10, signals=[logged])]))
    assert hit.stages == ("load",) and not hit.message.startswith("fan-out branch")


def test_reraise_after_logging_produces_no_signal_and_no_finding() -> None:
    assert stage_sets("swallowed-exception", pipeline([stage("load", 10)])) == []


def test_order_dependent_state_fires_per_stage() -> None:
    s = stage("add_balances", 5, signals=[signal(ORDER_DEPENDENT_STATE, 8, "running value `balance`")])
    (hit,) = hits("order-dependent-state", pipeline([s]))
    assert hit.stages == ("add_balances",) and "running value `balance`" in hit.message


def test_non_idempotent_retry_fires_in_stage_and_driver() -> None:
    s = stage("create_invoices", 5, signals=[signal(RETRY_NONIDEMPOTENT, 9, "@tenacity.retry around an HTTP POST")])
    driver = signal(RETRY_NONIDEMPOTENT, 30, "retry loop around a queue publish")
    found = sorted((h.stages, h.line) for h in hits("non-idempotent-retry", pipeline([s], signals=[driver])))
    assert found == [((), 30), (("create_invoices",), 9)]


def test_other_signals_do_not_leak_into_these_rules() -> None:
    s = stage("x", 1, signals=[signal("executor-capped", 2, "ThreadPoolExecutor() with max_workers=4")])
    for rule in ("swallowed-exception", "order-dependent-state", "non-idempotent-retry"):
        assert stage_sets(rule, pipeline([s])) == []


def test_a_helper_several_stages_share_is_one_cause() -> None:
    shared = signal(BROAD_EXCEPT_SWALLOW, 40, "except Exception: return a default", file="lib/sql.py")
    own = signal(BROAD_EXCEPT_SWALLOW, 12, "except Exception: pass")
    p = pipeline([stage("create_tables", 5, signals=[shared]), stage("bulk_load", 6, signals=[shared, own])])
    assert sorted((h.stages, h.file, h.line) for h in hits("swallowed-exception", p)) == [
        (("bulk_load",), "etl.py", 12),
        (("create_tables", "bulk_load"), "lib/sql.py", 40),
    ]


def test_a_shared_handler_that_only_logs_is_one_finding_naming_the_branch() -> None:
    logged = signal(BROAD_EXCEPT_SWALLOW, 20, "except Exception: logged only")
    p = pipeline([stage("load", 10, signals=[logged]), stage("worker", 11, signals=[logged], fanout=BRANCH)])
    (hit,) = hits("swallowed-exception", p)
    assert hit.stages == ("load", "worker") and hit.message.startswith("fan-out branch `worker`")


def test_shared_retry_and_state_sites_are_one_finding_each() -> None:
    retry = signal(RETRY_NONIDEMPOTENT, 9, "@tenacity.retry around an HTTP POST")
    state = signal(ORDER_DEPENDENT_STATE, 30, "running value `n`")
    p = pipeline([stage("a", 1, signals=[retry, state]), stage("b", 2, signals=[retry, state])])
    assert stage_sets("non-idempotent-retry", p) == [("a", "b")]
    assert stage_sets("order-dependent-state", p) == [("a", "b")]


def test_a_stage_called_twice_is_named_once() -> None:
    shared = signal(BROAD_EXCEPT_SWALLOW, 40, "except Exception: pass")
    p = pipeline([stage("upload_file", 5, signals=[shared]), stage("upload_file#2", 6, signals=[shared])])
    p = replace(p, stages=tuple(replace(s, name="upload_file") for s in p.stages))
    (hit,) = hits("swallowed-exception", p)
    assert hit.message.startswith("`upload_file` swallows") and hit.stages == ("upload_file", "upload_file#2")


def test_a_site_reached_from_several_pipelines_is_one_finding(tmp_path: Path) -> None:
    """A class pipeline nested in a driver reaches its helper's except clause from both pipelines (and
    from each method that calls two of its own): one cause, reported once, naming the most stages."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent("""
        class Engine:
            def create_tables(self):
                self._execute(["CREATE TABLE a (x int)"])
                self._log("created")

            def add_indices(self):
                self._execute(["CREATE INDEX i ON a (x)"])

            def _log(self, text):
                print(text)

            def _execute(self, commands):
                for command in commands:
                    try:
                        self.conn.cursor().execute(command)
                    except Exception as error:
                        print(error)

            def run(self):
                self.create_tables()
                self.add_indices()


        def publish():
            print("done")


        def main():
            Engine().run()
            publish()
    """))
    report = analyze([tmp_path], Options())
    assert len(report.pipelines) >= 3  # main, Engine.run and Engine.create_tables all reach the clause
    (finding,) = [f for f in report.findings if f.rule == "swallowed-exception"]
    assert finding.pipeline is not None and finding.pipeline.endswith("Engine.run")
    assert finding.line == 17 and len(finding.stages) == 2


def test_a_loop_carrying_state_reached_from_several_pipelines_is_one_finding(tmp_path: Path) -> None:
    """The same loop reached from a driver and from the class pipeline it runs is one cause."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent("""
        class Numbering:
            def load(self):
                self.rows = [{"id": 1}, {"id": 2}]

            def number(self):
                seq = 0
                for row in self.rows:
                    seq += 1
                    row["seq"] = seq

            def run(self):
                self.load()
                self.number()


        def publish():
            print("done")


        def main():
            Numbering().run()
            publish()
    """))
    report = analyze([tmp_path], Options())
    assert len(report.pipelines) >= 2
    assert len([f for f in report.findings if f.rule == "order-dependent-state"]) == 1
