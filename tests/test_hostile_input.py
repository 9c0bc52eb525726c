"""Hostile and pathological input (issue 16): no crash, no lost result, nothing run, nothing read or
written outside the analysed repository.

Each test reproduces one item of the issue. Files that could crash the process run through the real
CLI in a subprocess, so a regression fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stagegraph.render.json import schema

Json = dict[str, Any]

#: a driver whose dedup runs before its validation: one error, exit status 1
GOOD_PIPELINE = '''\
import pandas as pd


def extract():
    return pd.read_csv("orders.csv")


def dedup(df):
    return df.drop_duplicates()


def validate(df):
    return df[df.amount > 0]


def load(df):
    df.to_csv("out.csv")


def main():
    df = extract()
    df = dedup(df)
    df = validate(df)
    load(df)
'''
GOOD_RULE = "dedup-before-validation"


def stage_holding(expression: str) -> str:
    """A small pipeline whose middle stage computes `expression` from its argument `a`."""
    return (
        "def first():\n    return read_rows()\n\n\n"
        f"def middle(a):\n    return {expression}\n\n\n"
        "def main():\n    a = first()\n    b = middle(a)\n    save(b)\n"
    )


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "good.py").write_text(GOOD_PIPELINE)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return repo


def cli(*args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """The installed CLI in its own process: a native crash shows up as a return code, not a dead pytest."""
    return subprocess.run([sys.executable, "-m", "stagegraph", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env, check=False)


def audit_json(repo: Path, *extra: str, timeout: float = 120) -> tuple[int, Json, str]:
    proc = cli("audit", str(repo), "--format", "json", *extra, timeout=timeout)
    assert proc.stdout, f"no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def audit_in_process(repo: Path, *extra: str) -> tuple[int, Json, str]:
    from stagegraph.cli import main

    result = CliRunner().invoke(main, ["audit", str(repo), "--format", "json", *extra], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout), result.stderr


def assert_good_reported(code: int, report: Json) -> None:
    assert code == 1, "the good pipeline's error must still set the exit status"
    assert any(p["id"].endswith("good.py::main") for p in report["pipelines"]), report["diagnostics"]
    assert [f["rule"] for f in report["findings"] if _is(f["file"], "good.py")] == [GOOD_RULE]


def _is(reported: str, name: str) -> bool:
    """A reported path names `name` (paths are relative to the repository root, or the current folder)."""
    return reported == name or reported.endswith("/" + name)


def diagnostics_of(report: Json, name: str) -> list[Json]:
    return [d for d in report["diagnostics"] if _is(d["file"], name)]


def assert_schema_valid(report: Json) -> None:
    import jsonschema

    jsonschema.validate(report, schema())


# ------------------------------------------------------------------ 1-3: native crash, RecursionError, lost results

#: chains CPython rejects; libcst's native parser crashed the process (exit 139) or hung on several
CPYTHON_REJECTS = {
    "sum": "x = " + " + ".join(["a"] * 8000) + "\n",
    "lambda": "x = " + "lambda: " * 4000 + "1\n",
    "attribute": "x = a" + ".attr" * 8000 + "\n",
    "subscript": "x = a" + "[0]" * 8000 + "\n",
    "ternary": "x = " + "a if c else " * 4000 + "b\n",
}


def test_native_parser_crash_costs_one_diagnostic(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {f"crash_{name}.py": text for name, text in CPYTHON_REJECTS.items()})
    code, report, _stderr = audit_json(repo)
    assert_good_reported(code, report)
    for name in CPYTHON_REJECTS:
        mine = diagnostics_of(report, f"crash_{name}.py")
        assert len(mine) == 1, (name, report["diagnostics"])
        assert (mine[0]["kind"], mine[0].get("code")) in {("syntax-error", "too-deep"), ("skipped", "too-deep")}
        assert "deep" in mine[0]["message"], mine[0]
    assert_schema_valid(report)


def test_a_parser_that_dies_costs_one_diagnostic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files the screen flags as risky are parsed by a worker process; a worker that dies is one diagnostic."""
    from stagegraph import engine, isolation, source

    monkeypatch.setattr(isolation, "WORKER_COMMAND", [sys.executable, "-c", "import os; os.abort()"])
    monkeypatch.setattr(source, "_worker", isolation.ParseWorker())
    deep = "x = a" + ".b" * (source.RISKY_DEPTH + 10) + "\n"
    repo = make_repo(tmp_path, {"risky.py": deep})
    report = engine.analyze([repo])
    mine = [d for d in report.diagnostics if d.file == "risky.py"]
    assert [(d.kind, d.code) for d in mine] == [("internal-error", "parser-crash")], mine
    assert any(p.id == "good.py::main" for p in report.pipelines)


