"""Baselines: deterministic files, `audit --baseline` reports only new findings, fingerprints survive line shifts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from workflow_helpers import DRIVER_DIRTY, install_stand_in, orders_project, shift_lines, write_files

from stagegraph import baseline
from stagegraph.cli import main
from stagegraph.engine import Options, analyze


@pytest.fixture
def legacy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A legacy project with one dedup-before-validation finding (stand-in engine)."""
    install_stand_in(monkeypatch)
    root = tmp_path / "legacy"
    write_files(root, orders_project(DRIVER_DIRTY))
    monkeypatch.chdir(root)
    return root


def test_baseline_records_findings_deterministically(legacy: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["baseline", ".", "--output", "b1.json"])
    second = runner.invoke(main, ["baseline", ".", "-o", "b2.json"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    text = (legacy / "b1.json").read_text(encoding="utf-8")
    assert text == (legacy / "b2.json").read_text(encoding="utf-8")
    data = json.loads(text)
    report = analyze([Path(".")], Options())
    assert [(e["rule"], e["file"], e["fingerprint"]) for e in data["findings"]] == [
        ("dedup-before-validation", "etl/driver.py", report.findings[0].fingerprint)
    ]
    assert "line" not in data["findings"][0]
    assert "recorded 1 findings in b1.json" in first.output


def test_audit_with_baseline_hides_known_findings_and_counts_them(legacy: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["audit", "."]).exit_code == 1
    runner.invoke(main, ["baseline", "."])
    assert (legacy / ".stagegraph-baseline.json").is_file()
    result = runner.invoke(main, ["audit", ".", "--baseline", ".stagegraph-baseline.json", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["findings"] == []
    assert data["summary"]["baselined"] == 1
    text = runner.invoke(main, ["audit", ".", "--baseline", ".stagegraph-baseline.json"]).output
    assert "1 baselined" in text


def test_baseline_survives_a_line_shift_but_not_a_new_hazard(legacy: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["baseline", "."])
    before = analyze([Path(".")], Options()).findings[0]
    driver = legacy / "etl" / "driver.py"
    driver.write_text(shift_lines(driver.read_text(encoding="utf-8")), encoding="utf-8")
    after = analyze([Path(".")], Options()).findings[0]
    assert after.line == before.line + 7  # the edit really moved the finding
    assert after.fingerprint == before.fingerprint
    result = runner.invoke(main, ["audit", ".", "--baseline", ".stagegraph-baseline.json"])
    assert result.exit_code == 0, result.output

    write_files(legacy, {"etl/second.py": DRIVER_DIRTY.replace("orders", "refunds")})
    result = runner.invoke(main, ["audit", ".", "--baseline", ".stagegraph-baseline.json", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert [(f["rule"], f["file"]) for f in data["findings"]] == [("dedup-before-validation", "etl/second.py")]
    assert data["summary"]["baselined"] == 1


def test_baseline_from_config_applies_to_audit(legacy: Path) -> None:
    runner = CliRunner()
    (legacy / "stagegraph.toml").write_text('baseline = "ci/baseline.json"\n', encoding="utf-8")
    (legacy / ".git").mkdir()
    result = runner.invoke(main, ["baseline", "."])
    assert result.exit_code == 0, result.output
    assert (legacy / "ci" / "baseline.json").is_file()
    assert runner.invoke(main, ["audit", "."]).exit_code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "baseline file not found"), ("{", "not valid JSON"), ('{"findings": [{}]}', "no 'fingerprint'"),
     ("[]", "not a stagegraph baseline")],
)
def test_bad_baseline_is_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(main, ["audit", str(tmp_path), "--baseline", str(path)])
    assert result.exit_code == 2
    assert message in result.output


def test_split_counts_what_it_drops() -> None:
    report = analyze([], Options())
    assert baseline.split(report.findings, frozenset({"x"})) == ((), 0)


@pytest.mark.slow
def test_real_engine_baseline_survives_line_shift(tmp_path: Path) -> None:
    """End to end with the real engine (no stand-in): needs the dedup-before-validation rule to fire."""
    root = tmp_path / "legacy"
    write_files(root, orders_project(DRIVER_DIRTY))
    cli = [sys.executable, "-m", "stagegraph"]
    audit = subprocess.run([*cli, "audit", ".", "--format", "json"], cwd=root, capture_output=True, text=True)
    rules = [f["rule"] for f in json.loads(audit.stdout)["findings"]]
    assert "dedup-before-validation" in rules, "the engine does not flag dedup-before-validation yet"
    assert audit.returncode == 1
    subprocess.run([*cli, "baseline", "."], cwd=root, check=True, capture_output=True)
    for rel in ("etl/driver.py", "etl/stages.py"):
        path = root / rel
        path.write_text(shift_lines(path.read_text(encoding="utf-8"), 11), encoding="utf-8")
    shifted = subprocess.run([*cli, "audit", ".", "--baseline", ".stagegraph-baseline.json", "--format", "json"],
                             cwd=root, capture_output=True, text=True)
    assert shifted.returncode == 0, shifted.stdout + shifted.stderr
    data = json.loads(shifted.stdout)
    assert data["findings"] == []
    assert data["summary"]["baselined"] == len(rules)
