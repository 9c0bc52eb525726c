"""Baselines for legacy repos: record today's findings by fingerprint, then report only new ones.

Fingerprints hold no line numbers (see `stagegraph.checks.fingerprint`), so a baseline survives
unrelated edits that shift code around. The file is deterministic JSON (sorted, no timestamps)
so it diffs cleanly in review; rule, file and message are there for the humans reading it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .model import Finding, Report

BASELINE_VERSION = 1
DEFAULT_BASELINE = ".stagegraph-baseline.json"


class BaselineError(ValueError):
    """The baseline file is missing or malformed; the message names the file."""


@dataclass(frozen=True, slots=True)
class Baseline:
    fingerprints: frozenset[str]


def dumps(report: Report) -> str:
    """The baseline file's text for a report's findings."""
    entries = sorted(
        ({"fingerprint": fp, "rule": f.rule, "file": f.file, "message": f.message}
         for f in report.findings for fp in f.prints),
        key=lambda e: (e["file"], e["rule"], e["fingerprint"]),
    )
    data = {"stagegraph_baseline": BASELINE_VERSION, "findings": entries}
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(report: Report, path: Path) -> None:
    """Replace the baseline atomically (raises `output.OutputError` naming the path)."""
    from .output import write_atomic

    write_atomic(path, dumps(report))


def load(path: Path) -> Baseline:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BaselineError(
            f"{path}: baseline file not found (create it with `stagegraph baseline PATH --output {path}`)"
        ) from exc
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc.strerror}") from exc
    except ValueError as exc:
        raise BaselineError(f"{path}: baseline is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise BaselineError(f"{path}: not a stagegraph baseline (expected an object with a 'findings' list)")
    prints: set[str] = set()
    for i, entry in enumerate(data["findings"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            raise BaselineError(f"{path}: findings[{i}] has no 'fingerprint' string")
        prints.add(entry["fingerprint"])
    return Baseline(frozenset(prints))


def split(findings: tuple[Finding, ...], known: frozenset[str]) -> tuple[tuple[Finding, ...], int]:
    """The findings whose fingerprints are not in `known`, and how many were left out."""
    kept = tuple(f for f in findings if not is_known(f, known))
    return kept, len(findings) - len(kept)


def is_known(finding: Finding, known: frozenset[str]) -> bool:
    """Every cause of the finding is in `known`: a grouped finding with one new site is new."""
    return all(fp in known for fp in finding.prints)


def apply(report: Report, known: frozenset[str]) -> Report:
    """The report without findings in `known`; they move to `unchanged`, and `summary.baselined` counts them."""
    from dataclasses import replace

    from .engine import summarize

    kept = tuple(f for f in report.findings if not is_known(f, known))
    dropped = tuple(f for f in report.findings if is_known(f, known))
    summary = summarize(report.pipelines, kept, report.summary.files_analysed,
                        baselined=report.summary.baselined + len(dropped), suppressed=report.summary.suppressed)
    return replace(report, findings=kept, unchanged=(*report.unchanged, *dropped), summary=summary)
