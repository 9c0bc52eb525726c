"""Run the rule checks over built pipelines and turn their hits into findings.

Each rule is one module in this package with a `RULE` id and a `check(pipeline)` generator
yielding `Hit`s. The runner isolates each check (a crash becomes a diagnostic naming the
rule), applies configured severities and inline `# stagegraph: ignore[rule]` suppressions,
and computes fingerprints that survive unrelated edits (no line numbers in them).

A fingerprint is keyed by the finding's *cause*: rule, pipeline, stage names, the check's key,
and the normalised code of the line the hit points at (whitespace collapsed, trailing comment
dropped), plus an occurrence number when the same code appears twice. A second
`requests.get(...)` without a timeout in a stage is then a second, new finding, while edits
that only move code keep every fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType

from ..model import Diagnostic, Finding, Location, Pipeline, Severity, SuppressionProblem
from ..spans import Template, join, parts_of
from . import _messages as msg

CheckFn = Callable[[Pipeline], Iterator["Hit"]]


@dataclass(frozen=True, slots=True)
class Hit:
    """What a check reports, before severity, suppression and fingerprinting."""

    rule: str
    message: str
    file: str
    line: int
    stages: tuple[str, ...] = ()
    column: int | None = None
    related: tuple[Location, ...] = ()
    #: extra stable material for the fingerprint (e.g. the shared resource's name)
    key: str = ""
    #: the kind of cause, for `ONE_PER_STAGES` grouping (see `Finding.group`)
    group: str = ""


@dataclass(frozen=True, slots=True)
class CheckSettings:
    disabled: frozenset[str] = frozenset()
    severities: Mapping[str, Severity] = field(default_factory=dict)
    enabled_only: frozenset[str] | None = None


def site_rules() -> frozenset[str]:
    """Rules whose cause is one place in the code (an except clause, a call without a timeout), so the
    same place reached from several pipelines is one finding, not one per pipeline (`ONE_PER_SITE`)."""
    return _flagged("ONE_PER_SITE")


def one_per_site(findings: Sequence[Finding], pipelines: Sequence[Pipeline], rules: frozenset[str]) -> list[Finding]:
    """Of the findings of `rules` at one code site, one outside the tests (a test that drives a helper is
    not what a user runs), then the one naming the most stages, then the one in a
    pipeline no other pipeline runs as a stage (the pipeline a user runs, not a nested view of it), then
    the one in the biggest pipeline: a helper's except clause reached by the outer pipeline and by each
    nested one is one cause. The others are dropped, never merged into a message they did not say.
    Before the stage count: a framework pipeline's finding whose every stage is a subflow of the same
    framework that has a finding at the same site itself (the outer flow's `scrape_round` stage, where
    the subflow names its task `list_funds`) is the less specific view of that site, so the subflow's is
    kept. A task body seen as a plain driver is not a subflow: the task stays the finding's stage."""
    nested = _nested(pipelines)
    size = {p.id: len(p.stages) for p in pipelines}
    tests = {p.id for p in pipelines if _in_tests(p.file)}
    style = {p.id: p.style for p in pipelines}
    opened = {p.id: {s.id: s.nested_pipeline for s in p.stages
                     if s.nested_pipeline and p.style not in _DRIVER_STYLES and style.get(s.nested_pipeline) == p.style}
              for p in pipelines}
    at_site: dict[tuple[str, str, int, int | None], set[str]] = {}
    for f in findings:
        if f.rule in rules and f.pipeline is not None:
            at_site.setdefault((f.rule, f.file, f.line, f.column), set()).add(f.pipeline)

    def wrapper(f: Finding) -> bool:
        inner = opened.get(f.pipeline or "", {})
        found = at_site.get((f.rule, f.file, f.line, f.column), set())
        return bool(f.stages) and all(inner.get(s) in found for s in f.stages)

    def rank(f: Finding) -> tuple[bool, bool, int, bool, int]:
        return (f.pipeline not in tests, not wrapper(f), len(f.stages), f.pipeline not in nested,
                size.get(f.pipeline or "", 0))

    best: dict[tuple[str, str, int, int | None], Finding] = {}
    for f in findings:
        if f.rule not in rules:
            continue
        site = (f.rule, f.file, f.line, f.column)
        kept = best.get(site)
        if kept is None or (rank(f), kept.fingerprint) > (rank(kept), f.fingerprint):
            best[site] = f
    return [f for f in findings if f.rule not in rules or best[(f.rule, f.file, f.line, f.column)] is f]


