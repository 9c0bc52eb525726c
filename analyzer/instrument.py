"""`stagegraph instrument`: a libcst codemod that times every stage of a pipeline, and removes it again.

Each stage call the analysis found (its `file:line` in the driver) becomes
`_stagegraph_stage("stage", "pipeline", func, *args)`, which records start and end (stage,
pipeline, run id, wall and CPU time, outcome). Framework stages, dispatched stages and callables
handed to an executor are timed by `@_stagegraph_timed("stage", "pipeline")` placed on the
definition, under the framework's own decorators, so the framework still schedules them.

Records go as JSON lines to the file named by `STAGEGRAPH_TIMINGS` (else to the
`stagegraph.timings` logger) and, when `opentelemetry` is importable, also as spans. The helpers
are plain code inserted after the module's imports, so the instrumented code needs nothing from
stagegraph. Every addition is recognisable by its `_stagegraph_` names: `strip` removes exactly
those, so instrumenting again starts from the original text and is idempotent.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .model import Report

MARK = "_stagegraph_"
WRAP, WRAP_ASYNC, DECORATOR = "_stagegraph_stage", "_stagegraph_stage_async", "_stagegraph_timed"
HELPER_NAMES = frozenset({"_stagegraph_span", "_stagegraph_emit", WRAP, WRAP_ASYNC, DECORATOR})
FRAMEWORK_STYLES = frozenset({"airflow", "airflow-taskflow", "luigi", "prefect", "dagster", "kedro", "celery"})
ENV_FILE, ENV_RUN = "STAGEGRAPH_TIMINGS", "STAGEGRAPH_RUN_ID"

HELPERS = '''
def _stagegraph_emit(record):  # stagegraph instrument: timing helpers (`instrument --undo` removes them)
    import json, logging, os
    line = json.dumps(record, default=str, sort_keys=True)
    path = os.environ.get("STAGEGRAPH_TIMINGS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\\n")
    else:
        logging.getLogger("stagegraph.timings").info(line)


class _stagegraph_span:
    def __init__(self, stage, pipeline):
        import os, uuid
        run = os.environ.get("STAGEGRAPH_RUN_ID") or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") \\
            or os.environ.setdefault("STAGEGRAPH_AUTO_RUN_ID", uuid.uuid4().hex)
        self.record = {"stage": stage, "pipeline": pipeline, "run": run}
        self.span = None

    def __enter__(self):
        import time
        try:
            from opentelemetry import trace
        except ImportError:
            pass
        else:
            self.span = trace.get_tracer("stagegraph").start_span(self.record["stage"], attributes={
                "stagegraph." + k: v for k, v in self.record.items()})
        self.started, self.wall, self.cpu = time.time(), time.perf_counter(), time.thread_time()
        _stagegraph_emit({**self.record, "event": "start", "start": self.started})

    def __exit__(self, kind, error, trace_back):
        import time
        wall, cpu = time.perf_counter() - self.wall, time.thread_time() - self.cpu
        outcome = "ok" if kind is None else "error"
        _stagegraph_emit({**self.record, "event": "end", "start": self.started, "end": time.time(),
                          "wall_s": round(wall, 6), "cpu_s": round(cpu, 6), "outcome": outcome,
                          "error": None if kind is None else kind.__name__})
        if self.span is not None:
            self.span.set_attribute("stagegraph.cpu_s", cpu)
            self.span.set_attribute("stagegraph.outcome", outcome)
            if error is not None:
                self.span.record_exception(error)
            self.span.end()
        return False


def _stagegraph_stage(stage, pipeline, func, *args, **kwargs):
    with _stagegraph_span(stage, pipeline):
        return func(*args, **kwargs)


async def _stagegraph_stage_async(stage, pipeline, func, *args, **kwargs):
    with _stagegraph_span(stage, pipeline):
        return await func(*args, **kwargs)


def _stagegraph_timed(stage, pipeline):
    def decorate(func):
        import functools, inspect
        if inspect.iscoroutinefunction(func):
            async def timed(*args, **kwargs):
                with _stagegraph_span(stage, pipeline):
                    return await func(*args, **kwargs)
        elif inspect.isgeneratorfunction(func):
            def timed(*args, **kwargs):
                with _stagegraph_span(stage, pipeline):
                    return (yield from func(*args, **kwargs))
        else:
            def timed(*args, **kwargs):
                with _stagegraph_span(stage, pipeline):
                    return func(*args, **kwargs)
        return functools.wraps(func)(timed)
    return decorate
'''


@dataclass(frozen=True, slots=True)
class Target:
    stage: str
    pipeline: str
    line: int  # call line (call targets) or `def` line (definition targets)
    name: str  # the callee / function name


@dataclass(slots=True)
class FilePlan:
    calls: list[Target] = field(default_factory=list)
    definitions: list[Target] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Change:
    file: str
    before: str
    after: str
    wrapped: int
    decorated: int

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(True), self.after.splitlines(True),
                                            f"a/{self.file}", f"b/{self.file}"))


@dataclass(frozen=True, slots=True)
class Outcome:
    changes: tuple[Change, ...]
    notes: tuple[str, ...]


# ------------------------------------------------------------------ analysis of the original code

def strip(text: str) -> str:
    """The text with everything `instrument` added removed (unchanged when there is nothing)."""
    if MARK not in text:
        return text
    try:
        return _stripped_module(text).code
    except cst.ParserSyntaxError:
        return text


def _stripped_module(text: str) -> cst.Module:
    module = cst.parse_module(text)
    return module.visit(_Stripper()) if MARK in text else module


def analyze_original(paths: Sequence[Path], options: object | None = None) -> tuple[Report, Path]:
    """The analysis of `paths` (which never sees instrumentation: the engine strips it) and its root."""
    from . import source
    from .engine import Options, analyze

    opts = options if isinstance(options, Options) else Options()
    return analyze(paths, opts), source.common_root(paths)


# ------------------------------------------------------------------ choosing what to wrap

def targets(report: Report, pipeline_ids: Iterable[str] | None = None) -> tuple[dict[str, FilePlan], list[str]]:
    """Per file, the calls to wrap and definitions to decorate; plus notes on stages left out."""
    wanted = set(pipeline_ids) if pipeline_ids is not None else None
    plans: dict[str, FilePlan] = {}
    notes: list[str] = []
    claimed_defs: dict[tuple[str, int], Target] = {}
    for pipeline in sorted(report.pipelines, key=lambda p: p.id):
        if wanted is not None and pipeline.id not in wanted:
            continue
        for stage in pipeline.stages:
            definition = stage.definition
            if pipeline.style not in FRAMEWORK_STYLES:
                plans.setdefault(stage.file, FilePlan()).calls.append(
                    Target(stage.id, pipeline.id, stage.line, stage.name.rsplit(".", 1)[-1]))
            elif definition is None:
                notes.append(f"{pipeline.id}: {stage.id} has no Python callable to time (an operator or "
                             "a task defined elsewhere); not instrumented")
            else:
                key = (definition.file, definition.line)
                if key in claimed_defs:
                    first = claimed_defs[key]
                    notes.append(f"{pipeline.id}: {stage.id} shares its function with {first.pipeline}: "
                                 f"{first.stage}; its runs are recorded under that stage")
                    continue
                target = Target(stage.id, pipeline.id, definition.line, stage.name.rsplit(".", 1)[-1])
                claimed_defs[key] = target
                plans.setdefault(definition.file, FilePlan()).definitions.append(target)
    return plans, notes


def _fallbacks(report: Report, unmatched: Iterable[Target]) -> dict[str, list[Target]]:
    """Definitions to decorate for call targets with no matching call (dispatch, `pool.submit(f, x)`)."""
    by_key = {(p.id, s.id): s for p in report.pipelines for s in p.stages}
    out: dict[str, list[Target]] = {}
    for target in unmatched:
        stage = by_key.get((target.pipeline, target.stage))
        if stage is not None and stage.definition is not None:
            out.setdefault(stage.definition.file, []).append(
                Target(target.stage, target.pipeline, stage.definition.line, target.name))
    return out


# ------------------------------------------------------------------ the codemod

def instrument(report: Report, root: Path, pipeline_ids: Iterable[str] | None = None) -> Outcome:
    """Compute (without writing) every file change that instruments the chosen pipelines."""
    texts = _read_all(root, report)
    previous = {pid for text in texts.values() for pid in _instrumented_pipelines(text)}
    chosen = None if pipeline_ids is None else set(pipeline_ids) | previous
    plans, notes = targets(report, chosen)
    wrappers: dict[str, MetadataWrapper] = {}
    calls: dict[str, list[Target]] = {}
    definitions: dict[str, list[Target]] = {}
    unmatched: list[Target] = []
    for file, plan in sorted(plans.items()):
        if file not in texts:
            notes.append(f"{file}: not found under {root}; its stages are not instrumented")
            continue
        wrappers[file] = MetadataWrapper(_stripped_module(texts[file]), unsafe_skip_copy=True)
        found, missed = _match_calls(wrappers[file], plan.calls)
        calls[file] = found
        unmatched += missed
        definitions.setdefault(file, []).extend(plan.definitions)
    fallbacks = _fallbacks(report, unmatched)
    for target in unmatched:
        if not any(t.stage == target.stage and t.pipeline == target.pipeline for ts in fallbacks.values() for t in ts):
            notes.append(f"{target.pipeline}: {target.stage}: no call found at its line and no definition; "
                         "not instrumented")
    for file, defs in fallbacks.items():
        if file in texts:
            if file not in wrappers:
                wrappers[file] = MetadataWrapper(_stripped_module(texts[file]), unsafe_skip_copy=True)
            definitions.setdefault(file, []).extend(defs)
    changes = []
    for file in sorted(wrappers):
        code, wrapped, decorated, missed_defs = _apply(wrappers[file], calls.get(file, []), definitions.get(file, []))
        notes += [f"{t.pipeline}: {t.stage}: no definition of {t.name} found at {file}:{t.line}" for t in missed_defs]
        if code != texts[file]:
            changes.append(Change(file, texts[file], code, wrapped, decorated))
    return Outcome(tuple(changes), tuple(dict.fromkeys(notes)))


def undo(root: Path, files: Iterable[str]) -> Outcome:
    """Changes that remove every instrumentation from `files` (relative to `root`)."""
    changes = []
    for file in sorted(files):
        try:
            text = (root / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        stripped = strip(text)
        if stripped != text:
            changes.append(Change(file, text, stripped, 0, 0))
    return Outcome(tuple(changes), ())


def write(root: Path, outcome: Outcome) -> None:
    for change in outcome.changes:
        (root / change.file).write_text(change.after, encoding="utf-8")


def _read_all(root: Path, report: Report) -> dict[str, str]:
    files = {s.file for p in report.pipelines for s in p.stages}
    files |= {s.definition.file for p in report.pipelines for s in p.stages if s.definition is not None}
    texts = {}
    for file in files:
        try:
            texts[file] = (root / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return texts


_RECORDED = re.compile(r'_stagegraph_(?:stage|stage_async|timed)\(\s*"(?:[^"\\]|\\.)*",\s*"((?:[^"\\]|\\.)*)"')


def _instrumented_pipelines(text: str) -> set[str]:
    """Pipeline ids already recorded by wrappers in `text` (so a second run keeps them)."""
    return {m.group(1).replace('\\"', '"').replace("\\\\", "\\") for m in _RECORDED.finditer(text)}


def _name(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return ""


def _string(value: str) -> cst.SimpleString:
    return cst.SimpleString('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _match_calls(wrapper: MetadataWrapper, calls: Sequence[Target]) -> tuple[list[Target], list[Target]]:
    """Call targets with exactly one call of that name on their line, and the rest."""
    if not calls:
        return [], []
    counter = _CallCounter()
    wrapper.visit(counter)
    found: list[Target] = []
    missed: list[Target] = []
    seen: set[tuple[int, str]] = set()
    for target in calls:
        key = (target.line, target.name)
        if counter.counts.get(key, 0) == 1 and key not in seen:
            seen.add(key)
            found.append(target)
        else:
            missed.append(target)
    return found, missed


def _apply(wrapper: MetadataWrapper, calls: Sequence[Target],
           definitions: Sequence[Target]) -> tuple[str, int, int, list[Target]]:
    """Instrument one parsed module; returns the code, counts, and definitions not found."""
    transformer = _Instrumenter({(t.line, t.name): t for t in calls}, {t.line: t for t in definitions})
    result = wrapper.visit(transformer)
    if transformer.wrapped or transformer.decorated:
        result = _with_helpers(result)
    missed = [t for t in definitions if t.line not in transformer.used_definitions]
    return result.code, transformer.wrapped, transformer.decorated, missed


class _CallCounter(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[int, str], int] = {}

    def visit_Call(self, node: cst.Call) -> None:
        key = (self.get_metadata(PositionProvider, node).start.line, _name(node.func))
        self.counts[key] = self.counts.get(key, 0) + 1


class _Instrumenter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, calls: dict[tuple[int, str], Target], definitions: dict[int, Target]) -> None:
        super().__init__()
        self.calls = calls
        self.definitions = definitions
        self.wrapped = 0
        self.decorated = 0
        self.used_definitions: set[int] = set()

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        key = (self.get_metadata(PositionProvider, original).start.line, _name(original.func))
        target = self.calls.get(key)
        if target is None:
            return updated
        self.wrapped += 1
        return _wrap(updated, target, WRAP)

    def leave_Await(self, original: cst.Await, updated: cst.Await) -> cst.Await:
        call = updated.expression
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value == WRAP \
                and not (isinstance(original.expression, cst.Call) and _name(original.expression.func) == WRAP):
            return updated.with_changes(expression=call.with_changes(func=cst.Name(WRAP_ASYNC)))
        return updated

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        target = self.definitions.get(self.get_metadata(PositionProvider, original.name).start.line)
        if target is None or target.name != original.name.value:
            return updated
        decorator = cst.Decorator(cst.Call(cst.Name(DECORATOR), [
            cst.Arg(_string(target.stage), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(_string(target.pipeline)),
        ]))
        self.decorated += 1
        self.used_definitions.add(target.line)
        return updated.with_changes(decorators=[*updated.decorators, decorator])


def _wrap(call: cst.Call, target: Target, helper: str) -> cst.Call:
    """`f(a, b)` -> `helper("stage", "pipeline", f, a, b)`, keeping the original argument text."""
    space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if call.args:
        before = call.whitespace_before_args
        if isinstance(before, cst.SimpleWhitespace):  # one more space: `f, a`; _unwrap takes it off again
            before = cst.SimpleWhitespace(" " + before.value)
        func_arg = cst.Arg(call.func, comma=cst.Comma(whitespace_after=before))
    else:
        func_arg = cst.Arg(call.func, whitespace_after_arg=call.whitespace_before_args)
    return call.with_changes(
        func=cst.Name(helper),
        args=[cst.Arg(_string(target.stage), comma=space), cst.Arg(_string(target.pipeline), comma=space),
              func_arg, *call.args],
        whitespace_before_args=cst.SimpleWhitespace(""),
    )


def _unwrap(call: cst.Call) -> cst.Call:
    func_arg = call.args[2]
    rest = call.args[3:]
    if rest:
        comma = func_arg.comma
        before = comma.whitespace_after if isinstance(comma, cst.Comma) else cst.SimpleWhitespace("")
        if isinstance(before, cst.SimpleWhitespace) and before.value.startswith(" "):
            before = cst.SimpleWhitespace(before.value[1:])
    else:
        before = func_arg.whitespace_after_arg
    return call.with_changes(func=func_arg.value, args=list(rest), whitespace_before_args=before)


def _with_helpers(module: cst.Module) -> cst.Module:
    helpers = list(cst.parse_module(HELPERS).body)
    body = list(module.body)
    index = 0
    while index < len(body) and _is_preamble(body[index], index):
        index += 1
    # Blank lines above the helpers only when something precedes them: at the top of a file they would
    # be read back as the module header, which `strip` must leave alone.
    spacing = [cst.EmptyLine(), cst.EmptyLine()] if index else []
    helpers[0] = helpers[0].with_changes(leading_lines=spacing)
    return module.with_changes(body=[*body[:index], *helpers, *body[index:]])


def _is_preamble(statement: cst.BaseStatement, index: int) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return all(
        isinstance(s, cst.Import | cst.ImportFrom)
        or (index == 0 and isinstance(s, cst.Expr) and isinstance(s.value, cst.SimpleString | cst.ConcatenatedString))
        for s in statement.body
    )


class _Stripper(cst.CSTTransformer):
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if _name(updated.func) in (WRAP, WRAP_ASYNC) and isinstance(updated.func, cst.Name) and len(updated.args) >= 3:
            return _unwrap(updated)
        return updated

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        kept = [d for d in updated.decorators
                if not (isinstance(d.decorator, cst.Call) and _name(d.decorator.func) == DECORATOR)]
        return updated.with_changes(decorators=kept) if len(kept) != len(updated.decorators) else updated

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body = [s for s in updated.body
                if not (isinstance(s, cst.FunctionDef | cst.ClassDef) and s.name.value in HELPER_NAMES)]
        return updated.with_changes(body=body)

