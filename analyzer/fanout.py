"""`stagegraph fanout --apply GROUP`: rewrite one safe parallel group of a plain driver as a bounded fan-out.

The group's stage calls are replaced by

    if os.environ.get(FLAG, "").strip().lower() in ("1", "true", "yes", "on"):
        <submit every member to a ThreadPoolExecutor(max_workers=N); bind each result to the same
         names with .result(timeout=T), which re-raises a branch's exception>
        <the statements that stood between the members, in their order>
    else:
        <the original statements, unchanged>

so the sequential path stays the default and the code it runs is byte-for-byte the old one.

It refuses, naming the reason: framework pipelines (their scheduler decides), members with an
`unknown` edge or a real edge between them, members sharing a resource that is not safe to share,
calls that are not plain statements of the driver's body, and moving a member across a statement
that is not a stage or that it depends on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .instrument import MARK, Change
from .model import DEPENDENCY_KINDS, Pipeline, Report
from .plan import pinned_stages, unsafe_pairs

DRIVER_STYLES = frozenset({"plain", "class"})
DEFAULT_TIMEOUT = 600.0


class FanoutRefused(ValueError):
    """The group can't be rewritten safely; the message says why."""


@dataclass(frozen=True, slots=True)
class Group:
    pipeline: Pipeline
    stages: tuple[str, ...]
    label: str


def resolve(report: Report, spec: str) -> Group:
    """`PIPELINE#N` (the N-th parallel group of the report, as `plan` numbers them) or `PIPELINE:a,b`."""
    pipeline_id, sep, rest = spec.rpartition("#")
    if sep and rest.isdigit():
        pipeline = _pipeline(report, pipeline_id)
        n = int(rest)
        if not 1 <= n <= len(pipeline.parallel_groups):
            raise FanoutRefused(f"{pipeline_id} has {len(pipeline.parallel_groups)} parallel groups, not #{n}")
        return Group(pipeline, pipeline.parallel_groups[n - 1].stages, spec)
    pipeline_id, sep, rest = spec.rpartition(":")
    if sep and rest and "::" in pipeline_id:
        pipeline = _pipeline(report, pipeline_id)
        stages = tuple(s.strip() for s in rest.split(",") if s.strip())
        unknown = [s for s in stages if s not in {x.id for x in pipeline.stages}]
        if unknown:
            raise FanoutRefused(f"{pipeline_id} has no stage {', '.join(unknown)}")
        return Group(pipeline, stages, spec)
    raise FanoutRefused(f"{spec!r}: expected PIPELINE#N (a group number from `stagegraph plan`) "
                        "or PIPELINE:stage,stage")


def _pipeline(report: Report, pipeline_id: str) -> Pipeline:
    for pipeline in report.pipelines:
        if pipeline.id == pipeline_id:
            return pipeline
    raise FanoutRefused(f"no pipeline {pipeline_id!r} in the analysis (`stagegraph audit` lists them)")


def check(group: Group) -> None:
    """Raise `FanoutRefused` unless every pair of members is independent and safe to run at once."""
    pipeline = group.pipeline
    if pipeline.style not in DRIVER_STYLES:
        raise FanoutRefused(f"{pipeline.id} is a {pipeline.style} pipeline: its scheduler runs the stages, "
                            "so declare the fan-out there (drop the coincidental ordering) instead")
    if len(set(group.stages)) < 2:
        raise FanoutRefused("a fan-out needs at least two stages")
    pinned = sorted(set(group.stages) & pinned_stages(pipeline))
    if pinned:
        raise FanoutRefused(f"{', '.join(pinned)} has an unknown edge: independence is not proven")
    members = set(group.stages)
    for edge in pipeline.edges:
        if edge.source in members and edge.target in members and edge.kind in DEPENDENCY_KINDS:
            raise FanoutRefused(f"{edge.target} depends on {edge.source} ({edge.kind}: {', '.join(edge.via)})")
    for pair in unsafe_pairs(pipeline):
        if pair <= members:
            a, b = sorted(pair)
            shared = _unsafe_between(pipeline, a, b)
            raise FanoutRefused(f"{a} and {b} share {shared}, which is not safe to share between threads")


def _unsafe_between(pipeline: Pipeline, a: str, b: str) -> str:
    left = {f"{r.kind}:{r.name}" for r in pipeline.stage(a).resources if not r.thread_safe}
    right = {f"{r.kind}:{r.name}" for r in pipeline.stage(b).resources if not r.thread_safe}
    return ", ".join(sorted(left & right)) or "a resource"


