"""The JSON report: the contract in shared/contract/report.schema.json, and the fixtures' snapshot format.

The schema ships inside the package (`schema()`), so users can validate a saved report without
a checkout: `json.loads(importlib.resources.files("stagegraph").joinpath("report.schema.json").read_text())`.

Deterministic: sorted keys where order carries no meaning, relative POSIX paths, no timestamps.
`to_dict`/`from_dict` round-trip a `Report`, so other tools (the PR-comment command, diff mode)
can work from a saved report.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ..model import (
    SCHEMA_VERSION,
    Diagnostic,
    Edge,
    EdgeKey,
    Effect,
    FanOut,
    Finding,
    GraphDelta,
    GroupKey,
    Location,
    ParallelGroup,
    Pipeline,
    Report,
    Resource,
    Signal,
    Stage,
    Summary,
    SuppressionProblem,
)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _effect(e: Effect) -> dict[str, Any]:
    return _drop_none({"kind": e.kind, "target": e.target, "line": e.line or None, "file": e.file or None,
                       "assumed": True if e.assumed else None, "origin": e.origin,
                       "of": e.of if e.kind == "unknown" and e.of else None})


def _resource(r: Resource) -> dict[str, Any]:
    return _drop_none({
        "kind": r.kind, "name": r.name, "call": r.call or None, "line": r.line or None, "file": r.file or None,
        "thread_safe": r.thread_safe, "capacity_limited": r.capacity_limited or None,
    })


def _location(loc: Location) -> dict[str, Any]:
    return _drop_none({"file": loc.file, "line": loc.line, "column": loc.column})


def _stage(s: Stage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "file": s.file,
        "line": s.line,
        "reads": [_effect(e) for e in s.reads],
        "writes": [_effect(e) for e in s.writes],
        "resources": [_resource(r) for r in s.resources],
        "roles": list(s.roles),
    }
    if s.definition is not None:
        out["definition"] = _location(s.definition)
    if s.fanout is not None:
        out["fanout"] = _drop_none({"mechanism": s.fanout.mechanism, "detail": s.fanout.detail or None,
                                    "line": s.fanout.line or None, "capped": s.fanout.capped})
    if s.nested_pipeline:
        out["pipeline"] = s.nested_pipeline
    if s.qualname:
        out["qualname"] = s.qualname
    return out


def _edge(e: Edge) -> dict[str, Any]:
    return {"from": e.source, "to": e.target, "kind": e.kind, "declared": e.declared, "via": list(e.via),
            "shared_resources": list(e.shared_resources)}


def _pipeline(p: Pipeline) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "style": p.style,
        "file": p.file,
        "line": p.line,
        "stages": [_stage(s) for s in p.stages],
        "edges": [_edge(e) for e in p.edges],
        "parallel_groups": [{"stages": list(g.stages), "shared_resources": list(g.shared_resources)}
                            for g in p.parallel_groups],
    }
    if p.notes:
        out["notes"] = list(p.notes)
    return out


def _finding(f: Finding) -> dict[str, Any]:
    out = _drop_none({
        "rule": f.rule, "severity": f.severity, "message": f.message, "file": f.file, "line": f.line,
        "column": f.column, "pipeline": f.pipeline, "stages": list(f.stages), "fingerprint": f.fingerprint,
    })
    if f.related:
        out["related"] = [_location(r) for r in f.related]
    if f.snippet:
        out["snippet"] = f.snippet
    if f.message_parts:
        out["message_parts"] = [{"text": text, "code": is_code} for text, is_code in f.message_parts]
    if f.site_fingerprints:
        out["site_fingerprints"] = list(f.site_fingerprints)
    return out


def _diagnostic(d: Diagnostic) -> dict[str, Any]:
    return _drop_none({"file": d.file, "line": d.line, "kind": d.kind, "code": d.code, "message": d.message})


def to_dict(report: Report) -> dict[str, Any]:
    s = report.summary
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "stagegraph", "version": report.tool_version},
        "summary": {
            "files_analysed": s.files_analysed,
            "pipelines": s.pipelines,
            "stages": s.stages,
            "real_edges": s.real_edges,
            "coincidental_edges": s.coincidental_edges,
            "unknown_edges": s.unknown_edges,
            "fanout_candidates": s.fanout_candidates,
            "findings": dict(s.findings_by_severity),
            "baselined": s.baselined,
            "suppressed": s.suppressed,
        },
        "pipelines": [_pipeline(p) for p in report.pipelines],
        "findings": [_finding(f) for f in report.findings],
        "diagnostics": [_diagnostic(d) for d in report.diagnostics],
    }
    # additions to format 1: present only when they hold something, so plain reports read as before
    if report.unchanged:
        out["unchanged_findings"] = [_finding(f) for f in report.unchanged]
    if report.suppressed:
        out["suppressed_findings"] = [_finding(f) for f in report.suppressed]
    if report.suppression_problems:
        out["suppression_problems"] = [
            {"file": p.file, "line": p.line, "rule": p.rule, "problem": p.problem} for p in report.suppression_problems
        ]
    if report.delta is not None:
        out["delta"] = delta_to_dict(report.delta)
    return out


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


def delta_to_dict(delta: GraphDelta) -> dict[str, Any]:
    """Diff mode's `"delta"` key: base, finding counts, real dependencies and parallel groups gained or lost."""
    def edge(e: EdgeKey) -> dict[str, str]:
        return {"pipeline": e.pipeline, "from": e.source, "to": e.target, "kind": e.kind}

    def group(g: GroupKey) -> dict[str, Any]:
        return {"pipeline": g.pipeline, "stages": list(g.stages)}

    return {
        "base_ref": delta.base_ref,
        "base_commit": delta.base_commit,
        "findings": {"new": delta.new_findings, "fixed": delta.fixed_findings, "unchanged": delta.unchanged_findings},
        "dependencies_added": [edge(e) for e in delta.dependencies_added],
        "dependencies_removed": [edge(e) for e in delta.dependencies_removed],
        "parallel_groups_gained": [group(g) for g in delta.parallel_groups_gained],
        "parallel_groups_lost": [group(g) for g in delta.parallel_groups_lost],
    }


