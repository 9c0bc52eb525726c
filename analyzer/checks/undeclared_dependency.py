"""undeclared-dependency: a framework pipeline's real dependency that no declaration orders.

Only for framework styles (not `plain` or `class`, whose "declarations" are the call order
itself): a data or control edge with `declared == False` means the scheduler is free to run the
reader before the writer. `unknown` edges are not reported here: independence was not proven,
but neither was a dependency, and an error must name something real (on a large Luigi repository
counting them turned a handful of real findings into half a million). Their cause is reported
once, as an `unresolved` diagnostic, and the edge itself stays in the graph as a dependency.
Three or more stages every two of which are joined by such an edge through the same data (parallel
siblings that all upsert one table) are one finding naming the group; a writer and its readers stay pairs.
Stages in different arms of one `if`/`elif` chain (`model.exclusive`) never run in one execution, so
they never race: no finding between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..model import Location, Pipeline, exclusive
from ..spans import code, join
from . import Hit
from . import _messages as msg

if TYPE_CHECKING:  # imported by check(): a cache hit that finds nothing to check never loads networkx
    import networkx as nx

RULE = "undeclared-dependency"
#: the same two tasks (by name) racing at several call sites (submitted from each branch of a mode
#: switch) are one finding listing the sites (see checks.one_per_stages)
ONE_PER_STAGES = True
UNSCHEDULED_STYLES = frozenset({"plain", "class"})


def check(pipeline: Pipeline) -> Iterator[Hit]:
    if pipeline.style in UNSCHEDULED_STYLES:
        return
    import networkx as nx

    # stages in different arms of one branch chain never run in the same execution: no race between them
    undeclared = [e for e in pipeline.edges
                  if e.kind in ("data", "control") and not e.declared and e.source != e.target
                  and not exclusive(pipeline.stage(e.source), pipeline.stage(e.target))]
    # siblings the scheduler may run in any order, each pair of them through the same data (five
    # parallel tasks upserting one table): one finding for the group, not one per pair
    through: dict[tuple[str, ...], nx.Graph] = {}
    for edge in undeclared:
        through.setdefault(tuple(edge.via), nx.Graph()).add_edge(edge.source, edge.target)
    grouped: set[tuple[str, str]] = set()
    order = {s.id: i for i, s in enumerate(pipeline.stages)}
    for shared, graph in through.items():
        # a group is a clique: every two of its stages conflict (a writer and its readers are pairs)
        taken: set[str] = set()
        cliques = sorted((c for c in nx.find_cliques(graph) if len(c) >= 3),
                         key=lambda c: (-len(c), sorted(order[s] for s in c)))
        for members in cliques:
            if taken & set(members):
                continue
            taken.update(members)
            ids = tuple(sorted(members, key=order.__getitem__))
            grouped.update((a, b) for a in ids for b in ids)
            stages = [pipeline.stage(s) for s in ids]
            yield Hit(
                rule=RULE,
                message=msg.UNDECLARED_GROUP.format(
                    stages=join(code(s.name) for s in stages), via=", ".join(shared) if shared else "data"),
                file=stages[-1].file,
                line=stages[-1].line,
                stages=ids,
                related=tuple(Location(s.file, s.line) for s in stages[:-1]),
                key=",".join(shared),
            )
    for edge in undeclared:
        if (edge.source, edge.target) in grouped:
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
