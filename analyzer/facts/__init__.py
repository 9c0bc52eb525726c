"""The facts layer: the only code that reads libcst trees. Produces PipelineFacts per pipeline.

Order of work: index every module (names, imports, positions), summarise every function once,
compose summaries through calls, then let each style (plain/class drivers, framework adapters)
find its pipelines and build stages with the shared StageBuilder.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import libcst as cst

from ..catalog import ResourceCatalog, RoleModel
from ..model import Diagnostic, PipelineFacts, RoleEvidence, Signal
from ..source import ParsedModule
from .effects import Context
from .index import FunctionRef, ModuleIndex, Project, index_module
from .nesting import flatten_canvases, link_nested
from .roles import role_evidence, roles_of
from .signals import body_signals, function_signals
from .stagefx import StageBuilder
from .styles import airflow, celery, dagster, kedro, luigi, plain, prefect, sklearn
from .summaries import MAX_ACCESSES, compose

Suppressions = Mapping[str, Mapping[int, frozenset[str]]]

Finder = Callable[[StageBuilder], list[PipelineFacts]]

#: Style adapters, registered statically: an adapter that fails to import fails the import of this
#: package (a test catches it), instead of silently reporting nothing for its framework.
STYLES: tuple[tuple[str, Finder], ...] = (
    ("plain", plain.find_pipelines),
    ("airflow", airflow.find_pipelines),
    ("luigi", luigi.find_pipelines),
    ("prefect", prefect.find_pipelines),
    ("dagster", dagster.find_pipelines),
    ("kedro", kedro.find_pipelines),
    ("celery", celery.find_pipelines),
    ("sklearn", sklearn.find_pipelines),
)


def extract(
    modules: Sequence[ParsedModule], resources: ResourceCatalog, roles: tuple[RoleModel, ...], jobs: int = 1
) -> tuple[list[PipelineFacts], list[Diagnostic], Suppressions]:
    """Pipelines, diagnostics and suppression comments of the modules; `jobs` processes share the styles."""
    from . import tree

    tree.reset()
    try:
        return _extract(modules, resources, roles, jobs)
    finally:
        tree.reset()  # cached child lists are keyed by id(): never let them outlive the trees


def _extract(
    modules: Sequence[ParsedModule], resources: ResourceCatalog, roles: tuple[RoleModel, ...], jobs: int
) -> tuple[list[PipelineFacts], list[Diagnostic], Suppressions]:
    diagnostics: list[Diagnostic] = []
    indexes: list[ModuleIndex] = []
    for parsed in modules:
        try:
            indexes.append(index_module(parsed))
        except RecursionError:
            diagnostics.append(too_deep(parsed.relpath, "index"))
        except Exception as exc:  # isolation point: one file
            message = f"stagegraph failed indexing this file: {exc!r}"
            diagnostics.append(Diagnostic(parsed.relpath, "internal-error", message))
    project = Project.build(indexes)
    ctx = Context(project, resources)

    def signals_fn_of(fn: FunctionRef) -> tuple[Signal, ...]:
        """Signals of one function, scanned only when a stage or driver needs them (most never do)."""
        try:
            return tuple(function_signals(fn, project, resources.failures))
        except Exception as exc:  # isolation point
            diagnostics.append(Diagnostic(fn.module.relpath, "internal-error",
                                          f"signal scan failed in {fn.name}: {type(exc).__name__}", safe_line(fn)))
            return ()

    direct, totals = _compose_isolated(project, ctx, {}, diagnostics)
    role_memo: dict[tuple[str, str], tuple[RoleEvidence, ...]] = {}

    def evidence_fn(name: str, fn: FunctionRef | None) -> tuple[RoleEvidence, ...]:
        key = (name, fn.qualname if fn is not None else "")
        if key not in role_memo:
            try:
                role_memo[key] = role_evidence(name, fn, project, roles)
            except Exception as exc:  # isolation point: roles are advisory, a failure must not lose the stage
                role_memo[key] = ()
                where = fn.module.relpath if fn is not None else "."
                diagnostics.append(Diagnostic(where, "internal-error", f"role detection failed for {name}: {exc!r}",
                                              fn.line if fn is not None else None))
        return role_memo[key]

    def roles_fn(name: str, fn: FunctionRef | None) -> tuple[str, ...]:
        return roles_of(evidence_fn(name, fn), roles)

    def signals_fn(body: Sequence[cst.BaseStatement], module: ModuleIndex) -> tuple[Signal, ...]:
        try:
            return tuple(body_signals(body, module, project, resources.failures))
        except Exception as exc:  # isolation point: one driver body's hazard scan
            diagnostics.append(Diagnostic(module.relpath, "internal-error", f"hazard scan of a driver failed: {exc!r}"))
            return ()

    builder = StageBuilder(ctx, direct, totals, roles_fn, signals_fn, function_signals=signals_fn_of,
                           role_evidence=evidence_fn)
    pipelines = _run_styles(builder, project, indexes, diagnostics, jobs)
    diagnostics.extend(builder.diagnostics)
    diagnostics = _one_too_deep_per_file(diagnostics)
    pipelines = flatten_canvases(link_nested(_without_assembly(pipelines)))
    suppressions = {m.relpath: m.suppressions for m in indexes if m.suppressions}
    return pipelines, diagnostics, suppressions


#: below this many functions a run is too short for worker processes to pay for their start
PARALLEL_MIN_FUNCTIONS = 400

StyleResult = tuple[list[PipelineFacts], list[Diagnostic], list[Diagnostic]]


def _run_styles(builder: StageBuilder, project: Project, indexes: Sequence[ModuleIndex],
                diagnostics: list[Diagnostic], jobs: int) -> list[PipelineFacts]:
    """Every style's pipelines, in STYLES order; with `jobs` > 1 the styles are shared among forked workers.

    A forked worker inherits the trees, the index and the composed summaries, runs its styles and
    sends back plain records (pipelines, diagnostics), so the report is the same for any `jobs`.
    A worker that dies costs only its styles, each reported as a diagnostic.
    """
    groups = _style_groups(jobs)
    if len(groups) == 1 or not hasattr(os, "fork") or len(project.functions) < PARALLEL_MIN_FUNCTIONS:
        groups = [list(STYLES)]
    workers = [_fork_styles(group, builder, project, indexes, diagnostics) for group in groups[1:]]
    results = _styles_here(groups[0], builder, project, indexes, diagnostics)
    for group, worker in zip(groups[1:], workers, strict=True):
        results.update(_collect(group, *worker))
    pipelines: list[PipelineFacts] = []
    seen: set[Diagnostic] = set()
    forked = bool(workers)
    for name, _ in STYLES:
        found, style_diagnostics, builder_diagnostics = results[name]
        pipelines.extend(found)
        # a diagnostic memoised in one process may be found again in another: report it once, as in one process
        diagnostics.extend(d for d in style_diagnostics if d not in seen)
        builder.diagnostics.extend(d for d in builder_diagnostics if d not in seen)
        if forked:
            seen.update(style_diagnostics, builder_diagnostics)
    return pipelines


def _style_groups(jobs: int) -> list[list[tuple[str, Finder]]]:
    """The styles per process: the plain style (most of the work) alone, the adapters shared among the rest."""
    if jobs <= 1:
        return [list(STYLES)]
    first, *rest = STYLES
    groups: list[list[tuple[str, Finder]]] = [[first], *([] for _ in range(min(jobs - 1, len(rest))))]
    for i, style in enumerate(rest):
        groups[1 + i % (len(groups) - 1)].append(style)
    return groups


def _styles_here(group: Sequence[tuple[str, Finder]], builder: StageBuilder, project: Project,
                 indexes: Sequence[ModuleIndex], diagnostics: list[Diagnostic]) -> dict[str, StyleResult]:
    """Run styles in this process; each style's pipelines and the diagnostics it added (taken back out)."""
    results: dict[str, StyleResult] = {}
    for name, finder in group:
        start, builder_start = len(diagnostics), len(builder.diagnostics)
        found = _run_style(name, finder, builder, project, indexes, diagnostics)
        results[name] = (found, diagnostics[start:], builder.diagnostics[builder_start:])
        del diagnostics[start:], builder.diagnostics[builder_start:]
    return results