def test_recursion_error_in_a_function_is_one_diagnostic(tmp_path: Path) -> None:
    """A function holding a 1,000-attribute chain (CPython compiles it) used to exit 2 with no report."""
    attrs = "def helper(a):\n    zz = a" + ".b" * 1000 + "\n    return zz\n"
    repo = make_repo(tmp_path, {"attrs.py": attrs})
    code, report, stderr = audit_json(repo)
    assert "internal error" not in stderr
    assert_good_reported(code, report)
    assert len(diagnostics_of(report, "attrs.py")) <= 1
    assert all(d["file"] != "." for d in report["diagnostics"]), report["diagnostics"]


def test_one_deep_file_never_wipes_the_others(tmp_path: Path) -> None:
    """A stage holding a 500-term sum (valid Python) reported 0 pipelines and exit 0, blaming the file `.`."""
    repo = make_repo(tmp_path, {"deep.py": stage_holding(" + ".join(["a"] * 500))})
    code, report, _ = audit_json(repo)
    assert_good_reported(code, report)
    assert all(d["file"] != "." for d in report["diagnostics"]), report["diagnostics"]
    assert len(diagnostics_of(report, "deep.py")) <= 1


@pytest.fixture()
def shallow_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let deep code past the depth gate into the facts layer, with a small recursion budget there."""
    from stagegraph import isolation, source

    monkeypatch.setattr(source, "MAX_DEPTH", 100_000)
    monkeypatch.setattr(source, "RISKY_DEPTH", 100_000)
    monkeypatch.setattr(isolation, "RECURSION_LIMIT", 1_000)


@pytest.mark.usefixtures("shallow_stack")
@pytest.mark.parametrize("where", ["helper", "stage"])
def test_recursion_error_past_the_gate_is_isolated_per_file(tmp_path: Path, where: str) -> None:
    """Behind the depth gate, the isolation points still hold: RecursionError costs one diagnostic naming the file."""
    chain = "a" + ".b" * 1000
    text = f"def helper(a):\n    zz = {chain}\n    return zz\n" if where == "helper" else stage_holding(chain)
    repo = make_repo(tmp_path, {"deep.py": text})
    code, report, _stderr = audit_in_process(repo)
    assert_good_reported(code, report)
    assert all(d["file"] != "." for d in report["diagnostics"]), report["diagnostics"]
    mine = diagnostics_of(report, "deep.py")
    assert len(mine) == 1, report["diagnostics"]
    assert "deep" in mine[0]["message"]


# ------------------------------------------------------------------ 4-7: odd files, interrupts, half-written outputs


def _as_unprivileged() -> list[str]:
    """A command prefix that runs without root's override of file permissions (empty when not root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to bite")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]


