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
from ._common import by_site, names

RULE = "non-idempotent-retry"
#: one finding per code site across pipelines (see checks.one_per_site)
ONE_PER_SITE = True


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for signal, stages in by_site(pipeline, (RETRY_NONIDEMPOTENT,)):  # one finding per cause
        yield Hit(
            rule=RULE,
            message=msg.NON_IDEMPOTENT_RETRY.format(stage=names(stages), detail=signal.detail),
            file=signal.file,
            line=signal.line,
            stages=tuple(s.id for s in stages),
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
