"""swallowed-exception: a stage or fan-out branch catches broad exceptions and drops them.

Reads the stage signal `broad-except-swallow`. A handler that only logs counts as swallowed
only in a concurrent fan-out branch, where nobody reads the worker's log. Near-miss: a handler
that logs and re-raises produces no signal at all. One finding per cause (call site).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import BROAD_EXCEPT_SWALLOW, Pipeline
from . import Hit
from . import _messages as msg
from ._common import is_concurrent_fanout, signals_of

RULE = "swallowed-exception"


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for stage in pipeline.stages:
        branch = is_concurrent_fanout(stage)
        found = [
            s for s in signals_of(stage, (BROAD_EXCEPT_SWALLOW,)) if branch or not s.logged_only
        ]
        if not found:
            continue
        template = msg.SWALLOWED_BRANCH if branch else msg.SWALLOWED
        for signal in found:  # one finding per except clause: each is its own cause
            yield Hit(
                rule=RULE,
                message=template.format(stage=stage.name, detail=signal.detail or "broad except"),
                file=signal.file,
                line=signal.line,
                stages=(stage.id,),
                column=signal.column,
            )
