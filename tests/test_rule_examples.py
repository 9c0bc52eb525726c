"""Each rule's documented examples run through the real engine (Fixit's lesson: docs that prove themselves).

The `bad` example of a rule (rendered into docs/rules/<id>.md) must raise that rule and nothing
else; the `good` one must raise nothing. Both must parse cleanly into at least one pipeline.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stagegraph.catalog import load_rules
from stagegraph.engine import analyze
from stagegraph.model import Report

RULES = load_rules()


def run(tmp_path: Path, code: str) -> Report:
    path = tmp_path / "example.py"
    path.write_text(textwrap.dedent(code).lstrip("\n"), encoding="utf-8")
    return analyze([tmp_path])


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_bad_example_raises_exactly_its_rule(tmp_path: Path, rule_id: str) -> None:
    report = run(tmp_path, RULES[rule_id].bad)
    assert report.diagnostics == ()
    assert report.pipelines, "the example must be a pipeline stagegraph recognises"
    found = {f.rule for f in report.findings}
    assert found == {rule_id}, f"docs/rules/{rule_id}.md bad example raised {sorted(found)}"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_good_example_raises_nothing(tmp_path: Path, rule_id: str) -> None:
    report = run(tmp_path, RULES[rule_id].good)
    assert report.diagnostics == ()
    assert report.pipelines, "the example must be a pipeline stagegraph recognises"
    found = [(f.rule, f.line, f.message) for f in report.findings]
    assert found == [], f"docs/rules/{rule_id}.md good example raised {found}"
