"""GitHub-flavoured Markdown for a pull-request comment.

First line is a hidden marker (`MARKER`) so a bot can find and update its own comment; then a
one-line verdict, the findings table and one collapsible `<details>` per pipeline with a
Mermaid diagram. The whole comment stays under GitHub's 65,536-character limit: parts are
added in order while they fit, and a visible note says what was left out.

Analysed text is untrusted: `inline` escapes HTML and Markdown punctuation, breaks `@mentions`
and `#123` references with a zero-width joiner and keeps table cells on one line; `code`
picks a backtick fence longer than any run inside.
"""

from __future__ import annotations

import re

from ..model import Finding, GraphDelta, Pipeline, Report, Stage
from ..spans import parts_of
from .dot import DEFAULT_MAX_STAGES, clean, resource_line, view

MARKER = "<!-- stagegraph-report -->"
#: GitHub rejects comments longer than this many characters
GITHUB_LIMIT = 65_536
#: what we allow ourselves, leaving room for the truncation note and multi-unit characters
BUDGET = 64_000
SEVERITY_ICON = {"error": "❌", "warning": "⚠️", "note": "ℹ️"}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "note": 2}
_ZWJ = "\u200d"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")
_MENTION = re.compile(r"([@#])(?=[\w-])", re.UNICODE)


