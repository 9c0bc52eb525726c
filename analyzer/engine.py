"""One analysis run, in one direction: source -> facts -> graph -> checks -> Report.

This is the only place the layers meet. Each file is read and parsed once; each failure is
isolated to the file (or check) it came from and reported as a diagnostic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .isolation import deep_stack
from .memory import OVER_BUDGET, Budget
from .model import DEPENDENCY_KINDS, Diagnostic, Finding, Pipeline, Report, Severity, Summary

if TYPE_CHECKING:
    from .cache import FactsOutcome
    from .source import ParsedModule


@dataclass(frozen=True, slots=True)
class Options:
    """Everything a run can be told; the CLI and config layers build this."""

    exclude: tuple[str, ...] = ()
    max_file_bytes: int = 2_000_000
    disabled_rules: frozenset[str] = frozenset()
    #: None: every rule; else only these (`--select`)
    selected_rules: frozenset[str] | None = None
    #: (gitignore-style pattern, rule ids): findings of those rules in matching files are left out
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    severities: dict[str, Severity] = field(default_factory=dict)
    extra_rules: tuple[Path, ...] = ()
    extra_resources: tuple[Path, ...] = ()
    extra_roles: tuple[Path, ...] = ()
    only_files: frozenset[str] | None = None  # report only pipelines touching these root-relative files
    #: diagnostics found before the run (a config path outside the repository)
    diagnostics: tuple[Diagnostic, ...] = ()
    #: report paths relative to this folder (the CLI passes the repository root); None: the analysed folder
    root: Path | None = None
    #: the result cache's folder (see `cache`); None: no cache (the CLI passes the platform's cache folder)
    cache_dir: Path | None = None
    #: processes for fact extraction (1: this one only); the report is the same for any number
    jobs: int = 1
    #: bytes of memory parsed files may take (see `memory`); None: most of what the machine has free
    max_memory: int | None = None


Progress = Callable[[int, int, str], None]


@deep_stack
def analyze(paths: Sequence[Path], options: Options = Options(), progress: Progress | None = None) -> Report:
    from . import source

    found = source.discover(paths, options.exclude, options.root)
    if options.cache_dir is None:
        def reader(src: source.SourceFile) -> Callable[[], str | Diagnostic]:
            return lambda: _uninstrumented(source.read_source(src, options.max_file_bytes))

        parsed, diagnostics = parse_sources(
            ((src.relpath, reader(src)) for src in found.files), total=len(found.files), progress=progress,
            paths={src.relpath: src.path for src in found.files},
            modules={src.relpath: src.module for src in found.files}, max_memory=options.max_memory,
        )
        return analyze_modules(parsed, [*options.diagnostics, *found.diagnostics, *diagnostics], options,
                               files_analysed=len(parsed))
    texts = {src.relpath: read_isolated(src.relpath, lambda src=src: _uninstrumented(  # type: ignore[misc]
        source.read_source(src, options.max_file_bytes))) for src in found.files}
    outcome, lines = cached_facts(texts, {src.relpath: src.path for src in found.files},
                                  {src.relpath: src.module for src in found.files}, options, found.root, progress)
    return finish(outcome, lines, [*options.diagnostics, *found.diagnostics, *outcome.parse_diagnostics], options,
                  files_analysed=len(outcome.parsed))


def read_isolated(relpath: str, read: Callable[[], str | Diagnostic]) -> str | Diagnostic:
    """`read()`, with a failure turned into the diagnostic `parse_sources` would give it."""
    try:
        return read()
    except Exception as exc:  # isolation point: one file never stops the run
        return Diagnostic(relpath, "internal-error", f"stagegraph failed reading this file: {exc!r}")


def cached_facts(
    texts: dict[str, str | Diagnostic],
    paths: dict[str, Path],
    modules: dict[str, str],
    options: Options,
    analysed: Path,
    progress: Progress | None = None,
) -> tuple[FactsOutcome, dict[str, list[str]]]:
    """The facts of these texts from the cache when it holds them, else computed (and stored).

    Also returns each parsed file's lines, which findings take their snippets from.
    """
    from . import cache
    from .confine import repo_root

    store = cache.Cache(options.cache_dir) if options.cache_dir is not None else None
    key = ""
    if store is not None:
        key = cache.run_key(
            [(rel, modules.get(rel, ""), cache.file_digest(text)) for rel, text in texts.items()],
            cache.catalogs_digest((*options.extra_resources, *options.extra_roles)),
            cache.side_files_digest(repo_root(analysed), analysed),
        )
        hit = store.load(key)
        if hit is not None:
            return hit, {rel: text.splitlines() for rel in hit.parsed if isinstance(text := texts.get(rel), str)}
    parsed, problems = parse_sources(
        ((rel, lambda text=text: text) for rel, text in texts.items()),  # type: ignore[misc]
        total=len(texts), progress=progress, paths=paths, modules=modules, max_memory=options.max_memory,
    )
    outcome = facts_of(parsed, problems, options)
    if store is not None and not any(d.code == OVER_BUDGET for d in problems):  # another run may have room
        store.store(key, outcome)
    return outcome, {m.relpath: m.lines for m in parsed}


def _uninstrumented(text: str | Diagnostic) -> str | Diagnostic:
    """The text without what `stagegraph instrument` added, so timing wrappers never become stages."""
    if isinstance(text, str) and "_stagegraph_" in text:
        from .instrument import strip

        return strip(text)
    return text


@deep_stack
def parse_sources(
    texts: Iterable[tuple[str, Callable[[], str | Diagnostic]]],
    total: int = 0,
    progress: Progress | None = None,
    paths: dict[str, Path] | None = None,
    modules: dict[str, str] | None = None,
    max_memory: int | None = None,
) -> tuple[list[ParsedModule], list[Diagnostic]]:
    """Read (lazily, one at a time) and parse each file once; every failure is one diagnostic.

    The one loop from text to module for every source of text: the work tree, git objects (diff
    mode), or texts the pre-commit hook already read for its import scan. `paths` gives files on
    disk their location, for adapters that read neighbours (an Airflow DAG's `.sql` files);
    `modules` their dotted names when those differ from the report path's. A file that does not fit
    the memory budget (`max_memory`, see `memory.Budget`) is one diagnostic instead of an OOM kill.
    """
    from . import source

    budget = Budget.for_run(max_memory)
    parsed: list[ParsedModule] = []
    diagnostics: list[Diagnostic] = []
    for done, (relpath, read) in enumerate(texts):
        if progress:
            progress(done, total, relpath)
        try:
            text = read()
            module = (modules or {}).get(relpath, "")
            over = None if isinstance(text, Diagnostic) else budget.admit(len(text))
            result = (text if isinstance(text, Diagnostic)
                      else Diagnostic(relpath, "skipped", over, code=OVER_BUDGET) if over
                      else source.parse_text(relpath, text, module))
        except Exception as exc:  # isolation point: one file never stops the run
            result = Diagnostic(relpath, "internal-error", f"stagegraph failed reading this file: {exc!r}")
        if isinstance(result, Diagnostic):
            diagnostics.append(result)
        else:
            result.path = (paths or {}).get(relpath)
            parsed.append(result)
    if progress:
        progress(total, total, "")
    return parsed, diagnostics


@deep_stack
def analyze_modules(
    parsed: Sequence[object],
    diagnostics: list[Diagnostic],
    options: Options,
    files_analysed: int,
) -> Report:
    """Everything after parsing: facts, graph, checks. Also used by diff mode on git objects."""
    from .source import ParsedModule

    modules = [m for m in parsed if isinstance(m, ParsedModule)]
    outcome = facts_of(modules, [], options)
    return finish(outcome, {m.relpath: m.lines for m in modules}, diagnostics, options, files_analysed)


def facts_of(modules: Sequence[ParsedModule], parse_diagnostics: Sequence[Diagnostic],
             options: Options) -> FactsOutcome:
    """Facts and graphs of parsed modules: the part of a run the cache keeps (plain records only)."""
    from . import catalog, graph
    from .cache import FactsOutcome
    from .facts import extract

    resources = catalog.load_resources(options.extra_resources)
    roles = catalog.load_roles(options.extra_roles)
    facts, diagnostics, suppressions = extract(modules, resources, roles, jobs=options.jobs)
    pipelines: list[Pipeline] = []
    for pf in facts:
        try:
            pipelines.append(graph.build(pf))
        except Exception as exc:  # isolation point
            message = f"could not build the graph of {pf.name}: {exc!r}"
            diagnostics.append(Diagnostic(pf.file, "internal-error", message))
    pipelines.sort(key=lambda p: (p.file, p.line, p.id))
    return FactsOutcome(tuple(pipelines), tuple(parse_diagnostics), tuple(diagnostics),
                        {file: dict(lines) for file, lines in suppressions.items()},
                        tuple(m.relpath for m in modules))


def finish(outcome: FactsOutcome, lines: dict[str, list[str]], diagnostics: Sequence[Diagnostic],
           options: Options, files_analysed: int) -> Report:
    """Checks and the report over a run's facts (computed or cached): what rule settings change."""
    from . import catalog
    from .checks import CheckSettings, run_checks

    diagnostics = [*diagnostics, *outcome.diagnostics]
    pipelines = list(outcome.pipelines)
    if options.only_files is not None:
        pipelines = [p for p in pipelines if _touches(p, options.only_files)]
    rules = catalog.load_rules(options.extra_rules)
    checked = run_checks(
        tuple(pipelines),
        {rid: doc.severity for rid, doc in rules.items()},  # type: ignore[misc]
        CheckSettings(options.disabled_rules, options.severities, options.selected_rules),
        outcome.suppressions,
        lines,
    )
    diagnostics.extend(checked.diagnostics)
    ignored = _per_file_ignored(checked.findings, options.per_file_ignores)
    findings = tuple(_with_snippet(f, lines) for f in checked.findings if f not in ignored)
    diagnostics.sort(key=lambda d: (d.file, d.line or 0, d.kind, d.message))
    report = make_report(tuple(pipelines), findings, tuple(diagnostics), files_analysed)
    silenced = tuple(_with_snippet(f, lines) for f in checked.suppressed)
    docs = tuple(rules.values())  # the catalog's records are the model's: no copy
    return replace(report, suppressed=silenced, suppression_problems=tuple(checked.problems),
                   summary=replace(report.summary, suppressed=len(silenced)), rules=docs)


def _per_file_ignored(findings: Sequence[Finding], table: tuple[tuple[str, frozenset[str]], ...]) -> list[Finding]:
    """Findings `per-file-ignores` leaves out (patterns have gitignore semantics, as ruff's)."""
    if not table:
        return []
    from .source import gitignore_spec

    specs = [(gitignore_spec((pattern,)), rules) for pattern, rules in table]
    return [f for f in findings if any(spec.match_file(f.file) and (f.rule in rules or "*" in rules)
                                       for spec, rules in specs)]


def _with_snippet(finding: Finding, lines: dict[str, list[str]]) -> Finding:
    source = lines.get(finding.file)
    if not source or not 1 <= finding.line <= len(source):
        return finding
    return replace(finding, snippet=source[finding.line - 1].rstrip()[:200])


def _touches(pipeline: Pipeline, files: frozenset[str]) -> bool:
    if pipeline.file in files:
        return True
    return any(
        stage.file in files or (stage.definition is not None and stage.definition.file in files)
        for stage in pipeline.stages
    )


def make_report(
    pipelines: tuple[Pipeline, ...],
    findings: tuple[Finding, ...],
    diagnostics: tuple[Diagnostic, ...],
    files_analysed: int,
    baselined: int = 0,
) -> Report:
    return Report(
        tool_version=__version__,
        pipelines=pipelines,
        findings=findings,
        diagnostics=diagnostics,
        summary=summarize(pipelines, findings, files_analysed, baselined),
    )


def summarize(
    pipelines: tuple[Pipeline, ...], findings: tuple[Finding, ...], files_analysed: int, baselined: int = 0,
    suppressed: int = 0,
) -> Summary:
    kinds: Counter[str] = Counter(e.kind for p in pipelines for e in p.edges)
    severities = Counter(f.severity for f in findings)
    return Summary(
        files_analysed=files_analysed,
        pipelines=len(pipelines),
        stages=sum(len(p.stages) for p in pipelines),
        real_edges=sum(kinds[k] for k in DEPENDENCY_KINDS if k != "unknown"),
        coincidental_edges=kinds["order"],
        unknown_edges=kinds["unknown"],
        fanout_candidates=sum(len(p.parallel_groups) for p in pipelines),
        findings_by_severity=tuple((s, severities[s]) for s in ("error", "warning", "note")),
        baselined=baselined,
        suppressed=suppressed,
    )


def group_sites(report: Report) -> Report:
    """The report as people read it: the sites of each `ONE_PER_PIPELINE` rule in one pipeline are one
    finding. Applied after baselines and diff mode, which compare per-site findings, and separately to
    the new and the unchanged ones, so a new site is never hidden inside a known finding. The sites of each
`ONE_PER_STAGES` rule about the same stages are grouped the same way."""
    from .checks import one_per_pipeline, one_per_stages, pipeline_rules, stage_rules

    rules, by_stages = pipeline_rules(), stage_rules()

    def grouped(found: tuple[Finding, ...]) -> tuple[Finding, ...]:
        return tuple(one_per_pipeline(one_per_stages(found, report.pipelines, by_stages), report.pipelines, rules))

    findings, unchanged = grouped(report.findings), grouped(report.unchanged)
    if len(findings) == len(report.findings) and len(unchanged) == len(report.unchanged):
        return report
    s = report.summary
    summary = summarize(report.pipelines, findings, s.files_analysed, baselined=s.baselined, suppressed=s.suppressed)
    return replace(report, findings=findings, unchanged=unchanged, summary=summary)
