"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Follows GitHub's documented subset: one run, `tool.driver` with rules (id, name, short and full
description, help text and markdown, default level, tags), one result per finding with `ruleId`,
`ruleIndex`, `level`, `message.text`, a physical location relative to the repository root
(`uriBaseId` `%SRCROOT%`, `region.startLine`), related locations for the other stages involved,
and `partialFingerprints` so alerts survive unrelated edits. Files not analysed become tool
execution notifications, so they are visible in SARIF viewers too. Deterministic: no timestamps.

Code scanning closes every alert missing from an upload, so a diff-mode or baseline run still
uploads the *full* set: new findings with `baselineState: "new"`, known ones with `"unchanged"`,
and findings silenced by `# stagegraph: ignore[...]` with an `inSource` suppression (shown as
dismissed, not fixed). Rule descriptors come from the run's own catalog (`Report.rules`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ..model import Diagnostic, Finding, Location, Pipeline, Report, Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/stagegraph/stagegraph"
FINGERPRINT_KEY = "stagegraphFingerprint/v1"
SRCROOT = "%SRCROOT%"
#: GitHub code scanning limits per run and per result
MAX_RESULTS = 25_000
MAX_RELATED = 1_000
MAX_TAGS = 20


def uri(path: str) -> str:
    """A relative URI reference for a repository path ('/' separated, percent-encoded, no leading './').

    Report paths are POSIX already: a backslash is part of a file name and stays one (`%5C`).
    """
    while path.startswith("./"):
        path = path[2:]
    return quote(path.lstrip("/"), safe="/-._~")


def _physical(file: str, line: int, column: int | None = None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": max(1, line)}
    if column is not None and column >= 1:
        region["startColumn"] = column
    return {"physicalLocation": {"artifactLocation": {"uri": uri(file), "uriBaseId": SRCROOT}, "region": region}}


def _rule(rule_id: str, doc: Rule | None) -> dict[str, Any]:
    if doc is None:  # a finding whose rule is not in the catalog still gets a descriptor
        return {"id": rule_id, "name": rule_id, "shortDescription": {"text": rule_id},
                "defaultConfiguration": {"level": "warning"}, "properties": {"tags": ["stagegraph"]}}
    help_md = "\n\n".join(part for part in (
        f"**{doc.title}**", doc.summary,
        f"## Why is this bad?\n{doc.why}",
        f"## Example\n```python\n{doc.bad.rstrip()}\n```",
        f"## Use instead\n```python\n{doc.good.rstrip()}\n```",
        f"## How to fix\n{doc.fix}",
    ))
    return {
        "id": doc.id,
        "name": "".join(w.capitalize() for w in doc.id.split("-")),
        "shortDescription": {"text": doc.title},
        "fullDescription": {"text": doc.summary},
        "help": {"text": f"{doc.summary}\n\nWhy: {doc.why}\n\nFix: {doc.fix}", "markdown": help_md},
        "defaultConfiguration": {"level": doc.severity},
        "properties": {"tags": ["stagegraph", *doc.tags][:MAX_TAGS], "precision": "medium",
                       "problem.severity": "recommendation" if doc.severity == "note" else doc.severity},
    }


def _related(f: Finding, pipelines: dict[str, Pipeline]) -> list[dict[str, Any]]:
    """Other places involved: the finding's related locations, then each named stage's call site."""
    seen = {(f.file, f.line)}
    out: list[dict[str, Any]] = []

    def add(loc: Location, text: str) -> None:
        if (loc.file, loc.line) in seen or len(out) >= MAX_RELATED:
            return
        seen.add((loc.file, loc.line))
        item = _physical(loc.file, loc.line, loc.column)
        item.update(id=len(out) + 1, message={"text": text})
        out.append(item)

    for loc in f.related:
        add(loc, "related location")
    pipeline = pipelines.get(f.pipeline or "")
    if pipeline is not None:
        for sid in f.stages:
            try:
                stage = pipeline.stage(sid)
            except KeyError:
                continue
            add(Location(stage.file, stage.line), f"stage {stage.name} in pipeline {pipeline.name}")
    return out


def _result(f: Finding, rule_index: int, pipelines: dict[str, Pipeline], state: str | None = None,
            suppressed: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": f.severity,
        "message": {"text": f.message or f.rule},
        "locations": [_physical(f.file, f.line, f.column)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
    }
    if state is not None:
        result["baselineState"] = state
    if suppressed:
        result["suppressions"] = [{"kind": "inSource", "justification": "# stagegraph: ignore[...] in the code"}]
    related = _related(f, pipelines)
    if related:
        result["relatedLocations"] = related
    props: dict[str, Any] = {}
    if f.pipeline:
        props["pipeline"] = f.pipeline
    if f.stages:
        props["stages"] = list(f.stages)
    if props:
        result["properties"] = props
    return result


def _notification(d: Diagnostic) -> dict[str, Any]:
    note: dict[str, Any] = {
        "level": "error" if d.kind == "internal-error" else "warning",
        "message": {"text": f"{d.file}: not analysed ({d.kind}): {d.message}"},
        "descriptor": {"id": d.kind},
        "locations": [_physical(d.file, d.line or 1)],
    }
    return note


def to_dict(report: Report) -> dict[str, Any]:
    catalog: dict[str, Rule]
    if report.rules:
        catalog = {r.id: r for r in report.rules}
    else:  # a report read back from JSON: the bundled catalog
        from ..catalog import load_rules

        catalog = dict(load_rules())
    rule_ids = list(catalog)
    for f in (*report.findings, *report.unchanged, *report.suppressed):
        if f.rule not in catalog and f.rule not in rule_ids:
            rule_ids.append(f.rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    pipelines = {p.id: p for p in report.pipelines}
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "stagegraph",
            "version": report.tool_version,
            "semanticVersion": report.tool_version,
            "informationUri": INFORMATION_URI,
            "rules": [_rule(rid, catalog.get(rid)) for rid in rule_ids],
        }},
        "originalUriBaseIds": {SRCROOT: {"description": {"text": "The root of the analysed repository."}}},
        "results": _results(report, index, pipelines)[:MAX_RESULTS],
        "invocations": [{
            "executionSuccessful": not any(d.kind == "internal-error" for d in report.diagnostics),
            "toolExecutionNotifications": [_notification(d) for d in report.diagnostics],
        }],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _results(report: Report, index: dict[str, int], pipelines: dict[str, Pipeline]) -> list[dict[str, Any]]:
    """Every finding of the run: new, unchanged (diff mode, baseline) and suppressed inline."""
    compared = report.delta is not None or report.summary.baselined > 0 or bool(report.unchanged)
    results = [_result(f, index[f.rule], pipelines, "new" if compared else None) for f in report.findings]
    results += [_result(f, index[f.rule], pipelines, "unchanged") for f in report.unchanged]
    results += [_result(f, index[f.rule], pipelines, suppressed=True) for f in report.suppressed]
    return results


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