def delta_from_dict(data: dict[str, Any]) -> GraphDelta:
    findings = data.get("findings", {})
    return GraphDelta(
        base_ref=data.get("base_ref", ""),
        base_commit=data.get("base_commit", ""),
        dependencies_added=tuple(EdgeKey(e["pipeline"], e["from"], e["to"], e["kind"])
                                 for e in data.get("dependencies_added", [])),
        dependencies_removed=tuple(EdgeKey(e["pipeline"], e["from"], e["to"], e["kind"])
                                   for e in data.get("dependencies_removed", [])),
        parallel_groups_gained=tuple(GroupKey(g["pipeline"], tuple(g["stages"]))
                                     for g in data.get("parallel_groups_gained", [])),
        parallel_groups_lost=tuple(GroupKey(g["pipeline"], tuple(g["stages"]))
                                   for g in data.get("parallel_groups_lost", [])),
        new_findings=findings.get("new", 0),
        fixed_findings=findings.get("fixed", 0),
        unchanged_findings=findings.get("unchanged", 0),
    )


# ------------------------------------------------------------------ reading a saved report

def _effect_from(d: dict[str, Any]) -> Effect:
    return Effect(d["kind"], d["target"], d.get("file", ""), d.get("line", 0), of=d.get("of", ""),
                  assumed=bool(d.get("assumed")), origin=d.get("origin", "code"))


