"""`stagegraph plan`: what fanning out would buy, from the real dependency graph plus measured timings.

Per pipeline: per-stage p50/p95/p99 and CPU share; the critical path and makespan today (the
declared order) vs with every safe fan-out (real dependencies only); the Amdahl bound; for each
candidate group its expected saving, tail amplification, capacity check and worker cap; and the
`unknown` edges whose resolution would gain most. Input is the `Report` and `Timings`; nothing
here re-analyses code (pool sizes come from `stagegraph.capacity`).

Safety rules, as in the analysis: a stage with any `unknown` edge keeps its declared order and is
never proposed; two stages sharing a resource that is not safe to share keep their order too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace

import networkx as nx

from .capacity import Pool
from .model import DEPENDENCY_KINDS, Edge, ParallelGroup, Pipeline, Report, Stage
from .timings import StageTimes, Timings, max_quantile, quantile

CPU_BOUND, IO_BOUND = 0.7, 0.3


@dataclass(frozen=True, slots=True)
class StagePlan:
    stage: str
    samples: int
    p50: float
    p95: float
    p99: float
    cpu_ratio: float | None
    bound: str  # "cpu", "io", "mixed", "unmeasured-cpu", "unmeasured"
    advice: str
    pinned: bool  # has an unknown edge: never moved


@dataclass(frozen=True, slots=True)
class CapacityCheck:
    resource: str
    members: int
    needed: int
    capacity: int | None
    pool: str  # "etl/db.py:12 engine (pool_size=20, ...)" or ""
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class GroupPlan:
    id: str  # "<pipeline id>#<n>": n is the group's place in the report's parallel_groups
    stages: tuple[str, ...]
    excluded: tuple[str, ...]  # report members left out, with why
    sequential_p50: float
    parallel_p50: float
    saving_p50: float
    p99_max: float
    slowest_p99: float
    tail_amplification: float
    worker_cap: int
    capacity: tuple[CapacityCheck, ...]
    advice: tuple[str, ...]
    p50_max: float = 0.0
    min_samples: int = 0
    applicable: str = "not checked"  # "" when `stagegraph fanout --apply` can rewrite it, else why not


@dataclass(frozen=True, slots=True)
class Blocker:
    source: str
    target: str
    via: tuple[str, ...]
    gain: float  # makespan saved if this edge were proven not to exist


@dataclass(frozen=True, slots=True)
class PipelinePlan:
    id: str
    name: str
    style: str
    file: str
    line: int
    stages: tuple[StagePlan, ...]
    unmeasured: tuple[str, ...]
    today: float
    today_path: tuple[str, ...]
    fanout: float
    fanout_path: tuple[str, ...]
    work: float
    serial_fraction: float
    max_speedup: float
    groups: tuple[GroupPlan, ...]
    blockers: tuple[Blocker, ...]
    notes: tuple[str, ...] = ()
    #: (stage, start, duration) of every stage at its earliest start with every safe fan-out (p50)
    schedule: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    timings: str
    format: str
    concurrent_runs: int
    pipelines: tuple[PipelinePlan, ...]

    def group(self, group_id: str) -> GroupPlan | None:
        return next((g for p in self.pipelines for g in p.groups if g.id == group_id), None)

    @property
    def best(self) -> GroupPlan | None:
        """The group `fanout --apply` can rewrite that saves most (at p50)."""
        groups = [g for p in self.pipelines for g in p.groups if g.saving_p50 > 0 and not g.applicable]
        return max(groups, key=lambda g: (g.saving_p50, g.id), default=None)


# ------------------------------------------------------------------ building

Applicable = Callable[[str], str]  # group id -> "" when the fan-out codemod can rewrite it, else why not


def build(report: Report, timings: Timings, pools: Sequence[Pool] = (), concurrent_runs: int = 1,
          pipeline_id: str | None = None, applicable: Applicable | None = None) -> Plan:
    """The plan for every pipeline with at least one measured stage (or just `pipeline_id`)."""
    plans = []
    for pipeline in report.pipelines:
        if pipeline_id is not None and pipeline.id != pipeline_id:
            continue
        times = timings.for_pipeline(pipeline.id, (s.id for s in pipeline.stages))
        if times:
            plan = plan_pipeline(pipeline, times, pools, concurrent_runs)
            if applicable is not None:
                groups = tuple(replace(g, applicable=applicable(g.id)) for g in plan.groups)
                plan = replace(plan, groups=groups)
            plans.append(plan)
    return Plan(timings.source, timings.format, concurrent_runs, tuple(plans))


def pinned_stages(pipeline: Pipeline) -> frozenset[str]:
    """Stages with an `unknown` edge: their independence is unproven, so they are never moved."""
    return frozenset(s for e in pipeline.edges if e.kind == "unknown" for s in (e.source, e.target))


def unsafe_pairs(pipeline: Pipeline) -> set[frozenset[str]]:
    """Pairs of stages that share a resource that is not safe to share between threads."""
    unsafe: dict[str, set[str]] = {}
    for stage in pipeline.stages:
        for resource in stage.resources:
            if not resource.thread_safe:
                unsafe.setdefault(f"{resource.kind}:{resource.name}", set()).add(stage.id)
    return {frozenset((a, b)) for users in unsafe.values() for a in users for b in users if a != b}


def plan_pipeline(pipeline: Pipeline, times: dict[str, StageTimes], pools: Sequence[Pool],
                  concurrent_runs: int) -> PipelinePlan:
    weights = {s.id: times[s.id].quantile(0.5) if s.id in times else 0.0 for s in pipeline.stages}
    pinned = pinned_stages(pipeline)
    today_dag = _dag(pipeline, (e for e in pipeline.edges if e.declared))
    fanout_dag = _fanout_dag(pipeline, pinned, pipeline.edges)
    today, today_path = critical_path(today_dag, weights)
    fanout, fanout_path = critical_path(fanout_dag, weights)
    work = sum(weights.values())
    serial = fanout / work if work > 0 else 1.0
    stages = tuple(_stage_plan(s, times.get(s.id), s.id in pinned) for s in pipeline.stages if s.id in times)
    groups = [g for n, group in enumerate(pipeline.parallel_groups, 1)
              if (g := _group_plan(pipeline, f"{pipeline.id}#{n}", group, times, pinned, pools,
                                   concurrent_runs)) is not None]
    groups.sort(key=lambda g: (-g.saving_p50, g.id))
    fewest = min((len(t.walls) for t in times.values() if not t.synthetic), default=0)
    notes = () if not 0 < fewest < 100 else (
        f"as few as {fewest} samples per stage: a p99 is then the largest sample seen, so tail "
        "amplification reads 1.00 until more runs are measured",)
    return PipelinePlan(
        id=pipeline.id, name=pipeline.name, style=pipeline.style, file=pipeline.file, line=pipeline.line,
        stages=stages, unmeasured=tuple(s.id for s in pipeline.stages if s.id not in times),
        today=today, today_path=today_path, fanout=fanout, fanout_path=fanout_path, work=work,
        serial_fraction=serial, max_speedup=(today / fanout if fanout > 0 else 1.0),
        groups=tuple(groups), blockers=_blockers(pipeline, weights, fanout), notes=notes,
        schedule=earliest_schedule(fanout_dag, weights),
    )


def earliest_schedule(dag: nx.DiGraph, weights: dict[str, float]) -> tuple[tuple[str, float, float], ...]:
    """Each stage's earliest start when it waits only for its dependencies (topological order)."""
    finish: dict[str, float] = {}
    rows = []
    for node in nx.lexicographical_topological_sort(dag):
        start = max((finish[p] for p in dag.predecessors(node)), default=0.0)
        finish[node] = start + weights.get(node, 0.0)
        rows.append((node, start, weights.get(node, 0.0)))
    return tuple(sorted(rows, key=lambda r: (r[1], r[0])))