def _fork_styles(group: Sequence[tuple[str, Finder]], builder: StageBuilder, project: Project,
                 indexes: Sequence[ModuleIndex], diagnostics: list[Diagnostic]) -> tuple[int, int]:
    """Start a worker running `group`; its pid and the pipe its pickled results come through."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's code
        status = 1
        try:
            os.close(read_end)
            payload = pickle.dumps(_styles_here(group, builder, project, indexes, diagnostics))
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _collect(group: Sequence[tuple[str, Finder]], pid: int, read_end: int) -> dict[str, StyleResult]:
    """A worker's results; a worker that died becomes one diagnostic per style it was running."""
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        try:
            results: dict[str, StyleResult] = pickle.loads(payload)  # our own child's records
            if all(name in results for name, _ in group):
                return results
        except Exception:  # a garbled payload is a dead worker, reported below
            pass
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
    return {name: ([], [Diagnostic(".", "internal-error", f"the worker process running the {name} adapter died "
                                   f"({how}); its pipelines are not reported")], []) for name, _ in group}


def _compose_isolated(project: Project, ctx: Context, signals_of: dict[str, tuple[Signal, ...]],
                      diagnostics: list[Diagnostic]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summarise each function on its own (isolation point: one function), then compose the rest."""
    from .effects import summarize, untraced

    direct: dict[str, Any] = {}
    for q, fn in project.functions.items():
        try:
            direct[q] = summarize(fn, ctx)
        except RecursionError:
            diagnostics.append(too_deep(fn.module.relpath, f"effects of {fn.name}", safe_line(fn)))
            direct[q] = untraced(fn, f"effects of {fn.name} nest too deeply to trace")
        except Exception as exc:  # isolation point: one function
            diagnostics.append(Diagnostic(fn.module.relpath, "internal-error",
                                          f"could not trace effects of {fn.name}: {exc!r}", safe_line(fn)))
            direct[q] = untraced(fn, f"effects of {fn.name} could not be traced")
    try:
        over_budget: list[str] = []
        direct, totals, unconverged = compose({q: project.functions[q] for q in direct}, ctx, signals_of,
                                              direct=direct, over_budget=over_budget)
        for q in dict.fromkeys(over_budget):
            fn = project.functions[q]
            diagnostics.append(Diagnostic(fn.module.relpath, "unresolved",
                                          f"effects of {fn.name} through its calls are over the composition "
                                          f"budget ({MAX_ACCESSES} effects): each namespace's effects were folded "
                                          "into one unknown effect, so its stages' edges there are unknown",
                                          safe_line(fn), code="over-budget"))
        for q in unconverged:
            fn = project.functions[q]
            diagnostics.append(Diagnostic(fn.module.relpath, "unresolved",
                                          f"effects of {fn.name} did not settle within the composition budget; "
                                          "its stages' edges are unknown", safe_line(fn)))
        return direct, totals
    except Exception as exc:  # composition is not per file; say so rather than lose the run's other facts
        diagnostics.append(Diagnostic(".", "internal-error", f"effect composition failed: {type(exc).__name__}"))
        return direct, {}


def _one_too_deep_per_file(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A deep file trips several walks (effects, adapters); the reader needs to hear it once."""
    seen: set[str] = set()
    kept = []
    for d in diagnostics:
        if d.code == "too-deep":
            if d.file in seen:
                continue
            seen.add(d.file)
        kept.append(d)
    return kept


def safe_line(fn: FunctionRef) -> int | None:
    """A function's line for a diagnostic; None when computing it would itself overflow the stack."""
    try:
        return fn.line
    except RecursionError:
        return None


def too_deep(relpath: str, what: str, line: int | None = None) -> Diagnostic:
    """The diagnostic for code nested too deeply to walk (built without touching the tree)."""
    return Diagnostic(relpath, "skipped", f"{what}: code is nested too deeply to analyse", line, code="too-deep")


def _run_style(name: str, finder: Finder, builder: StageBuilder, project: Project,
               indexes: Sequence[ModuleIndex], diagnostics: list[Diagnostic]) -> list[PipelineFacts]:
    """One adapter over the project (isolation point). When it fails, find the files it fails on by
    running it on each file alone, report those, and run it again without them: one file's failure
    never costs another file's pipelines."""
    try:
        return list(finder(builder))
    except Exception:  # isolation point: one adapter; fall back to one file at a time
        pass
    culprits: set[str] = set()
    for index in indexes:
        single = replace(builder, ctx=Context(Project.build([index]), builder.ctx.catalog), diagnostics=[])
        try:
            finder(single)
        except RecursionError:
            culprits.add(index.relpath)
            diagnostics.append(too_deep(index.relpath, f"{name} adapter"))
        except Exception as exc:
            culprits.add(index.relpath)
            diagnostics.append(Diagnostic(index.relpath, "internal-error", f"{name} adapter failed: {exc!r}"))
    rest = [index for index in indexes if index.relpath not in culprits]
    narrowed = replace(builder, ctx=Context(Project.build(rest), builder.ctx.catalog))
    try:
        return list(finder(narrowed))
    except Exception as exc:  # fails only across files: nothing narrower to blame
        diagnostics.append(Diagnostic(".", "internal-error", f"{name} adapter failed: {type(exc).__name__}"))
        return []


def _without_assembly(pipelines: list[PipelineFacts]) -> list[PipelineFacts]:
    """Drop plain/class 'pipelines' that only assemble framework pipelines, or that an adapter reports.

    `register_pipelines()` calling two Kedro `create_pipeline()`s, or a DAG factory seen as a plain
    driver, is wiring, not a data pipeline: its stages have no data effects of their own and the
    framework pipeline is already reported with the framework's semantics. A driver that calls Prefect
    flows, or functions building Celery canvases it sends, is kept: calling a flow runs it, so the
    driver is a pipeline whose stages are those flows (or canvases).
    """
    framework = {p.id for p in pipelines if p.style not in ("plain", "class")}
    framework |= {member for p in pipelines for member in p.assembled_from}
    # calling a Prefect flow runs it, and a function building a Celery canvas is called to send it
    # (`ingestion(day).apply_async()`): a driver calling them in sequence is a pipeline, not wiring
    run_when_called = {p.id for p in pipelines if p.style in ("prefect", "celery")}
    if not framework:
        return pipelines
    kept = []
    for p in pipelines:
        if p.style in ("plain", "class"):
            if p.id in framework:
                continue
            entries = {f"{s.definition.file}::{(s.qualname or s.name).rsplit('.', 1)[-1]}"
                       for s in p.stages if s.definition is not None}
            if entries and len(entries) == len(p.stages) and entries <= framework and not entries <= run_when_called:
                continue
        kept.append(p)
    return kept
