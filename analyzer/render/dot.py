"""The Graphviz diagram: one cluster per pipeline, real dependencies solid, coincidental orderings dashed.

Presentation is a separate step (`view`) between the report and the writer, so the collapse
of big pipelines is shared with the Mermaid renderer and tested without Graphviz. Every string
that comes from analysed code goes through `_html` (HTML-like labels) or `_plain` (escString
attributes); node and cluster ids are hashes, never analysed text. Output is deterministic:
attributes are sorted, ids are stable hashes, nothing depends on time or dict order.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..model import Edge, Finding, Pipeline, Report, Stage

if TYPE_CHECKING:
    import graphviz

#: a report this big is drawn one file per pipeline (`render_files`)
LARGE_PIPELINES = 8
LARGE_STAGES = 60
#: `--max-stages` default used for the overview of a large report
DEFAULT_MAX_STAGES = 25
#: size budget for `dot -Tsvg`: larger graphs ran into the timeout on every run, or out of memory
DOT_MAX_EDGES = 2_000
DOT_MAX_BYTES = 2_000_000
#: seconds `dot -Tsvg` may take before we give up on the drawing (a backstop behind the size budget)
DOT_TIMEOUT = 60

FONT = "Helvetica,Arial,sans-serif"
#: fills for parallel groups (colour-blind-friendly pastels), cycled
GROUP_FILLS = ("#dbeafe", "#dcfce7", "#fef3c7", "#fce7f3", "#e0e7ff", "#ccfbf1", "#fee2e2", "#f3e8ff")
FINDING_COLOUR = "#dc2626"
_EDGE_STYLE: dict[str, dict[str, str]] = {
    "data": {"color": "#1f2937", "fontcolor": "#1f2937", "style": "solid"},
    "control": {"color": "#2563eb", "fontcolor": "#2563eb", "style": "solid", "penwidth": "1.4"},
    "unknown": {"color": "#d97706", "fontcolor": "#b45309", "style": "dotted", "penwidth": "1.6"},
    "order": {"arrowsize": "0.6", "color": "#9ca3af", "fontcolor": "#6b7280", "style": "dashed"},
}
#: the strongest kind wins when edges are merged into a folded node
_KIND_RANK = {"order": 0, "control": 1, "unknown": 2, "data": 3}
RESOURCE_ABBREV = {"database": "db", "filesystem": "fs", "http": "http", "cache": "cache", "queue": "queue",
                   "cloud": "cloud", "lock": "lock", "process": "proc", "other": "res"}
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\s]+")


class GraphvizError(RuntimeError):
    """`dot` is installed but failed (bad input, crash or timeout), or the graph is over the budget."""


class GraphvizTimeout(GraphvizError):
    """`dot` ran out of time: a folded version of the graph may still be drawn."""


# ------------------------------------------------------------------ presentation: what to draw


@dataclass(frozen=True, slots=True)
class Node:
    """A box in the diagram: a stage, or a fold standing for a run of coincidental stages."""

    id: str
    stage: Stage | None
    folded: tuple[Stage, ...] = ()
    rules: tuple[str, ...] = ()
    group: int | None = None


@dataclass(frozen=True, slots=True)
class Arrow:
    source: str
    target: str
    kind: str
    via: tuple[str, ...]
    declared: bool
    merged: int = 1


@dataclass(frozen=True, slots=True)
class View:
    """One pipeline as it will be drawn (after any collapse)."""

    pipeline: Pipeline
    cluster_id: str
    nodes: tuple[Node, ...]
    arrows: tuple[Arrow, ...]
    groups: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...]  # (number, node ids, shared resources)
    hidden: int = 0
    findings: tuple[Finding, ...] = field(default=())


def stable_id(*parts: str) -> str:
    """A DOT/Mermaid-safe id that does not change when unrelated stages are added or reordered."""
    digest = hashlib.sha1("\x00".join(parts).encode("utf-8")).hexdigest()[:12]
    return f"n{digest}"


def pipeline_findings(report: Report, pipeline: Pipeline) -> tuple[Finding, ...]:
    """Findings that belong to this pipeline (by id; a finding without a pipeline matches by file and stage)."""
    stage_ids = {s.id for s in pipeline.stages}
    out = []
    for f in report.findings:
        if f.pipeline == pipeline.id or (f.pipeline is None and f.stages and f.file == pipeline.file
                                         and set(f.stages) <= stage_ids):
            out.append(f)
    return tuple(out)


def is_large(report: Report) -> bool:
    """Whether one diagram would be too big to read: then draw one file per pipeline."""
    stages = sum(len(p.stages) for p in report.pipelines)
    return len(report.pipelines) > LARGE_PIPELINES or stages > LARGE_STAGES


def _keep(pipeline: Pipeline, rules_by_stage: dict[str, list[str]], max_stages: int) -> set[str]:
    """Pick the stages worth showing: those with findings, then those on real edges, then the ends."""
    real_degree: dict[str, int] = {}
    for e in pipeline.edges:
        if e.kind != "order":
            real_degree[e.source] = real_degree.get(e.source, 0) + 1
            real_degree[e.target] = real_degree.get(e.target, 0) + 1
    position = {s.id: i for i, s in enumerate(pipeline.stages)}
    last = len(pipeline.stages) - 1

    def priority(stage: Stage) -> tuple[int, int, int, int]:
        i = position[stage.id]
        return (-len(rules_by_stage.get(stage.id, ())), -real_degree.get(stage.id, 0),
                0 if i in (0, last) else 1, i)

    ranked = sorted(pipeline.stages, key=priority)
    wanted = [s for s in ranked if s.id in rules_by_stage or s.id in real_degree or position[s.id] in (0, last)]
    return {s.id for s in wanted[:max(max_stages, 1)]}


def view(report: Report, pipeline: Pipeline, max_stages: int | None = None) -> View:
    """Decide what to draw for one pipeline; fold runs of unremarkable stages when over `max_stages`."""
    findings = pipeline_findings(report, pipeline)
    rules_by_stage: dict[str, list[str]] = {}
    for f in findings:
        if f.severity == "note":
            continue  # notes (fan-out opportunities) are not hazards: only errors and warnings turn a stage red
        for sid in f.stages:
            if f.rule not in rules_by_stage.setdefault(sid, []):
                rules_by_stage[sid].append(f.rule)
    ids = {s.id: stable_id(pipeline.id, s.id) for s in pipeline.stages}

    if max_stages is not None and len(pipeline.stages) > max_stages:
        keep = _keep(pipeline, rules_by_stage, max_stages)
    else:
        keep = {s.id for s in pipeline.stages}

    # stages not kept are folded in runs of consecutive (run-order) stages
    node_of: dict[str, str] = {}
    nodes: list[Node] = []
    run: list[Stage] = []

    def flush() -> None:
        if not run:
            return
        if len(run) == 1:  # folding one stage saves nothing
            keep.add(run[0].id)
            node_of[run[0].id] = ids[run[0].id]
            nodes.append(Node(ids[run[0].id], run[0], rules=tuple(sorted(rules_by_stage.get(run[0].id, ())))))
        else:
            fold_id = stable_id(pipeline.id, "fold", run[0].id, run[-1].id)
            for s in run:
                node_of[s.id] = fold_id
            nodes.append(Node(fold_id, None, folded=tuple(run)))
        run.clear()

    for s in pipeline.stages:
        if s.id in keep:
            flush()
            node_of[s.id] = ids[s.id]
            nodes.append(Node(ids[s.id], s, rules=tuple(sorted(rules_by_stage.get(s.id, ())))))
        else:
            run.append(s)
    flush()

    # parallel groups: numbered in report order; only visible members count
    groups: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
    group_of: dict[str, int] = {}
    for number, g in enumerate(pipeline.parallel_groups, start=1):
        members = tuple(dict.fromkeys(ids[sid] for sid in g.stages if sid in ids and sid in keep))
        groups.append((number, members, g.shared_resources))
        for m in members:
            group_of.setdefault(m, number)
    nodes = [Node(n.id, n.stage, n.folded, n.rules, group_of.get(n.id)) if n.stage else n for n in nodes]

    arrows = _merge_arrows(pipeline.edges, node_of)
    hidden = sum(len(n.folded) for n in nodes)
    return View(pipeline, stable_id("cluster", pipeline.id), tuple(nodes), arrows, tuple(groups), hidden, findings)


def _merge_arrows(edges: Iterable[Edge], node_of: dict[str, str]) -> tuple[Arrow, ...]:
    merged: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        if e.source not in node_of or e.target not in node_of:
            continue
        a, b = node_of[e.source], node_of[e.target]
        if a == b:
            continue
        merged.setdefault((a, b), []).append(e)
    arrows = []
    for (a, b), group in merged.items():
        if len(group) == 1:
            e = group[0]
            arrows.append(Arrow(a, b, e.kind, e.via, e.declared))
            continue
        kind = max((e.kind for e in group), key=lambda k: _KIND_RANK[k])
        via = tuple(dict.fromkeys(v for e in group if e.kind == kind for v in e.via))
        strongest = [e for e in group if e.kind == kind]
        arrows.append(Arrow(a, b, kind, via, all(e.declared for e in strongest), merged=len(strongest)))
    return tuple(arrows)


# ------------------------------------------------------------------ escaping


def clean(text: str, limit: int = 80) -> str:
    """One line of analysed text: control characters and newlines become spaces, long text is cut."""
    text = _CONTROL_CHARS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _html(text: str, limit: int = 80) -> str:
    """Text for inside an HTML-like label: every markup character is an entity."""
    return html.escape(clean(text, limit), quote=True).replace("'", "&#39;")


def _plain(text: str, limit: int = 200) -> str:
    """Text for an escString attribute (tooltip): backslashes doubled, never taken for an HTML label."""
    import graphviz

    out: str = graphviz.escape(clean(text, limit))
    return out


def _attrs(**attrs: str) -> dict[str, str]:
    return dict(sorted(attrs.items()))


def resource_line(stage: Stage, limit: int = 3) -> list[str]:
    """Short `db: engine` phrases for a stage's resources (deduplicated, at most `limit` plus a count)."""
    seen = list(dict.fromkeys(f"{RESOURCE_ABBREV.get(r.kind, r.kind)}: {r.name}" for r in stage.resources))
    return seen[:limit] + ([f"+{len(seen) - limit} more"] if len(seen) > limit else [])


