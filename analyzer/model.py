"""The records passed between layers: facts -> graph -> checks -> report -> renderers.

Everything here is a frozen, slotted dataclass holding plain data (tuples, strings, ints),
so any layer after the facts layer can be tested on hand-built values and every renderer
receives the same `Report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

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
#: key prefix of a `file` effect on a directory itself (created, removed, made sure of): such effects
#: live in a namespace of their own, so making sure `out/` exists never meets the files written in it
DIR_KEY = "dir:"
#: the part of a name made fresh for one run of the code that names it (`uuid4()`, `mkdtemp()`, a temp
#: file's `.name`): two effects that each carry one were made by different runs, so they never meet
FRESH = "<unique>"
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


SignalKind = Literal[
    "broad-except-swallow", "executor-uncapped", "executor-capped", "gather-unbounded", "wait-no-timeout",
    "remote-no-timeout", "retry-nonidempotent", "order-dependent-state", "task-per-row", "exit-status-ignored",
    "future-dropped", "dedup-then-validate",
]
#: The `Signal.kind` values, as constants the facts layer produces and the checks match on
#: (what each means is tabled in `analyzer/facts/signals.py`).
BROAD_EXCEPT_SWALLOW: SignalKind = "broad-except-swallow"
EXECUTOR_UNCAPPED: SignalKind = "executor-uncapped"
EXECUTOR_CAPPED: SignalKind = "executor-capped"
GATHER_UNBOUNDED: SignalKind = "gather-unbounded"
WAIT_NO_TIMEOUT: SignalKind = "wait-no-timeout"
REMOTE_NO_TIMEOUT: SignalKind = "remote-no-timeout"
RETRY_NONIDEMPOTENT: SignalKind = "retry-nonidempotent"
ORDER_DEPENDENT_STATE: SignalKind = "order-dependent-state"
TASK_PER_ROW: SignalKind = "task-per-row"
EXIT_STATUS_IGNORED: SignalKind = "exit-status-ignored"
FUTURE_DROPPED: SignalKind = "future-dropped"
DEDUP_THEN_VALIDATE: SignalKind = "dedup-then-validate"
SIGNAL_KINDS: frozenset[str] = frozenset(get_args(SignalKind))


@dataclass(frozen=True, slots=True)
class Signal:
    """A hazard-relevant fact seen in code (an `except: pass`, an uncapped executor...).

    Checks turn signals plus the graph into findings; `detail` is a short human phrase
    ("except Exception: pass") for messages only: checks decide on typed fields, never on its text.
    """

    kind: SignalKind
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


RoleBasis = Literal["body", "name"]


@dataclass(frozen=True, slots=True)
class RoleEvidence:
    """Why a stage has a role, as a person reads it: `before` + `code` (a code span) + `after`.

    `basis` is "body" for what the code does (a `drop_duplicates(...)` call, rows dropped where a
    field is null) and "name" for a name pattern, the weaker evidence: names lie.
    """

    role: str
    basis: RoleBasis
    before: str
    code: str = ""
    after: str = ""


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
    #: why each role was given, body evidence first (empty when only a role name is known)
    role_evidence: tuple[RoleEvidence, ...] = ()
    #: the arms of `if`/`elif`/`else` chains and `match` statements the stage's call sits in, outside
    #: any loop, innermost last: (chain, arm index). Two stages in different arms of one chain never
    #: run in the same execution (see `exclusive`)
    arms: tuple[tuple[str, int], ...] = ()

    def evidence_for(self, role: str) -> RoleEvidence | None:
        """The strongest evidence for `role`: what the body does, else the name."""
        found = [e for e in self.role_evidence if e.role == role]
        return min(found, key=lambda e: e.basis != "body") if found else None


def exclusive(a: Stage, b: Stage) -> bool:
    """Whether `a` and `b` sit in different arms of one branch chain (`if mode == 1: ... elif mode == 2:
    ...`): one execution runs at most one of them, so they never race or contend with each other.
    Their data dependency across runs still stands; only same-run hazards are ruled out."""
    chains = dict(a.arms)
    return any(chain in chains and chains[chain] != arm for chain, arm in b.arms)


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
    #: `message` as (text, is code) pieces: code spans as data, for renderers (see stagegraph.spans)
    message_parts: tuple[tuple[str, bool], ...] = ()
    #: one fingerprint per code site when the finding groups several (`ONE_PER_PIPELINE` rules); the
    #: finding's own `fingerprint` is its first site's. Baselines and diff mode compare sites, so a new
    #: site inside a grouped finding is still a new cause.
    site_fingerprints: tuple[str, ...] = ()
    #: the kind of cause, for rules that group sites about the same stages (`ONE_PER_STAGES`): only
    #: sites of one kind are one finding (a dropped future and an `except: pass` are two fixes)
    group: str = ""

    @property
    def prints(self) -> tuple[str, ...]:
        """Every cause this finding stands for, by fingerprint."""
        return self.site_fingerprints or (self.fingerprint,)


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
    #: findings an inline `# stagegraph: ignore[...]` comment silenced
    suppressed: int = 0


SuppressionProblemKind = Literal["unknown-rule", "unused"]


@dataclass(frozen=True, slots=True)
class SuppressionProblem:
    """An inline suppression that does nothing: a rule id that does not exist, or nothing to silence."""

    file: str
    line: int
    rule: str
    problem: SuppressionProblemKind


@dataclass(frozen=True, slots=True, order=True)
class EdgeKey:
    """A real dependency compared across two runs: by stage names, since ids and lines move."""

    pipeline: str
    source: str
    target: str
    kind: str


@dataclass(frozen=True, slots=True, order=True)
class GroupKey:
    pipeline: str
    stages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GraphDelta:
    """What changed between the base ref and the work tree, beyond the new findings themselves."""

    base_ref: str
    base_commit: str
    dependencies_added: tuple[EdgeKey, ...] = ()
    dependencies_removed: tuple[EdgeKey, ...] = ()
    parallel_groups_gained: tuple[GroupKey, ...] = ()
    parallel_groups_lost: tuple[GroupKey, ...] = ()
    new_findings: int = 0
    fixed_findings: int = 0
    unchanged_findings: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's documentation as the run saw it (bundled plus user catalogs), for SARIF's rule descriptors."""

    id: str
    severity: str
    title: str
    summary: str
    why: str
    bad: str
    good: str
    fix: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a renderer may show. `findings` are the ones that count (new ones in diff mode or
    against a baseline); `unchanged` the ones left out as already known, `suppressed` the ones an
    inline comment silenced, so SARIF can still carry them (code scanning closes what is missing)."""

    tool_version: str
    pipelines: tuple[Pipeline, ...]
    findings: tuple[Finding, ...]
    diagnostics: tuple[Diagnostic, ...]
    summary: Summary = field(default_factory=Summary)
    root: str = "."
    unchanged: tuple[Finding, ...] = ()
    suppressed: tuple[Finding, ...] = ()
    suppression_problems: tuple[SuppressionProblem, ...] = ()
    #: diff mode only: how the graph changed since the base ref
    delta: GraphDelta | None = None
    #: the rule catalog of the run (empty for a report read back from JSON: the bundled one applies)
    rules: tuple[Rule, ...] = ()
