"""The field-corpus runner (benchmarks/field/run.py) and label checker (benchmarks/field/table.py) end to end.

A tiny git repository with a two-stage plain pipeline is built in a temporary folder and cloned bare into a
snapshot folder; labels pointing at it are scored by run.py exactly as real field cases are.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "benchmarks" / "field"
SHARED_SCORER = ROOT.parent / "shared" / "tools" / "score.py"

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

# Version 1: load consumes what extract returns (a real data dependency stagegraph sees).
PIPE_V1 = '''import json


def extract():
    return [{"id": 1}, {"id": 2}]


def load(rows):
    with open("/tmp/stagegraph-field-test/out.json", "w") as fh:
        json.dump(rows, fh)


def main():
    rows = extract()
    load(rows)
'''
# Version 2: the stages touch different files; load swallows every exception.
PIPE_V2 = '''import json


def extract():
    with open("/tmp/stagegraph-field-test/a.json", "w") as fh:
        json.dump([1, 2], fh)


def load():
    try:
        with open("/tmp/stagegraph-field-test/b.json") as fh:
            return json.load(fh)
    except Exception:
        return []


def main():
    extract()
    load()
'''


def _git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid", GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd))
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _label(case_id: str, repo: str, commit: str, pair: dict[str, Any], hazards: list[dict[str, Any]] | None = None,
           path: str = "etl") -> dict[str, Any]:
    return {
        "id": case_id,
        "source": {"repo": repo, "commit": commit, "path": path},
        "pipeline": "main",
        "style": "plain",
        "order": ["extract", "load"],
        "pairs": [dict(pair, a="extract", b="load")],
        "hazards": hazards or [],
        "notes": "test case",
        "labelled_by": "tests/test_field_runner.py",
    }


@pytest.fixture(scope="module")
def labels_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Labels without a repository behind them: enough for table.py."""
    base = tmp_path_factory.mktemp("field-labels")
    v1, v2 = "1" * 40, "2" * 40
    return {"labels": write_labels(base / "labels", v1, v2), "reserved": write_reserved(base), "v1": v1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("field")
    work = base / "work"
    (work / "etl").mkdir(parents=True)
    _git(work, "init", "-q")
    (work / "etl" / "pipe.py").write_text(PIPE_V1)
    (work / "README.md").write_text("tiny\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "v1")
    v1 = _git(work, "rev-parse", "HEAD")
    (work / "etl" / "pipe.py").write_text(PIPE_V2)
    _git(work, "commit", "-qam", "v2")
    v2 = _git(work, "rev-parse", "HEAD")

    snapshots = base / "snapshots"
    snapshots.mkdir()
    _git(base, "clone", "-q", "--bare", str(work), str(snapshots / "example-owner+tiny" / "repo"))
    _git(base, "clone", "-q", "--bare", str(work), str(snapshots / "example-owner+flat"))  # the git dir itself

    labels = write_labels(base / "labels", v1, v2)
    reserved = write_reserved(base)
    return {"base": base, "snapshots": snapshots, "labels": labels, "reserved": reserved, "v1": v1, "v2": v2}


def write_reserved(base: Path) -> Path:
    reserved = base / "reserved.txt"
    reserved.write_text("# test list\nexample-owner/forbidden\n")
    return reserved


def write_labels(labels: Path, v1: str, v2: str) -> Path:
    labels.mkdir()
    cases = [
        _label("example-owner__tiny__sees_data", "example-owner/tiny", v1,
               {"relation": "depends", "dep_kind": "data", "via": "variable rows"}),
        _label("example-owner__tiny__hidden", "example-owner/tiny", v2,
               {"relation": "depends", "dep_kind": "data", "via": "a side channel stagegraph cannot see"}),
        _label("example-owner__tiny__apart", "example-owner/tiny", v2,
               {"relation": "independent", "via": "different files a.json / b.json"},
               hazards=[{"kind": "swallowed-exception", "stages": ["load"], "why": "except Exception: return []"}]),
        _label("example-owner__flat__low", "example-owner/flat", v1,
               {"relation": "depends", "dep_kind": "data", "via": "unsure", "confidence": "low"}, path="etl/pipe.py"),
        _label("example-owner__gone__main", "example-owner/gone", v1,
               {"relation": "depends", "dep_kind": "data", "via": "x"}),
        _label("example-owner__tiny__nocommit", "example-owner/tiny", "0" * 40,
               {"relation": "depends", "dep_kind": "data", "via": "x"}),
    ]
    for label in cases:
        (labels / f"{label['id']}.json").write_text(json.dumps(label, indent=1))
    return labels


def _run(corpus: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FIELD / "run.py"), "--labels", str(corpus["labels"]), "--snapshots",
         str(corpus["snapshots"]), "--reserved", str(corpus["reserved"]), *(extra or ("--no-reuse",))],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.slow
@needs_git
def test_reports_of_the_same_analyzer_source_are_reused(corpus: dict[str, Any], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first = _run(corpus, "--reports-dir", str(reports))
    stored = sorted(reports.glob("*.json"))
    assert stored, first.stderr
    for path in stored:  # a corrupt entry is rebuilt, never trusted
        path.write_text("{not json")
    second = _run(corpus, "--reports-dir", str(reports))
    assert first.stdout.splitlines()[-1].split('"seconds"')[0] == second.stdout.splitlines()[-1].split('"seconds"')[0]
    assert all(p.read_text().startswith("{\"") for p in stored)


@pytest.mark.slow
@needs_git
def test_runner_scores_the_tiny_corpus(corpus: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "field.json"
    proc = _run(corpus, "--jobs", "2", "--json-out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["cases"] == 4
    assert summary["skipped"] == 2
    assert summary["run_errors"] == 0
    assert summary["stage_recall"] == "8/8" and summary["stage_recall_pct"] == 100.0
    assert summary["unsafe_called_safe"] == 1
    assert summary["unsafe_pairs"] == ["example-owner__tiny__hidden: extract -> load"]
    assert summary["depends_recall"] == "1/2" and summary["depends_recall_pct"] == 50.0
    assert summary["independent_recall"] == "1/1"
    assert summary["pairs_either_way"] == 1
    assert summary["pairs_unscored"] == 0
    assert summary["hazard_recall"] == "1/1"
    # the swallowed exception is labelled in one case and extra in the other (same tree, other label)
    assert summary["false_warnings_per_pipeline"] == 0.25
    for key in ("seconds", "independent_recall_pct", "hazard_recall_pct"):
        assert key in summary

    text = proc.stdout
    assert "UNSAFE: extract -> load via a side channel stagegraph cannot see" in text
    assert "SKIPPED example-owner__gone__main: no snapshot of example-owner/gone" in text
    assert "SKIPPED example-owner__tiny__nocommit: snapshot" in text and "lacks commit" in text
    assert "plain" in text and "TOTAL" in text

    payload = json.loads(out.read_text())
    assert payload["summary"] == summary
    rows = {r["case"]: r for r in payload["rows"]}
    assert rows["example-owner__tiny__sees_data"]["depends_ok"] == 1
    assert rows["example-owner__tiny__apart"]["hazards_found"] == 1
    assert rows["example-owner__gone__main"]["status"] == "skipped"
    # the two labels on v2 share one extraction
    v2_rows = [rows["example-owner__tiny__hidden"], rows["example-owner__tiny__apart"]]
    assert sorted(r["extract"]["cached"] for r in v2_rows) == [False, True]


FAKE_ANALYZER = """import json, pathlib, sys
assert pathlib.Path(sys.argv[1]).exists()
stages = [{"id": s, "name": s} for s in ("extract", "load")]
print(json.dumps({"pipelines": [{"id": "pipe.py::main", "name": "main", "file": "pipe.py", "stages": stages,
                                 "edges": [{"from": "extract", "to": "load", "kind": "order"}]}],
                  "findings": []}))
"""


@pytest.mark.slow
@needs_git
def test_strict_filters_and_cmd(corpus: dict[str, Any], tmp_path: Path) -> None:
    fake = tmp_path / "fake_analyzer.py"
    fake.write_text(FAKE_ANALYZER)
    cmd = f"{sys.executable} {fake} {{path}}"
    proc = _run(corpus, "--strict", "--style", "plain", "--case", "example-owner__tiny__sees_data", "--cmd", cmd)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["cases"] == 1 and summary["unsafe_pairs"] == ["example-owner__tiny__sees_data: extract -> load"]
    proc = _run(corpus, "--case", "example-owner__tiny__apart", "--cmd", cmd)  # no --strict: a benchmark, exit 0
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["independent_recall"] == "1/1" and summary["hazard_recall"] == "0/1"
    # without ../shared/tools/score.py the runner scores with its copy, benchmarks/field/scoring.py
    proc = _run(corpus, "--case", "example-owner__tiny__apart", "--cmd", cmd, "--scorer", str(tmp_path / "absent.py"))
    assert proc.returncode == 0, proc.stderr
    assert "scoring.py" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["independent_recall"] == "1/1"
    assert _run(corpus, "--case", "no-such-case").returncode == 2


@pytest.mark.slow
@needs_git
def test_snapshot_layouts_and_extraction(corpus: dict[str, Any], tmp_path: Path) -> None:
    run = _load("_field_run_under_test", FIELD / "run.py")
    snaps = corpus["snapshots"]
    assert run.find_snapshot(snaps, "example-owner/tiny") == snaps / "example-owner+tiny" / "repo"
    assert run.find_snapshot(snaps, "example-owner/flat") == snaps / "example-owner+flat"
    assert run.find_snapshot(snaps, "example-owner/gone") is None
    cache = run.TreeCache(tmp_path)
    tree, stats, cached = cache.get(snaps / "example-owner+flat", "example-owner/flat", corpus["v1"])
    assert not cached and stats["files"] == 2
    assert (tree / "etl" / "pipe.py").read_text() == PIPE_V1
    assert cache.get(snaps / "example-owner+flat", "example-owner/flat", corpus["v1"])[2] is True
    assert run.safe_relpath("a/../b") is None and run.safe_relpath(".git/config") is None


def _table(labels_only: dict[str, Any], labels: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FIELD / "table.py"), "--check", "--labels", str(labels), "--reserved",
         str(labels_only["reserved"]), "--readme", str(labels / "README.md")],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_table_check_accepts_good_and_rejects_bad_labels(labels_only: dict[str, Any], tmp_path: Path) -> None:
    assert _table(labels_only, labels_only["labels"]).returncode == 0

    bad = tmp_path / "labels"
    bad.mkdir()
    reserved = _label("example-owner__forbidden__main", "example-owner/forbidden", labels_only["v1"],
                      {"relation": "independent", "via": "x"})
    (bad / f"{reserved['id']}.json").write_text(json.dumps(reserved))
    proc = _table(labels_only, bad)
    assert proc.returncode == 1
    assert "RESERVED" in proc.stderr

    for f in bad.iterdir():
        f.unlink()
    unknown = _label("example-owner__tiny__unknown", "example-owner/tiny", labels_only["v1"],
                     {"relation": "depends", "dep_kind": "data", "via": "x"})
    unknown["pairs"].append({"a": "extract", "b": "publish", "relation": "independent", "via": "y"})
    (bad / f"{unknown['id']}.json").write_text(json.dumps(unknown))
    proc = _table(labels_only, bad)
    assert proc.returncode == 1
    assert "'publish' is not a stage in order" in proc.stderr


def test_table_check_rejects_an_independent_pair_a_labelled_chain_orders(labels_only: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    """The scorer counts dependencies transitively, so extract / publish can't be independent when
    extract -> load -> publish are labelled; two stages that only feed a third one can."""
    bad = tmp_path / "labels"
    bad.mkdir()
    label = _label("example-owner__tiny__chain", "example-owner/tiny", labels_only["v1"],
                   {"relation": "depends", "dep_kind": "data", "via": "x"})
    label["order"] = ["extract", "load", "audit", "publish"]
    label["pairs"] += [
        {"a": "publish", "b": "load", "relation": "depends", "dep_kind": "data", "via": "y"},
        {"a": "audit", "b": "publish", "relation": "depends", "dep_kind": "data", "via": "z"},
        {"a": "extract", "b": "publish", "relation": "independent", "via": "no direct link"},
        {"a": "load", "b": "audit", "relation": "independent", "via": "both only feed publish"},
    ]
    (bad / f"{label['id']}.json").write_text(json.dumps(label))
    proc = _table(labels_only, bad)
    assert proc.returncode == 1
    assert "pair extract / publish: labelled independent, but the labelled depends pairs extract -> load -> " \
           "publish order them" in proc.stderr
    assert "load / audit" not in proc.stderr


def test_table_regenerates_between_markers(labels_only: dict[str, Any], tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# corpus\n\n<!-- table -->\nold\n<!-- table -->\n\nafter\n")
    proc = subprocess.run(
        [sys.executable, str(FIELD / "table.py"), "--labels", str(labels_only["labels"]), "--reserved",
         str(labels_only["reserved"]), "--readme", str(readme)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- table -->\n\nafter\n")
    assert "`example-owner__tiny__hidden`" in text and "**6 cases**" in text


REPORT: dict[str, Any] = {
    "pipelines": [
        {"id": "p.py::main", "name": "main", "file": "p.py",
         "stages": [{"id": s, "name": s} for s in ("a", "b", "c", "d")],
         "edges": [{"from": "a", "to": "b", "kind": "data"}, {"from": "b", "to": "c", "kind": "unknown"},
                   {"from": "c", "to": "d", "kind": "order"}]},
        {"id": "q.py::side", "name": "side", "file": "q.py",
         "stages": [{"id": "e", "name": "e"}], "edges": []},
    ],
    "findings": [
        {"rule": "swallowed-exception", "severity": "warning", "stages": ["b"], "pipeline": "p.py::main",
         "file": "p.py"},
        {"rule": "missing-timeout", "severity": "warning", "stages": ["d"], "pipeline": "p.py::main",
         "file": "p.py"},
        {"rule": "coincidental-order", "severity": "note", "stages": ["c", "d"], "pipeline": "p.py::main"},
    ],
}
LABEL: dict[str, Any] = {
    "pipeline": "main",
    "order": ["a", "b", "c", "d", "e"],
    "pairs": [
        {"a": "a", "b": "c", "relation": "depends", "dep_kind": "data", "via": "transitive"},
        {"a": "c", "b": "d", "relation": "depends", "dep_kind": "data", "via": "missed"},
        {"a": "a", "b": "d", "relation": "independent", "dep_kind": "control", "via": "control counts as depends"},
        {"a": "b", "b": "d", "relation": "independent", "via": "ok"},
        {"a": "a", "b": "e", "relation": "depends", "dep_kind": "data", "via": "other pipeline"},
        {"a": "a", "b": "b", "relation": "independent", "via": "?", "confidence": "low"},
    ],
    "hazards": [{"kind": "swallowed-exception", "stages": ["b"]}, {"kind": "unbounded-fanout", "stages": ["a"]},
                {"kind": "other", "stages": ["a"]}],
}


@pytest.mark.skipif(not SHARED_SCORER.is_file(), reason="../shared/tools/score.py not checked out")
def test_scoring_copy_matches_shared_scorer() -> None:
    shared = _load("_field_shared_score", SHARED_SCORER)
    copy = _load("_field_scoring_copy", FIELD / "scoring.py")
    for label in (LABEL, dict(LABEL, pipeline="nowhere"), dict(LABEL, order=["x"])):
        assert dict(copy.score_case("c", label, REPORT)) == dict(shared.score_case("c", label, REPORT))
    row = copy.score_case("c", LABEL, REPORT)
    assert row["unsafe_called_safe"] == 2 and row["depends_ok"] == 1 and row["independent_ok"] == 1
