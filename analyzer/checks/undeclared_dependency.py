"""undeclared-dependency: a framework pipeline's real dependency that no declaration orders.

Only for framework styles (not `plain` or `class`, whose "declarations" are the call order
itself): a data or control edge with `declared == False` means the scheduler is free to run the
reader before the writer. `unknown` edges are not reported here: independence was not proven,
but neither was a dependency, and an error must name something real (on a large Luigi repository
counting them turned a handful of real findings into half a million). Their cause is reported
once, as an `unresolved` diagnostic, and the edge itself stays in the graph as a dependency.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Location, Pipeline
from . import Hit
from . import _messages as msg

RULE = "undeclared-dependency"
UNSCHEDULED_STYLES = frozenset({"plain", "class"})


def check(pipeline: Pipeline) -> Iterator[Hit]:
    if pipeline.style in UNSCHEDULED_STYLES:
        return
    for edge in pipeline.edges:
        if edge.kind not in ("data", "control") or edge.declared or edge.source == edge.target:
            continue
        source, target = pipeline.stage(edge.source), pipeline.stage(edge.target)
        template = msg.UNDECLARED
        via = ", ".join(edge.via) if edge.via else edge.kind
        yield Hit(
            rule=RULE,
            message=template.format(source=source.name, target=target.name, via=via),
            file=target.file,
            line=target.line,
            stages=(source.id, target.id),
            related=(Location(source.file, source.line),),
        )
