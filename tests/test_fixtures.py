"""Fixture folders against their goldens, labels, inline markers and the report schema.

- Goldens: `fixtures/legacy_etl/expected.json` and `fixtures/cases/<case>/expected.json` are exactly what
  `stagegraph audit <folder> --format json` prints (regenerate: `STAGEGRAPH_UPDATE=1 pytest` or
  `python tests/update_goldens.py`, then read the diff).
- Labels: every pair in `fixtures/cases/<case>.expect.json` must hold, judged like shared/tools/score.py.
- Markers: `# expect: RULE` lines must have that finding; a `# missing: RULE` line that starts firing fails
  (promote it to `expect`); in the bundled example, every warning or error must be marked.
- Known engine gaps are strict xfails named in `PAIR_GAPS` / `HAZARD_GAPS` (and listed in fixtures/GAPS.md):
  when the engine learns the case, the xfail fails and the entry must go.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from labels import find_cases, judge, labelled_pipeline
from update_goldens import FIXTURES, GOLDEN_NAME, REPO, audit_json, fixture_dirs, fixture_id

from stagegraph.render.json import schema

SHARED_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"
CASES_DIR = FIXTURES / "cases"
UPDATE = os.environ.get("STAGEGRAPH_UPDATE") == "1"
MARKER = re.compile(r"#\s*(expect|missing):\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)")

#: case -> why the engine gets a labelled pair wrong today (a strict xfail: it fails once fixed).
PAIR_GAPS: dict[str, str] = {}
#: case -> why a labelled hazard is not reported today.
HAZARD_GAPS: dict[str, str] = {}

Json = dict[str, Any]


@cache
def report_of(folder: Path) -> Json:
    data: Json = json.loads(audit_json(folder))
    return data


def case_params() -> list[Any]:
    return [pytest.param(name, target, label, id=name) for name, target, label in find_cases(CASES_DIR)]


def with_gap(params: list[Any], gaps: dict[str, str]) -> list[Any]:
    out = []
    for p in params:
        name = p.id
        marks = [pytest.mark.xfail(strict=True, reason=gaps[name])] if name in gaps else []
        out.append(pytest.param(*p.values, id=name, marks=marks))
    return out


# ------------------------------------------------------------------ (a) goldens


@pytest.mark.parametrize("folder", fixture_dirs(), ids=fixture_id)
def test_golden(folder: Path) -> None:
    actual = audit_json(folder)
    golden = folder / GOLDEN_NAME
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"no golden for {fixture_id(folder)}: run `python tests/update_goldens.py` and review it"
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"{fixture_id(folder)}/{GOLDEN_NAME}", "stagegraph audit", n=2,
            lineterm="",
        )
        shown = list(diff)
        more = f"\n... {len(shown) - 120} more diff lines" if len(shown) > 120 else ""
        pytest.fail(
            "report differs from the golden (if intended: STAGEGRAPH_UPDATE=1 pytest tests/test_fixtures.py, "
            "then review `git diff fixtures/`):\n" + "\n".join(shown[:120]) + more,
            pytrace=False,
        )


@pytest.mark.parametrize("folder", fixture_dirs(), ids=fixture_id)
def test_golden_is_portable(folder: Path) -> None:
    """Goldens must not depend on where the repository is checked out."""
    text = audit_json(folder)
    assert str(REPO) not in text and str(FIXTURES) not in text


def test_every_case_folder_is_labelled() -> None:
    folders = {p.name for p in CASES_DIR.iterdir() if p.is_dir()}
    labelled = {name for name, _, _ in find_cases(CASES_DIR)}
    assert folders == labelled, f"case folders without a label: {sorted(folders - labelled)}; " \
        f"labels without a folder: {sorted(labelled - folders)}"
    assert len(labelled) >= 30


# ------------------------------------------------------------------ (b) labelled pairs and hazards


@pytest.mark.parametrize(("name", "target", "label"), with_gap(case_params(), PAIR_GAPS))
def test_case_pairs(name: str, target: Path, label: Json) -> None:
    report = report_of(target)
    pipeline = labelled_pipeline(report, label)
    assert pipeline is not None, f"{name}: no pipeline {label['pipeline']!r} holding the labelled stages"
    names = {s["name"] for s in pipeline["stages"]}
    missing = [s for s in label["order"] if s not in names]
    assert not missing, f"{name}: stages not found: {missing}"
    wrong = [v.describe() for v in judge(report, label) if not v.holds]
    assert not wrong, f"{name}:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize(("name", "target", "label"), with_gap(case_params(), HAZARD_GAPS))
def test_case_hazards(name: str, target: Path, label: Json) -> None:
    """Each labelled hazard is reported on its stages; no unlabelled warning/error in a case."""
    report = report_of(target)
    findings = report["findings"]
    missed = []
    used: set[int] = set()
    for hazard in label.get("hazards", []):
        hit = next(
            (
                i for i, f in enumerate(findings)
                if i not in used and f["rule"] == hazard["kind"] and set(hazard["stages"]) <= set(f.get("stages", []))
            ),
            None,
        )
        if hit is None:
            missed.append(f"{hazard['kind']} on {hazard['stages']}")
        else:
            used.add(hit)
    extra = [
        f"{f['rule']} on {f.get('stages')} at {f['file']}:{f['line']}"
        for i, f in enumerate(findings)
        if i not in used and f["severity"] in ("error", "warning")
    ]
    assert not missed and not extra, f"{name}: missed {missed}; unlabelled {extra}"


# ------------------------------------------------------------------ (c) inline markers


def markers(folder: Path) -> Iterator[tuple[str, int, str, str]]:
    """(file, line, 'expect'|'missing', rule) for every marker comment under `folder`."""
    for path in sorted(folder.rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(folder).as_posix()
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in MARKER.finditer(line):
                for rule in m.group(2).split(","):
                    yield rel, lineno, m.group(1), rule.strip()


def finding_locations(report: Json, finding: Json) -> set[tuple[str, int]]:
    """Where a finding may be marked: its own line, and the call line of each stage it names."""
    where = {(finding["file"], finding["line"])}
    for pipeline in report["pipelines"]:
        if pipeline["id"] != finding.get("pipeline"):
            continue
        for stage in pipeline["stages"]:
            if stage["id"] in finding.get("stages", []):
                where.add((stage["file"], stage["line"]))
    return where


def marker_params() -> list[Any]:
    params = []
    for folder in fixture_dirs():
        for rel, line, kind, rule in markers(folder):
            params.append(pytest.param(folder, rel, line, kind, rule, id=f"{fixture_id(folder)}/{rel}:{line}:{rule}"))
    return params


@pytest.mark.parametrize(("folder", "rel", "line", "kind", "rule"), marker_params())
def test_marker(folder: Path, rel: str, line: int, kind: str, rule: str) -> None:
    report = report_of(folder)
    fired = any(f["rule"] == rule and (rel, line) in finding_locations(report, f) for f in report["findings"])
    if kind == "expect":
        assert fired, f"{rel}:{line}: expected a {rule} finding here; none was reported"
    else:
        assert not fired, f"{rel}:{line}: {rule} now fires here: promote `# missing: {rule}` to `# expect: {rule}`"


def test_bundled_example_findings_are_all_marked() -> None:
    """Every warning or error in the bundled example sits on an `# expect:` line (pyflakes-style exact set)."""
    folder = FIXTURES / "legacy_etl"
    report = report_of(folder)
    expected = {(rel, line, rule) for rel, line, kind, rule in markers(folder) if kind == "expect"}
    unmarked = [
        f"{f['rule']} at {f['file']}:{f['line']} ({f['message'][:80]})"
        for f in report["findings"]
        if f["severity"] in ("error", "warning")
        and not any((rel, line, f["rule"]) in expected for rel, line in finding_locations(report, f))
    ]
    assert not unmarked, "unmarked findings (add `# expect: RULE`, or fix the false positive):\n" + "\n".join(unmarked)


def test_bundled_example_reports_its_bad_files() -> None:
    report = report_of(FIXTURES / "legacy_etl")
    kinds = {(d["file"], d["kind"]) for d in report["diagnostics"]}
    assert ("legacy/old_export.py", "syntax-error") in kinds
    assert ("legacy/broken_report.py", "syntax-error") in kinds
    py2 = next(d for d in report["diagnostics"] if d["file"] == "legacy/old_export.py")
    assert "Python 2" in py2["message"]
    assert not any(d["file"].startswith("vendor/") for d in report["diagnostics"]), "the generated file should parse"
    assert report["summary"]["files_analysed"] >= 20


# ------------------------------------------------------------------ (d) schema


@cache
def validator() -> Any:
    contract = schema()
    cls = jsonschema.validators.validator_for(contract)
    cls.check_schema(contract)
    return cls(contract)


@pytest.mark.parametrize("folder", fixture_dirs(), ids=fixture_id)
def test_report_matches_schema(folder: Path) -> None:
    errors = sorted(validator().iter_errors(report_of(folder)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])


# ------------------------------------------------------------------ (e) shared examples


def shared_params() -> list[Any]:
    if not SHARED_EXAMPLES.is_dir():
        return [pytest.param(None, None, None, id="absent", marks=pytest.mark.skip(reason="../shared/examples absent"))]
    return [pytest.param(name, target, label, id=name) for name, target, label in find_cases(SHARED_EXAMPLES)]


@pytest.mark.parametrize(("name", "target", "label"), shared_params())
def test_shared_example_never_unsafe(name: str, target: Path, label: Json) -> None:
    """No labelled dependent pair of any shared example may be reported independent."""
    report = report_of(target)
    unsafe = [v.describe() for v in judge(report, label) if v.truth == "depends" and v.said == "independent"]
    assert not unsafe, f"{name}:\n  " + "\n  ".join(unsafe)


@pytest.mark.parametrize(("name", "target", "label"), shared_params())
def test_shared_example_pairs(name: str, target: Path, label: Json) -> None:
    """Every labelled pair of every shared example (plain, class and framework) is right."""
    wrong = [v.describe() for v in judge(report_of(target), label) if not v.holds]
    assert not wrong, f"{name}:\n  " + "\n  ".join(wrong)
