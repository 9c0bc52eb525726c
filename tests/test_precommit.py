"""The pre-commit hook: import context of changed files, compact report, and the real `pre-commit` tool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from click.testing import CliRunner
from workflow_helpers import (
    DRIVER_CLEAN,
    DRIVER_DIRTY,
    GIT_ENV,
    STAGES,
    git,
    install_stand_in,
    make_repo,
    orders_project,
)

from stagegraph.cli import main
from stagegraph.hook import import_context, imported_modules

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_hook_definition_is_what_pre_commit_expects() -> None:
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = hooks
    assert hook["id"] == "stagegraph"
    assert hook["language"] == "python"
    assert hook["types"] == ["python"]
    assert hook["entry"] == "stagegraph hook"
    assert hook["require_serial"] is True


def test_imported_modules_resolves_relative_and_aliased_imports() -> None:
    text = "import os, etl.stages as s\nfrom . import stages\nfrom ..common.io import (read,\n  write)\n"
    assert imported_modules("etl.jobs.driver", False, text) == {
        "os", "etl.stages", "etl.jobs", "etl.jobs.stages", "etl.common.io", "etl.common.io.read",
        "etl.common.io.write",
    }


def test_import_context_reaches_the_driver_and_its_other_stages() -> None:
    files = {
        "src/etl/stages.py": "from etl.util import helper\n",
        "src/etl/util.py": "",
        "src/etl/driver.py": "from etl.stages import dedup\nfrom etl.load import load\n",
        "src/etl/load.py": "",
        "src/etl/nightly.py": "from etl import driver\n",
        "tools/greet.py": "import json\n",
    }
    assert import_context(files, {"src/etl/stages.py"}) == {
        "src/etl/stages.py", "src/etl/util.py", "src/etl/driver.py", "src/etl/load.py", "src/etl/nightly.py",
    }
    assert import_context(files, {"tools/greet.py"}) == {"tools/greet.py"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_stand_in(monkeypatch)
    root = make_repo(tmp_path / "project", orders_project(DRIVER_DIRTY))
    monkeypatch.chdir(root)
    return root


def test_changed_stage_module_rechecks_the_driver_that_calls_it(project: Path) -> None:
    result = CliRunner().invoke(main, ["hook", "etl/stages.py"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("etl/driver.py:") and "dedup-before-validation" in lines[0]
    assert lines[-1].startswith("stagegraph: 1 changed file, 1 pipeline touching it")


def test_unrelated_change_passes_and_parses_only_its_context(project: Path) -> None:
    result = CliRunner().invoke(main, ["hook", "tools/greet.py", "README.md"])
    assert result.exit_code == 0, result.output
    assert "(1 file analysed)" in result.output
    full = CliRunner().invoke(main, ["hook", "--full", "tools/greet.py"])
    assert full.exit_code == 0 and "(4 files analysed)" in full.output


def test_hook_respects_fail_on_and_config(project: Path) -> None:
    assert CliRunner().invoke(main, ["hook", "--fail-on", "never", "etl/driver.py"]).exit_code == 0
    (project / "stagegraph.toml").write_text('[severity]\n"dedup-before-validation" = "note"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["hook", "etl/driver.py"])
    assert result.exit_code == 0
    assert ": note: dedup-before-validation" in result.output


def test_no_python_files_is_a_quick_pass(project: Path) -> None:
    result = CliRunner().invoke(main, ["hook", "notes.txt"])
    assert result.exit_code == 0
    assert "0 changed files" in result.output


_IMPORTS_AFTER_HOOK = """
import sys
from stagegraph.cli import main
try:
    main(["hook", "--cache-dir", sys.argv[1], "etl/stages.py"])
except SystemExit as exc:
    code = exc.code
