"""Labelled stage pairs (`*.expect.json`) judged against a JSON report, the way shared/tools/score.py judges them.

A pair "depends" when a chain of data/control/unknown edges leads from one stage to the other in the
labelled pipeline (or, as in the scorer, in the merge of every pipeline holding a labelled stage);
otherwise "independent". A `"dep_kind": "control"` pair must depend; `"confidence": "low"` accepts
either answer. Kept separate from the tests so the fixture cases and the shared examples use one rule.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagegraph.model import Pipeline, Report

DEPENDENCY_KINDS = frozenset({"data", "control", "unknown"})

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One labelled pair and what the report says about it."""

    a: str
    b: str
    truth: str  # "depends" | "independent" | "either"
    said: str  # "depends" | "independent" | "missing" (a stage is not in the report)
    via: str

    @property
    def unsafe(self) -> bool:
        """A real dependency the report calls independent (or cannot even place)."""
        return self.truth == "depends" and self.said != "depends"

    @property
    def holds(self) -> bool:
        return self.truth == "either" or self.truth == self.said

    def describe(self) -> str:
        return f"{self.a} -> {self.b}: labelled {self.truth} ({self.via or 'no via'}), report says {self.said}"


def find_cases(root: Path) -> list[tuple[str, Path, Json]]:
    """(name, target, label) for every NAME.expect.json beside a NAME/ folder or NAME.py file."""
    cases = []
    for expect in sorted(root.glob("*.expect.json")):
        name = expect.name[: -len(".expect.json")]
        target = root / name if (root / name).is_dir() else root / f"{name}.py"
        cases.append((name, target, json.loads(expect.read_text(encoding="utf-8"))))
    return cases


def pick_pipeline(report: Json, wanted: str) -> Json | None:
    pipelines: list[Json] = report.get("pipelines", [])
    short = wanted.split(".")[-1]
    tests: list[Callable[[Json], bool]] = [
        lambda p: bool(p["name"] == wanted),
        lambda p: bool(p["name"].endswith("." + short) or p["name"] == short),
        lambda p: wanted.endswith(p["name"]),
        lambda p: bool(p.get("id", "").endswith(wanted)),
    ]
    for test in tests:
        hits = [p for p in pipelines if test(p)]
        if hits:
            return max(hits, key=lambda p: len(p.get("stages", [])))
    return None


def merged_pipeline(report: Json, wanted: set[str]) -> Json | None:
    """One pseudo-pipeline of every pipeline holding a labelled stage (nested drivers, multi-file repos)."""
    parts = [p for p in report.get("pipelines", []) if wanted & {s["name"] for s in p.get("stages", [])}]
    if not parts:
        return None
    return {
        "id": "|".join(p["id"] for p in parts),
        "file": parts[0].get("file"),
        "stages": [dict(s, id=f"{p['id']}::{s['id']}") for p in parts for s in p.get("stages", [])],
        "edges": [
            dict(e, **{"from": f"{p['id']}::{e['from']}", "to": f"{p['id']}::{e['to']}"})
            for p in parts
            for e in p.get("edges", [])
        ],
    }


def labelled_pipeline(report: Json, label: Json) -> Json | None:
    pipeline = pick_pipeline(report, label["pipeline"])
    order = set(label.get("order", []))
    if pipeline is None or not order & {s["name"] for s in pipeline.get("stages", [])}:
        pipeline = merged_pipeline(report, order)
    return pipeline


def reachable(pipeline: Json) -> dict[str, set[str]]:
    successors: dict[str, set[str]] = defaultdict(set)
    for edge in pipeline.get("edges", []):
        if edge["kind"] in DEPENDENCY_KINDS:
            successors[edge["from"]].add(edge["to"])
    closure: dict[str, set[str]] = {}
    for start in list(successors):
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in successors[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        closure[start] = seen
    return closure


def truth_of(pair: Json) -> str:
    if pair.get("confidence") == "low":
        return "either"
    if pair.get("dep_kind") == "control":
        return "depends"
    return str(pair["relation"])


def judge(report: Json, label: Json) -> Iterator[Verdict]:
    """A verdict for every labelled pair (stages absent from the report are `missing`)."""
    pipeline = labelled_pipeline(report, label) or {"stages": [], "edges": []}
    ids: dict[str, str] = {}
    for stage in pipeline.get("stages", []):
        ids.setdefault(stage["name"], stage["id"])
    closure = reachable(pipeline)
    for pair in label.get("pairs", []):
        a, b = ids.get(pair["a"]), ids.get(pair["b"])
        if a is None or b is None:
            said = "missing"
        elif b in closure.get(a, set()) or a in closure.get(b, set()):
            said = "depends"
        else:
            said = "independent"
        yield Verdict(pair["a"], pair["b"], truth_of(pair), said, pair.get("via", ""))


# ---------------------------------------------------------------- the same questions on model objects


def pick_model(report: Report, name: str, style: str | None = None) -> Pipeline:
    """The largest pipeline of that name (and style), as the scorer picks it."""
    hits = [p for p in report.pipelines if p.name == name and (style is None or p.style == style)]
    assert hits, f"pipeline {name!r} not in {[(p.name, p.style) for p in report.pipelines]}"
    return max(hits, key=lambda p: len(p.stages))


def model_depends(pipeline: Pipeline, a: str, b: str) -> bool:
    """A chain of data/control/unknown edges leads from one stage to the other (stage names or ids)."""
    ids: dict[str, str] = {}
    for s in pipeline.stages:
        ids.setdefault(s.name, s.id)
    ids.update({s.id: s.id for s in pipeline.stages})
    succ: dict[str, set[str]] = {}
    for e in pipeline.edges:
        if e.kind in DEPENDENCY_KINDS:
            succ.setdefault(e.source, set()).add(e.target)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for nxt in succ.get(todo.pop(), set()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    return reaches(ids[a], ids[b]) or reaches(ids[b], ids[a])
