"""SARIF 2.1.0: validates against the schema and carries what GitHub code scanning needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from render_samples import hostile_report, sample_report

from stagegraph.catalog import load_rules
from stagegraph.model import Finding, Report
from stagegraph.render import sarif

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def _validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(doc), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


@pytest.mark.parametrize("make", [sample_report, hostile_report])
def test_validates_against_sarif_schema(make: Any) -> None:
    doc = json.loads(sarif.render(make()))
    _validate(doc)
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1


def test_schema_check_can_fail() -> None:
    doc = json.loads(sarif.render(sample_report()))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError):
        _validate(doc)


def test_driver_rules_come_from_the_catalog() -> None:
    driver = json.loads(sarif.render(sample_report()))["runs"][0]["tool"]["driver"]
    assert driver["name"] == "stagegraph" and driver["version"] == "0.1.0" and driver["informationUri"]
    catalog = load_rules()
    ids = [r["id"] for r in driver["rules"]]
    assert ids[: len(catalog)] == list(catalog)
    for rule in driver["rules"]:
        doc = catalog[rule["id"]]
        assert rule["shortDescription"]["text"] == doc.title
        assert rule["fullDescription"]["text"] == doc.summary
        assert rule["help"]["text"] and rule["help"]["markdown"].startswith(f"**{doc.title}**")
        assert rule["defaultConfiguration"]["level"] == doc.severity


def test_one_result_per_finding_with_locations_and_fingerprints() -> None:
    report = sample_report()
    run = json.loads(sarif.render(report))["runs"][0]
    results = run["results"]
    assert len(results) == len(report.findings)
    rules = run["tool"]["driver"]["rules"]
    for result, finding in zip(results, report.findings, strict=True):
        assert result["ruleId"] == finding.rule == rules[result["ruleIndex"]]["id"]
        assert result["level"] == finding.severity
        assert result["message"]["text"] == finding.message
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": finding.file, "uriBaseId": "%SRCROOT%"}
        assert loc["region"]["startLine"] == finding.line
        assert result["partialFingerprints"] == {"stagegraphFingerprint/v1": finding.fingerprint}
    first = results[0]
    assert first["locations"][0]["physicalLocation"]["region"]["startColumn"] == 5
    related = [(r["physicalLocation"]["region"]["startLine"], r["message"]["text"]) for r in first["relatedLocations"]]
    assert related == [(84, "related location")]  # validate's call site is already the related location
    contention = results[1]["relatedLocations"]
    assert [r["physicalLocation"]["region"]["startLine"] for r in contention] == [61]  # the other stage
    assert [r["id"] for r in contention] == [1]


def test_unknown_rule_gets_a_descriptor_and_diagnostics_become_notifications() -> None:
    report = Report("0.1.0", (), (Finding("not-in-catalog", "note", "m", "a b/c#d.py", 3, "fp"),),
                    sample_report().diagnostics)
    doc = json.loads(sarif.render(report))
    _validate(doc)
    run = doc["runs"][0]
    assert run["tool"]["driver"]["rules"][run["results"][0]["ruleIndex"]]["id"] == "not-in-catalog"
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a%20b/c%23d.py"
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == ["syntax-error", "encoding-error"]
    assert "legacy/broken.py" in notes[0]["message"]["text"]


def test_uris_are_relative() -> None:
    assert sarif.uri("./src/x.py") == "src/x.py"
    assert sarif.uri("src\\x.py") == "src%5Cx.py"  # a backslash is part of a POSIX file name
    assert sarif.uri("/abs/x.py") == "abs/x.py"
