"""The composite Action's own shell steps, run for real with bash and git (issue 13, items 6-8).

GitHub's runner is not available here, so each test takes one step's `run` script from
action.yml and executes it with the environment the runner would give it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from workflow_helpers import commit, git, make_repo

REPO = Path(__file__).resolve().parents[1]
ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))

WARNING_ONLY = '''\
import requests


def fetch():
    return requests.get("https://api.example.com/refunds").json()


def save(rows):
    requests.post("https://hooks.example.com/x", json=rows, timeout=5)


def main():
    rows = fetch()
    save(rows)
'''


def step(name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in ACTION["runs"]["steps"] if s.get("name") == name)
    return found


def default(name: str) -> str:
    return str(ACTION["inputs"][name]["default"])


def run_step(name: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step(name)["run"]], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PATH": path, **env}, timeout=300)


def _upstream(tmp_path: Path) -> Path:
    upstream = make_repo(tmp_path / "upstream", {"jobs/a.py": "x = 1\n"})
    for i in range(3):
        (upstream / "jobs/a.py").write_text(f"x = {i}\n", encoding="utf-8")
        commit(upstream, f"main {i}")
    git(upstream, "checkout", "-q", "-b", "feature")
    (upstream / "jobs/b.py").write_text("y = 1\n", encoding="utf-8")
    commit(upstream, "feature")
    return upstream


def test_fetching_the_base_never_shallows_a_full_clone(tmp_path: Path) -> None:
    upstream = _upstream(tmp_path)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", "feature", upstream.as_uri(), str(clone))
    git(clone, "update-ref", "-d", "refs/remotes/origin/main")  # as after a checkout of only the PR ref
    done = run_step("Make the PR base available", clone, {"BASE_REF": "main"})
    assert done.returncode == 0, done.stderr
    assert git(clone, "rev-parse", "--is-shallow-repository").stdout.strip() == "false"
    assert git(clone, "rev-list", "--count", "origin/main").stdout.strip() == "4"
    again = run_step("Make the PR base available", clone, {"BASE_REF": "main"})
    assert "already here" in again.stdout


def test_fetching_the_base_into_a_shallow_checkout_keeps_it_shallow(tmp_path: Path) -> None:
    upstream = _upstream(tmp_path)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", "--branch", "feature", upstream.as_uri(), str(clone))
    done = run_step("Make the PR base available", clone, {"BASE_REF": "main"})
    assert done.returncode == 0, done.stderr
    assert git(clone, "rev-parse", "--verify", "origin/main").returncode == 0


def test_the_default_fail_on_leaves_the_repository_config_in_charge(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/refunds.py": WARNING_ONLY, "stagegraph.toml": 'fail-on = "error"\n'})
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    env = {"BASE_REF": "", "PATHS": default("paths"), "FAIL_ON": default("fail-on"), "OUT_DIR": default("out-dir"),
           "ANNOTATIONS": default("annotations"), "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}
    done = run_step("Audit (diff mode on pull requests)", root, env)
    assert done.returncode == 0, done.stderr
    assert outputs.read_text(encoding="utf-8").strip() == "exit-code=0"  # a warning, and the config says error
    # annotations work without code scanning (private repositories without Advanced Security)
    assert "::warning file=jobs/refunds.py,line=5,col=" in done.stdout
    assert "stagegraph" in summary.read_text(encoding="utf-8")
    done = run_step("Audit (diff mode on pull requests)", root, {**env, "FAIL_ON": "warning"})
    assert outputs.read_text(encoding="utf-8").strip().splitlines()[-1] == "exit-code=1"


def test_permissions_and_a_failed_sarif_upload_are_explained() -> None:
    upload = step("Upload SARIF to code scanning")
    assert upload["continue-on-error"] is True and upload["id"] == "sarif"
    explain = step("Explain a failed SARIF upload")
    assert "steps.sarif.outcome == 'failure'" in explain["if"]
    assert "security-events: write" in explain["run"] and "actions: read" in explain["run"]
    docs = (REPO / "docs" / "pull-requests.md").read_text(encoding="utf-8")
    for permission in ("pull-requests: write", "security-events: write", "actions: read"):
        assert permission in docs and permission in (REPO / "action.yml").read_text(encoding="utf-8")
