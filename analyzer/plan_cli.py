"""Commands `instrument`, `plan` and `fanout` (registered on the main group by `stagegraph.cli`).

They share one flow: analyse PATH as if it were not instrumented, then act on the Report. Heavy
modules are imported inside the commands so `stagegraph --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .model import Report


class _Usage(click.ClickException):
    exit_code = 2


exclude_option = click.option("--exclude", multiple=True, metavar="GLOB",
                              help="Skip paths matching this glob when analysing (repeatable).")


def _analysis(path: Path, exclude: tuple[str, ...] = ()) -> tuple[Report, Path]:
    from .catalog import CatalogError
    from .engine import Options
    from .instrument import analyze_original

    if not path.exists():
        raise _Usage(f"no such file or folder: {path}")
    try:
        return analyze_original([path], Options(exclude=exclude))
    except CatalogError as exc:
        raise _Usage(str(exc)) from None


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--pipeline", "pipeline_id", metavar="ID", help="Only this pipeline (an id as `audit` prints it).")
@click.option("--dry-run", is_flag=True, help="List the files and stages that would change; write nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the changes as a unified diff; write nothing.")
@click.option("--undo", is_flag=True, help="Remove everything `instrument` added.")
@exclude_option
def instrument(path: Path, pipeline_id: str | None, dry_run: bool, show_diff: bool, undo: bool,
               exclude: tuple[str, ...]) -> None:
    """Wrap each stage of the pipelines under PATH with timing records (JSON lines to $STAGEGRAPH_TIMINGS)."""
    from . import instrument as codemod

    if dry_run and show_diff:
        raise _Usage("--dry-run and --diff are alternatives; pick one")
    report, root = _analysis(path, exclude)
    if pipeline_id is not None and pipeline_id not in {p.id for p in report.pipelines}:
        raise _Usage(f"no pipeline {pipeline_id!r} under {path}; `stagegraph audit {path}` lists them")
    if undo:
        files = {s.file for p in report.pipelines for s in p.stages}
        files |= {s.definition.file for p in report.pipelines for s in p.stages if s.definition}
        outcome = codemod.undo(root, files)
    else:
        outcome = codemod.instrument(report, root, None if pipeline_id is None else [pipeline_id])
    for note in outcome.notes:
        click.echo(f"note: {note}", err=True)
    if show_diff:
        click.echo("".join(c.diff() for c in outcome.changes), nl=False)
        return
    verb = "would change" if dry_run else ("restored" if undo else "instrumented")
    for change in outcome.changes:
        counts = "" if undo else f" ({change.wrapped} calls wrapped, {change.decorated} definitions decorated)"
        click.echo(f"{verb} {change.file}{counts}")
    if not outcome.changes:
        click.echo("nothing to change" + ("" if undo else ": already instrumented"))
    if not dry_run:
        codemod.write(root, outcome)
        if outcome.changes and not undo:
            click.echo(f"run the pipeline with {codemod.ENV_FILE}=timings.jsonl, then "
                       f"`stagegraph plan {path} --timings timings.jsonl`", err=True)


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--timings", "timings_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="JSON lines from `instrument`, an OpenTelemetry (OTLP) or Jaeger JSON export, or a CSV "
                   "stage,p50,p95,p99 (seconds).")
@click.option("--pipeline", "pipeline_id", metavar="ID", help="Only this pipeline.")
@click.option("--concurrent-runs", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many runs of the pipeline share the pools at once (for the capacity check).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write the plan here.")
@exclude_option
def plan(path: Path, timings_file: Path, pipeline_id: str | None, concurrent_runs: int, fmt: str,
         output: Path | None, exclude: tuple[str, ...]) -> None:
    """Plan the fan-out of the pipelines under PATH from measured stage timings."""
    from . import capacity, timings
    from . import fanout as rewrite
    from . import plan as planning

    try:
        measured = timings.load(timings_file)
    except timings.TimingsError as exc:
        raise _Usage(str(exc)) from None
    report, root = _analysis(path, exclude)
    result = planning.build(report, measured, capacity.scan(root), concurrent_runs, pipeline_id,
                            applicable=lambda group: rewrite.refusal(report, root, group))
    render = {"text": planning.render_text, "json": planning.to_json, "markdown": planning.render_markdown}[fmt]
    text = render(result)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--apply", "group", required=True, metavar="GROUP",
              help="PIPELINE#N as `stagegraph plan` numbers the groups, or PIPELINE:stage,stage.")
@click.option("--flag", metavar="NAME", help="Environment variable that turns the fan-out on (default: derived).")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=600.0, show_default=True,
              help="Seconds to wait for each branch's result.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker cap (default: the group's size).")
@click.option("--diff", "show_diff", is_flag=True, help="Print the change as a unified diff; write nothing.")
@exclude_option
def fanout(path: Path, group: str, flag: str | None, timeout: float, workers: int | None, show_diff: bool,
           exclude: tuple[str, ...]) -> None:
    """Rewrite one safe parallel group of a plain driver as a bounded ThreadPoolExecutor behind a flag."""
    from . import fanout as codemod

    report, root = _analysis(path, exclude)
    try:
        change = codemod.apply(report, root, group, flag, timeout, workers)
    except codemod.FanoutRefused as exc:
        click.echo(f"stagegraph fanout: refused: {exc}", err=True)
        sys.exit(1)
    if show_diff:
        click.echo(change.diff(), nl=False)
        return
    (root / change.file).write_text(change.after, encoding="utf-8")
    used = flag or codemod.default_flag(codemod.resolve(report, group))
    click.echo(f"rewrote {change.file}: {change.wrapped} stages fan out when {used}=1 (sequential otherwise)")


def add_timings(report: Report, targets: list[Path], timings_file: Path, fmt: str, text: str,
                out_dir: Path | None) -> str:
    """`audit --timings`: the plan added to `text` (markdown/html) and to report.md/report.html in `out_dir`."""
    from . import capacity, timings
    from . import fanout as rewrite
    from . import plan as planning
    from .render.timings import add_to
    from .source import common_root

    try:
        measured = timings.load(timings_file)
    except timings.TimingsError as exc:
        raise _Usage(str(exc)) from None
    root = common_root(targets)
    result = planning.build(report, measured, capacity.scan(root),
                            applicable=lambda group: rewrite.refusal(report, root, group))
    if out_dir is not None:
        for fmt_name, name in (("markdown", "report.md"), ("html", "report.html")):
            path = out_dir / name
            if path.exists():
                path.write_text(add_to(fmt_name, path.read_text(encoding="utf-8"), result), encoding="utf-8")
    return add_to(fmt, text, result)
