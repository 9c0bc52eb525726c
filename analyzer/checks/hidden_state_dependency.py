"""hidden-state-dependency: in-process state handed from stage to stage behind the signatures.

Fires on a data edge A -> B where A rebinds an attribute or global (`self.period_start = ...`,
Effect kind `attribute`/`global`) and B reads the same one. Mutating a container (kind
`container`) is not a rebinding and does not count; tables, files and variables (arguments,
return values) are the visible hand-offs and never count. One finding per (A, B) pair.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Location, Pipeline
from ..spans import code, join
from . import Hit
from . import _messages as msg

RULE = "hidden-state-dependency"
STATE_KINDS = frozenset({"attribute", "global"})


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for edge in pipeline.edges:
        if edge.kind != "data" or edge.source == edge.target:
            continue
        writer, reader = pipeline.stage(edge.source), pipeline.stage(edge.target)
        if writer.qualname and writer.qualname == reader.qualname:
            continue  # two calls of one function: state it keeps for itself, not a hand-off between stages
        written = {e.identity: e for e in writer.writes if e.kind in STATE_KINDS and not e.assumed}
        targets = sorted(
            {written[e.identity].target for e in reader.reads if e.kind in STATE_KINDS and e.identity in written}
        )
        if not targets:
            continue
        yield Hit(
            rule=RULE,
            message=msg.HIDDEN_STATE.format(
                reader=reader.name, writer=writer.name, targets=join(code(t) for t in targets)
            ),
            file=reader.file,
            line=reader.line,
            stages=(writer.id, reader.id),
            related=(Location(writer.file, writer.line),),
        )
