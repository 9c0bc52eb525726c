"""Bad input is data: every broken file becomes exactly one diagnostic, the rest is still analysed.

Text fixtures live in `fixtures/bad_input/` (a healthy pipeline plus Python 2, a syntax error, latin-1
with and without a coding cookie, a BOM, an empty and a comments-only file). Binary junk, the 3 MB
file, the deep nesting, the symlink loops and the unreadable file are made in tmp_path by the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegraph.model import Diagnostic

BAD_INPUT = Path(__file__).resolve().parents[1] / "fixtures" / "bad_input"
GOOD_FILE = "good_pipeline.py"

Json = dict[str, Any]


def audit(folder: Path) -> tuple[int, Json, str]:
    from stagegraph.cli import main

    result = CliRunner().invoke(main, ["audit", str(folder), "--format", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout), result.stderr


def with_good_file(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    shutil.copy(BAD_INPUT / GOOD_FILE, folder / GOOD_FILE)
    return folder


def assert_rest_analysed(report: Json) -> None:
    assert any(p["id"] == f"{GOOD_FILE}::main" for p in report["pipelines"]), "the healthy file was not reported"
    assert not any(d["file"] == GOOD_FILE for d in report["diagnostics"])


# ------------------------------------------------------------------ files that must become one diagnostic


def _copy(name: str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        shutil.copy(BAD_INPUT / name, folder / name)
        return [name]

    return make


def _binary_junk(folder: Path) -> list[str]:
    (folder / "junk.py").write_bytes(bytes(range(256)) * 16)
    return ["junk.py"]


def _latin1_late(folder: Path) -> list[str]:
    # Undecodable bytes after the first two lines: detect_encoding says utf-8, decoding fails later.
    (folder / "late_latin1.py").write_bytes(b"import os\n\n\n\nCITY = 'Montr\xe9al'\n")
    return ["late_latin1.py"]


def _three_megabytes(folder: Path) -> list[str]:
    lines = (f"CODE_{i} = {{'id': {i}, 'label': 'generated row {i}'}}" for i in range(60_000))
    (folder / "generated_codes.py").write_text("\n".join(lines) + "\n")
    assert (folder / "generated_codes.py").stat().st_size > 3_000_000
    return ["generated_codes.py"]


def _deep_parens(folder: Path) -> list[str]:
    (folder / "deep_parens.py").write_text("x = " + "(" * 1000 + "1" + ")" * 1000 + "\n")
    return ["deep_parens.py"]


def _deep_ifs(folder: Path) -> list[str]:
    body = "".join(" " * i + "if x:\n" for i in range(1000)) + " " * 1000 + "pass\n"
    (folder / "deep_ifs.py").write_text(body)
    return ["deep_ifs.py"]


def _file_symlink_loop(folder: Path) -> list[str]:
    os.symlink("b_link.py", folder / "a_link.py")
    os.symlink("a_link.py", folder / "b_link.py")
    return ["a_link.py", "b_link.py"]


def _dir_symlink_loop(folder: Path) -> list[str]:
    (folder / "pkg").mkdir()
    os.symlink("..", folder / "pkg" / "up")
    return ["pkg/up"]


def _unreadable(folder: Path) -> list[str]:
    path = folder / "secret_job.py"
    path.write_text("def a():\n    return 1\n")
    path.chmod(0)
    try:
        path.read_bytes()
    except PermissionError:
        return ["secret_job.py"]
    path.chmod(0o644)
    pytest.skip("running as root: chmod 000 does not stop reads, so the file cannot be made unreadable")


BAD_CASES = [
    pytest.param(_copy("python2_print.py"), "syntax-error", "Python 2", id="python2"),
    pytest.param(_copy("syntax_error.py"), "syntax-error", "cannot parse", id="syntax-error"),
    pytest.param(_binary_junk, "encoding-error", "binary", id="binary-junk"),
    pytest.param(_copy("latin1_no_cookie.py"), "encoding-error", "decode", id="latin1-no-cookie"),
    pytest.param(_latin1_late, "encoding-error", "decode", id="latin1-later-line"),
    pytest.param(_three_megabytes, "too-large", "limit", id="three-megabytes"),
    pytest.param(_deep_parens, "syntax-error", "nested", id="deep-parentheses"),
    pytest.param(_deep_ifs, "syntax-error", "", id="deep-ifs"),
    pytest.param(_file_symlink_loop, "unreadable", "symbolic links", id="file-symlink-loop"),
    pytest.param(_dir_symlink_loop, "skipped", "symlink loop", id="dir-symlink-loop"),
    pytest.param(_unreadable, "unreadable", "permission", id="unreadable"),
]


@pytest.mark.parametrize(("make", "kind", "words"), BAD_CASES)
def test_bad_file_is_one_diagnostic(tmp_path: Path, make: Callable[[Path], list[str]], kind: str, words: str) -> None:
    folder = with_good_file(tmp_path)
    bad = make(folder)
    code, report, stderr = audit(folder)
    assert code in (0, 1), stderr
    assert "Traceback" not in stderr
    for name in bad:
        mine = [d for d in report["diagnostics"] if d["file"] == name]
        assert len(mine) == 1, f"{name}: expected one diagnostic, got {mine or 'none'}"
        assert mine[0]["kind"] == kind, mine[0]
        assert words.lower() in mine[0]["message"].lower(), mine[0]["message"]
    assert_rest_analysed(report)


# ------------------------------------------------------------------ files that are fine


@pytest.mark.parametrize(
    ("name", "pipeline"),
    [
        ("latin1_with_cookie.py", "latin1_with_cookie.py::main"),
        ("utf8_bom.py", "utf8_bom.py::main"),
        ("empty.py", None),
        ("comments_only.py", None),
    ],
)
def test_odd_but_valid_file_is_analysed(tmp_path: Path, name: str, pipeline: str | None) -> None:
    folder = with_good_file(tmp_path)
    shutil.copy(BAD_INPUT / name, folder / name)
    code, report, stderr = audit(folder)
    assert code in (0, 1) and "Traceback" not in stderr
    assert not report["diagnostics"], report["diagnostics"]
    assert report["summary"]["files_analysed"] == 2
    if pipeline is not None:
        found = next(p for p in report["pipelines"] if p["id"] == pipeline)
        assert len(found["stages"]) == 2
    assert_rest_analysed(report)


def test_cookie_decodes_the_text() -> None:
    from stagegraph.source import SourceFile, read_source

    text = read_source(SourceFile(BAD_INPUT / "latin1_with_cookie.py", "latin1_with_cookie.py"))
    assert isinstance(text, str) and "Montréal" in text


def test_bom_is_stripped() -> None:
    from stagegraph.source import SourceFile, read_source

    text = read_source(SourceFile(BAD_INPUT / "utf8_bom.py", "utf8_bom.py"))
    assert isinstance(text, str) and text.startswith('"""Saved')