def edge_text(kind: str, via: Sequence[str], declared: bool, merged: int = 1, limit: int = 3) -> str:
    """What an arrow says: what links the stages, or why the link is unknown."""
    shown = ", ".join(list(via)[:limit]) + (f" +{len(via) - limit}" if len(via) > limit else "")
    if kind == "unknown":
        text = f"? {shown}" if shown else "? unknown"
    elif kind == "control":
        text = f"if {shown}" if shown else "control"
    elif kind == "order":
        text = ""
    else:
        text = shown
    if kind != "order" and not declared:
        text += " (undeclared)"
    if merged > 1:
        text += f" ×{merged}"
    return text.strip()


# ------------------------------------------------------------------ DOT


def _node_label(node: Node) -> str:
    if node.stage is None:
        first, last = node.folded[0].name, node.folded[-1].name
        return (f'<<FONT POINT-SIZE="11">… {len(node.folded)} more stages</FONT><BR/>'
                f'<FONT COLOR="#6b7280" POINT-SIZE="9">{_html(first, 30)} … {_html(last, 30)}</FONT>>')
    s = node.stage
    rows = [f"<B>{_html(s.name, 60)}</B>"]
    if s.roles:
        rows.append(f'<FONT COLOR="#4b5563" POINT-SIZE="10">{_html(", ".join(s.roles), 60)}</FONT>')
    resources = resource_line(s)
    if resources:
        rows.append(f'<FONT COLOR="#7c3aed" POINT-SIZE="9">{_html(" · ".join(resources), 70)}</FONT>')
    if s.fanout is not None:
        capped = {True: "capped", False: "uncapped", None: ""}[s.fanout.capped]
        rows.append(f'<FONT COLOR="#0f766e" POINT-SIZE="9">⇉ {_html(f"{s.fanout.mechanism} {capped}".strip(), 40)}'
                    "</FONT>")
    if node.rules:
        rules = _html(", ".join(node.rules), 80)
        rows.append(f'<FONT COLOR="{FINDING_COLOUR}" POINT-SIZE="10"><B>⚠ {rules}</B></FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _node_attrs(node: Node) -> dict[str, str]:
    if node.stage is None:
        names = ", ".join(s.name for s in node.folded)
        return _attrs(color="#9ca3af", fillcolor="#f9fafb", fontcolor="#374151", label=_node_label(node),
                      shape="box", style="dashed,filled,rounded", tooltip=_plain(names))
    s = node.stage
    fill = GROUP_FILLS[(node.group - 1) % len(GROUP_FILLS)] if node.group else "#ffffff"
    attrs = {"color": "#374151", "fillcolor": fill, "label": _node_label(node), "shape": "box",
             "style": "filled,rounded", "tooltip": _plain(f"{s.name} — {s.file}:{s.line}")}
    if node.rules:
        attrs.update(color=FINDING_COLOUR, penwidth="2.2")
    return _attrs(**attrs)


def _cluster_label(v: View) -> str:
    p = v.pipeline
    rows = [f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>{_html(p.name, 60)}</B>&#160; <FONT COLOR="#6b7280" POINT-SIZE="10">'
            f"{_html(p.style, 20)} · {_html(p.file, 60)}:{p.line}</FONT></TD></TR>"]
    if v.hidden:
        rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT COLOR="#6b7280" POINT-SIZE="9">{v.hidden} stages without '
                    "findings or real dependencies folded (see the per-pipeline diagram)</FONT></TD></TR>")
    for number, members, shared in v.groups:
        if len(members) < 2 and not shared:
            continue
        fill = GROUP_FILLS[(number - 1) % len(GROUP_FILLS)]
        text = f"parallel group {number}" + (f" — shares {', '.join(shared)}" if shared else "")
        rows.append(f'<TR><TD BGCOLOR="{fill}" BORDER="1" COLOR="#64748b" WIDTH="10" HEIGHT="10" FIXEDSIZE="TRUE">'
                    f'</TD><TD ALIGN="LEFT"><FONT POINT-SIZE="9">{_html(text, 90)}</FONT></TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"


def _legend_label() -> str:
    rows = [
        ("#1f2937", "━━", "real dependency (data), labelled with what links the stages"),
        ("#2563eb", "━━", "control: runs only if the source succeeded / decided so"),
        ("#d97706", "┈┈", "unknown: independence not proven (treated as real)"),
        ("#9ca3af", "╌╌", "coincidental ordering: only the code's order links them"),
        (FINDING_COLOUR, "▢", "stage named in a finding (rule id in red)"),
        ("#7c3aed", "db:", "resources the stage touches"),
    ]
    cells = "".join(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{c}">{sym}</FONT></TD><TD ALIGN="LEFT">{text}</TD></TR>'
                    for c, sym, text in rows)
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2"><TR><TD COLSPAN="2" ALIGN="LEFT">'
            '<B>Legend</B></TD></TR>' + cells + "</TABLE>>")


