"""Property tests for effect tracing: random pipelines with a known ground truth.

Each generated program has N stage functions; every stage reads/writes a random subset of
module globals, files, SQL tables, values returned by earlier stages and arguments it mutates,
spelled in randomly chosen but equivalent ways (literal path, constant, os.path.join, f-string).
Ground truth is Bernstein's conditions over those symbols. The analyzer must be sound (every
conflicting pair is a dependency) and precise (no data edge where nothing conflicts), and the
graph must not change when every identifier is renamed.
"""

from __future__ import annotations

import itertools
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegraph.engine import analyze
from stagegraph.model import DEPENDENCY_KINDS, Pipeline

GLOBALS = ["ledger", "seen", "cache"]
FILES = ["raw.json", "clean.csv", "report.txt"]
TABLES = ["staging.orders", "dw.customers", "mart.sales"]
#: open-world symbols: `s:crm` is a module-level client of a library nobody models (its methods are
#: unknown effects on the client), `t:?` is SQL whose text can't be resolved (it may touch every table)
OPEN_WORLD = ["s:crm", "t:?"]


@dataclass
class StageSpec:
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    args: list[int] = field(default_factory=list)  # indexes of earlier stages whose result it takes
    mutates: set[int] = field(default_factory=set)  # which of those results it mutates
    file_style: int = 0
    mutate_style: int = 0
    in_loop: bool = False  # the driver calls it inside a loop: its result is carried out of the loop


@st.composite
def pipelines(draw: st.DrawFn) -> list[StageSpec]:
    """Random stages; `render` also varies how the driver holds results (variables or one dict)."""
    n = draw(st.integers(min_value=2, max_value=6))
    symbols = [f"g:{g}" for g in GLOBALS] + [f"f:{f}" for f in FILES] + [f"t:{t}" for t in TABLES] + OPEN_WORLD
    specs = []
    for i in range(n):
        spec = StageSpec(
            reads=set(draw(st.lists(st.sampled_from(symbols), max_size=2))),
            writes=set(draw(st.lists(st.sampled_from(symbols), max_size=2))),
            file_style=draw(st.integers(min_value=0, max_value=4)),
            mutate_style=draw(st.integers(min_value=0, max_value=3)),
            in_loop=draw(st.booleans()),
        )
        if i:
            spec.args = sorted(set(draw(st.lists(st.integers(min_value=0, max_value=i - 1), max_size=2))))
            spec.mutates = {a for a in spec.args if draw(st.booleans())}
        specs.append(spec)
    return specs


def _path_expr(name: str, style: int, prefix: str = "") -> str:
    stem, ext = name.split(".")
    return [
        f'"/data/{name}"',
        f"PATH_{stem.upper()}",
        f'os.path.join(DATA_DIR, "{name}")',
        f'f"{{DATA_DIR}}/{name}"',
        f'{prefix}data_file("{stem}", ext="{ext}")',  # a helper returning a path built from its arguments
    ][style]


def _mutation(name: str, i: int, style: int) -> str:
    """Equivalent ways to change an argument in place: a method, an alias, an item, an element via sorted()."""
    return [
        f"{name}.append({i})",
        f"alias_{i} = {name}\n    alias_{i}.extend([{i}])",
        f"{name}[0] = {i}",
        f"for item in sorted({name}):\n        item['seen'] = {i}",
    ][style]


