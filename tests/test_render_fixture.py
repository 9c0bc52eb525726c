"""Every format, rendered from the bundled legacy ETL example through `--out-dir`, as users run it."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import HAVE_DOT

from stagegraph.cli import main
from stagegraph.render.json import schema
from stagegraph.render.markdown import MARKER

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fixtures" / "legacy_etl"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(main, ["audit", str(EXAMPLE), "--out-dir", str(folder), "--format", "text"])
    assert result.exit_code == 1, result.output  # the example has hazards at warning and above
    return folder


def test_out_dir_writes_every_format(out_dir: Path) -> None:
    expected = {"report.json", "report.html", "report.md", "report.sarif", "graph.dot"}
    if HAVE_DOT:
        expected.add("graph.svg")
    assert expected <= {p.name for p in out_dir.iterdir()}


def test_json_and_sarif_validate_against_their_schemas(out_dir: Path) -> None:
    report = json.loads((out_dir / "report.json").read_text())
    jsonschema.validate(report, schema())
    assert {f["rule"] for f in report["findings"]} >= {"dedup-before-validation", "hidden-state-dependency"}
    sarif = json.loads((out_dir / "report.sarif").read_text())
    jsonschema.validate(sarif, json.loads((DATA / "sarif-schema-2.1.0.json").read_text()))
    results = sarif["runs"][0]["results"]
    assert len(results) == len(report["findings"])
    assert all(r["partialFingerprints"] for r in results)


def test_markdown_is_a_findable_comment_within_githubs_limit(out_dir: Path) -> None:
    text = (out_dir / "report.md").read_text()
    assert text.startswith(MARKER)
    assert len(text) < 65_536
    assert "dedup-before-validation" in text and "```mermaid" in text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_is_self_contained_and_shows_diagrams_and_tables(out_dir: Path) -> None:
    html = (out_dir / "report.html").read_text()
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert parser.tags.count("table") >= 7  # a stage table per pipeline, plus findings
    if HAVE_DOT:
        assert parser.tags.count("svg") >= 7
    assert "jobs/nightly_orders.py" in html


@pytest.mark.needs_dot
def test_dot_output_is_accepted_by_graphviz(out_dir: Path) -> None:
    proc = subprocess.run(["dot", "-Tjson", str(out_dir / "graph.dot")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    drawn = json.loads(proc.stdout)
    assert len(drawn["objects"]) >= 36  # every stage of the example is a node


def test_mermaid_and_text_render_the_same_pipelines(out_dir: Path) -> None:
    runner = CliRunner()
    mermaid = runner.invoke(main, ["audit", str(EXAMPLE), "--format", "mermaid"]).output
    text = runner.invoke(main, ["audit", str(EXAMPLE), "--format", "text"]).output
    report = json.loads((out_dir / "report.json").read_text())
    assert mermaid.startswith("flowchart")
    for pipeline in report["pipelines"]:
        assert f"pipeline {pipeline['name']} ({pipeline['style']}) {pipeline['file']}" in text
    assert mermaid.count("subgraph") >= len(report["pipelines"])


def test_html_findings_show_the_code_line_they_point_at(out_dir: Path) -> None:
    html = (out_dir / "report.html").read_text()
    # dedup-before-validation points at the driver's call of the validation that comes too late
    assert 'class="snippet"' in html and "orders = validate_orders(orders)" in html


def test_html_counts_notes_apart_and_filters_without_scripts(out_dir: Path) -> None:
    """Issue 13, items 13 and 15: hazards are errors and warnings; filters are CSS (:checked ~), no script."""
    import re

    html = (out_dir / "report.html").read_text()
    report = json.loads((out_dir / "report.json").read_text())
    counts = report["summary"]["findings"]
    hazards = re.search(r'<div class="card hazards">\s*<div class="num">(\d+)</div>', html)
    assert hazards is not None and int(hazards.group(1)) == counts["error"] + counts["warning"]
    assert re.search(rf'<div class="card notes"><div class="num">{counts["note"]}</div>', html)
    assert "<script" not in html
    # one radio button per severity, rule and pipeline with findings; rows carry what the CSS matches
    rules = {f["rule"] for f in report["findings"]}
    assert len(re.findall(r'<input type="radio" class="f" name="f-rule"', html)) == len(rules) + 1
    assert len(re.findall(r'<tr data-sev="(?:error|warning|note)" data-rule="n[0-9a-f]{12}"', html)) \
        == len(report["findings"])
    assert re.search(r'#f-n[0-9a-f]{12}:checked ~ section\.pipeline:not\(\[data-pipe="n[0-9a-f]{12}"\]\) '
                     r'\{ display: none; \}', html)
    # findings link to their pipeline's section, and edges show where the linking effects are
    anchors = set(re.findall(r'<section class="pipeline" id="(n[0-9a-f]{12})"', html))
    links = set(re.findall(r'<a href="#(n[0-9a-f]{12})">[^<]+::', html))
    assert links and links <= anchors
    assert re.search(r'<div class="ev"><code>[^<]+</code>: [\w/.]+\.py:\d+', html)
    # notes are not painted as warnings in the stage tables
    assert 'class="rule note">ℹ coincidental-order' in html
    assert 'class="rule error">ℹ' not in html and "⚠ coincidental-order" not in html
    for cell in re.findall(r"<td>((?:<span class=\"res\">[^<]*</span>)+)</td>", html):
        chips = re.findall(r'<span class="res">([^<]*)</span>', cell)
        assert len(chips) == len(set(chips)), chips
