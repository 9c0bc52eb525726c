"""GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` annotation per finding.

Annotations show on the pull request's changed lines without code scanning (private repositories
without GitHub Advanced Security included), as ruff's `--output-format github` does. Files that were
not analysed and suppressions that do nothing become warnings, so they are not silent either.
"""

from __future__ import annotations

from ..model import Report

_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}


def _data(value: str) -> str:
    """Escape a command's message (GitHub's `escapeData`)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    """Escape a command property (GitHub's `escapeProperty`)."""
    return _data(value).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, message: str, file: str, line: int | None, column: int | None, title: str) -> str:
    props = [f"file={_property(file)}"]
    if line:
        props.append(f"line={line}")
    if column:
        props.append(f"col={column}")
    props.append(f"title={_property(title)}")
    return f"::{level} {','.join(props)}::{_data(message)}"


def render(report: Report) -> str:
    lines = [
        _command(_LEVEL.get(f.severity, "warning"), f.message, f.file, f.line, f.column, f"stagegraph {f.rule}")
        for f in report.findings
    ]
    lines += [_command("warning", f"not analysed ({d.kind}): {d.message}", d.file, d.line, None,
                       "stagegraph: not analysed") for d in report.diagnostics]
    lines += [_command("warning", f"suppression does nothing ({p.problem}): ignore[{p.rule}]", p.file, p.line, None,
                       "stagegraph: suppression") for p in report.suppression_problems]
    return "".join(line + "\n" for line in lines)
