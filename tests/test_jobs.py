"""`--jobs N`: the same report whatever N is, and a worker that dies costs only its styles."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stagegraph import facts
from stagegraph.cli import main
from stagegraph.model import PipelineFacts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: the bundled example, framework adapters and a spread of situation cases
FOLDERS = [FIXTURES / "legacy_etl", *sorted(p for p in (FIXTURES / "cases").iterdir() if p.is_dir())[::6]]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workers are forked")


def audit(folder: Path, *args: str) -> str:
    with contextlib.chdir(folder):
        result = CliRunner().invoke(main, ["audit", ".", "--format", "json", "--no-cache", *args],
                                    catch_exceptions=False, env={"GIT_CEILING_DIRECTORIES": str(folder.parent)})
    assert result.exit_code in (0, 1), result.stderr
    return result.stdout


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_one_and_two_jobs_give_the_same_bytes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts, "PARALLEL_MIN_FUNCTIONS", 0)  # fork even for a small folder
    one = audit(folder, "--jobs", "1")
    assert audit(folder, "--jobs", "2") == one
    assert audit(folder, "--jobs", "5") == one
    assert one == (folder / "expected.json").read_text(encoding="utf-8")


def test_a_worker_that_dies_becomes_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()

    def dies(builder: object) -> list[PipelineFacts]:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return []

    monkeypatch.setattr(facts, "PARALLEL_MIN_FUNCTIONS", 0)
    monkeypatch.setattr(facts, "STYLES", tuple((name, dies if name == "airflow" else finder)
                                               for name, finder in facts.STYLES))
    import json

    report = json.loads(audit(FIXTURES / "legacy_etl", "--jobs", "2"))
    golden = json.loads((FIXTURES / "legacy_etl" / "expected.json").read_text(encoding="utf-8"))
    assert report["pipelines"] == golden["pipelines"]  # the plain pipelines, from this process
    died = [d for d in report["diagnostics"] if "worker process" in d["message"]]
    in_worker = sorted(name for name, _ in facts.STYLES if name != "plain")  # two jobs: plain here, the rest there
    assert sorted(d["message"] for d in died) == [
        f"the worker process running the {name} adapter died (signal 9); its pipelines are not reported"
        for name in in_worker]
