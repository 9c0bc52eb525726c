"""The terminal report: a summary first, then per pipeline its stages, what links them, what could run together.

Plain text (no colour codes), so it reads the same in a pre-commit log, a CI log and a TTY.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..model import Edge, EdgeKey, Finding, GraphDelta, GroupKey, Pipeline, Report, Stage

_KIND_WORD = {"data": "depends on", "control": "runs only if", "unknown": "may depend on", "order": "only follows"}


def plural(n: int, word: str) -> str:
    """`1 error`, `2 errors`; `dependency` becomes `dependencies`."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else f"{n} {word}s"


def _stage_line(stage: Stage) -> str:
    bits = [f"{stage.id}"]
    if stage.roles:
        bits.append(f"[{', '.join(stage.roles)}]")
    if stage.fanout is not None:
        bits.append(f"(fans out: {stage.fanout.mechanism}{': ' + stage.fanout.detail if stage.fanout.detail else ''})")
    if stage.nested_pipeline:
        bits.append(f"(nested pipeline {stage.nested_pipeline})")
    bits.append(f"{stage.file}:{stage.line}")
    return " ".join(bits)


def _edge_line(edge: Edge) -> str:
    via = f" via {', '.join(edge.via)}" if edge.via else ""
    declared = "" if edge.declared or edge.kind == "order" else " (not declared)"
    return f"{edge.target} {_KIND_WORD[edge.kind]} {edge.source}{via}{declared}"


def render_pipeline(pipeline: Pipeline) -> list[str]:
    lines = [f"pipeline {pipeline.name} ({pipeline.style}) {pipeline.file}:{pipeline.line}"]
    lines.append("  stages:")
    for i, stage in enumerate(pipeline.stages, start=1):
        lines.append(f"    {i:>2}. {_stage_line(stage)}")
    real = [e for e in pipeline.edges if e.kind in ("data", "control")]
    unknown = [e for e in pipeline.edges if e.kind == "unknown"]
    coincidental = [e for e in pipeline.edges if e.kind == "order"]
    if real:
        lines.append("  real dependencies:")
        lines.extend(f"    - {_edge_line(e)}" for e in real)
    if unknown:
        lines.append("  may depend (unknown, treated as real):")
        lines.extend(f"    - {_edge_line(e)}" for e in unknown)
    if coincidental:
        lines.append("  coincidental orderings (no data flows):")
        lines.extend(f"    - {e.source} -> {e.target}" for e in coincidental)
    if pipeline.parallel_groups:
        lines.append("  could run concurrently:")
        for group in pipeline.parallel_groups:
            shared = f"  (shared: {', '.join(group.shared_resources)})" if group.shared_resources else ""
            lines.append(f"    - {{{', '.join(group.stages)}}}{shared}")
    return lines