def test_unreadable_folder_is_one_diagnostic() -> None:
    prefix = _as_unprivileged()
    base = Path(tempfile.mkdtemp(prefix="stagegraph-perm-"))
    try:
        base.chmod(0o755)
        repo = base / "repo"
        repo.mkdir()
        (repo / "good.py").write_text(GOOD_PIPELINE)
        locked = repo / "locked"
        locked.mkdir()
        (locked / "job.py").write_text("def a():\n    return 1\n")
        locked.chmod(0)
        proc = subprocess.run([*prefix, sys.executable, "-m", "stagegraph", "audit", str(repo), "--format", "json"],
                              capture_output=True, text=True, timeout=120, cwd=base, check=False,
                              env={**os.environ, "HOME": str(base)})
        assert proc.stdout, proc.stderr
        report = json.loads(proc.stdout)
        assert_good_reported(proc.returncode, report)
        mine = diagnostics_of(report, "locked")
        assert [d["kind"] for d in mine] == ["unreadable"], report["diagnostics"]
        assert "permission" in mine[0]["message"].lower()
    finally:
        (base / "repo" / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_fifo_in_the_tree_is_a_diagnostic_not_a_hang(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    os.mkfifo(repo / "pipe.py")
    code, report, _ = audit_json(repo, timeout=60)  # used to block forever on open()
    assert_good_reported(code, report)
    mine = diagnostics_of(report, "pipe.py")
    assert [(d["kind"], d.get("code")) for d in mine] == [("unreadable", "not-a-file")], report["diagnostics"]


def test_fifo_given_as_the_argument_is_a_diagnostic(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    proc = cli("audit", str(tmp_path / "pipe.py"), "--format", "json", timeout=60)
    report = json.loads(proc.stdout)
    assert [d.get("code") for d in report["diagnostics"]] == ["not-a-file"], report  # was silently "0 files"


def _many_files(repo: Path, count: int) -> None:
    for i in range(count):
        (repo / f"job_{i}.py").write_text(GOOD_PIPELINE.replace("orders", f"orders_{i}"))


def test_sigint_exits_130_and_leaves_no_output_claiming_to_be_complete(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    _many_files(repo, 600)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "stagegraph", "audit", str(repo), "--out-dir", str(out),
                             "--output", str(tmp_path / "report.txt")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    assert proc.poll() is None, "the run finished before it could be interrupted; give it more files"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not (tmp_path / "report.txt").exists()
    assert not out.exists() or not any(out.iterdir())


def _limited_run(args: list[str], max_bytes: int) -> subprocess.CompletedProcess[str]:
    """The CLI with a file-size limit (EFBIG once a write passes it), standing in for a full disk."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run([sys.executable, "-m", "stagegraph", *args], capture_output=True, text=True,
                          timeout=120, preexec_fn=limit, check=False)


def test_out_dir_is_all_or_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    out = tmp_path / "out"
    first = cli("audit", str(repo), "--out-dir", str(out), "--format", "json")
    assert first.returncode == 1, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"report.json", "report.html", "report.md", "report.sarif", "graph.dot"} <= set(before)
    # a second, larger run hits the size limit part-way through the set
    _many_files(repo, 3)
    html_size = len(before["report.html"])
    proc = _limited_run(["audit", str(repo), "--out-dir", str(out), "--format", "json"], html_size + 200)
    assert proc.returncode == 2, proc.stderr
    assert str(out) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before, "a failed run must leave the previous complete set, not a mix"


def test_output_file_is_replaced_atomically(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    target = tmp_path / "report.json"
    target.write_text('{"previous": true}')
    proc = _limited_run(["audit", str(repo), "--format", "json", "--output", str(target)], 100)
    assert proc.returncode == 2, proc.stderr
    assert str(target) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(target.read_text()) == {"previous": True}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "temp files were left behind"


def test_an_output_that_is_not_a_regular_file_is_written_not_replaced(tmp_path: Path) -> None:
    """`-o /dev/null` as root renamed a regular file over the device. A named pipe stands in for it
    here: written through (its reader gets the report), still a pipe afterwards, no temp file left."""
    repo = make_repo(tmp_path, {})
    pipe = tmp_path / "report.pipe"
    os.mkfifo(pipe)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()))
    reader.start()
    argv = [sys.executable, "-m", "stagegraph", "audit", str(repo), "--format", "json", "--output", str(pipe)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    reader.join(timeout=60)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert stat.S_ISFIFO(pipe.stat().st_mode), "the pipe was replaced by a file"
    assert got and "summary" in json.loads(got[0])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------ 8-10: the analysed repository acts on the auditor


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def _hostile_git_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A work tree whose own .git/config would run a command (creating `marker`) from any git call."""
    repo = make_repo(tmp_path, {})
    marker = tmp_path / "marker"
    _git(repo, "init", "-q")
    _git(repo, "add", "good.py")
    _git(repo, "commit", "-q", "-m", "one")
    command = f"touch {marker}; false"
    for key in ("core.fsmonitor", "core.pager", "pager.ls-files", "diff.external", "core.sshCommand"):
        _git(repo, "config", key, command)
    _git(repo, "config", "core.hooksPath", str(tmp_path / "hooks"))
    (tmp_path / "hooks").mkdir()
    for hook in ("post-checkout", "post-index-change", "reference-transaction"):
        (tmp_path / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (tmp_path / "hooks" / hook).chmod(0o755)
    assert not marker.exists()
    return repo, marker


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["audit", "diff", "hook"])
def test_git_config_of_the_analysed_repo_runs_nothing(tmp_path: Path, mode: str) -> None:
    repo, marker = _hostile_git_repo(tmp_path)
    (repo / "good.py").write_text(GOOD_PIPELINE + "\n# changed\n")
    if mode == "audit":
        proc = cli("audit", str(repo), "--format", "json")
    elif mode == "diff":
        proc = cli("audit", str(repo), "--format", "json", "--diff-base", "HEAD")
    else:
        proc = cli("hook", "good.py", cwd=repo)
    assert proc.returncode in (0, 1), proc.stderr
    assert not marker.exists(), "a command from the analysed repository's .git/config was executed"


def test_config_out_dir_outside_the_repo_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"pyproject.toml": '[tool.stagegraph]\nout-dir = "../elsewhere"\n'})
    (repo / ".git").mkdir()
    proc = cli("audit", str(repo), cwd=repo)
    assert not (tmp_path / "elsewhere").exists(), "the analysed repo's config wrote outside the repo"
    assert "out-dir" in proc.stderr and "outside" in proc.stderr, proc.stderr


def test_format_to_stdout_writes_nothing_else(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"pyproject.toml": '[tool.stagegraph]\nout-dir = "audit"\n'})
    proc = cli("audit", str(repo), "--format", "sarif", cwd=repo)
    assert json.loads(proc.stdout)["version"] == "2.1.0"
    assert not (repo / "audit").exists(), "--format to stdout also wrote the config's out-dir"
    plain = cli("audit", str(repo), cwd=repo)  # without --format the configured out-dir is still honoured
    assert plain.returncode == 1 and (repo / "audit" / "report.json").exists(), plain.stderr


def test_config_catalogs_outside_the_repo_are_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.toml"
    outside.write_text("this is not toml at all [[[\n")  # reading it would be a usage error, exit 2
    repo = make_repo(tmp_path, {"pyproject.toml": f'[tool.stagegraph]\nrule-catalogs = ["{outside}"]\n'
                                                  'resource-catalogs = ["../outside.toml", "/etc/passwd"]\n'})
    (repo / ".git").mkdir()
    code, report, _stderr = audit_json(repo)
    assert_good_reported(code, report)
    refused = [d for d in report["diagnostics"] if d.get("code") == "outside-repo"]
    assert len(refused) == 3 and all(d["file"] == "pyproject.toml" for d in refused), report["diagnostics"]


AIRFLOW_DAG = '''\
import airflow
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

dag = airflow.DAG("marts", template_searchpath=["/etc", "../../outside"])
a = SQLExecuteQueryOperator(task_id="a", sql="../../outside/secret.sql", dag=dag)
b = SQLExecuteQueryOperator(task_id="b", sql="{absolute}", dag=dag)
c = SQLExecuteQueryOperator(task_id="c", sql="secret2.sql", dag=dag)
d = SQLExecuteQueryOperator(task_id="d", sql="inside.sql", dag=dag)
a >> b >> c >> d
'''


def test_airflow_sql_paths_are_confined_to_the_repo(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.sql").write_text("INSERT INTO leaked_one SELECT 1")
    (outside / "secret2.sql").write_text("INSERT INTO leaked_two SELECT 1")
    (outside / "abs.sql").write_text("INSERT INTO leaked_three SELECT 1")
    repo = make_repo(tmp_path, {"dags/marts.py": AIRFLOW_DAG.format(absolute=outside / "abs.sql"),
                                "dags/inside.sql": "INSERT INTO marts.kept SELECT 1"})
    (repo / ".git").mkdir()
    code, report, _ = audit_json(repo)
    assert_good_reported(code, report)
    text = json.dumps(report)
    assert "leaked" not in text, "a file outside the repo was read into the report"
    assert "marts.kept" in text
    unresolved = [d for d in report["diagnostics"] if d["file"] == "dags/marts.py" and "outside" in d["message"]]
    assert len(unresolved) == 3, report["diagnostics"]


# ------------------------------------------------------------------ 11-13: code-derived text reaches a person

HOSTILE_STRINGS = ["\x1b[2J", "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\", "\x9b31m", "\u202eevil"]


def _hostile_report() -> Any:
    """A report whose every text field carries terminal escapes, bidi overrides and forged lines."""
    from stagegraph.engine import make_report
    from stagegraph.model import Diagnostic, Finding

    nasty = "".join(HOSTILE_STRINGS)
    name = "x\nforged.py:1: error: fake-rule: forged line" + nasty
    finding = Finding(rule="dedup-before-validation", severity="error", message=f"reads {nasty} https://evil.example/x",
                      file=name, line=1, pipeline=None, fingerprint="f" * 16)
    diagnostic = Diagnostic(name, "syntax-error", f"cannot parse {nasty} www.evil.example")
    return make_report((), (finding,), (diagnostic,), 1)


def _assert_inert(text: str) -> None:
    for ch in text:
        assert ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F), f"control character {ch!r} in output"
        assert ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", f"bidi control {ch!r} in output"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "dot", "mermaid"])
def test_human_formats_escape_control_and_bidi_characters(fmt: str) -> None:
    from stagegraph.render import render

    out = render(_hostile_report(), fmt)
    _assert_inert(out)
    if fmt == "text":
        assert not any(line.startswith("forged.py") for line in out.splitlines()), "a file name forged a line"


def test_hook_output_escapes_control_characters() -> None:
    from stagegraph.hook import render_compact

    _assert_inert(render_compact(_hostile_report(), frozenset()))


def test_progress_bar_takes_file_names_literally(tmp_path: Path) -> None:
    """`x[/bold].py` crashed rich's refresh thread with a MarkupError; escapes reached the terminal."""
    import io

    from rich.console import Console

    from stagegraph import cli as cli_module

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200)
    update = cli_module._progress_bar(console=console)
    assert update is not None
    for i, name in enumerate(["x[/bold].py", "y[link=http://e]z[/link].py", "\x1b[2Jq\u202e.py"]):
        update(i, 3, name)
    update(3, 3, "")
    out = buffer.getvalue()
    assert "\x1b[2J" not in out and "\u202e" not in out


def test_markdown_has_no_autolinks() -> None:
    import re

    from stagegraph.render import render

    out = re.sub(r"(`+).+?\1", "", render(_hostile_report(), "markdown"))  # code spans are never autolinked
    out = re.sub(r"```mermaid.*?```", "", out, flags=re.S)
    for plain in ("https://evil.example", "http://evil.example", "www.evil.example"):
        assert plain not in out, f"{plain} would become a link on GitHub"


def test_html_forbids_scripts_and_remote_loads() -> None:
    from stagegraph.render.html import render

    out = render(_hostile_report())
    head = out[: out.index("</head>")]
    assert 'http-equiv="Content-Security-Policy"' in head
    policy = head.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    assert "default-src 'none'" in policy and "script-src 'none'" in policy


def test_sarif_keeps_backslashes_in_file_names() -> None:
    from stagegraph.render import sarif

    assert sarif.uri("src\\x.py") == "src%5Cx.py"
    assert sarif.uri("./a b/c.py") == "a%20b/c.py"


# ------------------------------------------------------------------ 14: bounded cost


def test_dot_gets_a_size_budget_not_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph Graphviz cannot lay out is refused up front (a note), instead of a 60 s timeout per run."""
    from stagegraph.render import dot

    monkeypatch.setattr(dot.shutil, "which", lambda name: "/usr/bin/dot")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("dot was started on a graph over the budget")

    monkeypatch.setattr(dot.subprocess, "run", never)
    source = "digraph g {\n" + "".join(f"  s{i} -> s{i + 1};\n" for i in range(dot.DOT_MAX_EDGES + 1)) + "}\n"
    with pytest.raises(dot.GraphvizError, match="not drawn"):
        dot.svg_from_source(source)


def _many_pipelines(n: int) -> str:
    """One module of n small two-stage pipelines: about 200 bytes of source each."""
    return "".join(f"def extract_{i}():\n    return open('/data/in_{i}.csv').read()\n\n\n"
                   f"def load_{i}(x):\n    open('/data/out_{i}.csv', 'w').write(x)\n\n\n"
                   f"def main_{i}():\n    load_{i}(extract_{i}())\n\n\n" for i in range(n))


def test_a_file_over_the_memory_budget_is_one_diagnostic_and_the_rest_is_reported(tmp_path: Path) -> None:
    """A file whose analysis would not fit the memory left is left out with a diagnostic naming it,
    instead of the whole run being OOM-killed; the good pipeline is still reported with its exit code."""
    repo = make_repo(tmp_path, {"big.py": _many_pipelines(2000)})
    code, report, _ = audit_json(repo, "--no-cache", "--max-memory", "40M")
    assert_good_reported(code, report)
    [over] = diagnostics_of(report, "big.py")
    assert (over["kind"], over["code"]) == ("skipped", "over-memory-budget")
    assert "--max-memory" in over["message"]
    assert not any(p["file"].endswith("big.py") for p in report["pipelines"])
    assert_schema_valid(report)
    code, report, _ = audit_json(repo, "--no-cache", "--max-memory", "4G")
    assert not diagnostics_of(report, "big.py")
    assert sum(p["file"].endswith("big.py") for p in report["pipelines"]) == 2000


def test_a_run_that_left_a_file_out_for_memory_is_not_cached(tmp_path: Path) -> None:
    """The next run, with room for the file, must analyse it rather than replay the diagnostic."""
    repo = make_repo(tmp_path, {"big.py": _many_pipelines(2000)})
    cache = tmp_path / "cache"
    _, report, _ = audit_json(repo, "--cache-dir", str(cache), "--max-memory", "40M")
    assert diagnostics_of(report, "big.py")
    _, report, _ = audit_json(repo, "--cache-dir", str(cache), "--max-memory", "4G")
    assert not diagnostics_of(report, "big.py")


def test_max_memory_takes_sizes_and_refuses_nonsense(tmp_path: Path) -> None:
    from stagegraph.memory import parse_size

    assert [parse_size(t) for t in ("800M", "4g", "1.5GiB", "2000000", "64kb")] == [
        800 << 20, 4 << 30, 3 << 29, 2_000_000, 64 << 10]
    for bad in ("", "0", "4X", "-1G", "lots"):
        with pytest.raises(ValueError):
            parse_size(bad)
    repo = make_repo(tmp_path, {})
    proc = cli("audit", str(repo), "--max-memory", "4X")
    assert proc.returncode == 2 and "--max-memory" in proc.stderr
    env = {**os.environ, "STAGEGRAPH_MAX_MEMORY": "1k", "STAGEGRAPH_NO_CACHE": "1"}
    proc = cli("audit", str(repo), "--format", "json", env=env)
    assert [d["code"] for d in json.loads(proc.stdout)["diagnostics"]] == ["over-memory-budget"]


def test_the_memory_estimate_is_an_upper_bound_of_what_an_audit_takes(tmp_path: Path) -> None:
    """The budget must predict at least what a file really costs, or it cannot prevent an OOM kill:
    the peak of auditing a 0.5 MB file, less the peak of auditing a tiny one, is under the prediction."""
    from stagegraph.memory import FACTS_FACTOR, PARSE_COST

    def peak(folder: Path) -> int:
        proc = subprocess.Popen([sys.executable, "-m", "stagegraph", "audit", str(folder), "--no-cache",
                                 "--jobs", "1", "--format", "json", "-o", os.devnull],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        return usage.ru_maxrss * 1024

    tiny, big = tmp_path / "tiny", tmp_path / "big"
    tiny.mkdir()
    big.mkdir()
    (tiny / "p.py").write_text(_many_pipelines(1))
    text = _many_pipelines(4000)
    (big / "p.py").write_text(text)
    assert peak(big) - peak(tiny) < len(text) * PARSE_COST * FACTS_FACTOR


def _chain_driver(n: int) -> str:
    stages = "".join(f"def stage_{i}(x):\n    return [v + {i} for v in x]\n\n\n" for i in range(n))
    body = "".join(f"    x = stage_{i}(x)\n" for i in range(n))
    return stages + f"def main():\n    x = [1]\n{body}    print(x)\n"


def test_a_long_linear_chain_costs_linear_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairwise conflict checks and reachability sets grew n²: count the conflict checks instead of timing."""
    from stagegraph import engine, graph

    calls = {"n": 0}
    real = graph.conflicts

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(graph, "conflicts", counting)
    (tmp_path / "chain.py").write_text(_chain_driver(400))
    report = engine.analyze([tmp_path])
    [pipeline] = report.pipelines
    assert len(pipeline.stages) == 400
    assert sum(e.kind == "data" for e in pipeline.edges) == 399
    assert calls["n"] < 4 * 400, f"{calls['n']} conflict checks for 400 stages (all pairs would be 79,800)"


# ------------------------------------------------------------------ fuzz and mutation: deep and random code in stages

CHAINS = {
    "sum": lambda n: " + ".join(["a"] * n),
    "attribute": lambda n: "a" + ".b" * n,
    "call": lambda n: "a" + "()" * n,
    "subscript": lambda n: "a" + "[0]" * n,
    "lambda": lambda n: "lambda: " * n + "a",
    "ternary": lambda n: "a if c else " * n + "a",
    "not": lambda n: "not " * n + "a",
    "list": lambda n: "[" * n + "a" + "]" * n,
}


def _deep_repo(tmp_path: Path, kind: str, depth: int) -> Path:
    return make_repo(tmp_path / f"{kind}{depth}", {"deep.py": stage_holding(CHAINS[kind](depth))})


@pytest.mark.parametrize("kind", sorted(CHAINS))
def test_growing_deep_chains_inside_a_stage(tmp_path: Path, kind: str) -> None:
    """Mutation test: a chain inside a stage grows past every limit; up to the depth gate the file is
    analysed, past it the file is one diagnostic, and the good pipeline is reported throughout."""
    from stagegraph import engine, source

    for depth in (40, source.RISKY_DEPTH + 20, source.MAX_DEPTH - 20, source.MAX_DEPTH + 20, 1_500):
        report = engine.analyze([_deep_repo(tmp_path, kind, depth)])
        assert any(p.id == "good.py::main" for p in report.pipelines), (kind, depth, report.diagnostics)
        assert all(d.file in ("good.py", "deep.py") for d in report.diagnostics), (kind, depth, report.diagnostics)
        mine = [d for d in report.diagnostics if d.file == "deep.py"]
        assert len(mine) <= 1, (kind, depth, mine)
        analysable = source.MAX_BRACKET_DEPTH if kind == "list" else source.MAX_DEPTH - 20  # CPython's own limit
        if depth <= analysable:  # "depth" counts chain links; the tree is a few levels deeper
            assert any(p.id == "deep.py::main" for p in report.pipelines), (kind, depth, mine)
        else:
            assert [d.code for d in mine] == ["too-deep"], (kind, depth, mine)


def _indent(program: str) -> str:
    return "".join("        " + line if line.strip() else line for line in program.splitlines(keepends=True))


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
def test_hypothesmith_programs_inside_stage_bodies() -> None:
    """Random valid programs placed inside the stages of a small pipeline never crash the run or cost the
    good pipeline; bounded (8 examples) to keep the suite fast. benchmarks/fuzz_stages.py runs more."""
    hypothesmith = pytest.importorskip("hypothesmith")
    from hypothesis import HealthCheck, given, settings

    from stagegraph import engine

    examples = int(os.environ.get("STAGEGRAPH_FUZZ_EXAMPLES", "8"))  # benchmarks/fuzz_stages.py raises it

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(hypothesmith.from_node())
    def check(program: str) -> None:
        text = fuzz_pipeline(program, program)
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp)
            (repo / "good.py").write_text(GOOD_PIPELINE)
            (repo / "fuzz.py").write_text(text)
            report = engine.analyze([repo])
        assert any(p.id == "good.py::main" for p in report.pipelines), report.diagnostics
        assert all(d.file in ("good.py", "fuzz.py") for d in report.diagnostics), report.diagnostics

    check()


