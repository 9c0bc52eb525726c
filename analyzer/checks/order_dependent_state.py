"""order-dependent-state: a stage carries state across records.

Reads the stage signal `order-dependent-state` (running totals, sequence numbers,
previous-record comparisons, state machines written into the output). A `seen` set used for
dedup and pandas `.cumsum()`/`.diff()` within one stage produce no signal. One finding per cause (the
loop), naming every stage that reaches it, however many pipelines reach it (ONE_PER_SITE).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import ORDER_DEPENDENT_STATE, Pipeline
from . import Hit
from . import _messages as msg
from ._common import site_hits

RULE = "order-dependent-state"
#: one finding per code site across pipelines (see checks.one_per_site): a loop reached from two
#: pipelines is one cause
ONE_PER_SITE = True


def check(pipeline: Pipeline) -> Iterator[Hit]:
    # one finding per cause
    yield from site_hits(pipeline, RULE, ORDER_DEPENDENT_STATE, msg.ORDER_DEPENDENT_STATE, no_detail="loop state")
