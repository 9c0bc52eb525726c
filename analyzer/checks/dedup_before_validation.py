"""dedup-before-validation: a dedup stage feeds a validation stage.

Fires when a stage with role `dedup` reaches a stage with role `validate` along real data
edges (so validation consumes what dedup kept). Only the nearest validation stages are reported:
a later validation behind an earlier one is the same mistake, reported once.
Near-miss: validation before dedup (the data path runs the other way) does not fire.
Within one stage it reads the signal `dedup-then-validate`: a frame deduplicated by key and later
filtered for missing values in the same body (one finding per site).
The message shows why each stage has its role (`Stage.role_evidence`): what its body does, else its name.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import DEDUP_THEN_VALIDATE, Location, Pipeline, Stage
from ..spans import Text, plain
from . import Hit
from . import _messages as msg
from ._common import evidence_text, reachable, site_hits, successors

RULE = "dedup-before-validation"


def _why(stage: Stage, role: str, verb: str) -> Text:
    evidence = stage.evidence_for(role)
    if evidence is None:
        return plain("")
    return msg.ROLE_EVIDENCE.format(verb=verb, evidence=evidence_text(evidence))


def check(pipeline: Pipeline) -> Iterator[Hit]:
    data = successors(pipeline, frozenset({"data"}))
    validators = frozenset(s.id for s in pipeline.stages if "validate" in s.roles)
    for dedup in pipeline.stages:
        if "dedup" not in dedup.roles:
            continue
        # stop at the first validation stage on each path: only the nearest ones are reported
        for stage_id in sorted(reachable(data, dedup.id, avoid=validators) & validators):
            if stage_id == dedup.id:
                continue
            validate = pipeline.stage(stage_id)
            yield Hit(
                rule=RULE,
                message=msg.DEDUP_BEFORE_VALIDATION.format(
                    dedup=dedup.name, dedups=_why(dedup, "dedup", "dedups"),
                    validate=validate.name, validates=_why(validate, "validate", "validates"),
                ),
                file=validate.file,
                line=validate.line,
                stages=(dedup.id, validate.id),
                related=(Location(dedup.file, dedup.line),),
            )
    yield from site_hits(pipeline, RULE, DEDUP_THEN_VALIDATE, msg.DEDUP_THEN_VALIDATE)