def fuzz_pipeline(first: str, second: str) -> str:
    """A three-stage driver whose first two stages run the given programs (inside a try, so that a
    program ending in `return` or `raise` still leaves a function body)."""
    return (
        "import pandas as pd\n\n\n"
        f"def extract(a):\n    try:\n{_indent(first) or '        pass'}\n    except Exception:\n        pass\n"
        "    return pd.read_csv('in.csv')\n\n\n"
        f"def transform(a):\n    try:\n{_indent(second) or '        pass'}\n    finally:\n        pass\n"
        "    return a\n\n\n"
        "def load(a):\n    a.to_csv('out.csv')\n\n\n"
        "def main():\n    a = extract(1)\n    b = transform(a)\n    load(b)\n"
    )


# ------------------------------------------------------------------ done when: every reproducer in one tree


@pytest.mark.slow
def test_every_reproducer_in_one_tree(tmp_path: Path) -> None:
    """One repository holding every reproducer plus a good pipeline: the good pipeline's findings and exit
    code, one diagnostic per bad file naming it, nothing executed, nothing read or written outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.sql").write_text("INSERT INTO leaked_table SELECT 1")
    files = {f"crash_{name}.py": text for name, text in CPYTHON_REJECTS.items()}
    files.update({
        "attrs.py": "def helper(a):\n    zz = a" + ".b" * 1000 + "\n    return zz\n",
        "deep.py": stage_holding(" + ".join(["a"] * 500)),
        "dags/marts.py": AIRFLOW_DAG.format(absolute=outside / "secret.sql"),
        "strings.py": stage_holding(repr("".join(HOSTILE_STRINGS) + " https://evil.example/")),
        "x[/bold].py": "X = 1\n",
        "pyproject.toml": f'[tool.stagegraph]\nout-dir = "../elsewhere"\nrule-catalogs = ["{outside}/r.toml"]\n',
    })
    repo = make_repo(tmp_path, files)
    os.mkfifo(repo / "pipe.py")
    repo_git, marker = repo, tmp_path / "marker"
    _git(repo_git, "init", "-q")
    _git(repo_git, "config", "core.fsmonitor", f"touch {marker}; false")
    before = sorted(p.name for p in tmp_path.iterdir())
    started = time.monotonic()
    proc = cli("audit", str(repo), "--format", "json", timeout=300)
    elapsed = time.monotonic() - started
    report = json.loads(proc.stdout)
    assert_good_reported(proc.returncode, report)
    assert_schema_valid(report)
    bad = [*(f"crash_{n}.py" for n in CPYTHON_REJECTS), "attrs.py", "deep.py", "pipe.py"]
    for name in bad:
        assert len(diagnostics_of(report, name)) == 1, (name, report["diagnostics"])
    assert all(d["file"] != "." for d in report["diagnostics"]), report["diagnostics"]
    assert not marker.exists(), "the repo's git config ran a command"
    assert "leaked_table" not in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written outside the repo"
    assert elapsed < 240, f"took {elapsed:.0f} s"
    text = cli("audit", str(repo), "--format", "text", timeout=300).stdout
    _assert_inert(text)
