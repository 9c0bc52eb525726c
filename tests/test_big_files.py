"""Issue 16 item 14: a large file is parsed piece by piece, so libcst's native parser (about 500
bytes per byte of source while it parses) never holds more than one piece, and the result is
the same module, the same positions and the same report as one whole parse."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegraph import engine, source
from stagegraph.render import render

ROOT = Path(__file__).resolve().parents[1]
#: every Python file of our own corpora that CPython accepts
CORPUS = sorted(p for p in (ROOT / "fixtures").rglob("*.py")
                if isinstance(source.screen(p.read_text(encoding="utf-8", errors="replace")), source.Screened))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.relative_to(ROOT / "fixtures").as_posix())
def test_pieces_of_every_corpus_file_join_back_to_the_same_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    screened = source.screen(text)
    assert isinstance(screened, source.Screened)
    parts = source.pieces(text, screened.statements, size=1)
    assert "".join(parts) == text
    statements = screened.statements
    if statements:  # a cut after every statement that does not share its last line with the next one
        assert len(parts) == 1 + sum(b[0] > a[1] for a, b in itertools.pairwise(statements))
    whole = cst.parse_module(text)
    joined = _parse_in_pieces(text, screened, size=1)
    assert isinstance(joined, cst.Module)
    assert joined.code == text
    assert len(joined.body) == len(whole.body)


def _parse_in_pieces(text: str, screened: source.Screened, size: int) -> cst.Module | tuple[str, int | None]:
    old = source.PIECE_BYTES
    source.PIECE_BYTES = size
    try:
        return source.parse_in_pieces("x.py", text, screened.statements)
    finally:
        source.PIECE_BYTES = old


_line = st.sampled_from([
    "x = 1\n", "# a comment\n", "\n", "    # an indented comment\n", "a = 1; b = 2\n",
    "def f(x):\n    return x\n", "def g():\n    pass\n    # end of g\n", "@dec\ndef h():\n    pass\n",
    "if x:\n    y = 1\nelse:\n    y = 2\n", "s = '''multi\nline'''\n", "t = (1,\n     2)\n",
    "class C:\n    a = 1\n\n    def m(self):\n        return 1\n", "try:\n    pass\nexcept E:\n    pass\n",
    "z = 1 \\\n    + 2\n", "with open('f') as fh:\n    fh.read()\n",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(_line, min_size=1, max_size=25), st.sampled_from(["\n", "\r\n"]), st.booleans(),
       st.integers(min_value=1, max_value=60))
def test_any_module_cut_into_pieces_prints_back_as_one_parse_does(lines: list[str], newline: str, trailing: bool,
                                                        size: int) -> None:
    text = "".join(lines).replace("\n", newline)
    if not trailing:
        text = text.rstrip("\r\n")
    screened = source.screen(text)
    if not isinstance(screened, source.Screened):
        return
    joined = _parse_in_pieces(text, screened, size)
    assert isinstance(joined, cst.Module)
    # as a whole parse prints it (libcst drops a blank line before a last indented comment with no newline)
    assert joined.code == cst.parse_module(text).code


def test_a_large_file_reaches_libcst_one_piece_at_a_time_and_reports_as_one_parse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = ("def extract_{i}():\n    return requests.get('http://api/{i}').text\n\n"
             "def clean_{i}(rows):  # a comment\n    return [r.strip() for r in rows]\n\n"
             "def load_{i}(rows):\n    open('/data/out_{i}.csv', 'w').write(''.join(rows))\n\n"
             "def main_{i}():\n    rows = extract_{i}()\n    rows = clean_{i}(rows)\n    rows = clean_{i}(rows)\n"
             "    load_{i}(rows)\n\n\n")
    (tmp_path / "big.py").write_text("import requests\n\n\n" + "".join(block.format(i=i) for i in range(40)))
    whole = render(engine.analyze([tmp_path]), "json")
    seen: list[int] = []
    real = cst.parse_module

    def spy(text: str) -> cst.Module:
        seen.append(len(text))
        return real(text)

    monkeypatch.setattr(source, "PIECE_BYTES", 1_000)
    monkeypatch.setattr(cst, "parse_module", spy)
    in_pieces = render(engine.analyze([tmp_path]), "json")
    assert len(seen) > 10 and max(seen) < 1_000 + len(block) + 50, seen
    assert json.loads(in_pieces) == json.loads(whole)
    assert json.loads(whole)["findings"]  # the comparison covers findings, with their lines


def test_a_syntax_error_libcst_finds_in_a_later_piece_names_the_line_a_whole_parse_names() -> None:
    text = "".join(f"x_{i} = {i}\n" for i in range(50)) + "print 'hello'\n" + "y = 2\n"
    screened = source.screen(text.replace("print 'hello'", "print('hello')"))
    assert isinstance(screened, source.Screened)
    result = _parse_in_pieces(text, screened, size=40)
    assert isinstance(result, tuple) and result == source.libcst_parse("x.py", text), result