# ------------------------------------------------------------------ the whole mess at once, as a user runs it


def test_everything_at_once_in_a_real_process(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    shutil.copytree(BAD_INPUT, folder)
    made = [
        *_binary_junk(folder), *_three_megabytes(folder), *_deep_ifs(folder),
        *_file_symlink_loop(folder), *_dir_symlink_loop(folder),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "stagegraph", "audit", str(folder), "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    by_file: dict[str, list[str]] = {}
    for d in report["diagnostics"]:
        by_file.setdefault(d["file"], []).append(d["kind"])
    expected = {
        "python2_print.py": ["syntax-error"], "syntax_error.py": ["syntax-error"],
        "latin1_no_cookie.py": ["encoding-error"], "junk.py": ["encoding-error"],
        "generated_codes.py": ["too-large"], "deep_ifs.py": ["syntax-error"],
        "a_link.py": ["unreadable"], "b_link.py": ["unreadable"], "pkg/up": ["skipped"],
    }
    assert set(made) <= set(expected)
    assert by_file == expected
    ids = {p["id"] for p in report["pipelines"]}
    assert {"good_pipeline.py::main", "latin1_with_cookie.py::main", "utf8_bom.py::main"} <= ids


# ------------------------------------------------------------------ property: nothing crashes the parser or the engine

PYTHONISH = st.lists(
    st.sampled_from([
        "def ", "class ", "f", "x", "self", ".", "(", ")", "[", "]", "{", "}", ":", ",", "=", " ", "\n", "    ",
        "return ", "global ", "for ", " in ", "if ", "else", "try", "except", "with ", "open(", "'a.csv'", "'w'",
        "print ", "lambda", "yield ", "async ", "await ", "@", "#", "\\", "'''", '"', "0", "1j", "\t", "\x00",
        "é", "\r", "getattr(", "execute('INSERT INTO t SELECT * FROM s')", "__name__ == '__main__'",
    ]),
    max_size=60,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), PYTHONISH))
def test_parse_text_never_raises(text: str) -> None:
    from stagegraph.source import ParsedModule, parse_text

    result = parse_text("random.py", text)
    assert isinstance(result, ParsedModule | Diagnostic)
    if isinstance(result, Diagnostic):
        assert result.kind == "syntax-error" and result.message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), PYTHONISH.map(str.encode)))
def test_analyze_never_raises(data: bytes) -> None:
    from stagegraph.engine import analyze

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "random_input.py").write_bytes(data)
        shutil.copy(BAD_INPUT / GOOD_FILE, folder / GOOD_FILE)
        report = analyze([folder])
    assert not [d for d in report.diagnostics if d.kind == "internal-error"], report.diagnostics
    assert len([d for d in report.diagnostics if d.file == "random_input.py"]) <= 1
    assert any(p.id == f"{GOOD_FILE}::main" for p in report.pipelines)
