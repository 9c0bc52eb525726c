"""missing-timeout: waiting on branches or remote calls with no timeout.

Reads `wait-no-timeout` (in a stage or in the driver, where it is attributed to the fan-out
stages being waited on) and `remote-no-timeout` (in stages). One finding per pipeline: its first call
site, naming every stage that reaches any site and listing the other sites. A missing timeout is a
habit one policy fixes (a session or client with a default timeout), so a finding per call site only
repeated the advice; each site keeps its own fingerprint for baselines and diff mode.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import REMOTE_NO_TIMEOUT, WAIT_NO_TIMEOUT, Pipeline, Signal
from . import Hit
from . import _messages as msg
from ._common import by_site, fanout_targets, names

RULE = "missing-timeout"
#: one finding per code site across pipelines (see checks.one_per_site)
ONE_PER_SITE = True
#: ...and then one finding per pipeline, listing its sites (see checks.one_per_pipeline)
ONE_PER_PIPELINE = True


def check(pipeline: Pipeline) -> Iterator[Hit]:
    reasons: dict[tuple[str, ...], list[Signal]] = {}
    for signal, stages in by_site(pipeline, (WAIT_NO_TIMEOUT, REMOTE_NO_TIMEOUT)):
        reasons.setdefault(tuple(s.id for s in stages), []).append(signal)
    for signal in sorted(pipeline.signals, key=lambda s: (s.file, s.line, s.detail)):
        if signal.kind == WAIT_NO_TIMEOUT:
            targets = tuple(s.id for s in fanout_targets(pipeline, signal))
            reasons.setdefault(targets, []).append(signal)
    for stage_ids, signals in reasons.items():
        for signal in dict.fromkeys(signals):
            details = signal.detail or signal.kind
            if stage_ids:
                message = msg.MISSING_TIMEOUT.format(
                    stage=names(pipeline.stage(s) for s in stage_ids), details=details
                )
            else:
                message = msg.MISSING_TIMEOUT_DRIVER.format(details=details)
            yield Hit(
                rule=RULE,
                message=message,
                file=signal.file,
                line=signal.line,
                stages=stage_ids,
                column=signal.column,
            )
