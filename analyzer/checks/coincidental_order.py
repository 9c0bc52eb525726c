"""coincidental-order: stages the code runs in sequence although nothing orders them.

One note per parallel group that contains an `order` edge (a declaration or call order with no
real dependency behind it), naming the stages that could start together. Groups come largest
first; a group whose orderings were all named by an earlier note is skipped, so overlapping
groups don't repeat the same advice. The note points at the first stage that waits for no reason.
Near-miss: two stages submitted to one concurrent executor/pool already start together, so the
call order between their submissions is not an ordering; nor is the source order of two stages in
different arms of one `if`/`elif` chain (`model.exclusive`), which never run in the same execution.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Edge, Location, Pipeline, exclusive
from ..spans import code, join
from . import Hit
from . import _messages as msg
from ._common import is_concurrent_fanout, quoted

RULE = "coincidental-order"


def _already_together(pipeline: Pipeline, edge: Edge) -> bool:
    """Both stages are branches of the same concurrent fan-out (submitted to one pool)."""
    source, target = pipeline.stage(edge.source), pipeline.stage(edge.target)
    return (
        is_concurrent_fanout(source) and is_concurrent_fanout(target)
        and source.file == target.file and source.fanout == target.fanout
    )


def check(pipeline: Pipeline) -> Iterator[Hit]:
    order_edges = [
        e for e in pipeline.edges
        if e.kind == "order" and e.source != e.target and not _already_together(pipeline, e)
        and not exclusive(pipeline.stage(e.source), pipeline.stage(e.target))
    ]
    named: set[tuple[str, str]] = set()
    for group in pipeline.parallel_groups:
        members = set(group.stages)
        inside = [e for e in order_edges if e.source in members and e.target in members]
        if not inside or all((e.source, e.target) in named for e in inside):
            continue
        named.update((e.source, e.target) for e in inside)
        waiting = pipeline.stage(inside[0].target)
        orderings = join(
            join([code(pipeline.stage(e.source).name), code(pipeline.stage(e.target).name)], " before ")
            for e in inside
        )
        yield Hit(
            rule=RULE,
            message=msg.COINCIDENTAL_ORDER.format(
                stages=quoted(pipeline.stage(s).name for s in group.stages), orderings=orderings
            ),
            file=waiting.file,
            line=waiting.line,
            stages=group.stages,
            related=tuple(Location(pipeline.stage(s).file, pipeline.stage(s).line) for s in group.stages),
        )