def headline(report: Report) -> list[str]:
    """The part a manager reads first: the verdict, what kind of problems, where, and what was covered."""
    s = report.summary
    counts = dict(s.findings_by_severity)
    total = sum(counts.values())
    known = [f"{s.baselined} more known from the baseline" if report.delta is None else
             f"{s.baselined} more unchanged since {report.delta.base_ref}"] if s.baselined else []
    if s.suppressed:
        known.append(f"{s.suppressed} suppressed inline")
    baselined = f" ({'; '.join(known)})" if known else ""
    verdict = f"{plural(total, 'finding')}: {counts_line(counts)}{baselined}" if total else f"no findings{baselined}"
    lines = ["summary:", f"  {verdict}"]
    if total:
        by_rule = Counter(f.rule for f in report.findings)
        lines.append("  by rule: " + ", ".join(f"{rule} ({n})" for rule, n in sorted(by_rule.items(),
                                                                                  key=lambda kv: (-kv[1], kv[0]))))
        by_pipeline = Counter(f.pipeline or f.file for f in report.findings)
        worst = sorted(by_pipeline.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        lines.append("  most affected: " + ", ".join(f"{name} ({n})" for name, n in worst))
    lines.append(f"  covered: {plural(s.files_analysed, 'file')}, {plural(s.pipelines, 'pipeline')}, "
                 f"{plural(s.stages, 'stage')}"
                 + (f"; {len(report.diagnostics)} files or checks not analysed (listed below)"
                    if report.diagnostics else ""))
    lines.append(f"  ordering: {plural(s.real_edges, 'real dependency')}, {s.unknown_edges} unknown, "
                 f"{plural(s.coincidental_edges, 'coincidental ordering')}; "
                 f"{plural(s.fanout_candidates, 'group')} of stages could run concurrently")
    return lines


def counts_line(counts: dict[str, int]) -> str:
    """`1 error, 2 warnings, 0 notes`."""
    return ", ".join(plural(counts.get(k, 0), k) for k in ("error", "warning", "note"))


def code_frame(line: int, column: int | None, snippet: str) -> list[str]:
    """The source line under a finding, with a caret under its column (as ruff's `--show-source`)."""
    if not snippet:
        return []
    gutter = " " * len(str(line))
    frame = [f"    {line} | {snippet}"]
    if column is not None and 1 <= column <= len(snippet) + 1:
        frame.append(f"    {gutter} | {' ' * (column - 1)}^")
    return frame


def finding_line(f: Finding) -> str:
    """`file:line:col: severity: rule: message [stages]`."""
    where = f"{f.file}:{f.line}" + (f":{f.column}" if f.column else "")
    stages = f" [{', '.join(f.stages)}]" if f.stages else ""
    return f"{where}: {f.severity}: {f.rule}: {f.message}{stages}"


def suppression_lines(report: Report) -> list[str]:
    """Inline suppressions that do nothing (unknown rule ids, nothing left to silence)."""
    lines = []
    for p in report.suppression_problems:
        what = ("unknown rule id: no such rule (`stagegraph rules` lists them)" if p.problem == "unknown-rule"
                else "unused suppression: nothing here is reported for this rule")
        lines.append(f"{p.file}:{p.line}: stagegraph: ignore[{p.rule}]: {what}")
    return lines


def render(report: Report) -> str:
    lines: list[str] = [render_delta(report.delta)] if report.delta is not None else []
    lines += [*headline(report), ""]
    for pipeline in report.pipelines:
        lines.extend(render_pipeline(pipeline))
        lines.append("")
    if report.findings:
        lines.append("findings:")
        for f in report.findings:
            lines.append(f"  {finding_line(f)}")
            lines.extend(code_frame(f.line, f.column, f.snippet))
        lines.append("")
    if report.suppression_problems:
        lines.append("suppressions that do nothing:")
        lines.extend(f"  {line}" for line in suppression_lines(report))
        lines.append("")
    if report.diagnostics:
        lines.append("not analysed / diagnostics:")
        for d in report.diagnostics:
            where = f"{d.file}:{d.line}" if d.line else d.file
            lines.append(f"  {where}: {d.kind}: {d.message}")
        lines.append("")
    s = report.summary
    counts = dict(s.findings_by_severity)
    baselined = f", {s.baselined} baselined" if s.baselined else ""
    suppressed = f", {s.suppressed} suppressed" if s.suppressed else ""
    lines.append(
        f"{plural(s.files_analysed, 'file')}, {plural(s.pipelines, 'pipeline')}, {plural(s.stages, 'stage')}: "
        f"{plural(s.real_edges, 'real dependency')}, {s.unknown_edges} unknown, "
        f"{plural(s.coincidental_edges, 'coincidental ordering')}; "
        f"{counts_line(counts)}{baselined}{suppressed}"
        + (f"; {plural(len(report.diagnostics), 'diagnostic')}" if report.diagnostics else "")
    )
    return "\n".join(lines) + "\n"


def delta_lines(delta: GraphDelta, bullet: str, code: Callable[[str], str]) -> list[str]:
    """Diff mode's delta as lines: finding counts, then real dependencies and parallel groups gained or lost."""
    def edge(e: EdgeKey) -> str:
        return f"{bullet}{code(e.target)} depends on {code(e.source)} ({e.kind}) in {code(e.pipeline)}"

    def group(g: GroupKey) -> str:
        return f"{bullet}{{{', '.join(code(s) for s in g.stages)}}} in {code(g.pipeline)}"

    lines = [f"{plural(delta.new_findings, 'new finding')}, {delta.fixed_findings} fixed, "
             f"{delta.unchanged_findings} unchanged"]
    sections = (
        ("real dependencies added", [edge(e) for e in delta.dependencies_added]),
        ("real dependencies removed", [edge(e) for e in delta.dependencies_removed]),
        ("parallel groups gained", [group(g) for g in delta.parallel_groups_gained]),
        ("parallel groups lost", [group(g) for g in delta.parallel_groups_lost]),
    )
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines.extend(items)
    if not any(items for _, items in sections):
        lines.append("no change to real dependencies or parallel groups")
    return lines


def render_delta(delta: GraphDelta) -> str:
    head = f"changes since {delta.base_ref} ({delta.base_commit[:12]}):"
    return "\n".join([head, *("  " + line for line in delta_lines(delta, "  - ", str))]) + "\n"
