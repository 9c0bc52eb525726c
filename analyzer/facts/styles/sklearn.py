"""scikit-learn pipelines: `Pipeline`, `make_pipeline`, `ColumnTransformer`, `FeatureUnion` (and `make_*`).

Each step transforms the previous step's output, so consecutive steps depend on each other
through the data (`X`), and the declared order is the list order. The branches of a
`ColumnTransformer` or `FeatureUnion` are an existing fan-out: each reads the same input, none
is ordered before another, and the next step reads all their outputs. Nested pipelines are
flattened into their steps. A step whose estimator class (or `FunctionTransformer` function) is
defined in the analysed code carries that code's effects; library estimators carry only the data
they pass on. Step lists stagegraph can't read become a placeholder stage, `unknown` links and a
diagnostic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import libcst as cst

from ...model import Effect, FanOut, Link, PipelineFacts, Stage
from ..effects import _walk
from ..index import FunctionRef, ModuleIndex, Project
from ..stagefx import StageBuilder
from ._decorated import note_unresolved, placeholder_stage, string_value
from .plain import _code

_SEQUENCE = frozenset({"sklearn.pipeline.Pipeline", "imblearn.pipeline.Pipeline"})
_MAKE_SEQUENCE = frozenset({"sklearn.pipeline.make_pipeline", "imblearn.pipeline.make_pipeline"})
_COLUMNS = frozenset({"sklearn.compose.ColumnTransformer"})
_MAKE_COLUMNS = frozenset({"sklearn.compose.make_column_transformer"})
_UNION = frozenset({"sklearn.pipeline.FeatureUnion"})
_MAKE_UNION = frozenset({"sklearn.pipeline.make_union"})
CONSTRUCTORS = _SEQUENCE | _MAKE_SEQUENCE | _COLUMNS | _MAKE_COLUMNS | _UNION | _MAKE_UNION
_FUNCTION_TRANSFORMER = frozenset({"sklearn.preprocessing.FunctionTransformer"})
_METHODS = ("fit_transform", "transform", "fit", "predict")


@dataclass(slots=True)
class _Build:
    """State while one sklearn pipeline is turned into stages."""

    module: ModuleIndex
    scope: dict[str, cst.BaseExpression]
    stages: list[Stage] = field(default_factory=list)
    declared: list[Link] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # stage id -> key of the X it writes
    placeholders: set[str] = field(default_factory=set)


class SklearnReader:
    """Reads estimator expressions into stages for one pipeline."""

    def __init__(self, builder: StageBuilder, build: _Build) -> None:
        self.builder = builder
        self.project: Project = builder.ctx.project
        self.b = build

    def resolve(self, expr: cst.BaseExpression, depth: int = 0) -> cst.BaseExpression:
        """Follow a local or module-level name to the expression assigned to it."""
        if isinstance(expr, cst.Name) and depth < 8:
            value = self.b.scope.get(expr.value) or self.b.module.constants.get(expr.value)
            if value is not None:
                return self.resolve(value, depth + 1)
        return expr

    def imported(self, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, ModuleIndex] | None:
        """`from prep import preprocessing` used as a step: the estimator that analysed module defines
        (its expression and its module, where the names inside it are read)."""
        if not isinstance(expr, cst.Name) or expr.value in self.b.scope or expr.value in self.b.module.constants:
            return None
        qualified = self.b.module.imports.get(expr.value)
        if not qualified or "." not in qualified:
            return None
        owner, _, attr = qualified.rpartition(".")
        module = self.project.module_of(owner)
        if module is None or module is self.b.module or attr not in module.constants:
            return None
        return module.constants[attr], module

    def kind(self, expr: cst.BaseExpression) -> str:
        if not isinstance(expr, cst.Call):
            return ""
        qualified = self.b.module.qualify(expr.func) or ""
        return qualified if qualified in CONSTRUCTORS else ""

    def next_id(self, base: str) -> str:
        count = self.b.names.get(base, 0) + 1
        self.b.names[base] = count
        return base if count == 1 else f"{base}#{count}"

    # -- reading step lists ------------------------------------------------------------

    def steps(self, call: cst.Call, kind: str) -> list[tuple[str, cst.BaseExpression] | None]:
        """(name, estimator) per step; None for an element stagegraph can't read."""
        if kind in _MAKE_SEQUENCE | _MAKE_UNION | _MAKE_COLUMNS:
            estimators: list[cst.BaseExpression] = []
            for arg in call.args:
                if arg.keyword is not None:
                    continue
                value = arg.value
                if kind in _MAKE_COLUMNS and isinstance(value, cst.Tuple) and value.elements:
                    value = value.elements[0].value
                estimators.append(value)
            return list(zip(_default_names([self.class_name(e) for e in estimators]), estimators, strict=True))
        keyword = {"Pipeline": "steps", "FeatureUnion": "transformer_list", "ColumnTransformer": "transformers"}
        wanted = keyword[kind.rsplit(".", 1)[-1]]
        listed = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == wanted), None)
        if listed is None:
            listed = next((a.value for a in call.args if a.keyword is None), None)
        listed = self.resolve(listed) if listed is not None else None
        if not isinstance(listed, cst.List | cst.Tuple):
            return [None]
        out: list[tuple[str, cst.BaseExpression] | None] = []
        for el in listed.elements:
            item = self.resolve(el.value)
            if isinstance(item, cst.Tuple) and len(item.elements) >= 2:
                name = string_value(item.elements[0].value)
                if name is not None:
                    out.append((name, item.elements[1].value))
                    continue
            out.append(None)
        return out

    def class_name(self, expr: cst.BaseExpression) -> str:
        value = self.resolve(expr)
        if isinstance(value, cst.Call):
            qualified = self.b.module.qualify(value.func) or _code(value.func)
            return qualified.rsplit(".", 1)[-1].lower()
        if isinstance(value, cst.SimpleString):
            return string_value(value) or "step"
        return _code(expr).lower()

    # -- stages ---------------------------------------------------------------------------

    def estimator(self, expr: cst.BaseExpression, inputs: list[str], name: str,
                  fanout: FanOut | None) -> tuple[list[str], list[str]]:
        """Stages for one estimator fed by `inputs` (stage ids); returns (entries, exits)."""
        found = self.imported(self.resolve(expr))
        if found is not None:
            # read the imported estimator in its own module; its steps are stages like local ones
            saved = (self.b.module, self.b.scope)
            self.b.module, self.b.scope = found[1], {}
            try:
                return self.estimator(found[0], inputs, name, fanout)
            finally:
                self.b.module, self.b.scope = saved
        value = self.resolve(expr)
        kind = self.kind(value)
        if kind and isinstance(value, cst.Call):
            return self.composite(value, kind, inputs, fanout)
        if isinstance(value, cst.SimpleString) or (isinstance(value, cst.Name) and value.value == "None"):
            return [], list(inputs)  # "passthrough" / "drop" / None: no stage
        stage_id = self.next_id(name)
        line = self.b.module.line(expr)
        file = self.b.module.relpath
        reads = [Effect("variable", f"X after {p}", file, line, key=self.b.outputs[p])
                 for p in inputs if p in self.b.outputs]
        if not inputs:
            reads.append(Effect("variable", "X", file, line, key="X:input"))
        out_key = f"X:{stage_id}"
        writes = [Effect("variable", f"X after {stage_id}", file, line, key=out_key)]
        callee = self.code_of(value)
        if callee is not None:
            params = [p for p in callee.params if p not in {"self", "cls"}]
            keys = {e.key for e in reads}
            stage = self.builder.stage(
                stage_id=stage_id, callee=callee, file=file, line=line,
                params={params[0]: keys} if params else {}, labels={e.key: e.target for e in reads},
                via_self=False, fanout=fanout, module=self.b.module, name=stage_id, extra_reads=reads,
                extra_writes=writes,
            )
        else:
            stage = Stage(id=stage_id, name=stage_id, file=file, line=line, reads=tuple(reads), writes=tuple(writes),
                          fanout=fanout)
        self.b.stages.append(stage)
        self.b.outputs[stage_id] = out_key
        return [stage_id], [stage_id]

    def code_of(self, value: cst.BaseExpression) -> FunctionRef | None:
        """The analysed code a step runs: a custom estimator's transform/fit, or a FunctionTransformer's func."""
        if not isinstance(value, cst.Call):
            return None
        qualified = self.b.module.qualify(value.func) or ""
        if qualified in _FUNCTION_TRANSFORMER:
            func = next((a.value for a in value.args if a.keyword is None or a.keyword.value == "func"), None)
            return self.project.function(self.b.module.qualify(func)) if func is not None else None
        klass = self.project.klass(qualified)
        if klass is None:
            return None
        for method in _METHODS:
            found = self.project.method(klass, method)
            if found is not None:
                return found
        return None

    def composite(self, call: cst.Call, kind: str, inputs: list[str],
                  fanout: FanOut | None) -> tuple[list[str], list[str]]:
        steps = self.steps(call, kind)
        line = self.b.module.line(call)
        if kind in _SEQUENCE | _MAKE_SEQUENCE:
            entries: list[str] | None = None
            current = inputs
            for step in steps:
                if step is None:
                    e, x = self.placeholder(call, current, "a pipeline step stagegraph can't read statically")
                else:
                    e, x = self.estimator(step[1], current, step[0], fanout)
                if not e:
                    continue
                self.declare(current, e)
                if entries is None:
                    entries = e
                current = x
            return entries or [], current
        mechanism = "columns" if kind in _COLUMNS | _MAKE_COLUMNS else "union"
        fan = FanOut(mechanism, _code(call.func), line, _n_jobs_capped(call))
        # a step name is unique within its estimator only; nested steps keep theirs, repeats get `name#2`
        all_entries: list[str] = []
        exits: list[str] = []
        for step in steps:
            if step is None:
                e, x = self.placeholder(call, inputs, f"a {mechanism} branch stagegraph can't read statically")
            else:
                e, x = self.estimator(step[1], inputs, step[0], fan)
            self.declare(inputs, e)
            all_entries += e
            exits += [s for s in x if s not in inputs]
        remainder = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "remainder"),
                         None)
        if string_value(remainder) == "passthrough":
            exits += inputs
        return all_entries, exits

    def placeholder(self, call: cst.Call, inputs: list[str], why: str) -> tuple[list[str], list[str]]:
        line = self.b.module.line(call)
        note_unresolved(self.builder.diagnostics, self.b.module, line, why)
        stage_id = self.next_id("unresolved-step")
        self.b.stages.append(placeholder_stage(stage_id, self.b.module, line, why))
        self.b.placeholders.add(stage_id)
        self.b.outputs[stage_id] = f"X:{stage_id}"
        for p in inputs:
            self.b.links.append(Link(p, stage_id, "unknown", (why,)))
        return [stage_id], [stage_id]

    def declare(self, before: list[str], after: list[str]) -> None:
        for a, b in itertools.product(before, after):
            if a != b:
                self.b.declared.append(Link(a, b, "order", ("pipeline step order",)))
                if a in self.b.placeholders:
                    self.b.links.append(Link(a, b, "unknown", ("follows a step stagegraph could not read",)))


