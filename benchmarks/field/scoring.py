"""Fallback copy of the scoring logic of ../shared/tools/score.py, for when shared/ is not checked out.

run.py imports ../shared/tools/score.py when it exists and uses this module only otherwise. The functions
below are a faithful copy of score.py (sha256 6fc43d84... as of 2026-12-01): same pipeline picking, same
merged pipeline, same reachability over data/control/unknown edges, same handling of `confidence: low`,
same hazard matching by rule + stages and same count of extra findings at error/warning. Only type hints
were added. tests/test_field_runner.py checks that both give the same rows; when score.py changes, copy
the change here.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

DEPENDENCY_KINDS = {"data", "control", "unknown"}


def pick_pipeline(report: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    pipelines: list[dict[str, Any]] = report.get("pipelines", [])
    short = wanted.split(".")[-1]
    tests = (
        lambda p: p["name"] == wanted,
        lambda p: p["name"].endswith("." + short) or p["name"] == short,
        lambda p: wanted.endswith(p["name"]),
        lambda p: p.get("id", "").endswith(wanted),
    )
    for test in tests:
        hits = [p for p in pipelines if test(p)]
        if hits:
            return max(hits, key=lambda p: len(p.get("stages", [])))
    return None


def merged_pipeline(report: dict[str, Any], wanted: set[str]) -> dict[str, Any] | None:
    """One pseudo-pipeline of every pipeline that holds a labelled stage (nested drivers, multi-file repos)."""
    parts = [p for p in report.get("pipelines", []) if wanted & {s["name"] for s in p.get("stages", [])}]
    if not parts:
        return None
    parts.sort(key=lambda p: -len(wanted & {s["name"] for s in p.get("stages", [])}))
    return {
        "id": "|".join(p["id"] for p in parts),
        "file": parts[0].get("file"),
        "stages": [dict(s, id=f"{p['id']}::{s['id']}") for p in parts for s in p.get("stages", [])],
        "edges": [
            dict(e, **{"from": f"{p['id']}::{e['from']}", "to": f"{p['id']}::{e['to']}"})
            for p in parts
            for e in p.get("edges", [])
        ],
        "member_ids": [p["id"] for p in parts],
    }


def stage_ids(pipeline: dict[str, Any]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for stage in pipeline.get("stages", []):
        ids.setdefault(stage["name"], stage["id"])
    return ids


def reachable(pipeline: dict[str, Any]) -> dict[str, set[str]]:
    succ: dict[str, set[str]] = defaultdict(set)
    for edge in pipeline.get("edges", []):
        if edge["kind"] in DEPENDENCY_KINDS:
            succ[edge["from"]].add(edge["to"])
    closure: dict[str, set[str]] = {}
    for start in list(succ):
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in succ[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        closure[start] = seen
    return closure


def score_case(name: str, label: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = defaultdict(int)
    row["case"] = name
    row["notes"] = []
    pipeline = pick_pipeline(report, label["pipeline"])
    if pipeline is None or not set(label.get("order", [])) & {s["name"] for s in pipeline.get("stages", [])}:
        pipeline = merged_pipeline(report, set(label.get("order", [])))
        if pipeline is not None:
            row["notes"].append("pipeline matched by merging the report's pipelines that hold labelled stages")
    if pipeline is None:
        row["notes"].append(f"pipeline {label['pipeline']!r} not found")
        row["stages_missed"] = len(label.get("order", []))
        row["pairs_unscored"] = len(label.get("pairs", []))
        row["hazards_missed"] = len(label.get("hazards", []))
        return row
    ids = stage_ids(pipeline)
    closure = reachable(pipeline)
    for stage in label.get("order", []):
        row["stages_found" if stage in ids else "stages_missed"] += 1
    for pair in label.get("pairs", []):
        if pair.get("confidence") == "low":
            row["pairs_either_way"] += 1  # the label accepts either answer
            continue
        a, b = ids.get(pair["a"]), ids.get(pair["b"])
        if a is None or b is None:
            row["pairs_unscored"] += 1
            continue
        said = "depends" if b in closure.get(a, set()) or a in closure.get(b, set()) else "independent"
        truth = "depends" if pair.get("dep_kind") == "control" else pair["relation"]
        if truth == "depends":
            if said == "depends":
                row["depends_ok"] += 1
            else:
                row["unsafe_called_safe"] += 1
                row["notes"].append(f"UNSAFE: {pair['a']} -> {pair['b']} depends via {pair.get('via', '?')}")
        else:
            if said == "independent":
                row["independent_ok"] += 1
            else:
                row["independent_missed"] += 1
                row["notes"].append(f"missed fan-out: {pair['a']} / {pair['b']}")
    files = {pipeline.get("file")}
    stage_names = {s["id"].split("::")[-1]: s["name"] for s in pipeline.get("stages", [])}
    members = set(pipeline.get("member_ids", [pipeline["id"]]))
    findings = [
        f
        for f in report.get("findings", [])
        if f.get("pipeline") in members or f.get("pipeline") is None or f.get("file") in files
    ]
    used: set[int] = set()
    for hazard in label.get("hazards", []):
        if hazard["kind"] == "other":
            continue  # free-form observations: no rule id to match
        match = None
        for i, f in enumerate(findings):
            if i in used or f["rule"] != hazard["kind"]:
                continue
            named = {stage_names.get(s, s) for s in f.get("stages", [])}
            if not hazard.get("stages") or named & set(hazard["stages"]) or not named:
                match = i
                break
        if match is None:
            row["hazards_missed"] += 1
            row["notes"].append(f"missed hazard {hazard['kind']} on {hazard.get('stages')}")
        else:
            used.add(match)
            row["hazards_found"] += 1
    labelled_kinds = {h["kind"] for h in label.get("hazards", [])}
    for i, f in enumerate(findings):
        if i not in used and f.get("severity") in ("error", "warning"):
            row["extra_findings"] += 1
            row["notes"].append(
                f"unlabelled finding {f['rule']}" + ("" if f["rule"] in labelled_kinds else " (kind not in label)")
            )
    return row
