"""The command line: fast --help, exit codes 0/1/2 end to end, no tracebacks, summary-first text, --out-dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from workflow_helpers import DRIVER_CLEAN, DRIVER_DIRTY, install_stand_in, orders_project, write_files

from stagegraph.cli import main

CLI = [sys.executable, "-m", "stagegraph"]


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; from stagegraph.cli import main\n"
            "heavy = {'libcst', 'networkx', 'jinja2', 'graphviz', 'sqlglot', 'rich'} & set(sys.modules)\n"
            "print(sorted(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    help_proc = subprocess.run([*CLI, "--help"], capture_output=True, text=True)
    assert help_proc.returncode == 0
    for command in ("audit", "baseline", "config", "hook", "comment"):
        assert command in help_proc.stdout


def test_exit_0_on_clean_code_end_to_end(tmp_path: Path) -> None:
    write_files(tmp_path, orders_project(DRIVER_CLEAN))
    proc = subprocess.run([*CLI, "audit", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("summary:\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["audit", "no/such/folder"], "no such file or folder"),
     (["audit", ".", "--fail-on", "sometimes"], "Invalid value for '--fail-on'"),
     (["explain", "no-such-rule"], "unknown rule"),
     (["audit", ".", "--config", "missing.toml"], "no such configuration file")],
)
def test_usage_errors_exit_2_without_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([*CLI, *args], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_malformed_user_catalog_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.py": "x = 1\n", "bad-resources.toml": "[[surprise]]\nx = 1\n",
                           "stagegraph.toml": 'resource-catalogs = ["bad-resources.toml"]\n'})
    (tmp_path / ".git").mkdir()
    proc = subprocess.run([*CLI, "audit", "."], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bad-resources.toml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_findings_exit_1_and_fail_on_severity_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_stand_in(monkeypatch)
    write_files(tmp_path, orders_project(DRIVER_DIRTY))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "."])
    assert result.exit_code == 1
    assert result.output.startswith("summary:\n  1 finding: 1 error, 0 warnings")
    assert "by rule: dedup-before-validation (1)" in result.output
    assert runner.invoke(main, ["audit", ".", "--fail-on", "never"]).exit_code == 0
    assert runner.invoke(main, ["audit", ".", "--severity", "dedup-before-validation=note"]).exit_code == 0
    assert runner.invoke(main, ["audit", ".", "--severity", "dedup-before-validation=note",
                                "--fail-on", "note"]).exit_code == 1
    assert runner.invoke(main, ["audit", ".", "--disable", "dedup-before-validation"]).exit_code == 0


def test_output_file_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_stand_in(monkeypatch)
    write_files(tmp_path, orders_project(DRIVER_DIRTY))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["audit", ".", "--format", "json", "-o", "out/report.json"])
    assert result.exit_code == 1
    assert result.output == ""
    data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert data["findings"][0]["rule"] == "dedup-before-validation"


def test_out_dir_from_config_in_diff_mode_keeps_the_delta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for fmt in ("markdown", "html", "sarif", "dot"):
        pytest.importorskip(f"stagegraph.render.{fmt}", reason="renderer not written yet")
    from workflow_helpers import make_repo

    install_stand_in(monkeypatch)
    root = make_repo(tmp_path / "repo", {**orders_project(DRIVER_CLEAN), "stagegraph.toml": 'out-dir = "reports"\n'})
    (root / "etl" / "driver.py").write_text(DRIVER_DIRTY, encoding="utf-8")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["audit", ".", "--diff-base", "HEAD"])
    assert result.exit_code == 1, result.output
    for name in ("report.json", "report.md", "report.html", "report.sarif", "graph.dot"):
        assert (root / "reports" / name).is_file(), name
    data = json.loads((root / "reports" / "report.json").read_text(encoding="utf-8"))
    assert data["delta"]["findings"]["new"] == 1
    assert "Changes since `HEAD`" in (root / "reports" / "report.md").read_text(encoding="utf-8")


def test_internal_errors_become_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import stagegraph.engine
    from stagegraph import cli

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(stagegraph.engine, "analyze", boom)
    monkeypatch.setattr(sys, "argv", ["stagegraph", "audit", str(tmp_path)])
    with pytest.raises(SystemExit) as info:
        cli.run()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "stagegraph: internal error: RuntimeError('kaboom')" in err
    assert "Traceback" not in err


def test_action_is_composite_and_runs_diff_mode_sarif_and_comment() -> None:
    import yaml  # type: ignore[import-untyped]

    action = yaml.safe_load((Path(__file__).resolve().parents[1] / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert '--diff-base "origin/${BASE_REF}"' in scripts
    assert "--out-dir" in scripts
    assert 'stagegraph comment --report "$OUT_DIR/report.json"' in scripts
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif")]
    assert uploads and uploads[0]["with"]["sarif_file"].endswith("/report.sarif")
    for step in steps:  # untrusted context values reach scripts only through env, never inline
        assert "${{" not in step.get("run", ""), step.get("name")


def test_max_stages_folds_big_pipelines_in_dot_and_mermaid() -> None:
    """--max-stages keeps stages with findings/real edges and folds the rest into one node per run."""
    example = str(Path(__file__).resolve().parents[1] / "fixtures" / "legacy_etl")
    runner = CliRunner()
    full = runner.invoke(main, ["audit", example, "--format", "dot"])
    folded = runner.invoke(main, ["audit", example, "--format", "dot", "--max-stages", "8"])
    assert "more stages" not in full.output
    assert "more stages" in folded.output
    assert len(folded.output) < len(full.output)
    mermaid = runner.invoke(main, ["audit", example, "--format", "mermaid", "--max-stages", "8"])
    assert "more stages" in mermaid.output
    too_small = runner.invoke(main, ["audit", example, "--format", "dot", "--max-stages", "1"])
    assert too_small.exit_code == 2
