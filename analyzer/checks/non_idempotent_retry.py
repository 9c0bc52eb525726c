"""non-idempotent-retry: a retry around a write that repeats its effect.

Reads the signal `retry-nonidempotent` (a retry loop or tenacity/backoff/retrying/Celery retry
around an HTTP POST/PATCH, an INSERT without conflict handling or a queue publish, with no
idempotency key). One finding per cause (call site); driver-level retries are reported on their own line.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import RETRY_NONIDEMPOTENT, Pipeline
from . import Hit
from . import _messages as msg
from ._common import signals_of

RULE = "non-idempotent-retry"


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for stage in pipeline.stages:
        found = signals_of(stage, (RETRY_NONIDEMPOTENT,))
        if not found:
            continue
        for signal in found:  # one finding per call site: each is its own cause
            yield Hit(
                rule=RULE,
                message=msg.NON_IDEMPOTENT_RETRY.format(stage=stage.name, detail=signal.detail),
                file=signal.file,
                line=signal.line,
                stages=(stage.id,),
                column=signal.column,
            )
    for signal in pipeline.signals:
        if signal.kind == RETRY_NONIDEMPOTENT:
            yield Hit(
                rule=RULE,
                message=msg.NON_IDEMPOTENT_RETRY_DRIVER.format(detail=signal.detail),
                file=signal.file,
                line=signal.line,
                column=signal.column,
                key=signal.detail,
            )
