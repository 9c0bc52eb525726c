"""The records passed between layers: facts -> graph -> checks -> report -> renderers.

Everything here is a frozen, slotted dataclass holding plain data (tuples, strings, ints),
so any layer after the facts layer can be tested on hand-built values and every renderer
receives the same `Report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SCHEMA_VERSION = "1"

Severity = Literal["error", "warning", "note"]
SEVERITY_RANK: dict[str, int] = {"note": 0, "warning": 1, "error": 2}

EffectKind = Literal[
    "variable", "attribute", "global", "container", "file", "table", "key", "xcom", "queue", "unknown"
]
ResourceKind = Literal["database", "http", "filesystem", "cache", "queue", "cloud", "lock", "process", "other"]
EdgeKind = Literal["data", "control", "unknown", "order"]
Style = Literal[
    "plain", "class", "airflow", "airflow-taskflow", "luigi", "prefect", "dagster", "kedro", "celery",
    "sklearn", "beam", "other",
]
DiagnosticKind = Literal[
    "syntax-error", "encoding-error", "too-large", "unreadable", "unresolved", "skipped", "internal-error"
]

#: Effect kinds that name in-process memory: they conflict by object identity (`Effect.key`).
MEMORY_KINDS = frozenset({"variable", "attribute", "global", "container"})
#: Edge kinds that are real dependencies (the scorer and `parallel_groups` treat `unknown` as real).
DEPENDENCY_KINDS = frozenset({"data", "control", "unknown"})


@dataclass(frozen=True, slots=True)
class Location:
    """A place in the analysed code: path relative to the analysed root, '/'-separated."""

    file: str
    line: int
    column: int | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """One thing a stage reads or writes.

    `target` is what a person reads (`orders`, `self.period_start`, `staging.orders`, a path);
    `key` is the identity used for conflicts (two `orders` variables holding different objects
    have different keys). For `kind == "unknown"`, `of` names the kind it stands for
    (`file`, `table`, `memory`, ...), and `target` says why it is unknown.
    `assumed` marks an effect we could not see but must assume (an unresolved callee that
    received the object): conflicts resting only on assumed effects become `unknown` edges.
    """

    kind: EffectKind
    target: str
    file: str = ""
    line: int = 0
    key: str = ""
    of: str = ""
    assumed: bool = False
    #: provenance: "code" (seen in the analysed code), "model" (a catalog entry), "fallback" (the open-world
    #: rule: something we could not model, assumed to touch the coarsest resource we could identify)
    origin: str = "code"

    @property
    def identity(self) -> str:
        return self.key or self.target


@dataclass(frozen=True, slots=True)
class Resource:
    """A shared resource a stage touches: a DB connection, an HTTP host, a file, a lock..."""

    kind: ResourceKind
    name: str
    call: str = ""
    file: str = ""
    line: int = 0
    thread_safe: bool = True
    capacity_limited: bool = False


@dataclass(frozen=True, slots=True)
class Signal:
    """A hazard-relevant fact seen in code (an `except: pass`, an uncapped executor...).

    Checks turn signals plus the graph into findings; `kind` values are listed in
    `analyzer/facts/signals.py`. `detail` is a short human phrase ("except Exception: pass").
    """

    kind: str
    file: str
    line: int
    detail: str = ""
    column: int | None = None


@dataclass(frozen=True, slots=True)
class FanOut:
    """How a stage already runs many times concurrently or per item."""

    mechanism: str  # "loop", "executor", "pool", "gather", "map", "group", "chord", "expand", "union"
    detail: str = ""  # e.g. "ThreadPoolExecutor()" or "for k in keys"
    line: int = 0
    capped: bool | None = None  # None when capping does not apply (a plain loop)


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a pipeline, with everything it reads, writes and touches."""

    id: str
    name: str
    file: str
    line: int
    definition: Location | None = None
    reads: tuple[Effect, ...] = ()
    writes: tuple[Effect, ...] = ()
    resources: tuple[Resource, ...] = ()
    roles: tuple[str, ...] = ()
    fanout: FanOut | None = None
    nested_pipeline: str | None = None
    signals: tuple[Signal, ...] = ()
    qualname: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    """A non-data relation the facts layer saw directly: a declaration, a control or an unknown."""

    source: str
    target: str
    kind: EdgeKind  # "order" for a plain declaration, "control"/"unknown" for facts seen in code
    via: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelineFacts:
    """What the facts layer knows about one pipeline, before the graph layer relates stages.

    `declared` lists the orderings the code declares (call order, `>>`, `requires()`): the
    graph layer reports an edge as `declared` when a declared path leads from one stage to the
    other. `links` carries control and unknown relations seen in the code.
    """

    id: str
    name: str
    style: Style
    file: str
    line: int
    stages: tuple[Stage, ...]
    declared: tuple[Link, ...] = ()
    links: tuple[Link, ...] = ()
    signals: tuple[Signal, ...] = ()
    notes: tuple[str, ...] = ()
    #: `file::function` of the builders this pipeline was assembled from (a Kedro registry's
    #: `create_pipeline`s): they are not reported again as pipelines of their own
    assembled_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    declared: bool
    via: tuple[str, ...] = ()
    shared_resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParallelGroup:
    stages: tuple[str, ...]
    shared_resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    name: str
    style: Style
    file: str
    line: int
    stages: tuple[Stage, ...]
    edges: tuple[Edge, ...]
    parallel_groups: tuple[ParallelGroup, ...]
    signals: tuple[Signal, ...] = ()
    notes: tuple[str, ...] = ()

    def stage(self, stage_id: str) -> Stage:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    file: str
    line: int
    fingerprint: str
    column: int | None = None
    pipeline: str | None = None
    stages: tuple[str, ...] = ()
    related: tuple[Location, ...] = ()
    #: the source line the finding points at, for reports people read
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    kind: DiagnosticKind
    message: str
    line: int | None = None
    #: a finer, stable code within `kind` (e.g. "parser-crash", "too-deep", "not-a-file")
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts a person reads first; derived from the rest of the report."""

    files_analysed: int = 0
    pipelines: int = 0
    stages: int = 0
    real_edges: int = 0
    coincidental_edges: int = 0
    unknown_edges: int = 0
    fanout_candidates: int = 0
    findings_by_severity: tuple[tuple[str, int], ...] = ()
    baselined: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    tool_version: str
    pipelines: tuple[Pipeline, ...]
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    summary: Summary = field(default_factory=Summary)
    root: str = "."
