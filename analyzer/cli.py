"""Command line: `stagegraph audit|rules|explain ...`. Exit codes: 0 clean, 1 findings, 2 usage/internal error.

Heavy modules (libcst, networkx, jinja2, graphviz, sqlglot) are imported inside commands so
`stagegraph --help` and the pre-commit path start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from analyzer import __version__
from analyzer.model import SEVERITY_RANK, Report

FORMAT_NAMES = ["text", "json", "markdown", "html", "sarif", "dot", "mermaid"]
FAIL_ON = ["error", "warning", "note", "never"]


class UsageFailure(click.ClickException):
    exit_code = 2


def exit_code(report: Report, fail_on: str) -> int:
    if fail_on == "never":
        return 0
    threshold = SEVERITY_RANK[fail_on]
    return 1 if any(SEVERITY_RANK[f.severity] >= threshold for f in report.findings) else 0


def _progress_bar() -> Any:
    """A rich progress callback on a TTY, None otherwise (CI logs stay clean)."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("parsing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), transient=True, console=_stderr_console())
    state: dict[str, Any] = {}

    def update(done: int, total: int, current: str) -> None:
        if "task" not in state:
            progress.start()
            state["task"] = progress.add_task("", total=total)
        progress.update(state["task"], completed=done, description=current[-50:])
        if done >= total:
            progress.stop()

    return update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stagegraph")
def main() -> None:
    """Find real vs coincidental dependencies between pipeline stages, and the hazards of fanning out."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="text", show_default=True,
              help="What to print to stdout (or --output).")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write the report here.")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write every format (report.json/html/md/sarif, graph.dot/svg) into this folder.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="warning", show_default=True,
              help="Exit 1 when a finding is at or above this severity.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching this glob (repeatable).")
@click.option("--max-file-bytes", type=click.IntRange(min=1), default=2_000_000, show_default=True,
              help="Files larger than this become a 'too-large' diagnostic.")
@click.option("--disable", multiple=True, metavar="RULE", help="Turn a rule off (repeatable).")
def audit(
    paths: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    out_dir: Path | None,
    fail_on: str,
    exclude: tuple[str, ...],
    max_file_bytes: int,
    disable: tuple[str, ...],
) -> None:
    """Analyse PATHS (files or folders; default: the current folder) and report."""
    from analyzer.engine import Options, analyze
    from analyzer.render import render

    targets = list(paths) or [Path(".")]
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise UsageFailure(f"no such file or folder: {', '.join(str(p) for p in missing)}")
    options = Options(exclude=exclude, max_file_bytes=max_file_bytes, disabled_rules=frozenset(disable))
    report = analyze(targets, options, progress=_progress_bar())
    if out_dir is not None:
        from analyzer.render.outdir import write_out_dir

        for note in write_out_dir(report, out_dir):
            click.echo(note, err=True)
    text = render(report, fmt)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    elif out_dir is None or fmt != "text":
        click.echo(text, nl=False)
    else:
        click.echo(render(report, "text"), nl=False)
    sys.exit(exit_code(report, fail_on))


@main.command("rules")
def list_rules() -> None:
    """List the rules with their default severity."""
    from analyzer.catalog import load_rules

    for rule in sorted(load_rules().values(), key=lambda r: r.id):
        click.echo(f"{rule.id:<28} {rule.severity:<8} {rule.summary}")


@main.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print a rule's documentation."""
    from analyzer.catalog import load_rules
    from analyzer.rule_docs import rule_markdown

    rules = load_rules()
    if rule not in rules:
        raise UsageFailure(f"unknown rule {rule!r}; `stagegraph rules` lists them")
    click.echo(rule_markdown(rules[rule]))


def run() -> None:  # pragma: no cover - console entry for `python -m analyzer`
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:
        click.echo(f"stagegraph: internal error: {exc!r}", err=True)
        sys.exit(2)