def _dag(pipeline: Pipeline, edges: Iterable[Edge | tuple[str, str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(s.id for s in pipeline.stages)
    graph.add_edges_from((e.source, e.target) if isinstance(e, Edge) else e for e in edges)
    if not nx.is_directed_acyclic_graph(graph):  # mutual unknowns: keep only edges that follow source order
        order = {s.id: i for i, s in enumerate(pipeline.stages)}
        graph.remove_edges_from([(a, b) for a, b in list(graph.edges) if order[a] >= order[b]])
    return graph


def _fanout_dag(pipeline: Pipeline, pinned: frozenset[str], edges: Iterable[Edge],
                real: Iterable[tuple[str, str]] | None = None) -> nx.DiGraph:
    """Real dependencies (or the given `real` pairs), plus the declared order around pinned stages and
    stages sharing an unsafe resource."""
    edges = tuple(edges)
    keep = list(real) if real is not None else [(e.source, e.target) for e in edges if e.kind in DEPENDENCY_KINDS]
    keep += [(e.source, e.target) for e in edges if e.declared and (e.source in pinned or e.target in pinned)]
    order = {s.id: i for i, s in enumerate(pipeline.stages)}
    for pair in unsafe_pairs(pipeline):
        a, b = sorted(pair, key=order.__getitem__)
        keep.append((a, b))
    if pinned:
        # a pinned stage also stays behind everything declared before it and ahead of everything after
        declared = _dag(pipeline, (e for e in edges if e.declared))
        for stage in pinned:
            keep += [(a, stage) for a in nx.ancestors(declared, stage)]
            keep += [(stage, b) for b in nx.descendants(declared, stage)]
    return _dag(pipeline, keep)


def critical_path(dag: nx.DiGraph, weights: dict[str, float]) -> tuple[float, tuple[str, ...]]:
    """The longest path by stage weight (networkx's dag_longest_path on node weights moved to edges)."""
    if dag.number_of_nodes() == 0:
        return 0.0, ()
    start = ("__start__",)
    weighted = nx.DiGraph()
    weighted.add_edges_from((a, b, {"weight": weights.get(b, 0.0)}) for a, b in dag.edges)
    weighted.add_edges_from((start, n, {"weight": weights.get(n, 0.0)}) for n in dag.nodes)
    path = [n for n in nx.dag_longest_path(weighted, weight="weight", default_weight=0.0) if n != start]
    return sum(weights.get(n, 0.0) for n in path), tuple(path)


def _bound(ratio: float | None) -> tuple[str, str]:
    if ratio is None:
        return "unmeasured-cpu", "no CPU time recorded: measure with `stagegraph instrument` to tell CPU from I/O"
    if ratio >= CPU_BOUND:
        return "cpu", "CPU-bound: threads won't speed it up (the GIL); use processes or a faster algorithm"
    if ratio <= IO_BOUND:
        return "io", "I/O-bound: threads overlap its waiting, so fanning it out with others pays off"
    return "mixed", "mixed CPU and I/O: threads recover only the waiting part"


def _stage_plan(stage: Stage, times: StageTimes | None, pinned: bool) -> StagePlan:
    assert times is not None
    ratio = times.cpu_ratio
    bound, advice = _bound(ratio)
    return StagePlan(stage.id, len(times.walls) if not times.synthetic else 0, times.quantile(0.5),
                     times.quantile(0.95), times.quantile(0.99), ratio, bound, advice, pinned)


def _group_plan(pipeline: Pipeline, group_id: str, group: ParallelGroup, times: dict[str, StageTimes],
                pinned: frozenset[str], pools: Sequence[Pool], concurrent_runs: int) -> GroupPlan | None:
    unsafe = unsafe_pairs(pipeline)
    members: list[str] = []
    excluded: list[str] = []
    for stage in group.stages:
        if stage in pinned:
            excluded.append(f"{stage}: has an unknown edge")
        elif any(frozenset((stage, m)) in unsafe for m in members):
            excluded.append(f"{stage}: shares a resource that is not safe to share")
        else:
            members.append(stage)
    if len(members) < 2:
        return None
    walls = [times[m].walls if m in times else (0.0,) for m in members]
    p50s = [quantile(w, 0.5) for w in walls]
    cpu = sum(p * (times[m].cpu_ratio or 0.0) for m, p in zip(members, p50s, strict=True) if m in times)
    sequential = sum(p50s)
    parallel = max(max_quantile(walls, 0.5), cpu)  # under the GIL the CPU parts still run one at a time
    p99_max = max_quantile(walls, 0.99)
    slowest = max(quantile(w, 0.99) for w in walls)
    checks = _capacity(pipeline, members, pools, concurrent_runs)
    cap = len(members)
    for check in checks:
        if check.capacity is not None and not check.ok:
            cap = min(cap, max(1, check.capacity // max(1, concurrent_runs)))
    advice: list[str] = []
    significant = 0.1 * sequential  # stages below a tenth of the group's time don't change the advice
    cpu_bound = [m for m, p in zip(members, p50s, strict=True)
                 if m in times and (times[m].cpu_ratio or 0.0) >= CPU_BOUND and p >= significant]
    if len(cpu_bound) >= 2:
        advice.append(f"{', '.join(cpu_bound)} are CPU-bound: threads will not overlap them; use processes")
    if p99_max > slowest * 1.05:
        advice.append(f"the group's p99 ({seconds(p99_max)}) is above its slowest branch's ({seconds(slowest)}): "
                      "add a per-branch timeout")
    unmeasured = [m for m in members if m not in times]
    if unmeasured:
        advice.append(f"not measured (counted as 0 s): {', '.join(unmeasured)}")
    fewest = min((len(times[m].walls) for m in members if m in times and not times[m].synthetic), default=0)
    return GroupPlan(
        id=group_id, stages=tuple(members), excluded=tuple(excluded), sequential_p50=sequential,
        parallel_p50=parallel, saving_p50=max(0.0, sequential - parallel), p99_max=p99_max, slowest_p99=slowest,
        tail_amplification=p99_max / slowest if slowest > 0 else 1.0, worker_cap=cap, capacity=tuple(checks),
        advice=tuple(advice), p50_max=max_quantile(walls, 0.5), min_samples=fewest,
    )


def _capacity(pipeline: Pipeline, members: Sequence[str], pools: Sequence[Pool],
              concurrent_runs: int) -> list[CapacityCheck]:
    users: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    files: dict[str, set[str]] = {}
    for stage_id in members:
        for resource in pipeline.stage(stage_id).resources:
            if resource.capacity_limited or not resource.thread_safe:
                label = f"{resource.kind}:{resource.name}"
                users.setdefault(label, set()).add(stage_id)
                names[label] = resource.name
                files.setdefault(label, set()).add(resource.file)
    checks = []
    for label in sorted(users):
        k = len(users[label])
        needed = k * concurrent_runs
        if needed < 2:
            continue  # one user at a time: nothing to check
        pool = _pool_for(names[label], pools, files[label])
        runs = f" x {concurrent_runs} concurrent runs" if concurrent_runs > 1 else ""
        demand = f"{k} branch{'es' if k > 1 else ''} on {label}{runs} = {needed} at once"
        if pool is None or pool.capacity is None:
            where = f" ({pool.file}:{pool.line}: {pool.detail})" if pool else ""
            checks.append(CapacityCheck(label, k, needed, None, _where(pool), True,
                                        f"{demand}; no limit found in the code{where}"))
            continue
        ok = needed <= pool.capacity
        message = (f"{demand} ({_unit(pool)}); the {pool.kind} created at {pool.file}:{pool.line} allows "
                   f"{pool.capacity} ({pool.detail})"
                   + ("" if ok else f": cap the group at {max(1, pool.capacity // max(1, concurrent_runs))} workers"))
        checks.append(CapacityCheck(label, k, needed, pool.capacity, _where(pool), ok, message))
    return checks


def _unit(pool: Pool) -> str:
    return "workers" if pool.kind == "executor" else "connections"


def _where(pool: Pool | None) -> str:
    return f"{pool.file}:{pool.line} {pool.name} ({pool.detail})" if pool else ""


def _pool_for(name: str, pools: Sequence[Pool], files: set[str]) -> Pool | None:
    """The pool a resource's handle name refers to; one in a file the stages use wins a tie."""
    matches = [p for p in pools if p.name == name and p.kind != "executor"]
    if not matches:
        return None
    return sorted(matches, key=lambda p: (p.file not in files, p.file, p.line))[0]


def _blockers(pipeline: Pipeline, weights: dict[str, float], base: float) -> tuple[Blocker, ...]:
    """Each unknown edge, with how much the makespan would drop were it proven absent.

    The report leaves out unknown edges that a path of other edges implies, so proving one edge
    absent must not also drop the orderings implied through it: the other pairs of the transitive
    closure stay dependencies (a conservative gain, never an inflated one).
    """
    unknown = [e for e in pipeline.edges if e.kind == "unknown"]
    if not unknown:
        return ()
    closure = nx.transitive_closure_dag(_dag(pipeline, (e for e in pipeline.edges if e.kind in DEPENDENCY_KINDS)))
    found = []
    for edge in unknown:
        rest = [e for e in pipeline.edges if e is not edge]
        pinned = frozenset(s for e in rest if e.kind == "unknown" for s in (e.source, e.target))
        real = [pair for pair in closure.edges if pair != (edge.source, edge.target)]
        makespan, _ = critical_path(_fanout_dag(pipeline, pinned, rest, real), weights)
        found.append(Blocker(edge.source, edge.target, edge.via, max(0.0, base - makespan)))
    found.sort(key=lambda b: (-b.gain, b.source, b.target))
    return tuple(found)


# ------------------------------------------------------------------ rendering

def seconds(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def to_json(plan: Plan) -> str:
    data = asdict(plan)
    best = plan.best
    data["best_group"] = best.id if best else None
    return json.dumps(_rounded(data), indent=2, sort_keys=True) + "\n"


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def render_text(plan: Plan) -> str:
    lines = [f"timings: {plan.timings} ({plan.format}); concurrent runs: {plan.concurrent_runs}"]
    if not plan.pipelines:
        lines.append("no pipeline of the analysis has a measured stage (stage and pipeline ids must match)")
    for p in plan.pipelines:
        lines += ["", f"pipeline {p.id} ({p.style}) {p.file}:{p.line}", "  stages:"]
        width = max((len(s.stage) for s in p.stages), default=5)
        lines.append(f"    {'stage':<{width}}  {'n':>4}  {'p50':>9}  {'p95':>9}  {'p99':>9}  cpu/wall  bound")
        for s in p.stages:
            ratio = "-" if s.cpu_ratio is None else f"{s.cpu_ratio:.2f}"
            lines.append(f"    {s.stage:<{width}}  {s.samples or '-':>4}  {seconds(s.p50):>9}  {seconds(s.p95):>9}  "
                         f"{seconds(s.p99):>9}  {ratio:>8}  {s.bound}{'  (unknown edge: pinned)' if s.pinned else ''}")
        if p.unmeasured:
            lines.append(f"  not measured (counted as 0 s): {', '.join(p.unmeasured)}")
        lines += [f"  note: {n}" for n in p.notes]
        lines += [
            f"  makespan today (declared order, p50): {seconds(p.today)}",
            f"    critical path: {' -> '.join(p.today_path)}",
            f"  makespan with every safe fan-out: {seconds(p.fanout)} ({_pct(p.today, p.fanout)})",
            f"    critical path: {' -> '.join(p.fanout_path)}",
            f"  Amdahl: work {seconds(p.work)}, serial fraction {p.serial_fraction:.2f}; "
            f"speedup at most {p.max_speedup:.2f}x over today",
        ]
        lines.append("  fan-out candidates (best first):" if p.groups else "  no safe fan-out group")
        for g in p.groups:
            lines += _group_lines(g, "    ")
        if p.blockers:
            lines.append("  unknowns blocking a gain (resolve these first):")
            for b in p.blockers[:5]:
                lines.append(f"    - {b.source} -> {b.target}: {seconds(b.gain)} ({'; '.join(b.via) or 'unknown'})")
    best = plan.best
    if best is not None:
        lines += ["", f"best group: {best.id} saves {seconds(best.saving_p50)} at p50; "
                      f"`stagegraph fanout --apply '{best.id}'` rewrites it behind a flag"]
    return "\n".join(lines) + "\n"


def _pct(today: float, new: float) -> str:
    return f"-{(today - new) / today * 100:.0f}%" if today > 0 else "no change"


def _group_lines(g: GroupPlan, indent: str) -> list[str]:
    lines = [
        f"{indent}{g.id}: {{{', '.join(g.stages)}}}",
        f"{indent}  p50 {seconds(g.sequential_p50)} in sequence -> {seconds(g.parallel_p50)} fanned out: "
        f"saves {seconds(g.saving_p50)}; workers: {g.worker_cap}",
        f"{indent}  tail: p99 of the group's max {seconds(g.p99_max)} vs slowest branch p99 {seconds(g.slowest_p99)} "
        f"(amplification {g.tail_amplification:.2f}x)",
    ]
    lines += [f"{indent}  capacity: {c.message}" for c in g.capacity]
    if g.applicable:
        lines.append(f"{indent}  fanout --apply: {g.applicable}")
    lines += [f"{indent}  left out: {x}" for x in g.excluded]
    lines += [f"{indent}  advice: {a}" for a in g.advice]
    return lines


def render_markdown(plan: Plan) -> str:
    """The plan as a Markdown section (also appended to report.md when timings are given)."""
    out = ["## Fan-out plan from measured timings", "",
           f"Timings: `{plan.timings}` ({plan.format}); concurrent runs assumed: {plan.concurrent_runs}.", ""]
    best = plan.best
    for p in plan.pipelines:
        out += [f"### `{p.id}` ({p.style})", "",
                f"- makespan today: **{seconds(p.today)}**; with every safe fan-out: **{seconds(p.fanout)}** "
                f"({_pct(p.today, p.fanout)}); Amdahl serial fraction {p.serial_fraction:.2f}",
                f"- critical path: {' → '.join(f'**{n}**' for n in p.fanout_path)}",
                *(f"- note: {n}" for n in p.notes), "",
                "| stage | p50 | p95 | p99 | cpu/wall | bound |", "|---|---:|---:|---:|---:|---|"]
        for s in p.stages:
            mark = f"**{s.stage}**" if s.stage in p.fanout_path else s.stage
            ratio = "–" if s.cpu_ratio is None else f"{s.cpu_ratio:.2f}"
            out.append(f"| {mark} | {seconds(s.p50)} | {seconds(s.p95)} | {seconds(s.p99)} | {ratio} | {s.bound} |")
        out.append("")
        if p.groups:
            out += ["| group | stages | saving (p50) | p99 of max | tail × | workers | `fanout --apply` |",
                    "|---|---|---:|---:|---:|---:|---|"]
            for g in p.groups:
                star = " ★" if best is not None and g.id == best.id else ""
                apply = "yes" if not g.applicable else g.applicable.replace("|", "/")
                out.append(f"| `{g.id}`{star} | {', '.join(g.stages)} | {seconds(g.saving_p50)} | "
                           f"{seconds(g.p99_max)} | {g.tail_amplification:.2f} | {g.worker_cap} | {apply} |")
            out.append("")
        for b in p.blockers[:3]:
            out.append(f"- unknown `{b.source}` → `{b.target}` blocks {seconds(b.gain)}: {'; '.join(b.via)}")
        if p.blockers:
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
