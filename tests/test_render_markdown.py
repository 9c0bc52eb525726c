"""The Markdown PR comment: marker, verdict, findings table, collapsible pipelines, inert analysed text, size limit."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from render_samples import big_report, hostile_report, sample_report, summarise

from stagegraph.model import Finding, Report
from stagegraph.render import markdown

#: the only raw HTML the comment may contain: our own marker and collapsible blocks
_OWN_HTML = re.compile(r"(<!-- stagegraph-report -->|</?details>|<summary>|</summary>|</?b>)")


def _parse(text: str) -> list:  # type: ignore[type-arg]
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    return md.parse(text)


def _html_pieces(text: str) -> list[str]:
    pieces: list[str] = []
    for token in _parse(text):
        if token.type == "html_block":
            pieces.extend(p for p in re.findall(r"<[^>]*>", token.content))
        for child in token.children or []:
            if child.type == "html_inline":
                pieces.append(child.content)
    return pieces


def test_marker_verdict_table_and_details() -> None:
    text = markdown.render(sample_report())
    lines = text.splitlines()
    assert lines[0] == markdown.MARKER == "<!-- stagegraph-report -->"
    assert lines[1] == "### stagegraph: ❌ 1 error, 2 warnings, 1 note · 2 files not analysed"
    rows = [line for line in lines if line.startswith("| ❌") or line.startswith("| ⚠️") or line.startswith("| ℹ️")]
    assert len(rows) == 4 and rows[0].startswith("| ❌ error | `dedup-before-validation` | `etl/orders_etl.py:83` |")
    assert text.count("<details>") == 4  # notes (collapsed), two pipelines, diagnostics
    assert text.count("```mermaid") == 2
    assert "`load`, `refresh_customer_dim` — shared: `engine`" in text
    tables = [t for t in _parse(text) if t.type == "table_open"]
    assert len(tables) == 5  # hazards, notes, two stage tables, diagnostics
    # hazards stay in view; fan-out notes are folded so they never bury them in a PR
    notes_at = text.index("<summary>1 note: orderings that could fan out</summary>")
    assert all(text.index(row) < notes_at for row in rows if not row.startswith("| ℹ️"))
    assert all(text.index(row) > notes_at for row in rows if row.startswith("| ℹ️"))


def test_verdicts() -> None:
    empty = Report("0", (), (), ())
    assert markdown.verdict(empty) == "✅ no findings"
    warn = Report("0", (), (Finding("r", "warning", "m", "a.py", 1, "f"),), ())
    assert markdown.verdict(warn) == "⚠️ 1 warning"


def test_hostile_text_is_inert() -> None:
    text = markdown.render(hostile_report())
    for piece in _html_pieces(text):
        assert _OWN_HTML.fullmatch(piece), piece
    # inside code spans and the (entity-encoded) Mermaid blocks `<script>` is shown literally
    outside_code = re.sub(r"(`+).*?\1", "", re.sub(r"```mermaid\n.*?\n```\n", "", text, flags=re.S))
    assert "<script" not in outside_code and "<img" not in outside_code
    assert "@octocat" not in outside_code  # outside code spans every mention is broken by a zero-width joiner
    assert "@\u200doctocat" in text
    # `#123` stays visible but never as a live reference outside code spans
    assert not re.search(r"#\d", outside_code)
    assert "](javascript" not in outside_code
    # findings rows are still one row each with four cells
    md_rows = [t for t in _parse(text) if t.type == "tr_open"]
    assert len(md_rows) == 1 + 1 + 4 + 2 * 1 + 8 + 5 + 1 + 2  # a header for hazards and one for notes


def test_code_span_and_inline_helpers() -> None:
    assert markdown.code("a`b") == "``a`b``"
    assert markdown.code("`x`") == "`` `x` ``"
    assert markdown.code("a|b") == "`a\\|b`" and markdown.code("a|b", cell=False) == "`a|b`"
    assert markdown.inline("<b>@x #1 [l](u) a|b") == "&lt;b&gt;@\u200dx #\u200d1 \\[l\\]\\(u\\) a\\|b"


def test_truncates_under_github_limit_with_a_note() -> None:
    big = big_report(pipelines=30, long_stages=200)
    findings = tuple(Finding("shared-resource-contention", "warning", "x" * 250 + f" {i}", f"jobs/f{i}.py", i + 1,
                             f"fp{i}") for i in range(600))
    report = Report("0", big.pipelines, findings, (), summarise(big.pipelines, findings, 30))
    text = markdown.render(report)
    assert len(text) < markdown.GITHUB_LIMIT
    assert text.startswith(markdown.MARKER)
    assert "**Truncated**" in text and "pipelines not shown" in text
    assert text.count("<details>") == text.count("</details>")


def test_small_report_is_not_truncated() -> None:
    assert "Truncated" not in markdown.render(sample_report())