def _draw(graph: graphviz.Digraph, v: View) -> None:
    import graphviz

    with graph.subgraph(name=f"cluster_{v.cluster_id}") as c:
        c.attr(**_attrs(color="#cbd5e1", fontname=FONT, label=_cluster_label(v), labeljust="l", margin="14",
                        style="rounded", bgcolor="#f8fafc"))
        for node in v.nodes:
            c.node(node.id, **_node_attrs(node))
        # disjoint groups sit side by side (rank=same); a stage in two groups is shown by colour only
        seen: set[str] = set()
        for number, members, _shared in v.groups:
            if len(members) >= 2 and not seen.intersection(members):
                rank = graphviz.Digraph(name=f"rank_{v.cluster_id}_{number}")
                rank.attr(rank="same")
                for m in members:
                    rank.node(m)
                c.subgraph(rank)
            seen.update(members)
    for a in v.arrows:
        attrs = dict(_EDGE_STYLE[a.kind])
        text = edge_text(a.kind, a.via, a.declared, a.merged)
        if text:
            attrs["label"] = f"<{_html(text, 60)}>"
        attrs["tooltip"] = _plain(f"{a.kind}: {', '.join(a.via)}" if a.via else a.kind)
        if a.kind == "order":
            attrs["weight"] = "1"
            attrs["constraint"] = "true"
        else:
            attrs["weight"] = "3"
        graph.edge(a.source, a.target, **_attrs(**attrs))


