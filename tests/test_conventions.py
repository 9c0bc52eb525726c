"""Issue 13, items 14 and 16-19: what a newcomer expects from the command line (ruff's conventions).

Each test runs the real command line (in-process) on a real folder or git repository.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from workflow_helpers import make_repo, stagegraph

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"

TWO_HAZARDS = '''\
import requests


def fetch():
    return requests.get("https://api.example.com/refunds").json()


def save(rows):
    try:
        requests.post("https://hooks.example.com/x", json=rows, timeout=5)
    except Exception:
        pass


def main():
    rows = fetch()
    save(rows)
'''


def rules_of(root: Path, *args: str) -> list[str]:
    data = json.loads(stagegraph(root, "audit", ".", "--format", "json", *args).stdout)
    return sorted(f["rule"] for f in data["findings"])


def test_readme_quick_start_exits_0_and_says_where_the_report_is(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S)
    assert first is not None
    command = first.group(1).split("&&")[-1].split()
    assert command[0].endswith("stagegraph")
    shutil.copytree(FIXTURES / "legacy_etl", tmp_path / "fixtures" / "legacy_etl")
    ran = stagegraph(tmp_path, *command[1:], env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    assert ran.returncode == 0, ran.stderr
    assert "reports written to stagegraph-report/ (open stagegraph-report/report.html)" in ran.stderr
    assert (tmp_path / "stagegraph-report" / "report.html").is_file()


def test_readme_development_section_names_only_files_in_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Development"):]
    for script in re.findall(r"(?:python3?|bin/python) ((?:\.\./)?[\w./-]+\.py)", section):
        assert (REPO / script).is_file(), f"README Development calls {script}, which is not in the repository"


def test_select_ignore_extend_select_and_per_file_ignores(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/a.py": TWO_HAZARDS, "legacy/b.py": TWO_HAZARDS})
    both = ["missing-timeout", "swallowed-exception"]
    assert rules_of(root) == sorted(both * 2)
    assert rules_of(root, "--select", "missing-timeout") == ["missing-timeout"] * 2
    assert rules_of(root, "--select", "missing-timeout", "--extend-select", "swallowed-exception") == sorted(both * 2)
    assert rules_of(root, "--ignore", "missing-timeout") == ["swallowed-exception"] * 2
    (root / "stagegraph.toml").write_text('select = ["missing-timeout"]\n[per-file-ignores]\n"legacy/" = ["*"]\n',
                                          encoding="utf-8")
    assert rules_of(root) == ["missing-timeout"]
    assert rules_of(root, "--extend-select", "swallowed-exception") == both
    bad = stagegraph(root, "audit", ".", "--select", "missing-timout")
    assert bad.returncode == 2 and "unknown rule id 'missing-timout'" in bad.stderr


def test_github_annotations_statistics_and_exit_zero(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/a.py": TWO_HAZARDS})
    ran = stagegraph(root, "audit", ".", "--format", "github")
    assert ran.returncode == 1
    assert ran.stdout.splitlines() == [
        "::warning file=jobs/a.py,line=5,col=12,title=stagegraph missing-timeout::`fetch` waits without a timeout: "
        'get request to "https://api.example.com/refunds" without timeout=',
        "::warning file=jobs/a.py,line=11,col=5,title=stagegraph swallowed-exception::`save` swallows exceptions "
        "(except Exception: pass): failures vanish without a trace",
    ]
    stats = stagegraph(root, "audit", ".", "--statistics", "--exit-zero")
    assert stats.returncode == 0
    assert [line.split() for line in stats.stdout.splitlines()] == [
        ["1", "missing-timeout", "warning"], ["1", "swallowed-exception", "warning"], ["2", "total"]]


def test_gitignore_style_excludes_and_skipped_folders_are_listed(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for rel in ("jobs/a.py", "vendor/lib/b.py", "build/c.py", "env/d.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(TWO_HAZARDS, encoding="utf-8")
    ceiling = {"GIT_CEILING_DIRECTORIES": str(tmp_path)}
    data = json.loads(stagegraph(root, "audit", ".", "--format", "json", "--exclude", "vendor/", env=ceiling).stdout)
    assert sorted({f["file"] for f in data["findings"]}) == ["jobs/a.py"]
    skipped = {d["file"]: d["message"] for d in data["diagnostics"] if d["kind"] == "skipped"}
    assert set(skipped) == {"build/", "env/"}
    assert "skipped by default" in skipped["build/"]
    text = stagegraph(root, "audit", ".", "--exclude", "vendor/", env=ceiling).stdout
    assert "build/: skipped: folder skipped by default" in text


def test_terminal_lists_unknown_edges_apart_with_plurals_and_a_code_frame(tmp_path: Path) -> None:
    text = stagegraph(FIXTURES / "cases" / "getattr_dispatch", "audit", ".",
                      env={"GIT_CEILING_DIRECTORIES": str(FIXTURES / "cases")}).stdout
    real = text.split("  real dependencies:\n")[1].split("\n  ")[0] if "  real dependencies:" in text else ""
    assert "may depend on" not in real
    assert "  may depend (unknown, treated as real):\n    - " in text
    root = make_repo(tmp_path / "repo", {"jobs/a.py": TWO_HAZARDS.replace("    try:\n", "    if True:\n")
                                         .replace("    except Exception:\n        pass\n", "")})
    text = stagegraph(root, "audit", ".").stdout
    assert "1 finding: 0 errors, 1 warning, 0 notes" in text and "1 file, 1 pipeline, 2 stages" in text
    assert "1 findings" not in text and "1 files" not in text
    assert ("  jobs/a.py:5:12: warning: missing-timeout:" in text
            and '    5 |     return requests.get("https://api.example.com/refunds").json()\n'
                '      |            ^\n' in text)


def test_max_stages_folds_html_and_markdown_too(tmp_path: Path) -> None:
    steps = "".join(f"def step{i}():\n    return {i}\n\n\n" for i in range(9))
    (tmp_path / "pipe.py").write_text(steps + "def main():\n" + "".join(f"    step{i}()\n" for i in range(9)),
                                      encoding="utf-8")
    ceiling = {"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    for fmt in ("html", "markdown"):
        full = stagegraph(tmp_path, "audit", ".", "--format", fmt, "--ignore", "coincidental-order", env=ceiling)
        folded = stagegraph(tmp_path, "audit", ".", "--format", fmt, "--ignore", "coincidental-order",
                            "--max-stages", "4", env=ceiling)
        assert "more stages" in folded.stdout and "more stages" not in full.stdout, fmt