def _n_jobs_capped(call: cst.Call) -> bool:
    """`n_jobs=-1` uses every core (uncapped); absent or None runs the branches one at a time."""
    n_jobs = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "n_jobs"), None)
    return not isinstance(n_jobs, cst.UnaryOperation)


def _default_names(names: list[str]) -> list[str]:
    """sklearn's `_name_estimators`: lowercased class names, duplicates numbered `name-1`, `name-2`."""
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if counts[n] > 1:
            seen[n] = seen.get(n, 0) + 1
            out.append(f"{n}-{seen[n]}")
        else:
            out.append(n)
    return out


# ---------------------------------------------------------------- finding pipelines


def _scopes(module: ModuleIndex) -> Iterator[tuple[str | None, Sequence[cst.CSTNode]]]:
    top = [s for s in module.parsed.tree.body if not isinstance(s, cst.FunctionDef | cst.ClassDef)]
    yield None, top
    for fn in module.functions.values():
        yield fn.name, [fn.node.body]
    for klass in module.classes.values():
        for method in klass.methods.values():
            yield f"{klass.name}.{method.name}", [method.node.body]


def _assignments(nodes: Sequence[cst.CSTNode]) -> dict[str, cst.BaseExpression]:
    out: dict[str, cst.BaseExpression] = {}
    for node in _walk(list(nodes)):
        if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            out[node.targets[0].target.value] = node.value
        elif isinstance(node, cst.AnnAssign) and node.value is not None and isinstance(node.target, cst.Name):
            out[node.target.value] = node.value
    return out