def _graph(name: str) -> graphviz.Digraph:
    import graphviz

    g = graphviz.Digraph(name=name, strict=False)
    g.attr(**_attrs(compound="true", fontname=FONT, newrank="true", nodesep="0.35", rankdir="TB", ranksep="0.45",
                    remincross="true", tooltip="stagegraph"))
    g.attr("node", **_attrs(fontname=FONT, fontsize="11", margin="0.12,0.06"))
    g.attr("edge", **_attrs(fontname=FONT, fontsize="9"))
    return g


def _with_legend(g: graphviz.Digraph) -> None:
    g.node("legend", **_attrs(fontsize="9", label=_legend_label(), shape="plain"))


def render_views(views: Sequence[View], name: str = "stagegraph", legend: bool = True) -> str:
    """DOT source for already-built views (one cluster each)."""
    g = _graph(name)
    for v in views:
        _draw(g, v)
    if legend:
        _with_legend(g)
    source: str = g.source
    return source


def render(report: Report, max_stages: int | None = None) -> str:
    """The whole report as one DOT graph; `max_stages` folds big pipelines to stay legible."""
    return render_views([view(report, p, max_stages) for p in report.pipelines], legend=bool(report.pipelines))


def file_name(index: int, pipeline: Pipeline) -> str:
    """A safe, stable file name for one pipeline's diagram."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", pipeline.name).strip("-.")[:40] or "pipeline"
    return f"pipeline-{index:02d}-{slug}.dot"


def render_files(report: Report, max_stages: int | None = None) -> dict[str, str]:
    """DOT files to write: `graph.dot` alone, or for a large report also one file per pipeline.

    When the report is large, `graph.dot` is an overview folded to `max_stages` (default
    `DEFAULT_MAX_STAGES`) per pipeline and each `pipeline-NN-name.dot` is complete.
    """
    if not is_large(report):
        return {"graph.dot": render(report, max_stages)}
    files = {"graph.dot": render(report, max_stages or DEFAULT_MAX_STAGES)}
    for i, p in enumerate(report.pipelines, start=1):
        files[file_name(i, p)] = render_views([view(report, p, max_stages)], name=file_name(i, p)[:-4])
    return files


# ------------------------------------------------------------------ SVG via the system `dot`


def find_dot() -> str | None:
    """Where Graphviz's `dot` is (None when it is not installed); the one place that looks."""
    return shutil.which("dot")