def refusal(report: Report, root: Path, spec: str) -> str:
    """Why `apply` would refuse `spec` ("" when it would rewrite it)."""
    from .instrument import strip

    try:
        group = resolve(report, spec)
        apply(report, root, spec, source=strip((root / group.pipeline.file).read_text(encoding="utf-8")))
    except FanoutRefused as exc:
        return str(exc)
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError) as exc:
        return f"cannot read the driver: {exc}"
    return ""


def default_flag(group: Group) -> str:
    """`STAGEGRAPH_FANOUT_<module>_<function>_<group number or first stage>`."""
    module = Path(group.pipeline.file).stem
    function = group.pipeline.name.rsplit(".", 1)[-1]
    tail = group.label.rpartition("#")[2] if "#" in group.label else group.stages[0]
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{module}_{function}_{tail}").strip("_").upper()
    return f"STAGEGRAPH_FANOUT_{name}"


def apply(report: Report, root: Path, spec: str, flag: str | None = None, timeout: float = DEFAULT_TIMEOUT,
          workers: int | None = None, source: str | None = None) -> Change:
    """The change that rewrites the group `spec` behind `flag` (nothing is written).

    `source` is the driver's text to use instead of the file's (`refusal` passes it uninstrumented).
    """
    group = resolve(report, spec)
    check(group)
    pipeline = group.pipeline
    flag = flag or default_flag(group)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", flag):
        raise FanoutRefused(f"--flag {flag!r}: an environment variable name is letters, digits and _")
    others = {s.file for s in (pipeline.stage(m) for m in group.stages) if s.file != pipeline.file}
    if others:
        raise FanoutRefused(f"the members are called from {', '.join(sorted(others))}, not the driver {pipeline.file}")
    text = (root / pipeline.file).read_text(encoding="utf-8") if source is None else source
    if MARK in text:
        raise FanoutRefused(f"{pipeline.file} contains stagegraph code (instrumentation or a fan-out): "
                            "run `stagegraph instrument --undo` first")
    module = cst.parse_module(text)
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    driver = _driver(wrapper.module, positions, pipeline)
    body = driver.body
    if not isinstance(body, cst.IndentedBlock):
        raise FanoutRefused(f"the driver {pipeline.name} at {pipeline.file}:{pipeline.line} is a one-line function")
    statements = list(body.body)
    lines = [positions[s].start.line for s in statements]
    member_index = _member_statements(pipeline, group, statements, lines)
    first, last = min(member_index.values()), max(member_index.values())
    ordered = sorted(group.stages, key=lambda m: member_index[m])
    refusals = []
    for anchor in sorted(member_index.values()):  # the earliest place the whole group can start together
        try:
            _check_moves(pipeline, statements, lines, member_index, anchor)
            break
        except FanoutRefused as exc:
            refusals.append(str(exc))
    else:
        raise FanoutRefused(refusals[0])
    block = _fanout_block(wrapper.module, statements, member_index, ordered, first, last, anchor, flag, timeout,
                          min(workers or len(ordered), len(ordered)), group.label)
    new_body = body.with_changes(body=[*statements[:first], *block, *statements[last + 1:]])
    new_module = wrapper.module.deep_replace(driver, driver.with_changes(body=new_body))
    assert isinstance(new_module, cst.Module)
    new_module = _ensure_imports(new_module)
    return Change(pipeline.file, text, new_module.code, len(ordered), 0)


def _driver(module: cst.Module, positions: object, pipeline: Pipeline) -> cst.FunctionDef:
    found: list[cst.FunctionDef] = []
    name = pipeline.name.rsplit(".", 1)[-1]

    class Finder(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            line = positions[node.name].start.line  # type: ignore[index]
            if node.name.value == name and line == pipeline.line:
                found.append(node)

    module.visit(Finder())
    if not found:
        raise FanoutRefused(f"no function {pipeline.name} defined at {pipeline.file}:{pipeline.line}")
    return found[0]


def _call_of(statement: cst.BaseStatement) -> cst.Call | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        return small.value
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.value, cst.Call):
        return small.value
    return None


def _callee(call: cst.Call) -> str:
    func = call.func
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return ""