#: pipelines whose nested stages are sub-drivers, not subflows (see `one_per_site`)
_DRIVER_STYLES = frozenset({"plain", "class"})


def _in_tests(path: str) -> bool:
    """A file of a test suite: under `tests/` or `test/`, `test_*.py`, `*_test.py` or `conftest.py`."""
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return (any(part in {"tests", "test"} for part in parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def pipeline_rules() -> frozenset[str]:
    """Rules whose sites in one pipeline are one finding (`ONE_PER_PIPELINE`): one policy fixes them all
    (a session with a default timeout), so one finding per call site only repeats the same advice."""
    return _flagged("ONE_PER_PIPELINE")


def stage_rules() -> frozenset[str]:
    """Rules whose sites about the same stages (by name) in one pipeline are one finding
    (`ONE_PER_STAGES`): seven bare `except: pass` in one scraper are one stage hiding its failures,
    and a task submitted from three exclusive branches racing one writer is one race, not three."""
    return _flagged("ONE_PER_STAGES")


def _flagged(flag: str) -> frozenset[str]:
    """The rules whose module sets `flag` to True."""
    return frozenset(rule for rule, module in _rule_modules() if getattr(module, flag, False))


def one_per_pipeline(
    findings: Sequence[Finding], pipelines: Sequence[Pipeline], rules: frozenset[str],
) -> list[Finding]:
    """The findings of `rules` in one pipeline grouped into its first one (by file and line), which names
    every stage and lists the other sites as related locations. Each site keeps its own fingerprint in
    `site_fingerprints`."""
    return _grouped(findings, pipelines, rules, lambda f, names: (f.rule, f.pipeline), msg.MORE_SITES)


def one_per_stages(
    findings: Sequence[Finding], pipelines: Sequence[Pipeline], rules: frozenset[str],
) -> list[Finding]:
    """The findings of `rules` in one pipeline about the same set of stage names and of the same kind of
    cause (`Finding.group`) grouped into the first one, listing the other sites; each site keeps its own
    fingerprint."""
    return _grouped(findings, pipelines, rules,
                    lambda f, names: (f.rule, f.pipeline, f.group, frozenset(names.get(s, s) for s in f.stages)),
                    msg.MORE_STAGE_SITES)


def _grouped(
    findings: Sequence[Finding], pipelines: Sequence[Pipeline], rules: frozenset[str],
    key: Callable[[Finding, Mapping[str, str]], tuple[object, ...]], more: Template,
) -> list[Finding]:
    """Findings of `rules` sharing `key` as one: the first (by file and line) names every stage and
    lists the other sites in its message and as related locations."""
    names = {p.id: {s.id: s.name for s in p.stages} for p in pipelines}
    groups: dict[tuple[object, ...], list[Finding]] = {}
    for f in findings:
        if f.rule in rules:
            groups.setdefault(key(f, names.get(f.pipeline or "", {})), []).append(f)
    order = {p.id: {s.id: i for i, s in enumerate(p.stages)} for p in pipelines}
    out: list[Finding] = []
    for f in findings:
        group = groups.get(key(f, names.get(f.pipeline or "", {}))) if f.rule in rules else None
        if group is None or len(group) == 1:
            out.append(f)
            continue
        if group[0] is not f:
            continue
        rank = order.get(f.pipeline or "", {})
        stages = sorted(dict.fromkeys(s for g in group for s in g.stages), key=lambda s: rank.get(s, len(rank)))
        others = list(dict.fromkeys(Location(g.file, g.line, g.column) for g in group[1:]))
        extra = more.format(count=str(len(others)), places=join(f"{o.file}:{o.line}" for o in others))
        related = tuple(dict.fromkeys([*others, *(r for g in group for r in g.related)]))
        out.append(replace(
            f, message=f.message + str(extra), message_parts=(*f.message_parts, *parts_of(extra)),
            stages=tuple(stages), related=related, site_fingerprints=tuple(fp for g in group for fp in g.prints),
        ))
    return out


def _nested(pipelines: Sequence[Pipeline]) -> set[str]:
    """Pipelines some other pipeline runs (a nested view of what a user runs): run as a stage, or run
    deeper down. The model has no call graph, so deeper down shows as the code sites of all its stages'
    signals being a strict part of a larger pipeline's, all reached by one stage there that is not one
    of its own stages (the entry point's `bronze` step running a helper class's method that is a
    pipeline itself). A helper that two pipelines share as a stage nests neither in the other."""
    nested = {s.nested_pipeline for p in pipelines for s in p.stages if s.nested_pipeline}
    sites = {p.id: frozenset((g.file, g.line) for s in p.stages for g in s.signals) for p in pipelines}
    covering: dict[tuple[str, int], list[tuple[str, frozenset[tuple[str, int]], str]]] = {}
    for p in pipelines:
        for s in p.stages:
            held = frozenset((g.file, g.line) for g in s.signals)
            for site in held:
                covering.setdefault(site, []).append((p.id, held, s.qualname or s.name))
    for p in pipelines:
        held = sites[p.id]
        if not held or p.id in nested:
            continue
        own = {s.qualname or s.name for s in p.stages}
        rarest = min(held, key=lambda site: (len(covering[site]), site))
        if any(held <= stage_sites and held < sites[other] and runs not in own
               for other, stage_sites, runs in covering[rarest]):
            nested.add(p.id)
    return nested


def one_per_cause(findings: Sequence[Finding], pipelines: Sequence[Pipeline]) -> list[Finding]:
    """A finding repeated by a flattened driver view: the same rule at the same place about the same
    stages (by name) in a pipeline and in a driver that shows that pipeline's stages among its own
    (a Celery canvas opened inside the driver that sends it) is one finding, the driver's."""
    nested = _nested(pipelines)
    names = {p.id: {s.id: s.name for s in p.stages} for p in pipelines}

    def cause(f: Finding) -> tuple[str, str, int, frozenset[str]]:
        stage_names = names.get(f.pipeline or "", {})
        return (f.rule, f.file, f.line, frozenset(stage_names.get(s, s) for s in f.stages))

    outer = {cause(f) for f in findings if f.pipeline not in nested}
    return [f for f in findings if f.pipeline not in nested or cause(f) not in outer]


def _rule_modules() -> list[tuple[str, ModuleType]]:
    """Every check module in this package, with its rule id."""
    out: list[tuple[str, ModuleType]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module: ModuleType = importlib.import_module(f"{__name__}.{info.name}")
        rule = getattr(module, "RULE", None)
        if isinstance(rule, str):
            out.append((rule, module))
    return out


def all_checks() -> dict[str, CheckFn]:
    """Every check module in this package, by rule id."""
    return {rule: module.check for rule, module in _rule_modules() if callable(getattr(module, "check", None))}


def fingerprint(rule: str, pipeline_id: str, stage_names: tuple[str, ...], key: str, cause: str = "") -> str:
    material = "\x1f".join([rule, pipeline_id, *sorted(stage_names), key, cause])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:20]


def normalised_code(line: str) -> str:
    """A source line as a cause: no trailing comment, whitespace runs collapsed."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif line.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
        elif ch in "'\"":
            quote = ch * 3 if line.startswith(ch * 3, i) else ch
            i += len(quote) - 1
        elif ch == "#":
            line = line[:i]
            break
        i += 1
    return " ".join(line.split())


def _cause(hit: Hit, lines: Mapping[str, Sequence[str]]) -> str:
    source = lines.get(hit.file, ())
    return normalised_code(source[hit.line - 1]) if 1 <= hit.line <= len(source) else ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What the runner hands the engine: findings that count, silenced ones, and suppressions doing nothing."""

    findings: list[Finding]
    diagnostics: list[Diagnostic]
    suppressed: list[Finding]
    problems: list[SuppressionProblem]


def run_checks(
    pipelines: tuple[Pipeline, ...],
    default_severity: Mapping[str, Severity],
    settings: CheckSettings,
    suppressions: Mapping[str, Mapping[int, frozenset[str]]],
    lines: Mapping[str, Sequence[str]] | None = None,
) -> CheckResult:
    """Findings (sorted, one per cause), silenced findings, useless suppressions, and failed checks."""
    findings: dict[str, Finding] = {}
    silenced: dict[str, Finding] = {}
    used: set[tuple[str, int, str]] = set()
    diagnostics: list[Diagnostic] = []
    ran: set[str] = set()
    for rule, check in all_checks().items():
        if rule in settings.disabled or (settings.enabled_only is not None and rule not in settings.enabled_only):
            continue
        ran.add(rule)
        severity: Severity = settings.severities.get(rule, default_severity.get(rule, "warning"))
        for pipeline in pipelines:
            try:
                hits = list(check(pipeline))
            except Exception as exc:  # isolation point: one broken check never loses the report
                message = f"rule {rule} failed on pipeline {pipeline.name}: {exc!r}"
                diagnostics.append(Diagnostic(pipeline.file, "internal-error", message))
                continue
            seen: set[tuple[object, ...]] = set()
            occurrences: dict[str, int] = {}
            for hit in sorted(hits, key=lambda h: (h.file, h.line, h.column or 0, h.rule, h.key)):
                names = tuple(_stage_name(pipeline, s) for s in hit.stages)
                place = (hit.rule, names, hit.key, hit.file, hit.line)
                if place in seen:
                    continue
                seen.add(place)
                cause = _cause(hit, lines or {})
                base = fingerprint(hit.rule, pipeline.id, names, hit.key, cause)
                occurrences[base] = occurrences.get(base, 0) + 1
                n = occurrences[base]
                fp = base if n == 1 else fingerprint(hit.rule, pipeline.id, names, hit.key, f"{cause}\x1f{n}")
                if fp in findings or fp in silenced:
                    continue
                finding = Finding(
                    rule=hit.rule,
                    severity=severity,
                    message=str(hit.message),
                    message_parts=parts_of(hit.message),
                    file=hit.file,
                    line=max(hit.line, 1),
                    fingerprint=fp,
                    column=hit.column,
                    pipeline=pipeline.id,
                    stages=hit.stages,
                    related=hit.related,
                    group=hit.group,
                )
                matched = _suppressed(hit, pipeline, suppressions)
                if matched is not None:
                    used.add(matched)
                    silenced[fp] = finding
                else:
                    findings[fp] = finding
    known = set(default_severity) | set(all_checks())
    problems = _useless_suppressions(pipelines, suppressions, used, known, ran)

    def order(f: Finding) -> tuple[str, int, str, str]:
        return (f.file, f.line, f.rule, f.fingerprint)

    kept = one_per_site(sorted(findings.values(), key=order), pipelines, site_rules())
    kept = one_per_cause(kept, pipelines)
    return CheckResult(kept, diagnostics, sorted(silenced.values(), key=order), problems)


def _useless_suppressions(
    pipelines: tuple[Pipeline, ...],
    suppressions: Mapping[str, Mapping[int, frozenset[str]]],
    used: set[tuple[str, int, str]],
    known: set[str],
    ran: set[str],
) -> list[SuppressionProblem]:
    """Unknown rule ids anywhere; unused ones only in files a checked pipeline covers (as ruff's RUF100)."""
    covered: set[str] = set()
    for p in pipelines:
        covered.add(p.file)
        for stage in p.stages:
            covered.add(stage.file)
            if stage.definition is not None:
                covered.add(stage.definition.file)
    problems: list[SuppressionProblem] = []
    for file in sorted(suppressions):
        for line in sorted(suppressions[file]):
            for rule in sorted(suppressions[file][line]):
                if rule != "*" and rule not in known:
                    problems.append(SuppressionProblem(file, line, rule, "unknown-rule"))
                elif file in covered and (rule == "*" or rule in ran) and (file, line, rule) not in used:
                    problems.append(SuppressionProblem(file, line, rule, "unused"))
    return problems


def _stage_name(pipeline: Pipeline, stage_id: str) -> str:
    for stage in pipeline.stages:
        if stage.id == stage_id:
            return stage.name
    return stage_id


def _suppressed(hit: Hit, pipeline: Pipeline, suppressions: Mapping[str, Mapping[int, frozenset[str]]]
                ) -> tuple[str, int, str] | None:
    """The `# stagegraph: ignore[rule]` silencing `hit` (on its line, or a named stage's call or def line)."""
    places = [(hit.file, hit.line)]
    for stage in pipeline.stages:
        if stage.id in hit.stages:
            places.append((stage.file, stage.line))
            if stage.definition is not None:
                places.append((stage.definition.file, stage.definition.line))
    for file, line in places:
        rules = suppressions.get(file, {}).get(line)
        if rules and hit.rule in rules:
            return (file, line, hit.rule)
        if rules and "*" in rules:
            return (file, line, "*")
    return None
