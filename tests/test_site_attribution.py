"""Where a code site's one finding goes when several pipelines reach it (checks.one_per_site)."""

from __future__ import annotations

from pathlib import Path

from stagegraph import engine

HELPER = '''\
import json


def read_rows(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except Exception:
        return []
'''

PIPELINE = '''\
from etl.helpers import read_rows


def extract():
    return read_rows("/data/in.json")


def load(rows):
    with open("/data/out.json", "w") as fh:
        fh.write(str(rows))


def main():
    load(extract())
'''

#: a test that drives the helper from three steps: more stages name the site than in the real pipeline
TEST = '''\
from etl.helpers import read_rows


def first():
    return read_rows("a.json")


def second():
    return read_rows("b.json")


def third():
    return read_rows("c.json")


def test_reads():
    a = first()
    b = second()
    c = third()
    assert a == b == c
'''


def _swallowed(tmp_path: Path, test_path: str) -> list[str | None]:
    root = tmp_path / "repo"
    for rel, text in {"etl/__init__.py": "", "etl/helpers.py": HELPER, "etl/pipeline.py": PIPELINE,
                      test_path: TEST}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    report = engine.analyze([root])
    return [f.pipeline for f in report.findings if f.rule == "swallowed-exception"]


def test_a_site_reached_by_a_test_and_by_a_pipeline_is_the_pipelines_finding(tmp_path: Path) -> None:
    assert _swallowed(tmp_path, "tests/test_helpers.py") == ["etl/pipeline.py::main"]


def test_without_a_test_suite_the_site_goes_to_the_pipeline_naming_most_stages(tmp_path: Path) -> None:
    """The same three-step driver outside a test folder is a pipeline like any other, and names more stages."""
    assert _swallowed(tmp_path, "etl/replay.py") == ["etl/replay.py::test_reads"]


SUBFLOWS = '''\
import requests
from prefect import flow, task


@task
def list_funds():
    return requests.get("https://api.example.com/funds").json()


@task
def store(rows):
    with open("/data/funds.json", "w") as fh:
        fh.write(str(rows))


@flow
def scraping_round():
    store(list_funds())


@flow
def daily_cycle():
    scraping_round()
    scraping_round()
'''


def test_a_subflow_keeps_its_own_tasks_finding_over_the_outer_flows_view(tmp_path: Path) -> None:
    """The outer flow reaches the site only through its subflow stage, the subflow through its task:
    the finding names the task (`list_funds` in `scraping_round`), not the subflow call. The task's body
    read as a plain driver is no subflow, so the finding does not move into it either."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "flows.py").write_text(SUBFLOWS)
    report = engine.analyze([root])
    names = {p.id: {s.id: s.name for s in p.stages} for p in report.pipelines}
    found = [(f.pipeline, [names[f.pipeline or ""].get(s, s) for s in f.stages])
             for f in report.findings if f.rule == "missing-timeout"]
    assert found == [("flows.py::scraping_round", ["list_funds"])]
