"""The JSON report validates against the shared contract schema and round-trips."""

from __future__ import annotations

import json

import jsonschema
import pytest
from render_samples import hostile_report, sample_report

from stagegraph.render import json as json_render
from stagegraph.render.json import schema

SCHEMA = schema()


def test_sample_validates_and_round_trips() -> None:
    for report in (sample_report(), hostile_report()):
        data = json.loads(json_render.render(report))
        jsonschema.Draft202012Validator(SCHEMA).validate(data)
        again = json_render.to_dict(json_render.from_dict(data))
        assert again["pipelines"] == data["pipelines"] and again["findings"] == data["findings"]


def test_schema_rejects_a_broken_report() -> None:
    data = json.loads(json_render.render(sample_report()))
    data["pipelines"][0]["edges"][0]["kind"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(data)