def inline(value: str, limit: int = 200) -> str:
    """Analysed text as inert Markdown: no HTML, links, emphasis, mentions, references or table breaks."""
    text = clean(value, limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # a backslash does not stop GitHub linking @user or #123, a zero-width joiner does
    text = _MENTION.sub(lambda m: m.group(1) + _ZWJ, text.replace("\\@", "@").replace("\\#", "#"))
    return no_autolinks(text)


_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(://)|\b(www)(\\?\.)")


def no_autolinks(text: str) -> str:
    """Break GFM's extended autolinks (`https://...`, `www.`): a zero-width joiner after the scheme."""
    return _AUTOLINK.sub(lambda m: f":{_ZWJ}//" if m.group(1) else f"{m.group(2)}{_ZWJ}{m.group(3)}", text)


def code(value: str, limit: int = 200, cell: bool = True) -> str:
    """Analysed text as a code span: the fence is longer than any backtick run inside.

    In a table cell (`cell`) pipes are escaped, which GFM undoes inside code spans in tables only.
    """
    text = clean(value, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if cell else span


def html_text(value: str, limit: int = 120) -> str:
    """Analysed text inside our own HTML tags (`<summary>`): entities, and mentions broken."""
    text = clean(value, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return no_autolinks(_MENTION.sub(lambda m: m.group(1) + _ZWJ, text))


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict(report: Report) -> str:
    """One line a reviewer reads first: ❌/⚠️/ℹ️/✅ and the counts."""
    counts = {k: sum(1 for f in report.findings if f.severity == k) for k in ("error", "warning", "note")}
    new = "new " if report.delta is not None else ""
    parts = [plural(n, new + k) for k, n in counts.items() if n]
    icon = "❌" if counts["error"] else "⚠️" if counts["warning"] else "ℹ️" if counts["note"] else "✅"
    text = f"{icon} {', '.join(parts)}" if parts else f"✅ no {new}findings"
    if report.diagnostics:
        text += f" · {plural(len({d.file for d in report.diagnostics}), 'file')} not analysed"
    return text


def _sorted_findings(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.file, f.line, f.rule))


def _finding_row(f: Finding, names: dict[tuple[str, str], str]) -> str:
    stages = ", ".join(names.get((f.pipeline or "", s), s) for s in f.stages)
    where = code(f"{f.file}:{f.line}")
    return (f"| {SEVERITY_ICON.get(f.severity, '')} {f.severity} | {code(f.rule, 60)} | {where} | "
            f"{message(f)}{' — stages: ' + inline(stages, 120) if stages else ''} |")


def message(f: Finding, limit: int = 300) -> str:
    """A finding's message with its code spans as Markdown code and its prose escaped."""
    out: list[str] = []
    left = limit
    for text, is_code in f.message_parts or parts_of(f.message):
        if left <= 0:
            break
        if is_code:
            out.append(code(text, min(left, 120)))
        else:  # inline() trims: keep the spaces around code spans
            pre, post = (" " if text[:1].isspace() else ""), (" " if text[-1:].isspace() else "")
            out.append(pre + inline(text, left) + post if text.strip() else " ")
        left -= len(text)
    return "".join(out)


def _effects(stage: Stage, which: str) -> str:
    effects = stage.reads if which == "reads" else stage.writes
    shown = [e.target for e in effects][:4]
    extra = f" +{len(effects) - 4}" if len(effects) > 4 else ""
    return ", ".join(code(t, 60) for t in shown) + extra


def _name(name_of: dict[str, str], stage_id: str) -> str:
    return code(name_of.get(stage_id, stage_id), 60, cell=False)


def pipeline_details(report: Report, pipeline: Pipeline, max_stages: int | None = DEFAULT_MAX_STAGES) -> str:
    """One collapsible block: stage table, real vs coincidental orderings, parallel groups, Mermaid diagram."""
    from . import mermaid

    name_of = {s.id: s.name for s in pipeline.stages}
    real = [e for e in pipeline.edges if e.kind != "order"]
    coincidental = [e for e in pipeline.edges if e.kind == "order"]
    lines = [
        "<details>",
        f"<summary><b>{html_text(pipeline.name, 80)}</b> ({html_text(pipeline.style, 20)}) — "
        f"{plural(len(pipeline.stages), 'stage')}, {len(real)} real "
        f"{'dependency' if len(real) == 1 else 'dependencies'}, {len(coincidental)} coincidental</summary>",
        "",
        f"Defined at {code(f'{pipeline.file}:{pipeline.line}', cell=False)}.",
        "",
        "| # | Stage | Roles | Reads | Writes | Resources | Location |",
        "|--:|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(pipeline.stages, start=1):
        lines.append(f"| {i} | {code(s.name, 60)} | {inline(', '.join(s.roles), 60)} | {_effects(s, 'reads')} | "
                     f"{_effects(s, 'writes')} | {inline(', '.join(resource_line(s)), 100)} | "
                     f"{code(f'{s.file}:{s.line}')} |")
    lines.append("")
    if real:
        lines.append("**Real dependencies**")
        lines.append("")
        for e in real:
            via = f" via {', '.join(code(v, 60, cell=False) for v in e.via)}" if e.via else ""
            undeclared = "" if e.declared else " (not declared)"
            lines.append(f"- {_name(name_of, e.source)} → {_name(name_of, e.target)} · {e.kind}{via}{undeclared}")
        lines.append("")
    if coincidental:
        lines.append("**Coincidental orderings** (no data flows; these could be reordered)")
        lines.append("")
        lines.extend(f"- {_name(name_of, e.source)} → {_name(name_of, e.target)}" for e in coincidental)
        lines.append("")
    if pipeline.parallel_groups:
        lines.append("**Could run in parallel**")
        lines.append("")
        for g in pipeline.parallel_groups:
            members = ", ".join(_name(name_of, s) for s in g.stages)
            shared = (f" — shared: {', '.join(code(r, 60, cell=False) for r in g.shared_resources)}"
                      if g.shared_resources else "")
            lines.append(f"- {members}{shared}")
        lines.append("")
    lines += ["```mermaid", mermaid.render_views([view(report, pipeline, max_stages)]).rstrip("\n"), "```", "",
              "</details>", ""]
    return "\n".join(lines)


def short(report: Report) -> str:
    """The comment for a pull request that adds no findings: the verdict and the delta, nothing per pipeline."""
    s = report.summary
    known = [f"{plural(s.baselined, 'finding')} known before this change" if s.baselined else "",
             f"{s.suppressed} suppressed inline" if s.suppressed else ""]
    facts = [f"{plural(s.files_analysed, 'file')} analysed", plural(s.pipelines, "pipeline"), *filter(None, known)]
    lines = [MARKER, f"### stagegraph: {verdict(report)}", "", " · ".join(facts), ""]
    if report.delta is not None:
        lines.append(delta_section(report.delta))
    lines += ["The full report is in `report.html` / `report.json` (`stagegraph audit --out-dir`).", ""]
    return "\n".join(lines)


def render(report: Report, budget: int = BUDGET, max_stages: int | None = DEFAULT_MAX_STAGES,
           clean: str = "full") -> str:
    """The PR comment, at most `budget` characters (and always under GitHub's limit).

    In diff mode with no new findings, `clean="short"` gives the short comment (see `short`).
    """
    if clean == "short" and report.delta is not None and not report.findings:
        return short(report)
    s = report.summary
    head = [
        MARKER,
        f"### stagegraph: {verdict(report)}",
        "",
        f"{plural(s.files_analysed, 'file')} analysed · {plural(s.pipelines, 'pipeline')} · "
        f"{plural(s.stages, 'stage')} · {s.real_edges} real dependencies, {s.coincidental_edges} coincidental "
        f"orderings, {s.unknown_edges} unknown · {plural(s.fanout_candidates, 'fan-out candidate')}",
        "",
    ]
    parts: list[tuple[str, str]] = [("head", "\n".join(head) + "\n")]
    if report.delta is not None:
        parts.append(("delta", delta_section(report.delta) + "\n"))
    names = {(p.id, st.id): st.name for p in report.pipelines for st in p.stages}
    findings = _sorted_findings(report)
    hazards = [f for f in findings if f.severity != "note"]
    notes = [f for f in findings if f.severity == "note"]
    table = "| Severity | Rule | Location | Message |\n|---|---|---|---|\n"
    if hazards:
        parts.append(("table", table))
        parts.extend(("finding", _finding_row(f, names) + "\n") for f in hazards)
        parts.append(("gap", "\n"))
    if notes:
        # fan-out opportunities are worth reading, but must not bury the hazards in a PR comment
        parts.append(("table", f"<details>\n<summary>{plural(len(notes), 'note')}: orderings that could fan out"
                               f"</summary>\n\n{table}"))
        parts.extend(("finding", _finding_row(f, names) + "\n") for f in notes)
        parts.append(("gap", "\n</details>\n\n"))
    for p in report.pipelines:
        parts.append(("pipeline", pipeline_details(report, p, max_stages)))
    if report.suppression_problems:
        rows = ["**Suppressions that do nothing**", ""]
        for sp in report.suppression_problems:
            what = "unknown rule id" if sp.problem == "unknown-rule" else "unused: nothing here to silence"
            rows.append(f"- {code(f'{sp.file}:{sp.line}', cell=False)} "
                        f"{code(f'stagegraph: ignore[{sp.rule}]', cell=False)}: {what}")
        parts.append(("suppressions", "\n".join(rows) + "\n\n"))
    if report.diagnostics:
        rows = ["<details>", f"<summary>Not analysed / diagnostics ({len(report.diagnostics)})</summary>", "",
                "| Location | Kind | Message |", "|---|---|---|"]
        for d in report.diagnostics:
            where = f"{d.file}:{d.line}" if d.line else d.file
            rows.append(f"| {code(where)} | {d.kind} | {inline(d.message, 300)} |")
        rows += ["", "</details>", ""]
        parts.append(("diagnostics", "\n".join(rows)))

    out: list[str] = []
    used = 0
    omitted: dict[str, int] = {}
    reserve = 600  # room for the truncation note
    for kind, text in parts:
        if omitted or used + len(text) + reserve > budget:
            omitted[kind] = omitted.get(kind, 0) + 1
            continue
        out.append(text)
        used += len(text)
    if omitted:
        left = [plural(omitted[k], w) for k, w in (("finding", "finding"), ("pipeline", "pipeline"))
                if omitted.get(k)]
        if omitted.get("diagnostics"):
            left.append("the diagnostics")
        what = ", ".join(left) or "some details"
        out.append(f"\n> [!NOTE]\n> ✂️ **Truncated** to stay under GitHub's comment limit: {what}"
                   " not shown. The full report is in `report.html` / `report.json` (`stagegraph audit --out-dir`).\n")
    return "".join(out)


def delta_section(delta: GraphDelta) -> str:
    """Diff mode's delta as a Markdown section."""
    from .text import delta_lines

    head = f"### Changes since {code(delta.base_ref, cell=False)} ({code(delta.base_commit[:12], cell=False)})"
    return "\n".join([head, "", *delta_lines(delta, "- ", lambda value: code(value, cell=False))]) + "\n"
