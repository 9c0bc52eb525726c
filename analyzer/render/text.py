"""The terminal report: a summary first, then per pipeline its stages, what links them, what could run together.

Plain text (no colour codes), so it reads the same in a pre-commit log, a CI log and a TTY.
"""

from __future__ import annotations

from collections import Counter

from analyzer.model import Edge, Pipeline, Report, Stage

_KIND_WORD = {"data": "depends on", "control": "runs only if", "unknown": "may depend on", "order": "only follows"}


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
    real = [e for e in pipeline.edges if e.kind != "order"]
    coincidental = [e for e in pipeline.edges if e.kind == "order"]
    if real:
        lines.append("  real dependencies:")
        lines.extend(f"    - {_edge_line(e)}" for e in real)
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
    baselined = f" ({s.baselined} more known from the baseline)" if s.baselined else ""
    if total:
        verdict = (f"{total} findings: {counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
                   f"{counts.get('note', 0)} notes{baselined}")
    else:
        verdict = f"no findings{baselined}"
    lines = ["summary:", f"  {verdict}"]
    if total:
        by_rule = Counter(f.rule for f in report.findings)
        lines.append("  by rule: " + ", ".join(f"{rule} ({n})" for rule, n in sorted(by_rule.items(),
                                                                                  key=lambda kv: (-kv[1], kv[0]))))
        by_pipeline = Counter(f.pipeline or f.file for f in report.findings)
        worst = sorted(by_pipeline.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        lines.append("  most affected: " + ", ".join(f"{name} ({n})" for name, n in worst))
    lines.append(f"  covered: {s.files_analysed} files, {s.pipelines} pipelines, {s.stages} stages"
                 + (f"; {len(report.diagnostics)} files or checks not analysed (listed below)"
                    if report.diagnostics else ""))
    lines.append(f"  ordering: {s.real_edges} real dependencies, {s.unknown_edges} unknown, "
                 f"{s.coincidental_edges} coincidental orderings; {s.fanout_candidates} groups of stages could run "
                 "concurrently")
    return lines


def render(report: Report) -> str:
    lines: list[str] = [*headline(report), ""]
    for pipeline in report.pipelines:
        lines.extend(render_pipeline(pipeline))
        lines.append("")
    if report.findings:
        lines.append("findings:")
        for f in report.findings:
            stages = f" [{', '.join(f.stages)}]" if f.stages else ""
            lines.append(f"  {f.file}:{f.line}: {f.severity}: {f.rule}: {f.message}{stages}")
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
    lines.append(
        f"{s.files_analysed} files, {s.pipelines} pipelines, {s.stages} stages: "
        f"{s.real_edges} real dependencies, {s.unknown_edges} unknown, {s.coincidental_edges} coincidental orderings; "
        f"{counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
        f"{counts.get('note', 0)} notes{baselined}"
        + (f"; {len(report.diagnostics)} diagnostics" if report.diagnostics else "")
    )
    return "\n".join(lines) + "\n"
