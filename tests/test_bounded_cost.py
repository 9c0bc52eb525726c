"""Issue 16 item 14 / issue 14 goals 5-6: cost that grows with input is bounded, and said so.

Counts and structure, never wall-clock time: composed summaries stay linear along a call chain
(a fold past the budget, with a diagnostic and `unknown` edges), and `--out-dir` never starts
`dot` on a graph over the budget, draws a folded graph instead, and draws in parallel.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from stagegraph import engine
from stagegraph.facts import summaries
from stagegraph.render import dot
from stagegraph.render.outdir import out_dir_files


def _load_stage_curve() -> Any:
    """The benchmark's own program generators, so the test measures the shape the benchmark does."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "stage_curve", Path(__file__).resolve().parents[1] / "benchmarks" / "stage_curve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: f_i writes its own file and calls f_{i-1}; the driver runs the whole chain, then reads f_0's file
_call_chain = _load_stage_curve().calls


def _capture_totals(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The composed totals of the next analysis, filled in as it runs."""
    captured: dict[str, Any] = {}
    real = summaries.compose

    def capturing(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        captured.clear()
        captured.update(result[1])
        return result

    monkeypatch.setattr("stagegraph.facts.compose", capturing)
    return captured


def _audit_chain(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """Audit a call chain of n functions; (report, composed totals)."""
    captured = _capture_totals(monkeypatch)
    folder = tmp_path / f"chain{n}"
    folder.mkdir()
    (folder / "chain.py").write_text(_call_chain(n))
    return engine.analyze([folder]), captured


def _stored(totals: dict[str, Any]) -> int:
    """Objects the composed totals hold: accesses plus stored callee names."""
    return sum(len(t.accesses) + len(t._callees) for t in totals.values())


def test_a_call_chain_is_composed_in_linear_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each total kept every transitive callee and every access along the chain: n²/2 of each."""
    monkeypatch.setattr(summaries, "MAX_ACCESSES", 20)
    _, totals = _audit_chain(tmp_path, 200, monkeypatch)
    assert max(len(t.accesses) for t in totals.values()) <= 21
    assert _stored(totals) < 200 * 21, _stored(totals)  # all of it kept would be about 20,000
    # callees are still answered in full (signals of everything a stage calls depend on it)
    assert totals["chain.f_5"].callees == {f"chain.f_{i}" for i in range(5)}


def test_over_the_budget_edges_become_unknown_with_a_diagnostic(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the budget nothing is dropped silently: the real dependency stays (unknown), the function is named."""
    monkeypatch.setattr(summaries, "MAX_ACCESSES", 20)
    report, _ = _audit_chain(tmp_path, 60, monkeypatch)
    [pipeline] = report.pipelines
    [edge] = [e for e in pipeline.edges if {e.source, e.target} == {"f_59", "read_back"}]
    assert edge.kind == "unknown" and any("composition budget" in v for v in edge.via), edge
    budget = [d for d in report.diagnostics if d.code == "over-budget"]
    assert budget and all(d.file == "chain.py" and "f_" in d.message for d in budget), report.diagnostics
    import jsonschema

    from stagegraph.render import json as json_render

    jsonschema.validate(json.loads(json_render.render(report)), json_render.schema())


def test_under_the_budget_the_same_chain_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report, _ = _audit_chain(tmp_path, 60, monkeypatch)
    [pipeline] = report.pipelines
    [edge] = [e for e in pipeline.edges if {e.source, e.target} == {"f_59", "read_back"}]
    assert edge.kind == "data" and edge.via == ("/data/out_0.csv",), edge
    assert not [d for d in report.diagnostics if d.code == "over-budget"]


def test_growing_call_chains_stay_sound_and_linear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation test: the chain doubles past the budget; the dependency is never lost, storage grows ~2x."""
    monkeypatch.setattr(summaries, "MAX_ACCESSES", 16)
    sizes: list[int] = []
    for n in (8, 16, 32, 64, 128, 256):
        report, totals = _audit_chain(tmp_path, n, monkeypatch)
        [pipeline] = report.pipelines
        [edge] = [e for e in pipeline.edges if {e.source, e.target} == {f"f_{n - 1}", "read_back"}]
        assert edge.kind in ("data", "unknown"), (n, edge)
        sizes.append(_stored(totals))
    ratios = [b / a for a, b in itertools.pairwise(sizes[2:])]
    assert max(ratios) < 2.5, sizes  # quadratic storage shows as ~4x per doubling


def test_recursive_function_is_its_own_callee(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rec.py").write_text("def walk(x):\n    return walk(x[1:]) if x else helper(x)\n\n"
                                     "def helper(x):\n    return x\n")
    totals = _capture_totals(monkeypatch)
    engine.analyze([tmp_path])
    assert totals["rec.walk"].callees == {"rec.walk", "rec.helper"}
    assert totals["rec.helper"].callees == set()


# ------------------------------------------------------------------ dot: budget, fold, parallel


def _chain_report(tmp_path: Path, n: int) -> Any:
    stages = "".join(f"def stage_{i}(x):\n    return [v + {i} for v in x]\n\n\n" for i in range(n))
    body = "".join(f"    x = stage_{i}(x)\n" for i in range(n))
    (tmp_path / "chain.py").write_text(stages + f"def main():\n    x = [1]\n{body}    print(x)\n")
    return engine.analyze([tmp_path])


def _fake_dot(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `dot` that logs one line per run (its input's edge count) before running `script`."""
    log = tmp_path / "dot.log"
    fake = tmp_path / "fake-dot"
    fake.write_text("#!/bin/sh\nIN=$(cat)\nN=$(printf '%s' \"$IN\" | grep -o -- '->' | wc -l)\n"
                    f"echo \"$N\" >> {log}\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(dot, "find_dot", lambda: str(fake))
    return log


def test_out_dir_draws_a_folded_graph_instead_of_starting_dot_over_the_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _chain_report(tmp_path, 80)
    monkeypatch.setattr(dot, "DOT_MAX_EDGES", 40)
    log = _fake_dot(tmp_path, "echo '<svg>drawn</svg>'", monkeypatch)
    files, notes = out_dir_files(report)
    runs = [int(line) for line in log.read_text().split()]
    assert runs and max(runs) <= 40, runs  # dot never saw the 79-edge graph
    assert files["graph.svg"] == "<svg>drawn</svg>\n"
    assert any("graph.svg is over Graphviz's size budget" in n and "folded" in n for n in notes), notes
    assert "stages without findings or real dependencies folded" in dot.render(report, dot.DEFAULT_MAX_STAGES)
    assert "drawn" in files["report.html"]  # the HTML diagram is folded too, not left undrawn


def test_out_dir_folds_a_graph_dot_cannot_lay_out_in_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _chain_report(tmp_path, 60)
    monkeypatch.setattr(dot, "DOT_TIMEOUT", 1.0)
    _fake_dot(tmp_path, "if [ \"$N\" -gt 40 ]; then sleep 10; fi\necho '<svg>drawn</svg>'", monkeypatch)
    files, notes = out_dir_files(report)
    assert files["graph.svg"] == "<svg>drawn</svg>\n"
    assert any("could not lay out graph.svg" in n and "folded" in n for n in notes), notes


def test_out_dir_draws_each_diagram_once_and_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTML report used to run dot again for every pipeline, one after another."""
    for i in range(10):  # a large report: graph.svg, one graphs/*.svg per pipeline, and the HTML diagrams
        (tmp_path / f"p{i}.py").write_text(f"def a{i}():\n    return open('/d/{i}').read()\n\n"
                                           f"def b{i}(x):\n    open('/e/{i}', 'w').write(x)\n\n"
                                           f"def main():\n    b{i}(a{i}())\n")
    report = engine.analyze([tmp_path])
    assert dot.is_large(report)
    marks = tmp_path / "marks"
    marks.mkdir()
    # each run leaves a file while it runs and records how many runs it saw at once
    log = _fake_dot(tmp_path, f"touch {marks}/$$; sleep 0.3; ls {marks} | wc -l >> {tmp_path}/overlap; "
                              f"rm {marks}/$$; echo '<svg>drawn</svg>'", monkeypatch)
    monkeypatch.setattr(dot, "draw_jobs", lambda: 2)
    files, notes = out_dir_files(report)
    runs = log.read_text().split()
    html_sources = {dot.pipeline_source(report, p) for p in report.pipelines}
    assert len(runs) == 1 + len(report.pipelines) + len(html_sources), len(runs)  # nothing drawn twice
    assert max(int(n) for n in (tmp_path / "overlap").read_text().split()) >= 2
    assert len([name for name in files if name.startswith("graphs/") and name.endswith(".svg")]) == 10
    assert notes == []


def test_drawing_order_does_not_change_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dot(tmp_path, "sleep 0.$(( $$ % 3 )); printf '<svg>%s</svg>' \"$N\"", monkeypatch)
    sources = [f"digraph g{i} {{ {' '.join(f'a{j} -> b{j};' for j in range(i))} }}" for i in range(6)]
    one = dot.draw_all(sources, jobs=1)
    two = dot.draw_all(list(reversed(sources)), jobs=os.cpu_count() or 2)
    assert one == two and list(one) == sources


def test_a_diagram_dot_timed_out_on_is_not_tried_again_in_the_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `--out-dir` run used to wait the whole timeout again for the same unlayable graph."""
    from click.testing import CliRunner

    from stagegraph.cli import main

    repo = tmp_path / "repo"
    repo.mkdir()
    stages = "".join(f"def stage_{i}(x):\n    return [v + {i} for v in x]\n\n\n" for i in range(60))
    body = "".join(f"    x = stage_{i}(x)\n" for i in range(60))
    (repo / "chain.py").write_text(stages + f"def main():\n    x = [1]\n{body}    print(x)\n")
    monkeypatch.setattr(dot, "DOT_TIMEOUT", 1.0)
    log = _fake_dot(tmp_path, "if [ \"$N\" -gt 40 ]; then sleep 10; fi\necho '<svg>drawn</svg>'", monkeypatch)

    def run(*extra: str) -> tuple[list[int], str]:
        log.write_text("")
        result = CliRunner().invoke(main, ["audit", str(repo), "--out-dir", str(tmp_path / "out"),
                                           "--cache-dir", str(tmp_path / "cache"), *extra])
        assert result.exit_code in (0, 1), result.output
        assert (tmp_path / "out" / "graph.svg").read_text() == "<svg>drawn</svg>\n"  # drawn folded each time
        return [int(line) for line in log.read_text().split()], result.output

    first, output = run()
    assert max(first) > 40 and "could not lay out graph.svg" in output
    second, output = run()
    assert second and max(second) <= 40, second  # the full graph was not given to dot again
    assert "could not lay out graph.svg" in output
    third, _ = run("--no-cache")
    assert max(third) > 40  # --no-cache forgets, and tries again
    monkeypatch.setattr(dot, "DOT_TIMEOUT", 2.0)
    fourth, _ = run()
    assert max(fourth) > 40  # a remembered timeout holds only for the limit it was measured under