def dot_available() -> bool:
    return find_dot() is not None


def over_budget(source: str) -> str | None:
    """Why `dot` is not started on this source (too big to lay out in bounded time and memory), or None."""
    edges = source.count("->")
    if edges > DOT_MAX_EDGES or len(source) > DOT_MAX_BYTES:
        return (f"the diagram has {edges:,} edges ({len(source):,} bytes of DOT), over the {DOT_MAX_EDGES:,} "
                "edges Graphviz lays out in bounded time and memory; it was not drawn "
                "(fold it with --format dot --max-stages N)")
    return None


#: drawings made ahead of rendering (`drawings`): DOT source -> SVG or the error drawing it raised
_drawn: dict[str, str | GraphvizError] = {}


class SlowLayouts(Protocol):
    """Digests of DOT sources `dot` ran out of time on, kept across runs (`cache.Marks`)."""

    def __contains__(self, mark: object) -> bool: ...

    def add(self, mark: str) -> None: ...


#: the memory of slow layouts while `remembering` is active
_slow: list[SlowLayouts] = []


def slow_scope() -> str:
    """What a remembered timeout depends on: the time limit and the `dot` that ran out of it."""
    return f"dot {find_dot()} timeout {DOT_TIMEOUT:g}s"


@contextmanager
def remembering(slow: SlowLayouts | None) -> Iterator[None]:
    """While active, a diagram `dot` could not lay out in time in an earlier run is not tried
    again (it costs the whole timeout every run otherwise): it fails at once as a timeout, so it is
    drawn folded, and a diagram that times out now is remembered."""
    if slow is None:
        yield
        return
    _slow.append(slow)
    try:
        yield
    finally:
        _slow.remove(slow)