def find_pipelines(builder: StageBuilder) -> list[PipelineFacts]:
    """One pipeline per outermost Pipeline/ColumnTransformer/FeatureUnion construction."""
    found: list[PipelineFacts] = []
    taken: set[str] = set()
    for module in builder.ctx.project.modules.values():
        if not any(q.startswith(("sklearn", "imblearn")) for q in module.imports.values()):
            continue
        for scope_name, nodes in _scopes(module):
            scope = _assignments(nodes)
            calls = [n for n in _walk(list(nodes)) if isinstance(n, cst.Call)
                     and (module.qualify(n.func) or "") in CONSTRUCTORS]
            if not calls:
                continue
            inner: set[int] = set()
            call_ids = {id(c) for c in calls}
            bound_to = {id(v): k for k, v in scope.items()}
            for call in calls:
                for node in _walk(list(call.args)):
                    if isinstance(node, cst.Call) and id(node) in call_ids:
                        inner.add(id(node))
                    if isinstance(node, cst.Name) and node.value in scope and isinstance(scope[node.value], cst.Call):
                        inner.add(id(scope[node.value]))
            roots = [c for c in calls if id(c) not in inner]
            for call in roots:
                var = bound_to.get(id(call))
                if scope_name is None:
                    name = var or f"pipeline@{module.line(call)}"
                elif var is None or len(roots) == 1:
                    name = scope_name
                else:
                    name = f"{scope_name}.{var}"
                base, n = name, 1
                while f"{module.relpath}::{name}" in taken:
                    n += 1
                    name = f"{base}#{n}"
                taken.add(f"{module.relpath}::{name}")
                facts = _pipeline(builder, module, scope, call, name)
                if facts is not None:
                    found.append(facts)
    return found


def _pipeline(builder: StageBuilder, module: ModuleIndex, scope: dict[str, cst.BaseExpression], call: cst.Call,
              name: str) -> PipelineFacts | None:
    build = _Build(module, scope)
    reader = SklearnReader(builder, build)
    reader.composite(call, reader.kind(call), [], None)
    if not build.stages:
        return None
    return PipelineFacts(
        id=f"{module.relpath}::{name}", name=name, style="sklearn", file=module.relpath, line=module.line(call),
        stages=tuple(build.stages), declared=tuple(build.declared), links=tuple(build.links),
    )
