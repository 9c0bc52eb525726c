"""Fixit-style coverage: every rule has a check and documentation, every check has a rule; docs don't drift."""

from __future__ import annotations

import importlib
from pathlib import Path

from stagegraph.catalog import load_rules
from stagegraph.checks import all_checks
from stagegraph.rule_docs import rendered_pages

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules"


def test_every_rule_has_a_check_module_and_vice_versa() -> None:
    assert set(load_rules()) == set(all_checks())


def test_check_modules_are_named_after_their_rule_and_documented() -> None:
    for rule in load_rules():
        module = importlib.import_module(f"stagegraph.checks.{rule.replace('-', '_')}")
        assert rule == module.RULE
        assert module.__doc__ and module.__doc__.startswith(f"{rule}:")


def test_every_rule_has_real_documentation() -> None:
    for rule in load_rules().values():
        for field in ("title", "summary", "why", "bad", "good", "fix"):
            text = getattr(rule, field)
            assert text.strip() and "TODO" not in text, f"{rule.id}.{field}"
        assert rule.severity in {"error", "warning", "note"}
        compile(rule.bad, f"{rule.id}.bad", "exec")  # examples are real Python
        compile(rule.good, f"{rule.id}.good", "exec")


def test_committed_docs_match_the_catalog() -> None:
    pages = rendered_pages(load_rules())
    committed = {p.name for p in DOCS.glob("*.md")}
    assert committed == set(pages), "run: python -m stagegraph.rule_docs docs/rules"
    for name, text in pages.items():
        drifted = f"{name} drifted: run python -m stagegraph.rule_docs docs/rules"
        assert (DOCS / name).read_text(encoding="utf-8") == text, drifted
