"""Mermaid flowchart: one subgraph per pipeline, for docs, wikis and the Markdown PR comment.

Same semantics as the DOT diagram (it shares `dot.view`, including the collapse of big
pipelines): `-->` real dependency labelled with what links the stages, blue `-->` control,
`-.->` grey coincidental ordering, `==>` orange unknown. Node ids are hashes; every label is
quoted and every character outside a small safe set is written as a Mermaid entity (`#35;`),
so analysed text can neither end a label nor add statements, links or HTML.
"""

from __future__ import annotations

from ..model import Report
from .dot import FINDING_COLOUR, GROUP_FILLS, View, clean, edge_text, resource_line, view

_SAFE = frozenset(" _.,:/()+=?-")
_ARROW = {"data": "-->", "control": "-->", "unknown": "==>", "order": "-.->"}
_LINK_STYLE = {
    "control": "stroke:#2563eb,stroke-width:2px",
    "unknown": "stroke:#d97706,stroke-width:2px",
    "order": "stroke:#9ca3af,stroke-width:1px,stroke-dasharray:4 3",
}


def text(value: str, limit: int = 80) -> str:
    """Analysed text as label content: one line, every character but letters, digits and ` _.,:/()+=?-` as `#NNN;`."""
    return "".join(ch if ch.isalnum() or ch in _SAFE else f"#{ord(ch)};" for ch in clean(value, limit))


def _label(*lines: str) -> str:
    return '"' + "<br/>".join(lines) + '"'


def _pipeline_lines(v: View, indent: str = "  ") -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(subgraph lines, edge lines, (edge kind, style) per edge) for one pipeline."""
    p = v.pipeline
    out = [f'{indent}subgraph {v.cluster_id}["{text(p.name, 60)} · {text(p.style, 20)} · '
           f'{text(p.file, 60)}:{p.line}"]', f"{indent}  direction TB"]
    for node in v.nodes:
        if node.stage is None:
            out.append(f"{indent}  {node.id}{{{{{_label(f'… {len(node.folded)} more stages')}}}}}")
            continue
        s = node.stage
        lines = [f"<b>{text(s.name, 60)}</b>"]
        if s.roles:
            lines.append(text(", ".join(s.roles), 60))
        resources = resource_line(s)
        if resources:
            lines.append(text(" · ".join(resources), 70))
        if node.rules:
            lines.append("⚠ " + text(", ".join(node.rules), 80))
        out.append(f"{indent}  {node.id}[{_label(*lines)}]")
    out.append(f"{indent}end")
    edges = []
    kinds = []
    for a in v.arrows:
        label = edge_text(a.kind, a.via, a.declared, a.merged)
        arrow = _ARROW[a.kind]
        edges.append(f"{indent}{a.source} {arrow}" + (f'|"{text(label, 60)}"|' if label else "") + f" {a.target}")
        kinds.append((a.kind, _LINK_STYLE.get(a.kind, "")))
    return out, edges, kinds


def render_views(views: list[View]) -> str:
    """A flowchart for already-built views (shared with the Markdown renderer, one pipeline per block)."""
    lines = ["flowchart TB"]
    if not views:
        lines.append('  empty["no pipelines found"]')
        return "\n".join(lines) + "\n"
    edge_lines: list[str] = []
    styles: list[str] = []
    finding_nodes: list[str] = []
    group_nodes: dict[int, list[str]] = {}
    for v in views:
        sub, edges, kinds = _pipeline_lines(v)
        lines.extend(sub)
        for edge, (_kind, style) in zip(edges, kinds, strict=True):
            if style:  # linkStyle counts edges in the order they are written
                styles.append(f"  linkStyle {len(edge_lines)} {style}")
            edge_lines.append(edge)
        for node in v.nodes:
            if node.rules:
                finding_nodes.append(node.id)
            if node.group:
                group_nodes.setdefault(node.group, []).append(node.id)
        for node in v.nodes:
            if node.stage is None:
                group_nodes.setdefault(0, []).append(node.id)
    lines.extend(edge_lines)
    lines.append(f"  classDef finding stroke:{FINDING_COLOUR},stroke-width:3px")
    lines.append("  classDef folded fill:#f9fafb,stroke:#9ca3af,stroke-dasharray:4 3,color:#374151")
    for number in sorted(n for n in group_nodes if n):
        lines.append(f"  classDef group{number} fill:{GROUP_FILLS[(number - 1) % len(GROUP_FILLS)]}")
    for number, ids in sorted(group_nodes.items()):
        lines.append(f"  class {','.join(ids)} {'folded' if number == 0 else f'group{number}'}")
    if finding_nodes:
        lines.append(f"  class {','.join(finding_nodes)} finding")
    lines.extend(styles)
    return "\n".join(lines) + "\n"


def render(report: Report, max_stages: int | None = None) -> str:
    """The report as one Mermaid flowchart; `max_stages` folds big pipelines like the DOT diagram."""
    return render_views([view(report, p, max_stages) for p in report.pipelines])
