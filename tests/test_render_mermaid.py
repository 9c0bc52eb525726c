"""The Mermaid renderer: one subgraph per pipeline, arrows by kind, analysed text cannot add statements."""

from __future__ import annotations

import re

from render_samples import HOSTILE, big_report, hostile_report, sample_report

from stagegraph.render import dot, mermaid

#: every line the renderer may write; a hostile string that escaped its label would break one of these
_LINE = re.compile(
    r"flowchart TB"
    r'|  subgraph n[0-9a-f]{12}\["[^"]*"\]'
    r"|    direction TB"
    r'|    n[0-9a-f]{12}(\["[^"]*"\]|\{\{"[^"]*"\}\})'
    r"|  end"
    r'|  n[0-9a-f]{12} (-->|-\.->|==>)(\|"[^"]*"\|)? n[0-9a-f]{12}'
    r"|  classDef \w+ [\w:#,.\- ]+"
    r"|  class [n0-9a-f,]+ \w+"
    r"|  linkStyle \d+ [\w:#,.\- ]+"
)


def test_structure_and_arrow_kinds() -> None:
    report = sample_report()
    text = mermaid.render(report)
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    assert sum(1 for line in lines if line.startswith("  subgraph ")) == 2
    assert sum(1 for line in lines if line == "  end") == 2
    p = report.pipelines[0]
    a, b = dot.stable_id(p.id, "fetch_orders"), dot.stable_id(p.id, "dedup")
    assert f'  {a} -->|"orders"| {b}' in lines
    assert f"  {a} -.-> {dot.stable_id(p.id, 'fetch_fx_rates')}" in lines
    unknown = [line for line in lines if "==>" in line]
    assert len(unknown) == 1 and "helper(conn) is unresolved" in unknown[0]
    edges = [line for line in lines if re.match(r"  n\w+ (-->|-\.->|==>)", line)]
    assert len(edges) == sum(len(pl.edges) for pl in report.pipelines)
    # linkStyle indices point at the right arrows
    for m in re.finditer(r"linkStyle (\d+) stroke:#9ca3af", text):
        assert "-.->" in edges[int(m.group(1))]
    assert re.search(r"class [n0-9a-f,]+ finding", text)


def test_every_line_is_well_formed_even_with_hostile_text() -> None:
    for report in (sample_report(), hostile_report()):
        for line in mermaid.render(report).splitlines():
            assert _LINE.fullmatch(line), line


def test_hostile_text_is_entity_encoded() -> None:
    text = mermaid.render(hostile_report())
    for raw in ("<script", "<img", "%%", "click x", "subgraph cluster_evil", "javascript:", "`", "\\"):
        assert raw not in text, raw
    assert "#60;/script#62;" in text  # shown, not interpreted
    for s in HOSTILE:
        encoded = re.sub(r"#\d+;", "", mermaid.text(s))
        assert not set(encoded) & set('"<>[]{}|`;%\\\n'), encoded


def test_large_pipeline_folds_with_max_stages() -> None:
    text = mermaid.render(big_report(), max_stages=20)
    assert "more stages" in text
    assert text.count("\n") < 400


def test_empty_report() -> None:
    from stagegraph.model import Report

    assert mermaid.render(Report("0", (), (), ())) == 'flowchart TB\n  empty["no pipelines found"]\n'
