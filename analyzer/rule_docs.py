"""Rule documentation as Markdown, generated from rules/rules.toml (for `explain` and docs/rules/)."""

from __future__ import annotations

from analyzer.catalog import RuleDoc


def rule_markdown(rule: RuleDoc) -> str:
    return (
        f"# {rule.id}\n\n"
        f"**{rule.title}** · default severity: `{rule.severity}`\n\n"
        f"## What it does\n\n{rule.summary.strip()}\n\n"
        f"## Why is this bad?\n\n{rule.why.strip()}\n\n"
        f"## Example\n\n```python\n{rule.bad.strip()}\n```\n\n"
        f"## Use instead\n\n```python\n{rule.good.strip()}\n```\n\n"
        f"## How to fix\n\n{rule.fix.strip()}\n"
    )
