"""Command line: `stagegraph audit|baseline|hook|comment|config|rules|explain|instrument|plan|fanout`.

Exit codes: 0 clean, 1 findings at or above `fail-on`, 2 usage or internal error (never a
traceback). Heavy modules (libcst, networkx, jinja2, graphviz, sqlglot) are imported inside
commands so `stagegraph --help` and the pre-commit path start fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .model import SEVERITY_RANK, Report
from .render import FORMATS

if TYPE_CHECKING:
    from .config import Config, Overrides
    from .engine import Options
    from .render.dot import SlowLayouts

#: the one registry of formats (importing it loads no renderer, so `--help` stays fast)
FORMAT_NAMES = list(FORMATS)
FAIL_ON = ["error", "warning", "note", "never"]
REPORT_MARKER = "<!-- stagegraph-report -->"


class UsageFailure(click.ClickException):
    exit_code = 2


def exit_code(report: Report, fail_on: str) -> int:
    if fail_on == "never":
        return 0
    threshold = SEVERITY_RANK[fail_on]
    return 1 if any(SEVERITY_RANK[f.severity] >= threshold for f in report.findings) else 0


def _progress_bar(console: Any = None) -> Any:
    """A rich progress callback on a TTY (or the given console), None otherwise (CI logs stay clean).

    File names are shown literally: never parsed as rich markup (`x[/bold].py` used to crash the
    refresh thread), with control and bidi characters escaped.
    """
    if console is None and not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .render.safe import escape_text

    progress = Progress(TextColumn("parsing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}", markup=False), transient=True,
                        console=console or _stderr_console())
    state: dict[str, Any] = {}

    def update(done: int, total: int, current: str) -> None:
        if "task" not in state:
            progress.start()
            state["task"] = progress.add_task("", total=total)
        progress.update(state["task"], completed=done, description=escape_text(current)[-50:])
        if done >= total:
            progress.stop()

    return update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# ------------------------------------------------------------------ configuration plumbing

def _parse_severity_flags(values: Sequence[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        rule, sep, level = value.partition("=")
        if not sep or not rule.strip() or not level.strip():
            raise UsageFailure(f"--severity {value!r}: expected RULE=LEVEL, e.g. --severity coincidental-order=note")
        result[rule.strip()] = level.strip()
    return result


def _config(start: Path, config_file: Path | None, overrides: Overrides | None = None) -> Config:
    from .config import ConfigError, Overrides, load_config

    try:
        return load_config(start, config_file, overrides or Overrides())
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None


def _targets(paths: Sequence[Path], config: Config) -> list[Path]:
    targets = list(paths) or list(config.include) or [Path(".")]
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise UsageFailure(f"no such file or folder: {', '.join(str(p) for p in missing)}")
    return targets


def _known_fingerprints(path: Path | None) -> frozenset[str] | None:
    if path is None:
        return None
    from . import baseline

    try:
        return baseline.load(path).fingerprints
    except baseline.BaselineError as exc:
        raise UsageFailure(str(exc)) from None


def _rooted(options: Options, targets: Sequence[Path]) -> Options:
    """Options whose report paths are relative to the repository root (git top level, else the cwd)."""
    from dataclasses import replace

    from .source import common_root, repository_root

    return replace(options, root=repository_root(common_root(targets)), cache_dir=_default_cache_dir(),
                   jobs=_cores())


def _default_cache_dir() -> Path | None:
    """The platform cache folder, or None when `STAGEGRAPH_NO_CACHE` is set (to anything but empty or 0)."""
    from .cache import default_dir

    return None if os.environ.get("STAGEGRAPH_NO_CACHE", "") not in ("", "0") else default_dir()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _speed(options: Options, jobs: int | None, no_cache: bool, cache_dir: Path | None,
           max_memory: int | None = None) -> Options:
    """Options with the command line's --jobs / --no-cache / --cache-dir / --max-memory applied."""
    from dataclasses import replace

    if max_memory is not None:
        options = replace(options, max_memory=max_memory)
    if jobs is not None:
        options = replace(options, jobs=jobs)
    if no_cache:
        return replace(options, cache_dir=None)
    return replace(options, cache_dir=cache_dir) if cache_dir is not None else options


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A --max-memory value (800M, 4G or plain bytes) as bytes."""
    from .memory import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def speed_options(command: Any) -> Any:
    """--jobs, --no-cache, --cache-dir and --max-memory, shared by the commands that analyse."""
    command = click.option("--max-memory", callback=_size, default=None, envvar="STAGEGRAPH_MAX_MEMORY",
                           metavar="SIZE",
                           help="Memory parsed files may take (e.g. 4G); a file that does not fit is an "
                                "'over-memory-budget' diagnostic. [default: 80% of the memory available]")(command)
    command = click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
                           help="Keep the result cache here (e.g. .stagegraph-cache). [default: the platform's "
                                "user cache folder, or $STAGEGRAPH_CACHE_DIR]")(command)
    command = click.option("--no-cache", is_flag=True,
                           help="Analyse everything afresh; neither read nor write the result cache.")(command)
    return click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Processes for the analysis. [default: the number of cores]")(command)


def _analyze(targets: Sequence[Path], options: Options) -> Report:
    """The engine run, with a malformed user catalog reported as a usage error (exit 2), not a crash."""
    from .catalog import CatalogError
    from .engine import analyze

    try:
        return analyze(targets, options, progress=_progress_bar())
    except CatalogError as exc:
        raise UsageFailure(str(exc)) from None


config_option = click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
    help="Read configuration from this file instead of searching for stagegraph.toml / pyproject.toml.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stagegraph")
def main() -> None:
    """Find real vs coincidental dependencies between pipeline stages, and the hazards of fanning out."""


# ------------------------------------------------------------------ audit

@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default=None,
              help="What to print to stdout (or --output); given alone, nothing else is written. [default: text]")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write the report here.")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write every format (report.json/html/md/sarif, graph.dot/svg) into this folder.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding is at or above this severity. [default: warning]")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching this glob (repeatable).")
@click.option("--max-file-bytes", type=click.IntRange(min=1), default=None,
              help="Files larger than this become a 'too-large' diagnostic. [default: 2000000]")
@click.option("--disable", multiple=True, metavar="RULE", help="Turn a rule off (repeatable).")
@click.option("--severity", "severity_flags", multiple=True, metavar="RULE=LEVEL",
              help="Override a rule's severity: error, warning or note (repeatable).")
@config_option
@click.option("--baseline", "baseline_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Report only findings not recorded in this baseline file.")
@click.option("--diff-base", metavar="REF",
              help="Report only findings new relative to this git ref (analysed from git objects).")
@click.option("--show-config", is_flag=True, help="Print the effective configuration and exit.")
@click.option("--timings", "timings_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Add the fan-out plan from these measured timings to the Markdown and HTML reports.")
@click.option("--max-stages", type=click.IntRange(min=4), default=None,
              help="Fold pipeline diagrams (dot, mermaid, html, markdown) larger than this; stages with findings or "
                   "real dependencies stay visible.")
@click.option("--select", multiple=True, metavar="RULE", help="Run only these rules (repeatable; replaces `select`).")
@click.option("--extend-select", multiple=True, metavar="RULE", help="Add rules to the selection (repeatable).")
@click.option("--ignore", multiple=True, metavar="RULE", help="Turn a rule off (repeatable; same as --disable).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (errors still exit 2).")
@click.option("--statistics", is_flag=True, help="Print how many findings each rule has, instead of the report.")
@speed_options
def audit(
    paths: tuple[Path, ...],
    fmt: str | None,
    output: Path | None,
    out_dir: Path | None,
    fail_on: str | None,
    exclude: tuple[str, ...],
    max_file_bytes: int | None,
    disable: tuple[str, ...],
    severity_flags: tuple[str, ...],
    config_file: Path | None,
    baseline_file: Path | None,
    diff_base: str | None,
    show_config: bool,
    timings_file: Path | None,
    max_stages: int | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exit_zero: bool,
    statistics: bool,
    jobs: int | None,
    no_cache: bool,
    cache_dir: Path | None,
    max_memory: int | None,
) -> None:
    """Analyse PATHS (files or folders; default: `include` from the config, else the current folder) and report."""
    from .config import Overrides, describe

    overrides = Overrides(
        exclude=exclude, disable=(*disable, *ignore), severity=_parse_severity_flags(severity_flags),
        fail_on=fail_on, max_file_bytes=max_file_bytes, out_dir=out_dir, baseline=baseline_file,
        select=select, extend_select=extend_select,
    )
    config = _config(paths[0] if paths else Path("."), config_file, overrides)
    if show_config:
        click.echo(describe(config), nl=False)
        return
    targets = _targets(paths, config)
    known = _known_fingerprints(config.baseline)
    for refused in config.refused:
        click.echo(f"warning: {refused.file}: {refused.message}", err=True)
    write_dir = config.out_dir
    if out_dir is None and (fmt is not None or output is not None):
        write_dir = None  # an explicit --format/--output asks for that one output, not the config's folder
    fmt = fmt or "text"

    options = _speed(_rooted(config.options(), targets), jobs, no_cache, cache_dir, max_memory)
    report = _analyze(targets, options)
    if diff_base is not None:
        from . import diffmode

        try:
            report, _delta = diffmode.run(targets, diff_base, options, report)
        except diffmode.DiffError as exc:
            raise UsageFailure(str(exc)) from None
    if known is not None:
        from . import baseline

        report = baseline.apply(report, known)
    from .engine import group_sites

    report = group_sites(report)
    from .output import OutputError, write_atomic
    from .render import dot as dot_render
    from .render import render

    with dot_render.remembering(_slow_layouts(options)):
        text = _statistics(report) if statistics else render(report, fmt, max_stages)
        try:
            if write_dir is not None:
                from .render.outdir import write_out_dir

                for note in write_out_dir(report, write_dir, max_stages):
                    click.echo(note, err=True)
            if timings_file is not None:
                from .plan_cli import add_timings

                text = add_timings(report, targets, timings_file, fmt, text, write_dir)
            if output is not None:
                write_atomic(output, text)
        except OutputError as exc:
            raise UsageFailure(str(exc)) from None
    if output is None:
        click.echo(text, nl=False)
    if write_dir is not None:
        click.echo(f"stagegraph: reports written to {write_dir}/ (open {write_dir / 'report.html'})", err=True)
    sys.exit(0 if exit_zero else exit_code(report, config.fail_on))


def _slow_layouts(options: Options) -> SlowLayouts | None:
    """The diagrams `dot` timed out on in earlier runs, kept in the result cache's folder (none
    with --no-cache, so that flag also retries them)."""
    if options.cache_dir is None:
        return None
    from .cache import Marks
    from .render.dot import slow_scope

    return Marks(options.cache_dir, "dot-slow-layouts", slow_scope())


def _statistics(report: Report) -> str:
    """`--statistics`: findings per rule, most frequent first (as ruff's)."""
    from collections import Counter

    by_rule = Counter((f.rule, f.severity) for f in report.findings)
    rows = sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0][0]))
    lines = [f"{n:>5}  {rule:<28} {severity}" for (rule, severity), n in rows]
    suffix = f" ({report.summary.suppressed} suppressed)" if report.summary.suppressed else ""
    lines.append(f"{sum(by_rule.values()):>5}  total{suffix}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ baseline

@main.command("baseline")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the baseline. [default: `baseline` from the config, else .stagegraph-baseline.json]")
@config_option
def baseline_command(paths: tuple[Path, ...], output: Path | None, config_file: Path | None) -> None:
    """Record the current findings of PATHS so later audits report only new ones."""
    from . import baseline

    config = _config(paths[0] if paths else Path("."), config_file)
    targets = _targets(paths, config)
    report = _analyze(targets, _rooted(config.options(), targets))
    destination = output or config.baseline or Path(baseline.DEFAULT_BASELINE)
    from .output import OutputError

    try:
        baseline.write(report, destination)
    except OutputError as exc:
        raise UsageFailure(str(exc)) from None
    click.echo(f"recorded {len(report.findings)} findings in {destination}; "
               f"use `stagegraph audit --baseline {destination}` to report only new ones", err=True)


# ------------------------------------------------------------------ config

@main.command("config")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@config_option
def config_command(path: Path | None, config_file: Path | None) -> None:
    """Print the effective configuration for PATH and where each value came from."""
    from .config import describe

    click.echo(describe(_config(path or Path("."), config_file)), nl=False)


# ------------------------------------------------------------------ pre-commit hook

def _repo_root(start: Path) -> Path:
    import subprocess

    from .confine import git_command, git_env

    try:
        proc = subprocess.run(git_command(start, "rev-parse", "--show-toplevel"), capture_output=True,
                              text=True, check=False, timeout=30, env=git_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return start.resolve()
    return Path(proc.stdout.strip()).resolve() if proc.returncode == 0 and proc.stdout.strip() else start.resolve()


@main.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding is at or above this severity. [default: from config, else warning]")
@config_option
@click.option("--full", is_flag=True,
              help="Analyse the whole repository, not just the changed files and the modules linked to them.")
@speed_options
def hook(files: tuple[Path, ...], fail_on: str | None, config_file: Path | None, full: bool, jobs: int | None,
         no_cache: bool, cache_dir: Path | None, max_memory: int | None) -> None:
    """pre-commit entry: check the pipelines that FILES (the changed files) belong to; print a compact report."""
    from .config import Overrides
    from .hook import run_hook

    root = _repo_root(Path("."))
    config = _config(root, config_file, Overrides(fail_on=fail_on))
    targets = [root / p for p in config.include] if config.include else [root]
    from .catalog import CatalogError

    try:
        options = _speed(_rooted(config.options(), [root]), jobs, no_cache, cache_dir, max_memory)
        report, changed = run_hook(targets, files, options, full=full)
    except CatalogError as exc:
        raise UsageFailure(str(exc)) from None
    known = _known_fingerprints(config.baseline)
    if known is not None:
        from . import baseline

        report = baseline.apply(report, known)
    from .engine import group_sites
    from .hook import render_compact

    report = group_sites(report)

    click.echo(render_compact(report, changed), nl=False)
    sys.exit(exit_code(report, config.fail_on))


# ------------------------------------------------------------------ PR comment

@main.command()
@click.option("--report", "report_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A JSON report written by `stagegraph audit --format json` (or report.json of --out-dir).")
@click.option("--repo", required=True, metavar="OWNER/NAME", help="The repository the pull request is in.")
@click.option("--pr", "pr_number", required=True, type=click.IntRange(min=1), help="The pull-request number.")
@click.option("--dry-run", is_flag=True, help="Print the comment instead of posting it.")
@click.option("--when-clean", type=click.Choice(["short", "full", "skip"]), default="short", show_default=True,
              help="A diff-mode report with no new findings: a short comment, the full report, or no new comment "
                   "(an earlier one is still updated, so it never shows stale findings).")
def comment(report_file: Path, repo: str, pr_number: int, dry_run: bool, when_clean: str) -> None:
    """Post (or update) the Markdown report as a pull-request comment. Token from GITHUB_TOKEN."""
    import json

    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UsageFailure(f"--repo {repo!r}: expected OWNER/NAME")
    try:
        data = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageFailure(f"{report_file}: cannot read the JSON report: {exc}") from None
    report = _saved_report(data)
    clean = report.delta is not None and not report.findings
    body, marker = _comment_body(report, "full" if when_clean == "full" else "short")
    if dry_run:
        click.echo(body)
        return
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise UsageFailure("GITHUB_TOKEN is not set; the comment needs a token that may write pull-request comments")
    from .github import DEFAULT_API_URL, Client, GitHubError, upsert_comment

    client = Client(token, os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
                    log=lambda message: click.echo(message, err=True))
    try:
        action, url = upsert_comment(client, repo, pr_number, body, marker,
                                     create=not (clean and when_clean == "skip"))
    except GitHubError as exc:
        raise UsageFailure(str(exc)) from None
    if action == "skipped":
        click.echo(f"no new findings: no stagegraph comment posted on {repo}#{pr_number} (--when-clean skip)",
                   err=True)
        return
    done = "left the stagegraph comment unchanged (same body)" if action == "unchanged" else \
        f"{action} the stagegraph comment"
    click.echo(f"{done} on {repo}#{pr_number}{': ' + url if url else ''}", err=True)


def _saved_report(data: Any) -> Report:
    from .render.json import from_dict

    try:
        return from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageFailure(f"the report is not a stagegraph JSON report: missing or bad {exc}") from None


def _comment_body(report: Report, clean: str = "short") -> tuple[str, str]:
    """The Markdown comment for a saved report (its diff-mode delta included), and the marker that finds it."""
    from .render import markdown

    body = markdown.render(report, clean=clean)
    if markdown.MARKER not in body:
        body = f"{markdown.MARKER}\n{body}"
    return body, markdown.MARKER


# ------------------------------------------------------------------ rules

@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("pipeline")
@click.argument("first")
@click.argument("second")
@config_option
def why(path: Path, pipeline: str, first: str, second: str, config_file: Path | None) -> None:
    """Explain one pair of stages: every effect of each, where it came from, and the rule that decided."""
    from .why import WhyError, explain_pair

    config = _config(path, config_file)
    targets = _targets((path,), config)
    report = _analyze(targets, _rooted(config.options(), targets))  # the same paths as `audit` reports
    try:
        click.echo(explain_pair(report, pipeline, first, second), nl=False)
    except WhyError as exc:
        raise UsageFailure(str(exc)) from None


@main.command("rules")
def list_rules() -> None:
    """List the rules with their default severity."""
    from .catalog import load_rules

    for rule in sorted(load_rules().values(), key=lambda r: r.id):
        click.echo(f"{rule.id:<28} {rule.severity:<8} {rule.summary}")


@main.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print a rule's documentation."""
    from .catalog import load_rules
    from .rule_docs import rule_markdown

    rules = load_rules()
    if rule not in rules:
        raise UsageFailure(f"unknown rule {rule!r}; `stagegraph rules` lists them")
    click.echo(rule_markdown(rules[rule]))


class Interrupted(BaseException):
    """Ctrl-C, raised past click (which would turn KeyboardInterrupt into exit 1, the findings code)."""


def _on_sigint(signum: int, frame: object) -> None:
    raise Interrupted


from .plan_cli import fanout, instrument, plan  # noqa: E402  (measure-then-plan commands)

for _command in (instrument, plan, fanout):
    main.add_command(_command)


def run() -> None:  # pragma: no cover - console entry for `python -m stagegraph`
    import signal

    signal.signal(signal.SIGINT, _on_sigint)
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except Interrupted:
        click.echo("stagegraph: interrupted; no report was written", err=True)
        sys.stderr.flush()
        os._exit(130)  # the analysis thread may still be running: do not wait for it
    except Exception as exc:
        click.echo(f"stagegraph: internal error: {exc!r}", err=True)
        sys.exit(2)
