"""The Graphviz renderer: real `dot` parses it, edge kinds look different, big reports stay legible, text is inert."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from render_samples import HOSTILE, big_report, hostile_report, sample_report

from stagegraph.model import Report
from stagegraph.render import dot
from stagegraph.render.outdir import write_out_dir

needs_dot = pytest.mark.needs_dot  # the gate is decided once, in conftest.py


def _dot_json(source: str) -> dict[str, Any]:
    done = subprocess.run(["dot", "-Tjson"], input=source.encode(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _edge_line(source: str, report: Report, pipeline: int, a: str, b: str) -> str:
    p = report.pipelines[pipeline]
    head = f"{dot.stable_id(p.id, a)} -> {dot.stable_id(p.id, b)} "
    lines = [line for line in source.splitlines() if line.strip().startswith(head)]
    assert len(lines) == 1, (head, lines)
    return lines[0]


@needs_dot
def test_sample_parses_with_dot_and_has_one_cluster_per_pipeline() -> None:
    report = sample_report()
    data = _dot_json(dot.render(report))
    clusters = [o for o in data["objects"] if str(o.get("name", "")).startswith("cluster_")]
    assert len(clusters) == 2
    stage_nodes = [o for o in data["objects"] if "nodes" not in o and o.get("name") != "legend"]
    assert len(stage_nodes) == sum(len(p.stages) for p in report.pipelines)
    assert len(data["edges"]) == sum(len(p.edges) for p in report.pipelines)


def test_edge_style_follows_kind() -> None:
    report = sample_report()
    source = dot.render(report)
    data_edge = _edge_line(source, report, 0, "fetch_orders", "dedup")
    assert "style=solid" in data_edge and "label=<orders>" in data_edge
    order_edge = _edge_line(source, report, 0, "fetch_orders", "fetch_fx_rates")
    assert "style=dashed" in order_edge and 'color="#9ca3af"' in order_edge and "label=" not in order_edge
    unknown_edge = _edge_line(source, report, 0, "convert", "refresh_customer_dim")
    assert "style=dotted" in unknown_edge and 'color="#d97706"' in unknown_edge
    assert "helper(conn) is unresolved" in unknown_edge
    control_edge = _edge_line(source, report, 0, "validate", "publish_report")
    assert "style=solid" in control_edge and 'color="#2563eb"' in control_edge and "if rejects" in control_edge


def test_findings_parallel_groups_and_resources_are_marked() -> None:
    report = sample_report()
    source = dot.render(report)
    dedup = next(line for line in source.splitlines() if line.strip().startswith(dot.stable_id(report.pipelines[0].id,
                                                                                                  "dedup") + " ["))
    assert 'color="#dc2626"' in dedup and "dedup-before-validation" in dedup
    load = next(line for line in source.splitlines()
                if line.strip().startswith(dot.stable_id(report.pipelines[0].id, "load") + " ["))
    assert "db: engine" in load and f'fillcolor="{dot.GROUP_FILLS[1]}"' in load
    assert "rank=same" in source and "parallel group 2 — shares engine" in source


def test_output_is_deterministic_with_sorted_attributes() -> None:
    assert dot.render(sample_report()) == dot.render(sample_report())
    for line in dot.render(sample_report()).splitlines():
        m = re.search(r"\[(.*)\]$", line)
        if m and "label=<" not in m.group(1):
            keys = re.findall(r"(?:^| )(\w+)=", m.group(1))
            assert keys == sorted(keys), line


@needs_dot
def test_hostile_strings_cannot_add_nodes_edges_or_markup() -> None:
    report = hostile_report()
    source = dot.render(report)
    data = _dot_json(source)
    names = {o["name"] for o in data["objects"] if "nodes" not in o}
    expected = {dot.stable_id(p.id, s.id) for p in report.pipelines for s in p.stages} | {"legend"}
    assert names == expected  # `x -> y` and `cluster_evil` did not become graph structure
    assert len(data["edges"]) == sum(len(p.edges) for p in report.pipelines)
    svg = dot.svg_from_source(source)
    assert svg is not None
    assert "<script" not in svg and "<img" not in svg and "&lt;/script&gt;" in svg


def test_escaping_helpers() -> None:
    assert dot._html('<b>"x" & \n y') == "&lt;b&gt;&quot;x&quot; &amp; y"
    assert str(dot._plain("a\\l")) == "a\\\\l"
    for s in HOSTILE:
        assert "<" not in dot._html(s) and '"' not in dot._html(s)


def test_collapse_keeps_findings_and_real_edges_and_folds_the_rest() -> None:
    report = big_report()
    v = dot.view(report, report.pipelines[0], max_stages=20)
    stages = [n.stage.id for n in v.nodes if n.stage is not None]
    folds = [n for n in v.nodes if n.stage is None]
    assert len(stages) <= 20 and folds
    assert {"step_040", "step_010", "step_011", "step_070", "step_000", "step_079"} <= set(stages)
    assert v.hidden == 80 - len(stages) == sum(len(n.folded) for n in folds)
    source = dot.render(report, max_stages=20)
    assert "more stages" in source
    # small pipelines are untouched
    assert all(n.stage is not None for n in dot.view(report, report.pipelines[1], max_stages=20).nodes)


@needs_dot
def test_collapsed_big_report_parses() -> None:
    data = _dot_json(dot.render(big_report(), max_stages=20))
    assert len(data["objects"]) < 200


def test_render_files_one_per_pipeline_when_large() -> None:
    small = dot.render_files(sample_report())
    assert list(small) == ["graph.dot"]
    files = dot.render_files(big_report())
    assert len(files) == 1 + 22
    assert "graph.dot" in files and "pipeline-01-job_00.dot" in files
    assert "more stages" in files["graph.dot"] and "more stages" not in files["pipeline-01-job_00.dot"]
    hostile = dot.file_name(3, hostile_report().pipelines[0])
    assert re.fullmatch(r"pipeline-03-[A-Za-z0-9_.-]+\.dot", hostile)


@needs_dot
def test_render_svg_and_inline() -> None:
    svg = dot.render_svg(sample_report())
    assert svg is not None and svg.lstrip().startswith("<?xml")
    inline = dot.inline_svg(svg)
    assert not inline.startswith("<?xml") and "<!DOCTYPE" not in inline and "<svg" in inline


def test_render_svg_returns_none_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dot, "find_dot", lambda: None)
    assert dot.render_svg(sample_report()) is None
    notes = write_out_dir(sample_report(), tmp_path / "out")
    assert (tmp_path / "out" / "graph.dot").is_file() and not (tmp_path / "out" / "graph.svg").exists()
    assert len(notes) == 1 and "apt-get install graphviz" in notes[0]


def test_dot_failure_is_an_error_not_a_crash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(dot, "find_dot", lambda: str(fake))
    with pytest.raises(dot.GraphvizError, match="boom"):
        dot.render_svg(sample_report())
    notes = write_out_dir(sample_report(), tmp_path / "out")
    assert any("could not draw" in n for n in notes)


@needs_dot
@pytest.mark.slow
def test_out_dir_writes_per_pipeline_diagrams_for_large_reports(tmp_path: Path) -> None:
    notes = write_out_dir(big_report(pipelines=10, long_stages=30), tmp_path)
    assert notes == []
    assert {p.name for p in tmp_path.iterdir()} >= {"graph.dot", "graph.svg", "report.html", "report.md",
                                                    "report.json", "report.sarif", "graphs"}
    assert len(list((tmp_path / "graphs").glob("*.dot"))) == 10
    assert len(list((tmp_path / "graphs").glob("*.svg"))) == 10
