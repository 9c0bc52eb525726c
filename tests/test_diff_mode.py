"""Diff mode: the base ref is read from git objects (work tree untouched); only new fingerprints count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from workflow_helpers import (
    DRIVER_CLEAN,
    DRIVER_DIRTY,
    commit,
    git,
    install_stand_in,
    make_repo,
    orders_project,
    shift_lines,
    write_files,
)

from stagegraph import diffmode
from stagegraph.cli import main
from stagegraph.engine import make_report
from stagegraph.model import Edge, ParallelGroup, Pipeline, Stage


def _snapshot(repo: Path) -> tuple[str, str, dict[str, float]]:
    """What diff mode must not touch: status, index, and every file's mtime."""
    status = git(repo, "status", "--porcelain=v1", "--untracked-files=all").stdout
    index = git(repo, "ls-files", "-s").stdout
    mtimes = {str(p): p.stat().st_mtime_ns for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    return status, index, mtimes  # type: ignore[return-value]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_stand_in(monkeypatch)
    root = make_repo(tmp_path / "repo", orders_project(DRIVER_CLEAN))
    monkeypatch.chdir(root)
    return root


def _audit(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, ["audit", *args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def test_new_hazard_in_the_work_tree_is_reported_and_the_tree_is_untouched(repo: Path) -> None:
    (repo / "etl" / "driver.py").write_text(DRIVER_DIRTY, encoding="utf-8")
    before = _snapshot(repo)
    code, data = _audit(".", "--diff-base", "HEAD")
    assert _snapshot(repo) == before
    assert code == 1
    assert [(f["rule"], f["file"]) for f in data["findings"]] == [("dedup-before-validation", "etl/driver.py")]
    delta = data["delta"]
    assert delta["base_ref"] == "HEAD"
    assert delta["base_commit"] == git(repo, "rev-parse", "HEAD").stdout.strip()
    assert delta["findings"] == {"new": 1, "fixed": 0, "unchanged": 0}
    # validate -> dedup became dedup -> validate: the rows flow now runs the other way
    assert {"pipeline": "etl/driver.py::main", "from": "dedup", "to": "validate", "kind": "data"} in \
        delta["dependencies_added"]
    assert {"pipeline": "etl/driver.py::main", "from": "validate", "to": "dedup", "kind": "data"} in \
        delta["dependencies_removed"]


def test_base_and_head_commits_with_a_line_shift_report_nothing_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    install_stand_in(monkeypatch)
    root = make_repo(tmp_path / "repo", orders_project(DRIVER_DIRTY), "base: already has the hazard")
    driver = root / "etl" / "driver.py"
    driver.write_text(shift_lines(DRIVER_DIRTY, 9), encoding="utf-8")
    commit(root, "head: unrelated edit shifts lines")
    monkeypatch.chdir(root)
    code, data = _audit(".", "--diff-base", "HEAD~1")
    assert code == 0
    assert data["findings"] == []
    assert data["delta"]["findings"] == {"new": 0, "fixed": 0, "unchanged": 1}
    assert data["delta"]["dependencies_added"] == [] and data["delta"]["dependencies_removed"] == []
    full_code, full = _audit(".")
    assert full_code == 1 and len(full["findings"]) == 1  # without diff mode the old hazard is still there


def test_fixed_hazard_is_counted_and_exit_is_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_stand_in(monkeypatch)
    root = make_repo(tmp_path / "repo", orders_project(DRIVER_DIRTY))
    (root / "etl" / "driver.py").write_text(DRIVER_CLEAN, encoding="utf-8")
    commit(root, "fix the order")
    monkeypatch.chdir(root)
    code, data = _audit(".", "--diff-base", "main~1")
    assert code == 0
    assert data["delta"]["findings"] == {"new": 0, "fixed": 1, "unchanged": 0}


def test_text_report_leads_with_the_delta(repo: Path) -> None:
    (repo / "etl" / "driver.py").write_text(DRIVER_DIRTY, encoding="utf-8")
    result = CliRunner().invoke(main, ["audit", ".", "--diff-base", "HEAD"])
    assert result.exit_code == 1
    assert result.output.startswith("changes since HEAD (")
    assert "1 new finding, 0 fixed, 0 unchanged" in result.output
    assert "real dependencies added:" in result.output
    assert "dedup-before-validation" in result.output


def test_subfolder_target_maps_paths_like_the_work_tree(repo: Path) -> None:
    (repo / "etl" / "driver.py").write_text(shift_lines(DRIVER_DIRTY), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "introduce hazard")
    (repo / "etl" / "driver.py").write_text(shift_lines(DRIVER_DIRTY, 3), encoding="utf-8")
    code, data = _audit("etl", "--diff-base", "HEAD")
    assert code == 0, data
    assert data["delta"]["findings"] == {"new": 0, "fixed": 0, "unchanged": 1}
    base = diffmode.analyze_ref([Path("etl")], git(repo, "rev-parse", "HEAD").stdout.strip(),
                                __import__("stagegraph.engine", fromlist=["Options"]).Options())
    assert {p.file for p in base.pipelines} == {"driver.py"}  # relative to the analysed folder, as in the work tree


def test_untracked_new_file_counts_as_new(repo: Path) -> None:
    write_files(repo, {"etl/refunds.py": DRIVER_DIRTY})
    code, data = _audit(".", "--diff-base", "HEAD")
    assert code == 1
    assert [f["file"] for f in data["findings"]] == ["etl/refunds.py"]


def test_bad_ref_and_no_repo_are_exit_2(repo: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", ".", "--diff-base", "no-such-branch"])
    assert result.exit_code == 2
    assert "--diff-base no-such-branch: no such commit" in result.output
    plain = tmp_path / "plain"
    write_files(plain, {"a.py": "x = 1\n"})
    result = CliRunner().invoke(main, ["audit", str(plain), "--diff-base", "HEAD"])
    assert result.exit_code == 2
    assert "needs a git repository" in result.output


def test_binary_and_too_large_blobs_become_diagnostics(repo: Path) -> None:
    write_files(repo, {"big.py": "x = 1\n" * 100})
    (repo / "bin.py").write_bytes(b"\0\1\2")
    sha = commit(repo, "odd files")
    from stagegraph.engine import Options

    report = diffmode.analyze_ref([repo], sha, Options(max_file_bytes=300))
    kinds = {(d.file, d.kind) for d in report.diagnostics}
    assert ("big.py", "too-large") in kinds and ("bin.py", "encoding-error") in kinds


def _pipeline(edges: list[tuple[str, str, str]], groups: list[tuple[str, ...]]) -> Pipeline:
    names = sorted({n for e in edges for n in e[:2]} | {n for g in groups for n in g})
    stages = tuple(Stage(f"{n}@{i}", n, "p.py", i + 1) for i, n in enumerate(names))
    sid = {s.name: s.id for s in stages}
    return Pipeline("p.py::main", "main", "plain", "p.py", 1, stages,
                    tuple(Edge(sid[a], sid[b], k, True) for a, b, k in edges),  # type: ignore[arg-type]
                    tuple(ParallelGroup(tuple(sid[n] for n in g)) for g in groups))


def test_compare_keys_edges_by_stage_names_and_ignores_coincidental_orderings() -> None:
    base = make_report((_pipeline([("a", "b", "data"), ("b", "c", "order"), ("a", "d", "unknown")],
                                  [("b", "d"), ("c", "d")]),), (), (), 1)
    head = make_report((_pipeline([("a", "b", "data"), ("b", "c", "data"), ("a", "d", "control")],
                                  [("c", "d"), ("b", "e")]),), (), (), 1)
    _, delta = diffmode.compare(base, head, "main", "0" * 40)
    assert [(e.source, e.target, e.kind) for e in delta.dependencies_added] == [("a", "d", "control"),
                                                                                ("b", "c", "data")]
    assert [(e.source, e.target, e.kind) for e in delta.dependencies_removed] == [("a", "d", "unknown")]
    assert [g.stages for g in delta.parallel_groups_gained] == [("b", "e")]
    assert [g.stages for g in delta.parallel_groups_lost] == [("b", "d")]
    assert diffmode.from_dict(diffmode.to_dict(delta)) == delta


@pytest.mark.slow
def test_real_engine_diff_between_two_commits(tmp_path: Path) -> None:
    """End to end with the real engine: base commit clean, head commit introduces dedup-before-validation."""
    root = make_repo(tmp_path / "repo", orders_project(DRIVER_CLEAN))
    (root / "etl" / "driver.py").write_text(DRIVER_DIRTY, encoding="utf-8")
    commit(root, "head: dedup before validation")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "stagegraph", "audit", ".", "--diff-base", "HEAD~1", "--format",
                           "json"], cwd=root, capture_output=True, text=True, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert "dedup-before-validation" in [f["rule"] for f in data["findings"]], \
        "the engine does not flag dedup-before-validation yet"
    assert proc.returncode == 1
    assert data["delta"]["findings"]["new"] == len(data["findings"])
    same = subprocess.run([sys.executable, "-m", "stagegraph", "audit", ".", "--diff-base", "HEAD", "--format",
                           "json"], cwd=root, capture_output=True, text=True, env=env)
    assert same.returncode == 0 and json.loads(same.stdout)["findings"] == []
