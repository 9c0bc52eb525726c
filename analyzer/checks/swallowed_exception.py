"""swallowed-exception: a stage or fan-out branch catches broad exceptions and drops them.

Reads the stage signal `broad-except-swallow`. A handler that only logs counts as swallowed
only in a concurrent fan-out branch, where nobody reads the worker's log. Near-miss: a handler
that logs and re-raises produces no signal at all. One finding per stage.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.checks import Hit
from analyzer.checks import _messages as msg
from analyzer.checks._common import is_concurrent_fanout, signals_of
from analyzer.facts.signals import BROAD_EXCEPT_SWALLOW, LOGGED_ONLY
from analyzer.model import Location, Pipeline

RULE = "swallowed-exception"


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for stage in pipeline.stages:
        branch = is_concurrent_fanout(stage)
        found = [
            s for s in signals_of(stage, (BROAD_EXCEPT_SWALLOW,)) if branch or not s.detail.endswith(LOGGED_ONLY)
        ]
        if not found:
            continue
        template = msg.SWALLOWED_BRANCH if branch else msg.SWALLOWED
        yield Hit(
            rule=RULE,
            message=template.format(stage=stage.name, detail=found[0].detail or "broad except"),
            file=found[0].file,
            line=found[0].line,
            stages=(stage.id,),
            column=found[0].column,
            related=tuple(Location(s.file, s.line, s.column) for s in found[1:]),
        )