def _stage_from(d: dict[str, Any]) -> Stage:
    definition = d.get("definition")
    fan = d.get("fanout")
    return Stage(
        id=d["id"], name=d["name"], file=d["file"], line=d["line"],
        definition=Location(definition["file"], definition["line"], definition.get("column")) if definition else None,
        reads=tuple(_effect_from(e) for e in d.get("reads", [])),
        writes=tuple(_effect_from(e) for e in d.get("writes", [])),
        resources=tuple(
            Resource(r["kind"], r["name"], r.get("call", ""), r.get("file", ""), r.get("line", 0),
                     r.get("thread_safe", True), bool(r.get("capacity_limited")))
            for r in d.get("resources", [])
        ),
        roles=tuple(d.get("roles", [])),
        fanout=FanOut(fan["mechanism"], fan.get("detail", ""), fan.get("line", 0), fan.get("capped")) if fan else None,
        nested_pipeline=d.get("pipeline"),
        qualname=d.get("qualname", ""),
    )


def from_dict(data: dict[str, Any]) -> Report:
    """Rebuild a Report from its JSON form (signals are not serialised, so they come back empty)."""
    pipelines = tuple(
        Pipeline(
            id=p["id"], name=p["name"], style=p["style"], file=p["file"], line=p["line"],
            stages=tuple(_stage_from(s) for s in p["stages"]),
            edges=tuple(Edge(e["from"], e["to"], e["kind"], e["declared"], tuple(e["via"]),
                             tuple(e.get("shared_resources", []))) for e in p["edges"]),
            parallel_groups=tuple(ParallelGroup(tuple(g["stages"]), tuple(g["shared_resources"]))
                                  for g in p["parallel_groups"]),
            notes=tuple(p.get("notes", [])),
        )
        for p in data["pipelines"]
    )
    def finding(f: dict[str, Any]) -> Finding:
        return Finding(
            rule=f["rule"], severity=f["severity"], message=f["message"], file=f["file"], line=f["line"],
            fingerprint=f["fingerprint"], column=f.get("column"), pipeline=f.get("pipeline"),
            stages=tuple(f.get("stages", [])),
            related=tuple(Location(r["file"], r["line"], r.get("column")) for r in f.get("related", [])),
            snippet=f.get("snippet", ""),
            message_parts=tuple((p["text"], bool(p["code"])) for p in f.get("message_parts", [])),
            site_fingerprints=tuple(f.get("site_fingerprints", [])),
        )

    findings = tuple(finding(f) for f in data["findings"])
    diagnostics = tuple(Diagnostic(d["file"], d["kind"], d["message"], d.get("line"), d.get("code"))
                        for d in data["diagnostics"])
    s = data.get("summary", {})
    summary = Summary(
        files_analysed=s.get("files_analysed", 0), pipelines=len(pipelines),
        stages=sum(len(p.stages) for p in pipelines), real_edges=s.get("real_edges", 0),
        coincidental_edges=s.get("coincidental_edges", 0), unknown_edges=s.get("unknown_edges", 0),
        fanout_candidates=s.get("fanout_candidates", 0),
        findings_by_severity=tuple((k, int(v)) for k, v in s.get("findings", {}).items()),
        baselined=s.get("baselined", 0), suppressed=s.get("suppressed", 0),
    )
    _ = Signal  # signals are internal facts, not part of the contract
    delta = delta_from_dict(data["delta"]) if isinstance(data.get("delta"), dict) else None
    return Report(
        data["tool"]["version"], pipelines, findings, diagnostics, summary,
        unchanged=tuple(finding(f) for f in data.get("unchanged_findings", [])),
        suppressed=tuple(finding(f) for f in data.get("suppressed_findings", [])),
        suppression_problems=tuple(SuppressionProblem(p["file"], p["line"], p["rule"], p["problem"])
                                   for p in data.get("suppression_problems", [])),
        delta=delta,
    )


def schema() -> dict[str, Any]:
    """The report's JSON schema, as shipped in the package (a copy of the shared contract)."""
    text = resources.files(__name__.partition(".")[0]).joinpath("report.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded
