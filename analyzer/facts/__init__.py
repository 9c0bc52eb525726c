"""The facts layer: the only code that reads libcst trees. Produces PipelineFacts per pipeline.

Order of work: index every module (names, imports, positions), summarise every function once,
compose summaries through calls, then let each style (plain/class drivers, framework adapters)
find its pipelines and build stages with the shared StageBuilder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import libcst as cst

from ..catalog import ResourceCatalog, RoleModel
from ..model import Diagnostic, PipelineFacts, RoleEvidence, Signal
from ..source import ParsedModule
from .effects import Context
from .index import FunctionRef, ModuleIndex, Project, index_module
from .roles import role_evidence, roles_of
from .signals import body_signals, function_signals
from .stagefx import StageBuilder
from .styles import airflow, celery, dagster, kedro, luigi, plain, prefect, sklearn
from .summaries import compose

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
    modules: Sequence[ParsedModule], resources: ResourceCatalog, roles: tuple[RoleModel, ...]
) -> tuple[list[PipelineFacts], list[Diagnostic], Suppressions]:
    from . import tree

    tree.reset()
    try:
        return _extract(modules, resources, roles)
    finally:
        tree.reset()  # cached child lists are keyed by id(): never let them outlive the trees


def _extract(
    modules: Sequence[ParsedModule], resources: ResourceCatalog, roles: tuple[RoleModel, ...]
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
    pipelines: list[PipelineFacts] = []
    for style, finder in STYLES:
        pipelines.extend(_run_style(style, finder, builder, project, indexes, diagnostics))
    diagnostics.extend(builder.diagnostics)
    diagnostics = _one_too_deep_per_file(diagnostics)
    pipelines = _link_nested(_without_assembly(pipelines))
    suppressions = {m.relpath: m.suppressions for m in indexes if m.suppressions}
    return pipelines, diagnostics, suppressions


def _compose_isolated(project: Project, ctx: Context, signals_of: dict[str, tuple[Signal, ...]],
                      diagnostics: list[Diagnostic]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summarise each function on its own (isolation point: one function), then compose the rest."""
    from .effects import summarize

    direct: dict[str, Any] = {}
    for q, fn in project.functions.items():
        try:
            direct[q] = summarize(fn, ctx)
        except RecursionError:
            diagnostics.append(too_deep(fn.module.relpath, f"effects of {fn.name}", safe_line(fn)))
        except Exception as exc:  # isolation point: one function
            diagnostics.append(Diagnostic(fn.module.relpath, "internal-error",
                                          f"could not trace effects of {fn.name}: {exc!r}", safe_line(fn)))
    try:
        direct, totals, unconverged = compose({q: project.functions[q] for q in direct}, ctx, signals_of,
                                              direct=direct)
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
    framework pipeline is already reported with the framework's semantics.
    """
    framework = {p.id for p in pipelines if p.style not in ("plain", "class")}
    framework |= {member for p in pipelines for member in p.assembled_from}
    if not framework:
        return pipelines
    kept = []
    for p in pipelines:
        if p.style in ("plain", "class"):
            if p.id in framework:
                continue
            entries = {f"{s.definition.file}::{s.name}" for s in p.stages if s.definition is not None}
            if entries and len(entries) == len(p.stages) and entries <= framework:
                continue
        kept.append(p)
    return kept


def _link_nested(pipelines: list[PipelineFacts]) -> list[PipelineFacts]:
    """A stage whose callee is itself a driver points at that driver's pipeline."""
    by_qualname: dict[str, str] = {}
    for p in pipelines:
        if p.style in ("plain", "class"):
            module_part = p.file
            by_qualname[f"{module_part}::{p.name}"] = p.id
    out = []
    for p in pipelines:
        stages = []
        for s in p.stages:
            nested = None
            if s.definition is not None and s.qualname:
                short = s.qualname.rsplit(".", 2)
                candidates = [f"{s.definition.file}::{short[-1]}", f"{s.definition.file}::{'.'.join(short[-2:])}"]
                nested = next((by_qualname[c] for c in candidates if c in by_qualname and by_qualname[c] != p.id), None)
            stages.append(replace(s, nested_pipeline=nested) if nested else s)
        out.append(replace(p, stages=tuple(stages)))
    return out
