"""swallowed-exception: a stage or fan-out branch catches broad exceptions and drops them.

Reads the stage signal `broad-except-swallow`. A handler that only logs counts as swallowed
only in a concurrent fan-out branch, where nobody reads the worker's log. Near-miss: a handler
that logs and re-raises produces no signal at all. One finding per cause (call site), naming every
stage that reaches it (a helper several stages share is one finding).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import BROAD_EXCEPT_SWALLOW, Pipeline
from . import Hit
from . import _messages as msg
from ._common import by_site, is_concurrent_fanout, names

RULE = "swallowed-exception"


def check(pipeline: Pipeline) -> Iterator[Hit]:
    sites = by_site(pipeline, (BROAD_EXCEPT_SWALLOW,), lambda st, s: is_concurrent_fanout(st) or not s.logged_only)
    for signal, stages in sites:  # one finding per except clause: each is its own cause
        branches = tuple(s for s in stages if is_concurrent_fanout(s))
        template = msg.SWALLOWED_BRANCH if branches else msg.SWALLOWED
        yield Hit(
            rule=RULE,
            message=template.format(stage=names(branches or stages), detail=signal.detail or "broad except"),
            file=signal.file,
            line=signal.line,
            stages=tuple(s.id for s in stages),
            column=signal.column,
        )