def render(specs: list[StageSpec], prefix: str = "", boxed: bool = False) -> str:
    """Python source for the pipeline; `prefix` renames every identifier we control; `boxed` keeps every
    result in one dict (`out["0"] = stage0()`, `stage1(out["0"])`) instead of one variable each."""
    p = prefix
    lines = ["import os", "", "from crm_sdk import CrmClient", "", 'DATA_DIR = "/data"', "crm = CrmClient()"]
    lines += [f'PATH_{f.split(".")[0].upper()} = "/data/{f}"' for f in FILES]
    lines += [f"{p}{g} = []" for g in GLOBALS]
    lines += ["", f'def {p}data_file(stem, ext="csv"):', '    return os.path.join(DATA_DIR, f"{stem}.{ext}")', ""]
    for i, spec in enumerate(specs):
        params = [f"{p}arg{a}" for a in spec.args]
        body: list[str] = []
        for sym in sorted(spec.reads):
            kind, name = sym.split(":", 1)
            if kind == "g":
                body.append(f"n = len({p}{name})")
            elif kind == "f":
                body.append(f"with open({_path_expr(name, spec.file_style, p)}) as fh:\n        fh.read()")
            elif kind == "s":
                body.append(f'n = {name}.get_contact("c{i}")')
            elif name == "?":
                body.append('n = CURSOR.execute(os.environ["REPORT_SQL"])')
            else:
                body.append(f'db_run("SELECT * FROM {name}")')
        for sym in sorted(spec.writes):
            kind, name = sym.split(":", 1)
            if kind == "g":
                body.append(f"{p}{name}.append({i})")
            elif kind == "f":
                body.append(f'with open({_path_expr(name, spec.file_style, p)}, "w") as fh:\n        fh.write("x")')
            elif kind == "s":
                body.append(f'{name}.upsert_contact("c{i}", {i})')
            elif name == "?":
                body.append('CURSOR.execute(os.environ["LOAD_SQL"])')
            else:
                body.append(f'db_run("INSERT INTO {name} SELECT 1")')
        for a in sorted(spec.mutates):
            body.append(_mutation(f"{p}arg{a}", i, spec.mutate_style))
        for a in spec.args:
            body.append(f"n = len({p}arg{a})")
        body.append(f"return [{i}]")
        lines.append(f"def {p}stage{i}({', '.join(params)}):")
        lines.extend("    " + line for line in body)
        lines.append("")
    lines.append("def db_run(sql):\n    return sql\n")
    lines.append("CURSOR = None\n")
    lines.append(f"def {p}main():")
    if boxed:
        lines.append(f"    {p}out = {{}}")

    def slot(k: int) -> str:
        return f'{p}out["{k}"]' if boxed else f"{p}out{k}"

    for i, spec in enumerate(specs):
        args = ", ".join(slot(a) for a in spec.args)
        if spec.in_loop:
            lines.append(f"    for {p}item in range(3):")
            lines.append(f"        {slot(i)} = {p}stage{i}({args})")
        else:
            lines.append(f"    {slot(i)} = {p}stage{i}({args})")
    return "\n".join(lines) + "\n"


def truth(specs: list[StageSpec]) -> set[tuple[int, int]]:
    """Conflicting pairs (i < j) by Bernstein's conditions over the generated symbols."""
    reads: dict[int, set[str]] = defaultdict(set)
    writes: dict[int, set[str]] = defaultdict(set)
    for i, spec in enumerate(specs):
        reads[i] |= spec.reads
        writes[i] |= spec.writes
        writes[i].add(f"v:{i}")
        for a in spec.args:
            reads[i].add(f"v:{a}")
        for a in spec.mutates:
            writes[i].add(f"v:{a}")
    pairs = set()
    for i, j in itertools.combinations(range(len(specs)), 2):
        if _conflict(writes[i], reads[j]) or _conflict(reads[i], writes[j]) or _conflict(writes[i], writes[j]):
            pairs.add((i, j))
    return pairs


def _conflict(first: set[str], second: set[str]) -> bool:
    """Symbols that may name the same thing: equal ones, and SQL we can't read against any table."""
    if first & second:
        return True
    tables_a, tables_b = {s for s in first if s.startswith("t:")}, {s for s in second if s.startswith("t:")}
    return bool(("t:?" in tables_a and tables_b) or ("t:?" in tables_b and tables_a))


def split(source: str, prefix: str = "") -> dict[str, str]:
    """The same program as a package: stages and state in `etl/steps.py`, the driver in `etl/job.py`
    calling them through `from . import steps as st` (cross-module names, aliases, relative imports)."""
    head, _, driver = source.partition(f"def {prefix}main():")
    calls = driver.replace(f"{prefix}stage", f"st.{prefix}stage")
    return {
        "etl/__init__.py": "",
        "etl/steps.py": head,
        "etl/job.py": f"from . import steps as st\n\n\ndef {prefix}main():{calls}",
    }


def analysed(tmp: Path, source: str | dict[str, str]) -> Pipeline:
    files = {"job.py": source} if isinstance(source, str) else source
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)
    report = analyze([tmp])
    assert not report.diagnostics, report.diagnostics
    [pipeline] = [p for p in report.pipelines if p.name.endswith("main")]
    return pipeline


