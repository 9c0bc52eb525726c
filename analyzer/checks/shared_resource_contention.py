"""shared-resource-contention: concurrent branches share a resource that can't be shared.

(a) A stage that already fans out concurrently (executor, pool, gather, map, Celery group or
chord, Airflow expand, ...) touches a resource that is not thread/process safe, or one that is
capacity-limited while the fan-out's cap can't be read: every branch uses the same handle. (A
fan-out known to have no cap is `unbounded-fanout`'s finding; repeating it here per resource said
one cause twice.) One finding
per fan-out stage, naming every such resource.
(b) A parallel group's members share a resource that is not thread-safe (one DB-API
connection, one sqlite file, one file being written). A thread-safe pool shared by stages
that could run together (a SQLAlchemy engine) is not reported: that is what pools are for.
Fingerprints are keyed on the resource names.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Location, Pipeline, Resource, exclusive
from ..spans import Text, code, join, plain
from . import Hit
from . import _messages as msg
from ._common import is_concurrent_fanout, later, quoted

RULE = "shared-resource-contention"


def _label(resource: Resource) -> str:
    return f"{resource.kind}:{resource.name}"


def _describe(resource: Resource) -> Text:
    call = f" from {resource.call}" if resource.call else ""
    return join([plain(f"the {resource.kind} resource "), code(resource.name), plain(call)], "")


def check(pipeline: Pipeline) -> Iterator[Hit]:
    for stage in pipeline.stages:
        if not is_concurrent_fanout(stage) or stage.fanout is None:
            continue
        risky: dict[str, tuple[Resource, str]] = {}
        for resource in stage.resources:
            if not resource.thread_safe:
                why = "is not safe to share across threads or processes"
            elif resource.capacity_limited and stage.fanout.capped is None:
                # a capped fan-out was sized by someone; one known to have no cap is unbounded-fanout's
                # finding already (the same cause); one whose cap we can't read may outgrow the resource
                why = "is capacity-limited, so the branches queue for it"
            else:
                continue
            risky.setdefault(_label(resource), (resource, why))
        if not risky:
            continue
        ordered = sorted(risky.items(), key=lambda item: (item[1][0].thread_safe, item[0]))
        described = join((join([_describe(r), plain(f", which {why}")], "") for _, (r, why) in ordered), "; and ")
        yield Hit(
            rule=RULE,
            message=msg.CONTENTION_FANOUT.format(
                stage=stage.name, mechanism=stage.fanout.detail or stage.fanout.mechanism, resources=described
            ),
            file=stage.file,
            line=stage.line,
            stages=(stage.id,),
            related=tuple(Location(r.file, r.line) for _, (r, _w) in ordered if r.file),
            key=",".join(label for label, _ in ordered),
        )
    for group in pipeline.parallel_groups:
        members = [pipeline.stage(s) for s in group.stages]
        for label in group.shared_resources:
            users = [
                (stage, resource)
                for stage in members
                for resource in stage.resources
                if _label(resource) == label
            ]
            if len({stage.id for stage, _ in users}) < 2 or all(r.thread_safe for _, r in users):
                continue
            if all(exclusive(a, b) for a, _ in users for b, _ in users if a.id != b.id):
                continue  # arms of one branch chain: never in the same execution, so never at the same time
            stage_ids = tuple(dict.fromkeys(stage.id for stage, _ in users))
            where = later(pipeline, stage_ids)
            resource = next(r for _, r in users if not r.thread_safe)
            yield Hit(
                rule=RULE,
                message=msg.CONTENTION_GROUP.format(
                    stages=quoted(pipeline.stage(s).name for s in stage_ids), resource=_describe(resource)
                ),
                file=where.file,
                line=where.line,
                stages=stage_ids,
                related=tuple(Location(pipeline.stage(s).file, pipeline.stage(s).line) for s in stage_ids),
                key=label,
            )
