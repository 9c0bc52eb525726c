"""swallowed-exception: a stage or fan-out branch catches broad exceptions and drops them.

Reads the stage signals `broad-except-swallow` and `exit-status-ignored` (a command run as a statement
of its own, so its failing exit status is dropped just like a swallowed exception). A handler that
only logs counts as swallowed too: the run still reports success, and in a concurrent fan-out branch
nobody even reads the worker's log (the message says so). Near-miss: a handler that logs and
re-raises produces no signal at all. One finding per cause (call site), naming every stage that
reaches it (a helper several stages share is one finding, and so is one reached from several
pipelines: ONE_PER_SITE).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import BROAD_EXCEPT_SWALLOW, EXIT_STATUS_IGNORED, Pipeline
from . import Hit
from . import _messages as msg
from ._common import by_site, is_concurrent_fanout, names

RULE = "swallowed-exception"
#: one finding per code site across pipelines (see checks.one_per_site)
ONE_PER_SITE = True


def check(pipeline: Pipeline) -> Iterator[Hit]:
    sites = by_site(pipeline, (BROAD_EXCEPT_SWALLOW, EXIT_STATUS_IGNORED), lambda st, s: True)
    for signal, stages in sites:  # one finding per except clause (or ignored exit status): each is its own cause
        branches = tuple(s for s in stages if is_concurrent_fanout(s))
        if signal.kind == EXIT_STATUS_IGNORED:
            template = msg.EXIT_STATUS
        else:
            template = msg.SWALLOWED_BRANCH if branches else msg.SWALLOWED
        yield Hit(
            rule=RULE,
            message=template.format(stage=names(branches or stages), detail=signal.detail or "broad except"),
            file=signal.file,
            line=signal.line,
            stages=tuple(s.id for s in stages),
            column=signal.column,
        )