def reachable(pipeline: Pipeline) -> set[tuple[str, str]]:
    succ: dict[str, set[str]] = defaultdict(set)
    for e in pipeline.edges:
        if e.kind in DEPENDENCY_KINDS:
            succ[e.source].add(e.target)
    out = set()
    for start in list(succ):
        todo, seen = [start], set()
        while todo:
            for nxt in succ[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        out |= {(start, s) for s in seen}
    return out


def stage_index(stage_id: str) -> int:
    return int(stage_id.split("stage")[-1])


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(pipelines())
def test_sound_and_precise(tmp_path_factory: object, specs: list[StageSpec]) -> None:
    """Every conflicting pair is reported as a dependency; no data edge joins a non-conflicting pair."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pipeline = analysed(Path(tmp) / "vars", render(specs))
        boxed = analysed(Path(tmp) / "dict", render(specs, boxed=True))
        package = analysed(Path(tmp) / "pkg", split(render(specs)))
    expected = truth(specs)
    assert {(e.source, e.target, e.kind) for e in package.edges} == {
        (e.source, e.target, e.kind) for e in pipeline.edges}, f"cross-module differs\n{render(specs)}"
    boxed_closure = reachable(boxed)
    for i, j in expected:  # results kept in one dict: at least as conservative, never less
        assert (f"stage{i}", f"stage{j}") in boxed_closure, f"UNSAFE (dict)\n{render(specs, boxed=True)}"
    ids = {stage_index(s.id): s.id for s in pipeline.stages}
    assert sorted(ids) == list(range(len(specs)))
    closure = reachable(pipeline)
    for i, j in expected:
        assert (ids[i], ids[j]) in closure, f"UNSAFE: stage{i} -> stage{j} conflict not reported\n{render(specs)}"
    closed = {i for i, spec in enumerate(specs) if not (spec.reads | spec.writes) & set(OPEN_WORLD)}
    for e in pipeline.edges:
        pair = (stage_index(e.source), stage_index(e.target))
        if e.kind == "data":
            assert tuple(sorted(pair)) in expected, f"spurious data edge {e}\n{render(specs)}"
        elif e.kind == "unknown" and set(pair) <= closed:
            # everything these two stages touch is spelled in a way the model resolves (literal paths,
            # constants, joins, f-strings, a path helper): "unknown" between them is lost precision
            assert tuple(sorted(pair)) in expected, f"needless unknown edge {e}\n{render(specs)}"


@_SETTINGS
@given(pipelines())
def test_renaming_never_changes_the_graph(tmp_path_factory: object, specs: list[StageSpec]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        plain = analysed(Path(tmp) / "a", render(specs))
        renamed = analysed(Path(tmp) / "b", render(specs, prefix="zz_"))

    def shape(p: Pipeline) -> set[tuple[int, int, str]]:
        return {(stage_index(e.source), stage_index(e.target), e.kind) for e in p.edges}

    assert shape(plain) == shape(renamed)


@_SETTINGS
@given(pipelines())
def test_an_unrelated_stage_never_removes_an_edge(tmp_path_factory: object, specs: list[StageSpec]) -> None:
    import tempfile

    extended = [*specs, StageSpec()]
    with tempfile.TemporaryDirectory() as tmp:
        before = analysed(Path(tmp) / "a", render(specs))
        after = analysed(Path(tmp) / "b", render(extended))
    real_before = {(e.source, e.target) for e in before.edges if e.kind in DEPENDENCY_KINDS}
    real_after = {(e.source, e.target) for e in after.edges if e.kind in DEPENDENCY_KINDS}
    assert real_before <= real_after
    loner = f"stage{len(specs)}"
    assert all(loner not in (e.source, e.target) for e in after.edges if e.kind in DEPENDENCY_KINDS)


def test_generator_example_is_readable() -> None:
    """A fixed example, so a reader sees what the generator produces."""
    specs = [StageSpec(writes={"f:raw.json"}), StageSpec(reads={"f:raw.json"}, args=[0], mutates={0}, file_style=2)]
    source = render(specs)
    assert 'os.path.join(DATA_DIR, "raw.json")' in source
    assert truth(specs) == {(0, 1)}
    assert textwrap.dedent(source).startswith("import os")
