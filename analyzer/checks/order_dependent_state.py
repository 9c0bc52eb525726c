"""order-dependent-state: a stage carries state across records.

Reads the stage signal `order-dependent-state` (running totals, sequence numbers,
previous-record comparisons, state machines written into the output). A `seen` set used for
dedup and pandas `.cumsum()`/`.diff()` within one stage produce no signal. One finding per cause (call site).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import ORDER_DEPENDENT_STATE, Pipeline
from . import Hit
from . import _messages as msg
from ._common import signals_of

RULE = "order-dependent-state"


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for stage in pipeline.stages:
        found = signals_of(stage, (ORDER_DEPENDENT_STATE,))
        if not found:
            continue
        for signal in found:  # one finding per call site: each is its own cause
            yield Hit(
                rule=RULE,
                message=msg.ORDER_DEPENDENT_STATE.format(stage=stage.name, detail=signal.detail or "loop state"),
                file=signal.file,
                line=signal.line,
                stages=(stage.id,),
                column=signal.column,
            )
