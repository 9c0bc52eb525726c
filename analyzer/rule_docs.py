"""Rule documentation as Markdown, generated from rules/rules.toml (for `explain` and docs/rules/).

`python -m stagegraph.rule_docs docs/rules` rewrites one page per rule plus an index; a test
fails when the committed pages drift from the catalog.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from .catalog import load_rules
from .model import Rule

GENERATED = "<!-- generated from rules/rules.toml by `python -m stagegraph.rule_docs docs/rules`; do not edit -->"


def rule_markdown(rule: Rule) -> str:
    tags = f" · tags: {', '.join(rule.tags)}" if rule.tags else ""
    return (
        f"# {rule.id}\n\n"
        f"**{rule.title}** · default severity: `{rule.severity}`{tags}\n\n"
        f"## What it does\n\n{rule.summary.strip()}\n\n"
        f"## Why is this bad?\n\n{rule.why.strip()}\n\n"
        f"## Example\n\n```python\n{rule.bad.strip()}\n```\n\n"
        f"## Use instead\n\n```python\n{rule.good.strip()}\n```\n\n"
        f"## How to fix\n\n{rule.fix.strip()}\n\n"
        f"## Suppressing\n\n`# stagegraph: ignore[{rule.id}]` on the finding's line or the stage's call line, "
        f"or disable the rule in configuration.\n"
    )


def index_markdown(rules: Mapping[str, Rule]) -> str:
    rows = "\n".join(
        f"| [`{r.id}`]({r.id}.md) | {r.severity} | {r.summary.strip()} |"
        for r in sorted(rules.values(), key=lambda r: r.id)
    )
    return (
        f"{GENERATED}\n\n# Rules\n\n"
        "Each rule names a hazard stagegraph reports. `stagegraph explain RULE` prints the same page.\n\n"
        "| Rule | Default severity | What it reports |\n|---|---|---|\n"
        f"{rows}\n"
    )


def rendered_pages(rules: Mapping[str, Rule]) -> dict[str, str]:
    """File name -> content for every page under docs/rules/."""
    pages = {f"{r.id}.md": f"{GENERATED}\n\n{rule_markdown(r)}" for r in rules.values()}
    pages["README.md"] = index_markdown(rules)
    return pages


def write_rule_docs(folder: Path) -> list[Path]:
    """Write the rule pages and index into `folder`, removing pages of rules that no longer exist."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = rendered_pages(load_rules())
    for stale in folder.glob("*.md"):
        if stale.name not in pages and GENERATED in stale.read_text(encoding="utf-8"):
            stale.unlink()
    written: list[Path] = []
    for name, text in sorted(pages.items()):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m stagegraph.rule_docs FOLDER", file=sys.stderr)
        return 2
    for path in write_rule_docs(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