print(code, sorted(m for m in ("libcst", "networkx", "stagegraph.facts", "stagegraph.graph") if m in sys.modules))
"""


def test_warm_cache_hook_never_loads_the_parser_or_the_graph_library(project: Path, tmp_path: Path) -> None:
    """The hook's latency on a cache hit is its imports: libcst, networkx and the facts layer cost
    most of it, and a hit needs none of them (issue 14, goal 4). A fresh interpreter, so every
    import is real; the first run fills the cache and does load them."""
    cache = str(tmp_path / "cache")
    env = {k: v for k, v in os.environ.items() if k != "STAGEGRAPH_NO_CACHE"}

    def loaded() -> str:
        proc = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER_HOOK, cache], cwd=project, env=env,
                              capture_output=True, text=True, check=True)
        return proc.stdout.strip().splitlines()[-1]

    assert loaded() == "1 ['libcst', 'networkx', 'stagegraph.facts', 'stagegraph.graph']"
    assert loaded() == "1 []"  # the same finding, from the cache


# ------------------------------------------------------------------ the real pre-commit tool

def _pre_commit_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRE_COMMIT")}
    venv_bin = str(Path(sys.executable).parent)
    return {**env, **GIT_ENV, "PRE_COMMIT_HOME": str(home), "PATH": venv_bin + os.pathsep + env.get("PATH", "")}


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clone of this repository's HEAD: pre-commit installs hooks from a committed git repo."""
    clone = tmp_path_factory.mktemp("hook-repo") / "stagegraph"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, capture_output=True)
    sha = git(clone, "rev-parse", "HEAD").stdout.strip()
    return clone, sha


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.mark.slow
def test_real_pre_commit_blocks_dedup_before_validation_and_passes_a_clean_commit(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    if shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("pre-commit is not installed in the test environment")
    clone, sha = hook_repo
    env = _pre_commit_env(pre_commit_home)
    project = make_repo(tmp_path / "project", orders_project(DRIVER_CLEAN))
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {clone}\n  rev: {sha}\n  hooks:\n  - id: stagegraph\n", encoding="utf-8")
    git(project, "add", ".pre-commit-config.yaml")
    git(project, "commit", "-q", "--no-verify", "-m", "add pre-commit config")
    pre_commit = str(Path(sys.executable).parent / "pre-commit")
    subprocess.run([pre_commit, "install"], cwd=project, env=env, check=True, capture_output=True)

    # a clean change to a stage module passes the hook and is committed
    (project / "etl" / "stages.py").write_text(STAGES + "\n\ndef audit_log(rows):\n    return len(rows)\n",
                                                 encoding="utf-8")
    git(project, "add", "-A")
    clean = subprocess.run(["git", "commit", "-m", "clean change"], cwd=project, env=env, capture_output=True,
                           text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    head = git(project, "rev-parse", "HEAD").stdout.strip()

    # moving dedup before validation is stopped
    (project / "etl" / "driver.py").write_text(DRIVER_DIRTY, encoding="utf-8")
    git(project, "add", "-A")
    dirty = subprocess.run(["git", "commit", "-m", "dedup first"], cwd=project, env=env, capture_output=True,
                           text=True)
    output = dirty.stdout + dirty.stderr
    assert "dedup-before-validation" in output, "the engine does not flag dedup-before-validation yet:\n" + output
    assert dirty.returncode != 0
    # the code line under the finding, as ruff's --show-source; plurals read right
    assert re.search(r"\n +\d+ \|     rows = \w+\(rows\)\n", output), output
    assert "1 changed file, 1 pipeline touching it" in output
    assert git(project, "rev-parse", "HEAD").stdout.strip() == head


@pytest.mark.slow
def test_real_pre_commit_try_repo_on_changed_files(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    clone, _ = hook_repo
    env = _pre_commit_env(pre_commit_home)
    project = make_repo(tmp_path / "project", orders_project(DRIVER_CLEAN))
    pre_commit = str(Path(sys.executable).parent / "pre-commit")
    passed = subprocess.run([pre_commit, "try-repo", str(clone), "stagegraph", "--files", "etl/stages.py"],
                            cwd=project, env=env, capture_output=True, text=True)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "stagegraph (pipeline hazards)" in passed.stdout
    (project / "etl" / "driver.py").write_text(DRIVER_DIRTY, encoding="utf-8")
    failed = subprocess.run([pre_commit, "try-repo", str(clone), "stagegraph", "--files", "etl/stages.py"],
                            cwd=project, env=env, capture_output=True, text=True)
    assert "dedup-before-validation" in failed.stdout, \
        "the engine does not flag dedup-before-validation yet:\n" + failed.stdout
    assert failed.returncode == 1


@pytest.mark.slow
def test_real_engine_hook_matches_a_full_audit(tmp_path: Path) -> None:
    """The import-context hook must report the same fingerprints as a full audit (so baselines apply to both)."""
    import json

    project = make_repo(tmp_path / "project", orders_project(DRIVER_DIRTY))
    cli = [sys.executable, "-m", "stagegraph"]
    audit = subprocess.run([*cli, "audit", ".", "--format", "json"], cwd=project, capture_output=True, text=True)
    expected = {(f["rule"], f["fingerprint"]) for f in json.loads(audit.stdout)["findings"]
                if f["file"].startswith("etl/")}
    assert ("dedup-before-validation" in {rule for rule, _ in expected}), "the engine does not flag it yet"
    subprocess.run([*cli, "baseline", "."], cwd=project, check=True, capture_output=True)
    hook = subprocess.run([*cli, "hook", "etl/stages.py"], cwd=project, capture_output=True, text=True)
    assert hook.returncode == 1 and "dedup-before-validation" in hook.stdout
    (project / "stagegraph.toml").write_text('baseline = ".stagegraph-baseline.json"\n', encoding="utf-8")
    hook = subprocess.run([*cli, "hook", "etl/stages.py"], cwd=project, capture_output=True, text=True)
    assert hook.returncode == 0, hook.stdout + hook.stderr
    assert f"{len(expected)} baselined" in hook.stdout
