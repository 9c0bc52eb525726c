"""How real projects wire their drivers: star imports, aliased step functions, namespace packages,
plain drivers over framework flows, classes that orchestrate other classes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from stagegraph.engine import Options, analyze
from stagegraph.facts.index import Project, index_module
from stagegraph.model import Pipeline, Report
from stagegraph.source import ParsedModule, parse_text


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, code in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))


def _audit(root: Path) -> Report:
    return analyze([root], Options())


def _pipeline(report: Report, name: str) -> Pipeline:
    hits = [p for p in report.pipelines if p.name == name]
    assert hits, [p.name for p in report.pipelines]
    return max(hits, key=lambda p: len(p.stages))


def _names(pipeline: Pipeline) -> list[str]:
    return [s.name for s in pipeline.stages]


def test_star_import_binds_public_names_and_respects_all(tmp_path: Path) -> None:
    _write(tmp_path, {
        "helpers.py": """
            __all__ = ["fetch", "store"]
            def fetch():
                return open("/in/a.txt").read()
            def store(x):
                open("/out/b.txt", "w").write(x)
            def hidden(x):
                open("/out/c.txt", "w").write(x)
        """,
        "run.py": """
            from helpers import *
            def go():
                x = fetch()
                store(x)
                hidden(x)
        """,
    })
    assert _names(_pipeline(_audit(tmp_path), "go")) == ["fetch", "store", "hidden"]
    parsed = [parse_text(f"{m}.py", (tmp_path / f"{m}.py").read_text(), m) for m in ("helpers", "run")]
    project = Project.build([index_module(m) for m in parsed if isinstance(m, ParsedModule)])
    run = project.modules["run"]
    assert run.imports["fetch"] == "helpers.fetch" and run.imports["store"] == "helpers.store"
    assert "hidden" not in run.imports  # not in __all__: the star import does not bind it
