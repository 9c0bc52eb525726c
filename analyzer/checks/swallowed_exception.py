"""swallowed-exception: a stage or fan-out branch catches broad exceptions and drops them.

Reads the stage signals `broad-except-swallow`, `exit-status-ignored` (a command run as a statement
of its own, so its failing exit status is dropped just like a swallowed exception) and
`future-dropped` (a task submitted to an executor whose future nobody reads; in the driver, it is
about the fan-out stage that call submits). A handler that
only logs counts as swallowed too: the run still reports success, and in a concurrent fan-out branch
nobody even reads the worker's log (the message says so). Near-miss: a handler that logs and
re-raises produces no signal at all. One finding per cause (call site), naming every stage that
reaches it (a helper several stages share is one finding, and so is one reached from several
pipelines: ONE_PER_SITE). The sites reached by the same stages are then one finding listing the
others when they are the same kind of cause (ONE_PER_STAGES): seven bare `except: pass` in one
scraper are one stage hiding its failures, fixed by one change to how that stage handles errors;
each site keeps its own fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import BROAD_EXCEPT_SWALLOW, EXIT_STATUS_IGNORED, FUTURE_DROPPED, Pipeline, Signal, Stage
from . import Hit
from . import _messages as msg
from ._common import by_site, is_concurrent_fanout, names

RULE = "swallowed-exception"
#: one finding per code site across pipelines (see checks.one_per_site)
ONE_PER_SITE = True
#: ...and the sites reached by the same stages are one finding listing them (see checks.one_per_stages)
ONE_PER_STAGES = True


def _submitted(pipeline: Pipeline) -> list[tuple[Signal, tuple[Stage, ...]]]:
    """Driver-level dropped futures, each with the fan-out stage its call submits (same file and line)."""
    out = []
    for signal in sorted(pipeline.signals, key=lambda s: (s.file, s.line, s.detail)):
        if signal.kind != FUTURE_DROPPED:
            continue
        stages = tuple(s for s in pipeline.stages if s.file == signal.file and s.fanout is not None
                       and signal.line in (s.line, s.fanout.line))
        if stages:
            out.append((signal, stages))
    return out


def check(pipeline: Pipeline) -> Iterator[Hit]:
    sites = by_site(pipeline, (BROAD_EXCEPT_SWALLOW, EXIT_STATUS_IGNORED, FUTURE_DROPPED), lambda st, s: True)
    for signal, stages in [*sites, *_submitted(pipeline)]:  # one finding per cause: an except clause, a call
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
            group=signal.kind,
        )
