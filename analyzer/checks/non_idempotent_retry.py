"""non-idempotent-retry: a retry around a write that repeats its effect.

Reads the signal `retry-nonidempotent` (a retry loop, tenacity/backoff/retrying/Celery retry or an
orchestrator task's `retries=` around an HTTP POST/PATCH, an INSERT without conflict handling, a
`to_sql(if_exists="append")` or a queue publish, with no idempotency key). One finding per cause
(call site), naming every stage that reaches it; driver-level retries are reported on their own line.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import RETRY_NONIDEMPOTENT, Pipeline
from . import Hit
from . import _messages as msg
from ._common import site_hits

RULE = "non-idempotent-retry"
#: one finding per code site across pipelines (see checks.one_per_site)
ONE_PER_SITE = True


def check(pipeline: Pipeline) -> Iterator[Hit]:
    yield from site_hits(pipeline, RULE, RETRY_NONIDEMPOTENT, msg.NON_IDEMPOTENT_RETRY)  # one finding per cause
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