def _source_mark(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def svg_from_source(source: str, timeout: float | None = None) -> str | None:
    """Run `dot -Tsvg` on DOT source (at most `timeout`, default `DOT_TIMEOUT` seconds); None when
    Graphviz is not installed, GraphvizError when it fails or the source is over the budget."""
    timeout = DOT_TIMEOUT if timeout is None else timeout
    done = _drawn.get(source)
    if done is not None:
        if isinstance(done, GraphvizError):
            raise done
        return done
    exe = find_dot()
    if exe is None:
        return None
    reason = over_budget(source)
    if reason is not None:
        raise GraphvizError(reason)
    mark = _source_mark(source) if _slow else ""
    if mark and any(mark in slow for slow in _slow):
        raise GraphvizTimeout(f"dot -Tsvg took longer than {timeout:g}s on this diagram in an earlier run; "
                              "not tried again (--no-cache tries again)")
    try:
        run = subprocess.run([exe, "-Tsvg"], input=source.encode("utf-8"), capture_output=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        for slow in _slow:
            slow.add(mark)
        raise GraphvizTimeout(f"dot -Tsvg took longer than {timeout:g}s") from exc
    except OSError as exc:
        raise GraphvizError(f"cannot run dot: {exc}") from exc
    if run.returncode != 0:
        raise GraphvizError(f"dot -Tsvg failed: {run.stderr.decode('utf-8', 'replace').strip()[:500]}")
    return run.stdout.decode("utf-8")


def _try_draw(source: str) -> str | GraphvizError | None:
    try:
        return svg_from_source(source)
    except GraphvizError as exc:
        return exc


def draw_jobs() -> int:
    """How many `dot` processes to run at once: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def draw_all(sources: Iterable[str], jobs: int | None = None) -> dict[str, str | GraphvizError]:
    """Draw many DOT sources at once (one `dot` process per source, `jobs` at a time), by source.

    Results do not depend on which drawing finishes first. Sources over the budget are refused
    without starting `dot`; nothing is returned for a source when Graphviz is not installed.
    """
    unique = list(dict.fromkeys(sources))
    workers = max(1, min(jobs or draw_jobs(), len(unique) or 1))
    if workers == 1:
        results = [_try_draw(source) for source in unique]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stagegraph-dot") as pool:
            results = list(pool.map(_try_draw, unique))
    return {source: result for source, result in zip(unique, results, strict=True) if result is not None}


@contextmanager
def drawings(done: dict[str, str | GraphvizError]) -> Iterator[None]:
    """While active, `svg_from_source` answers from drawings made ahead (`draw_all`) instead of running `dot`."""
    _drawn.update(done)
    try:
        yield
    finally:
        _drawn.clear()


def render_svg(report: Report, max_stages: int | None = None) -> str | None:
    """The report's diagram as SVG; None when Graphviz's `dot` is not on PATH."""
    return svg_from_source(render(report, max_stages))


_PROLOG = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)


def inline_svg(svg: str) -> str:
    """SVG ready to embed in HTML: no XML prolog or DOCTYPE, starting at `<!-- Generated by` or `<svg`."""
    return _PROLOG.sub("", svg, count=1).strip()


def pipeline_source(report: Report, pipeline: Pipeline, max_stages: int | None = None) -> str:
    """DOT source of one pipeline's diagram, as the HTML report embeds it."""
    return render_views([view(report, pipeline, max_stages)], name="pipeline", legend=False)


def folded_stages(max_stages: int | None) -> int | None:
    """The `max_stages` a drawing over the budget (or too slow) is folded to; None when it is folded already."""
    if max_stages is not None and max_stages <= DEFAULT_MAX_STAGES:
        return None
    return DEFAULT_MAX_STAGES


def pipeline_svg(report: Report, pipeline: Pipeline, max_stages: int | None = None,
                 timeout: float | None = None) -> tuple[str | None, str]:
    """(inline SVG or None when `dot` is missing, DOT source) for one pipeline.

    A diagram over the budget, or one `dot` could not lay out in time, is drawn folded to
    `DEFAULT_MAX_STAGES` instead (its cluster label says how many stages were folded).
    """
    source = pipeline_source(report, pipeline, max_stages)
    try:
        svg = svg_from_source(source, timeout)
    except GraphvizError as exc:
        fold = folded_stages(max_stages)
        if fold is None or not (isinstance(exc, GraphvizTimeout) or over_budget(source)):
            raise
        source = pipeline_source(report, pipeline, fold)
        svg = svg_from_source(source, timeout)
    return (inline_svg(svg) if svg is not None else None), source
