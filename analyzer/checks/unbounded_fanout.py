"""unbounded-fanout: a fan-out whose width the data decides.

Reads the signals `executor-uncapped`, `gather-unbounded` and `task-per-row`, from a stage's
own body or from the driver (attributed to the fan-out stages submitted there). A stage whose
`FanOut.capped` is False counts too. One finding per stage, listing every reason; the stages one
uncapped fan-out runs (the tasks of a mapped group) are one finding.
Near-miss: an executor with `max_workers=` (`executor-capped`) does not fire.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import EXECUTOR_UNCAPPED, GATHER_UNBOUNDED, TASK_PER_ROW, Location, Pipeline, Signal, Stage
from . import Hit
from . import _messages as msg
from ._common import attributed, is_concurrent_fanout, names

RULE = "unbounded-fanout"
KINDS = (EXECUTOR_UNCAPPED, GATHER_UNBOUNDED, TASK_PER_ROW)


def check(pipeline: Pipeline) -> Iterator[Hit]:
    reasons: dict[tuple[str, ...], list[Signal]] = {}
    for stages, signal in attributed(pipeline, KINDS):
        reasons.setdefault(tuple(s.id for s in stages), []).append(signal)
    # the tasks of one mapped group (or one `.map()` over several stages) share one uncapped fan-out: one
    # finding naming them all, not one per task
    uncapped: dict[tuple[str, int, str], list[str]] = {}
    for stage in pipeline.stages:
        if is_concurrent_fanout(stage) and stage.fanout is not None and stage.fanout.capped is False \
                and not reasons.get((stage.id,)):
            detail = f"{stage.fanout.detail or stage.fanout.mechanism} has no worker cap"
            uncapped.setdefault((stage.file, stage.fanout.line or stage.line, detail), []).append(stage.id)
    for (file, line, detail), ids in uncapped.items():
        reasons.setdefault(tuple(ids), []).append(Signal(EXECUTOR_UNCAPPED, file, line, detail))
    for stage_ids, signals in reasons.items():
        details = "; ".join(dict.fromkeys(s.detail or s.kind for s in signals))
        first = signals[0]
        if stage_ids:
            named: list[Stage] = [pipeline.stage(s) for s in stage_ids]
            message = msg.UNBOUNDED_FANOUT.format(stage=names(named), details=details)
            yield Hit(
                rule=RULE,
                message=message,
                file=first.file,
                line=first.line,
                stages=stage_ids,
                related=tuple(Location(s.file, s.line) for s in signals[1:]),
            )
        else:
            for signal in signals:
                yield Hit(
                    rule=RULE,
                    message=msg.UNBOUNDED_FANOUT_DRIVER.format(details=signal.detail or signal.kind),
                    file=signal.file,
                    line=signal.line,
                    key=f"{signal.kind}:{signal.detail}",
                )