def _member_statements(pipeline: Pipeline, group: Group, statements: Sequence[cst.BaseStatement],
                       lines: Sequence[int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for member in group.stages:
        stage = pipeline.stage(member)
        index = next((i for i, line in enumerate(lines) if line == stage.line), None)
        call = _call_of(statements[index]) if index is not None else None
        if index is None or call is None or _callee(call) != stage.name.rsplit(".", 1)[-1]:
            raise FanoutRefused(f"{member} (line {stage.line}) is not a plain `{stage.name}(...)` or "
                                f"`x = {stage.name}(...)` statement of {pipeline.name}'s body")
        found[member] = index
    if len(set(found.values())) != len(found):
        raise FanoutRefused("two members share one statement")
    return found


def _check_moves(pipeline: Pipeline, statements: Sequence[cst.BaseStatement], lines: Sequence[int],
                 member_index: dict[str, int], anchor: int) -> None:
    """Whether every member can move to statement `anchor`: each statement it crosses must be a stage
    call with no real or unknown edge to it."""
    stage_at = {s.line: s.id for s in pipeline.stages}
    real = {(e.source, e.target) for e in pipeline.edges if e.kind in DEPENDENCY_KINDS}
    positions = set(member_index.values())
    for member, index in member_index.items():
        crossed = range(anchor + 1, index) if index > anchor else range(index + 1, anchor)
        for i in crossed:
            if i in positions:
                continue
            between = stage_at.get(lines[i])
            if between is None or _call_of(statements[i]) is None:
                raise FanoutRefused(f"line {lines[i]} between the members is not a stage call, so moving "
                                    f"{member} across it can't be proven safe")
            if (between, member) in real or (member, between) in real:
                raise FanoutRefused(f"{member} would have to move across {between}, and one depends on the other")


def _fanout_block(module: cst.Module, statements: Sequence[cst.BaseStatement], member_index: dict[str, int],
                  ordered: Sequence[str], first: int, last: int, anchor: int, flag: str, timeout: float,
                  workers: int, label: str) -> list[cst.BaseStatement]:
    """The flagged if/else replacing statements first..last; the fan-out runs where `anchor` stood."""
    members = {member_index[m] for m in ordered}
    submits, results = [], []
    for n, member in enumerate(ordered, 1):
        statement = statements[member_index[member]]
        call = _call_of(statement)
        assert call is not None and isinstance(statement, cst.SimpleStatementLine)
        args = "".join(module.code_for_node(a) for a in call.args).strip()
        func = module.code_for_node(call.func)
        submits.append(f"_stagegraph_branch_{n} = _stagegraph_pool.submit({func}{', ' + args if args else ''})")
        small = statement.body[0]
        wait = f"_stagegraph_branch_{n}.result(timeout={timeout:g})"
        if isinstance(small, cst.Assign):
            target = module.code_for_node(small.targets[0].target)
            results.append(f"{target} = {wait}")
        else:
            results.append(wait)
    inner = "\n".join(f"        {line}" for line in [*submits, *results])
    source = (
        f'if os.environ.get("{flag}", "").strip().lower() in ("1", "true", "yes", "on"):\n'
        f'    _stagegraph_pool = concurrent.futures.ThreadPoolExecutor(max_workers={workers}, '
        f'thread_name_prefix="stagegraph-fanout")\n'
        f"    try:\n{inner}\n"
        f"    finally:\n"
        f"        _stagegraph_pool.shutdown(wait=False, cancel_futures=True)\n"
        f"else:\n    pass\n"
    )
    parsed = cst.parse_statement(source)
    assert isinstance(parsed, cst.If) and isinstance(parsed.body, cst.IndentedBlock)
    before = [statements[i] for i in range(first, anchor) if i not in members]
    after = [statements[i] for i in range(anchor + 1, last + 1) if i not in members]
    head = statements[first]
    assert isinstance(head, cst.SimpleStatementLine)
    original = [head.with_changes(leading_lines=[]), *statements[first + 1:last + 1]]
    orelse = cst.Else(body=cst.IndentedBlock(body=original))
    comment = cst.EmptyLine(comment=cst.Comment(f"# stagegraph fanout {label}: runs in sequence unless {flag}=1"))
    return [parsed.with_changes(
        leading_lines=[*head.leading_lines, comment],
        body=parsed.body.with_changes(body=[*before, *parsed.body.body, *after]),
        orelse=orelse,
    )]


def _ensure_imports(module: cst.Module) -> cst.Module:
    """Add `import os` and `import concurrent.futures` after the module's imports when missing."""
    have: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import):
                    have |= {module.code_for_node(a.name) for a in small.names if a.asname is None}
    missing = [name for name in ("concurrent.futures", "os") if name not in have]
    if not missing:
        return module
    body = list(module.body)
    index = 0
    while index < len(body) and _is_import_or_docstring(body[index], index):
        index += 1
    new = [cst.parse_statement(f"import {name}\n") for name in missing]
    return module.with_changes(body=[*body[:index], *new, *body[index:]])


def _is_import_or_docstring(statement: cst.BaseStatement, index: int) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return all(isinstance(s, cst.Import | cst.ImportFrom)
               or (index == 0 and isinstance(s, cst.Expr) and isinstance(s.value, cst.SimpleString))
               for s in statement.body)
