"""hidden-state-dependency: in-process state handed from stage to stage behind the signatures.

Fires on a data edge A -> B where A rebinds an attribute or global (`self.period_start = ...`,
Effect kind `attribute`/`global`) and B reads the same one. Mutating a container (kind
`container`) is not a rebinding and does not count; tables, files and variables (arguments,
return values) are the visible hand-offs and never count. Nor does a handle kept on the object
(`self.conn = psycopg2.connect(...)`, which a stage of the pipeline uses as a shared resource): a
connection opened in one step and used by the next is the object's lifecycle, not pipeline data. One finding per (A, B)
pair, and only from the last writer: an A whose state another writer overwrites before B runs hands
B nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Effect, Location, Pipeline, Stage, exclusive
from ..spans import code, join
from . import Hit
from . import _messages as msg
from ._common import reachable, successors

RULE = "hidden-state-dependency"
STATE_KINDS = frozenset({"attribute", "global"})


def _state_written(stage: Stage, handles: frozenset[str]) -> dict[str, Effect]:
    return {e.identity: e for e in stage.writes if e.kind in STATE_KINDS and not e.assumed and e.target not in handles}


def check(pipeline: Pipeline) -> Iterator[Hit]:
    later = successors(pipeline)
    # attributes some stage uses as a handle on a shared resource (`self.conn.cursor()`): not data
    handles = frozenset(r.name for s in pipeline.stages for r in s.resources)
    data = [e for e in pipeline.edges if e.kind == "data" and e.source != e.target]
    writers_of: dict[str, list[Stage]] = {}  # reader id -> the stages with a data edge into it
    for edge in data:
        writers_of.setdefault(edge.target, []).append(pipeline.stage(edge.source))
    for edge in data:
        writer, reader = pipeline.stage(edge.source), pipeline.stage(edge.target)
        if writer.qualname and writer.qualname == reader.qualname:
            continue  # two calls of one function: state it keeps for itself, not a hand-off between stages
        if exclusive(writer, reader):
            continue  # different arms of one branch chain: one execution runs only one of them
        written = _state_written(writer, handles)
        after = reachable(later, writer.id)
        # what the reader sees is what the last writer left: one that another writer of the same state
        # overwrites before the reader runs hands nothing over
        overwritten = {i for other in writers_of.get(reader.id, []) if other.id != writer.id and other.id in after
                       for i in _state_written(other, handles)}
        targets = sorted({written[e.identity].target for e in reader.reads
                          if e.kind in STATE_KINDS and e.identity in written and e.identity not in overwritten})
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
