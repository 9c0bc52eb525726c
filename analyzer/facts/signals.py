"""Hazard signals seen directly in one function's body (or a module-level driver block).

A signal is a local fact the checks combine with the stage graph: an `except Exception: pass`,
an executor without a worker cap, a wait without a timeout. This module only looks at the code
it is given (plus, for a few patterns, one level of analysed callees to tell what a call does);
the engine composes the signals of callees into stages. Names are resolved through
`ModuleIndex.qualify`, so `from concurrent.futures import ThreadPoolExecutor as TPE` still counts.

Signal kinds (the `Signal.kind` values, stable; the constants live in `model`, where checks read them):

==========================  =====================================================================
kind                        meaning (detail text in parentheses)
==========================  =====================================================================
broad-except-swallow        `except Exception`/`BaseException`/bare `except`, or an exception that means an
                            external system failed (`[[failure]]` in rules/resources.toml: `psycopg2.Error`,
                            botocore `ClientError`...), whose handler neither re-raises nor records the
                            failure ("except Exception: pass", "... : continue", "... : return None",
                            "... : return a default", "... : rollback only", "... : logged, then continue",
                            "... : logged only": the run still reports success either way).
executor-uncapped           ThreadPoolExecutor/ProcessPoolExecutor/multiprocessing or billiard Pool
                            without a worker cap, or with a cap that grows with the input (`len(...)`)
executor-capped             the same with an explicit cap (lets checks tell near-misses apart)
gather-unbounded            `asyncio.gather(*collection)` or a TaskGroup/nursery task per loop
                            iteration, with no Semaphore/limiter in sight
wait-no-timeout             `fut.result()`, `wait`/`as_completed` without timeout, zero-argument
                            `.get()` (AsyncResult, queue) and `.join()` (thread, process, pool), `ray.get`
remote-no-timeout           requests (functions and Session methods), urllib.request.urlopen and
                            urllib3 calls without `timeout=`; httpx only with an explicit `timeout=None`
                            (httpx has a default timeout); standard-library clients that connect in their
                            constructor (`smtplib.SMTP(host)`, `ftplib.FTP(host)`, `imaplib`, `poplib`,
                            `http.client`, `socket.create_connection`) and paramiko's `SSHClient.connect`
                            without `timeout=`
retry-nonidempotent         a retry loop or retry decorator around an HTTP POST/PATCH, an SQL INSERT
                            without conflict handling, or a queue publish, with no idempotency key
order-dependent-state       a loop over records that carries state across iterations and writes it
                            into the records/output (running totals, sequence numbers, previous-record
                            comparisons, state machines)
task-per-row                a task/future/signature created per row of a query result
exit-status-ignored         `os.system(...)`, `subprocess.call(...)` or `subprocess.run(...)` without `check=`
                            as a statement of its own: a failed command's exit status is dropped
dedup-then-validate         in one body, a frame deduplicated by key (`drop_duplicates(subset=...)`,
                            `df[~df.duplicated(subset=...)]`) and later filtered for missing values
                            (`dropna`, `df[df[c].notna()]`): the copy kept may be the one then dropped
future-dropped              a task handed to an executor or pool as a statement of its own
                            (`executor.submit(f, x)`, `pool.apply_async(f)` without `error_callback=`): nobody
                            reads its future, so the worker's exception is dropped
==========================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import libcst as cst

from ..model import (
    BROAD_EXCEPT_SWALLOW,
    DEDUP_THEN_VALIDATE,
    EXECUTOR_CAPPED,
    EXECUTOR_UNCAPPED,
    EXIT_STATUS_IGNORED,
    FUTURE_DROPPED,
    GATHER_UNBOUNDED,
    ORDER_DEPENDENT_STATE,
    REMOTE_NO_TIMEOUT,
    RETRY_NONIDEMPOTENT,
    TASK_PER_ROW,
    WAIT_NO_TIMEOUT,
    Signal,
    SignalKind,
)
from .index import FunctionRef, ModuleIndex, Project, dotted
from .tree import children as _children
from .tree import strings as _strings
from .values import local_assignments

#: The how-part of a `broad-except-swallow` detail when the handler logs and nothing else: the run still
#: reports success, so the failure is as lost as with `pass`.
LOGGED_ONLY = "logged only"
#: ... when the handler fills in a stand-in value (`score = np.nan`, `out.append(None)`) and goes on
PLACEHOLDER = "fills in a placeholder"

_EMPTY_FACTORIES = frozenset({"DataFrame", "Series", "dict", "list", "set", "tuple", "frozenset", "defaultdict"})
_BROAD = frozenset({"Exception", "BaseException", "builtins.Exception", "builtins.BaseException"})
_LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "fatal"})
_LOG_CALLS = frozenset({"print", "traceback.print_exc", "traceback.print_exception", "warnings.warn",
                        "sys.stdout.write", "sys.stderr.write", "sys.stdout.flush", "sys.stderr.flush"})
#: calls that make a logger: a module-level `lgr = logging.getLogger(__name__)` is a logger whatever its name
_LOGGER_FACTORIES = frozenset({"logging.getLogger", "structlog.get_logger", "structlog.getLogger"})
#: values that stand in for a missing result: a handler filling one in hides the failure in the data
_PLACEHOLDERS = frozenset({"numpy.nan", "numpy.NaN", "numpy.NAN", "math.nan", "pandas.NA", "pandas.NaT"})
#: executor/pool methods whose result is the only way a worker's exception reaches the caller
_DROPPED_FUTURES = frozenset({"submit", "apply_async", "map_async", "starmap_async"})
#: commands whose failure is only an exit status: discarding the result drops the failure
_EXIT_STATUS_CALLS = frozenset({"os.system", "subprocess.call", "subprocess.run"})

#: executor constructors -> (cap keyword, cap position)
_EXECUTORS: dict[str, tuple[str, int]] = {
    "concurrent.futures.ThreadPoolExecutor": ("max_workers", 0),
    "concurrent.futures.thread.ThreadPoolExecutor": ("max_workers", 0),
    "concurrent.futures.ProcessPoolExecutor": ("max_workers", 0),
    "concurrent.futures.process.ProcessPoolExecutor": ("max_workers", 0),
    "multiprocessing.Pool": ("processes", 0),
    "multiprocessing.pool.Pool": ("processes", 0),
    "multiprocessing.pool.ThreadPool": ("processes", 0),
    "multiprocessing.dummy.Pool": ("processes", 0),
    "billiard.Pool": ("processes", 0),
    "billiard.pool.Pool": ("processes", 0),
    "loky.get_reusable_executor": ("max_workers", 0),
}
_MP_CONTEXT = frozenset({"multiprocessing.get_context", "billiard.get_context"})
_TASK_GROUPS = frozenset({"asyncio.TaskGroup", "anyio.create_task_group", "trio.open_nursery"})
_WAITS = frozenset(
    {"concurrent.futures.wait", "concurrent.futures.as_completed", "asyncio.wait", "asyncio.as_completed"}
)
_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
_REQUESTS_SESSIONS = frozenset({"requests.Session", "requests.session", "requests.sessions.Session"})
_HTTPX_CLIENTS = frozenset({"httpx.Client", "httpx.AsyncClient"})
#: standard-library clients that connect in their constructor when given a host, and wait on the
#: socket forever by default: constructor -> (host position, timeout position)
_BLOCKING_CONNECTS: dict[str, tuple[int, int]] = {
    "smtplib.SMTP": (0, 3), "smtplib.SMTP_SSL": (0, 99), "ftplib.FTP": (0, 4), "ftplib.FTP_TLS": (0, 99),
    "imaplib.IMAP4": (0, 2), "imaplib.IMAP4_SSL": (0, 99), "poplib.POP3": (0, 2), "poplib.POP3_SSL": (0, 99),
    "http.client.HTTPConnection": (0, 2), "http.client.HTTPSConnection": (0, 99),
    "socket.create_connection": (0, 1),
}
_SSH_CLIENTS = frozenset({"paramiko.SSHClient", "paramiko.client.SSHClient"})
_URLLIB3_POOLS = frozenset({"urllib3.PoolManager", "urllib3.HTTPConnectionPool", "urllib3.HTTPSConnectionPool",
                            "urllib3.connection_from_url"})
_RETRY_DECORATORS = frozenset({
    "tenacity.retry", "backoff.on_exception", "backoff.on_predicate", "retrying.retry", "retry.retry",
    "retry.api.retry", "stamina.retry", "retry_decorator.retry",
})
#: orchestrator task decorators that rerun the whole function on failure, and their retry keyword
_ORCHESTRATOR_RETRIES = {
    "airflow.decorators.task": "retries", "airflow.sdk.task": "retries", "prefect.task": "retries",
    "prefect.flow": "retries",
}
_RETRY_ITERATORS = frozenset({"tenacity.Retrying", "tenacity.AsyncRetrying", "stamina.retry_context"})
_PUBLISH = {
    "publish": "queue publish", "basic_publish": "queue publish", "send_message": "queue publish",
    "send_message_batch": "queue publish", "produce": "queue publish", "xadd": "stream append",
    "lpush": "list push", "rpush": "list push", "insert_one": "document insert", "insert_many": "document insert",
    "send_mail": "email send", "sendmail": "email send", "send_email": "email send",
}
_IDEMPOTENCY_MARKERS = ("idempoten", "deduplicationid", "deduplication_id", "dedup_id", "dedupe_key")
_TASK_METHODS = frozenset({"submit", "apply_async", "delay", "s", "si", "signature", "create_task", "start_soon",
                           "remote"})
_TASK_CALLS = frozenset({"asyncio.create_task", "asyncio.ensure_future", "dask.delayed"})
_MAP_METHODS = frozenset({"map", "imap", "imap_unordered", "starmap", "map_async", "starmap_async"})
_QUERY_FETCH = frozenset({"fetchall", "fetchmany"})
_QUERY_CALLS = frozenset({"pandas.read_sql", "pandas.read_sql_query", "pandas.read_sql_table"})
_SINK_METHODS = frozenset({"append", "appendleft", "extend", "insert", "add", "write", "writerow", "writerows",
                           "put", "put_nowait", "send", "emit", "update"})
_SAFE_INSERT = ("ON CONFLICT", "ON DUPLICATE KEY", "MERGE ", "UPSERT", "INSERT OR REPLACE", "INSERT OR IGNORE",
                "INSERT IGNORE", "REPLACE INTO", "WHERE NOT EXISTS")


# ---------------------------------------------------------------- entry points

def function_signals(fn: FunctionRef, project: Project, failures: tuple[str, ...] = ()) -> tuple[Signal, ...]:
    """Hazard signals seen directly in one function's body (not its callees; the engine composes those).

    `failures`: exception classes that mean an external system failed (the catalog's `[[failure]]`).
    """
    body = fn.node.body
    statements: Sequence[cst.CSTNode] = body.body if isinstance(body, cst.IndentedBlock) else [body]
    return _scan(statements, fn.module, project, fn, failures)


def body_signals(
    statements: Sequence[cst.BaseStatement], module: ModuleIndex, project: Project, failures: tuple[str, ...] = ()
) -> tuple[Signal, ...]:
    """Same for a module-level driver block (`if __name__ == "__main__":`)."""
    return _scan(statements, module, project, None, failures)


@dataclass(slots=True)
class _Context:
    module: ModuleIndex
    project: Project
    fn: FunctionRef | None
    statements: Sequence[cst.CSTNode]
    #: name -> what it is bound to: "executor-capped", "executor-uncapped", "mp-context", "taskgroup",
    #: "requests-session", "httpx-no-timeout", "urllib3-no-timeout", "query"
    bindings: dict[str, str] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    limited: bool = False
    failures: tuple[str, ...] = ()

    def add(self, kind: SignalKind, node: cst.CSTNode, detail: str) -> None:
        self.signals.append(Signal(kind, self.module.relpath, self.module.line(node), detail, self.module.column(node)))

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        return self.module.qualify(expr)


def _scan(
    statements: Sequence[cst.CSTNode], module: ModuleIndex, project: Project, fn: FunctionRef | None,
    failures: tuple[str, ...] = (),
) -> tuple[Signal, ...]:
    ctx = _Context(module, project, fn, statements, failures=failures)
    _collect_bindings(ctx)
    ctx.limited = _has_limiter(statements, ctx)
    visitor = _Visitor(ctx)
    for statement in statements:
        statement.visit(visitor)
    _retry_signals(ctx)
    _dedup_then_validate(ctx)
    for loop in _loops(statements):
        _order_state(loop, ctx)
    unique = {(s.kind, s.line, s.column, s.detail): s for s in ctx.signals}
    return tuple(sorted(unique.values(), key=lambda s: (s.line, s.column or 0, s.kind, s.detail)))


# ---------------------------------------------------------------- small helpers

def _walk(node: cst.CSTNode, into_defs: bool = True) -> Iterator[cst.CSTNode]:
    """Every node under `node` (pre-order, source order), optionally not entering nested defs."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if not into_defs and current is not node and isinstance(current, cst.FunctionDef | cst.ClassDef | cst.Lambda):
            continue
        stack.extend(reversed(_children(current)))


def _walk_all(nodes: Sequence[cst.CSTNode], into_defs: bool = True) -> Iterator[cst.CSTNode]:
    for node in nodes:
        yield from _walk(node, into_defs)


def _code(node: cst.CSTNode, limit: int = 60) -> str:
    text = " ".join(cst.Module([]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _keyword(call: cst.Call, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def _positional(call: cst.Call, index: int) -> cst.Arg | None:
    plain = [a for a in call.args if a.keyword is None and not a.star]
    return plain[index] if index < len(plain) else None


def _method(call: cst.Call) -> str | None:
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def _receiver(call: cst.Call) -> str | None:
    return dotted(call.func.value) if isinstance(call.func, cst.Attribute) else None


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _short(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def _has_limiter(nodes: Sequence[cst.CSTNode], ctx: _Context) -> bool:
    """A Semaphore/limiter created or entered here, or a module-level one referenced here."""
    module_limiters = {
        name for name, value in ctx.module.constants.items()
        if isinstance(value, cst.Call) and _is_limiter_call(value, ctx.module)
    }
    for node in _walk_all(nodes):
        if isinstance(node, cst.Call) and _is_limiter_call(node, ctx.module):
            return True
        if isinstance(node, cst.With) and node.asynchronous is not None:
            for item in node.items:
                text = (dotted(item.item) or "").lower()
                if "sem" in text or "limit" in text:
                    return True
        if isinstance(node, cst.Name) and node.value in module_limiters:
            return True
    return False


def _is_limiter_call(call: cst.Call, module: ModuleIndex) -> bool:
    name = module.qualify(call.func) or ""
    return name.endswith(("Semaphore", "CapacityLimiter", "Limiter"))


# ---------------------------------------------------------------- bindings

def _collect_bindings(ctx: _Context) -> None:
    """What local names, module constants and `self` attributes hold (executors, sessions, query rows).

    What the module's constants and the class's `self.<attr>` assignments hold is the same for every
    function of the class: computed once per (module, class), not once per method (quadratic in the
    number of methods)."""
    class_name = ctx.fn.class_name if ctx.fn is not None and ctx.fn.class_name else ""
    memo = ctx.module.memo.setdefault("signal_bindings", {})
    assert isinstance(memo, dict)
    if class_name not in memo:
        # the same for whichever method asks first: no function of its own (a class's method stands in
        # with a node no call resolves to, so every `self.m()` is looked into alike)
        owner = None if ctx.fn is None or not class_name else FunctionRef(
            ctx.fn.qualname, ctx.fn.name, ctx.fn.module, cst.FunctionDef(cst.Name("_"), cst.Parameters(),
                                                                         cst.SimpleStatementSuite(())), class_name)
        shared = _Context(ctx.module, ctx.project, owner, (), failures=ctx.failures)
        for name, value in ctx.module.constants.items():
            kind = _binding_kind(value, shared)
            if kind:
                shared.bindings[name] = kind
        klass = ctx.module.classes.get(class_name) if class_name else None
        for method in klass.methods.values() if klass else ():
            for node in _walk(method.node):
                if isinstance(node, cst.Assign):
                    _bind_targets(node.targets, node.value, shared, only_self=True)
        memo[class_name] = shared.bindings
    ctx.bindings.update(memo[class_name])
    for node in _walk_all(ctx.statements):
        if isinstance(node, cst.Assign):
            _bind_targets(node.targets, node.value, ctx, only_self=False)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            _bind_target(node.target, node.value, ctx, only_self=False)
        elif isinstance(node, cst.With):
            for item in node.items:
                if item.asname is not None:
                    _bind_target(item.asname.name, item.item, ctx, only_self=False)


def _bind_targets(
    targets: Sequence[cst.AssignTarget], value: cst.BaseExpression, ctx: _Context, only_self: bool
) -> None:
    for target in targets:
        _bind_target(target.target, value, ctx, only_self)


def _bind_target(target: cst.BaseExpression, value: cst.BaseExpression, ctx: _Context, only_self: bool) -> None:
    name = dotted(target)
    if name is None or (only_self and not name.startswith("self.")):
        return
    kind = _binding_kind(value, ctx)
    if kind:
        ctx.bindings[name] = kind


def _binding_kind(value: cst.BaseExpression, ctx: _Context) -> str | None:
    if not isinstance(value, cst.Call):
        return None
    name = ctx.qualify(value.func) or ""
    executor = _executor_cap(value, ctx)
    if executor is not None:
        return "executor-capped" if executor[0] else "executor-uncapped"
    if name in _MP_CONTEXT:
        return "mp-context"
    if name in _TASK_GROUPS:
        return "taskgroup"
    if name in _REQUESTS_SESSIONS:
        return "requests-session"
    if name in _SSH_CLIENTS:
        return "ssh-client"
    if name in _HTTPX_CLIENTS:
        timeout = _keyword(value, "timeout")
        return "httpx-no-timeout" if timeout is not None and _is_none(timeout.value) else None
    if name in _URLLIB3_POOLS:
        return None if _keyword(value, "timeout") else "urllib3-no-timeout"
    if _is_query(value, ctx, depth=0):
        return "query"
    return None


# ---------------------------------------------------------------- executors, queries

def _executor_cap(call: cst.Call, ctx: _Context) -> tuple[bool, str] | None:
    """(capped, why) for an executor/pool constructor, None for any other call."""
    name = ctx.qualify(call.func) or ""
    spec = _EXECUTORS.get(name)
    if spec is None and _method(call) == "Pool" and ctx.bindings.get(_receiver(call) or "") == "mp-context":
        spec = ("processes", 0)
    if spec is None:
        return None
    keyword, position = spec
    arg = _keyword(call, keyword) or _positional(call, position)
    if arg is None or _is_none(arg.value):
        return False, f"no {keyword}"
    if isinstance(arg.value, cst.Call) and (ctx.qualify(arg.value.func) or "") == "len":
        return False, f"{keyword}={_code(arg.value, 30)} grows with the input"
    return True, f"{keyword}={_code(arg.value, 30)}"


def _is_query(call: cst.Call, ctx: _Context, depth: int) -> bool:
    """Whether a call returns the rows of a database query (one level into analysed callees)."""
    method = _method(call)
    if method in _QUERY_FETCH or (ctx.qualify(call.func) or "") in _QUERY_CALLS:
        return True
    if method == "execute" and any(s.lstrip().upper().startswith("SELECT") for s in _strings(call)):
        return True
    if method in {"all", "scalars"} and isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Call):
        return _method(call.func.value) in {"query", "execute", "scalars"}
    if method in {"list", "tuple"} or (ctx.qualify(call.func) or "") in {"list", "tuple", "sorted"}:
        return any(isinstance(a.value, cst.Call) and _is_query(a.value, ctx, depth) for a in call.args)
    if depth == 0:
        callee = _callee(call, ctx)
        if callee is not None and callee.node is not (ctx.fn.node if ctx.fn else None):
            returns = [n for n in _walk(callee.node, into_defs=False) if isinstance(n, cst.Return) and n.value]
            sub = _Context(callee.module, ctx.project, callee, [callee.node])
            return bool(returns) and any(
                isinstance(n, cst.Call) and _is_query(n, sub, depth + 1) for n in _walk(callee.node, into_defs=False)
            )
    return False


def _callee(call: cst.Call, ctx: _Context) -> FunctionRef | None:
    func = call.func
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and ctx.fn is not None:
        # `api = Client.from_secret(...)` or `api = Client(...)`, then `api.submit(...)`
        single, counts = _locals_of(ctx.fn)
        made = single.get(func.value.value) if counts.get(func.value.value) == 1 else None
        if isinstance(made, cst.Call):
            maker = made.func.value if isinstance(made.func, cst.Attribute) else made.func
            klass = ctx.project.klass(ctx.module.qualify(maker)) or ctx.project.klass(ctx.module.qualify(made.func))
            if klass is not None:
                return ctx.project.method(klass, func.attr.value)
    name = ctx.qualify(call.func)
    if name is None:
        return None
    if name.startswith("self.") and name.count(".") == 1 and ctx.fn is not None and ctx.fn.class_name:
        klass = ctx.module.classes.get(ctx.fn.class_name)
        return ctx.project.method(klass, name[5:]) if klass else None
    return ctx.project.function(name)


def _locals_of(fn: FunctionRef) -> tuple[dict[str, cst.BaseExpression], dict[str, int]]:
    """A function's locals and how often each is bound, computed once per function."""
    memo = fn.module.memo.setdefault("signal_locals", {})
    assert isinstance(memo, dict)
    if fn.qualname not in memo:
        memo[fn.qualname] = local_assignments(_walk(fn.node.body))
    return memo[fn.qualname]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- the main visitor

class _Visitor(cst.CSTVisitor):
    """One pass over the body: excepts, executors, gathers, waits, remote calls, tasks per row."""

    def __init__(self, ctx: _Context) -> None:
        super().__init__()
        self.ctx = ctx
        #: iterables of the loops and comprehensions we are inside
        self.iterables: list[cst.BaseExpression] = []

    # loops -------------------------------------------------------
    def visit_For(self, node: cst.For) -> None:
        self.iterables.append(node.iter)

    def leave_For(self, original_node: cst.For) -> None:
        self.iterables.pop()

    # a comprehension's element is visited before its `for` clauses: push them all up front
    def _enter_comprehension(self, node: cst.BaseComp | cst.DictComp) -> None:
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            self.iterables.append(clause.iter)
            clause = clause.inner_for_in

    def _leave_comprehension(self, node: cst.BaseComp | cst.DictComp) -> None:
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            self.iterables.pop()
            clause = clause.inner_for_in

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._enter_comprehension(node)

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self._leave_comprehension(original_node)

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._enter_comprehension(node)

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self._leave_comprehension(original_node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._enter_comprehension(node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._leave_comprehension(original_node)

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._enter_comprehension(node)

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self._leave_comprehension(original_node)

    def visit_If(self, node: cst.If) -> bool:
        """`if False:` / `if 0:` never runs its body: a handler parked there is not a hazard."""
        test = node.test
        never = (isinstance(test, cst.Name) and test.value == "False") or (
            isinstance(test, cst.Integer) and test.value == "0")
        if never:
            if node.orelse is not None:
                node.orelse.visit(self)
            return False
        return True

    def visit_While(self, node: cst.While) -> None:
        self.iterables.append(node.test)

    def leave_While(self, original_node: cst.While) -> None:
        self.iterables.pop()

    # excepts -----------------------------------------------------
    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        clause = _broad_clause(node, self.ctx.module, self.ctx.failures)
        if clause is None:
            return
        how = _swallowed(node.body, self.ctx, self.ctx.module.line(node), bool(self.iterables))
        if how is not None:
            self.ctx.add(BROAD_EXCEPT_SWALLOW, node, f"{clause}: {how}")

    # statements --------------------------------------------------
    def visit_Expr(self, node: cst.Expr) -> None:
        call = _awaited(node.value)
        if not isinstance(call, cst.Call):
            return
        name = self.ctx.qualify(call.func) or ""
        if name in _EXIT_STATUS_CALLS and _keyword(call, "check") is None:
            self.ctx.add(EXIT_STATUS_IGNORED, node, f"{name}() as a statement: its exit status is dropped")
        method = _method(call)
        if method in _DROPPED_FUTURES and self.ctx.bindings.get(_receiver(call) or "", "").startswith("executor") \
                and _keyword(call, "error_callback") is None:
            self.ctx.add(FUTURE_DROPPED, node, f"{_code(call.func)}() as a statement: its future is never "
                         "read, so the task's exception is dropped")

    # calls -------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        name = ctx.qualify(node.func) or ""
        executor = _executor_cap(node, ctx)
        if executor is not None:
            capped, why = executor
            label = _short(name) if name else _code(node.func)
            ctx.add(EXECUTOR_CAPPED if capped else EXECUTOR_UNCAPPED, node, f"{label}() with {why}")
        self._gather(node, name)
        self._wait(node, name)
        self._remote(node, name)
        self._task_per_row(node, name)

    def _gather(self, node: cst.Call, name: str) -> None:
        if self.ctx.limited:
            return
        if name == "asyncio.gather" and any(a.star == "*" for a in node.args):
            if self._gathers_limited_callee(node):
                return
            self.ctx.add(GATHER_UNBOUNDED, node, f"{_code(node)} starts every task at once, with no Semaphore")
        elif (
            _method(node) in {"create_task", "start_soon"}
            and self.iterables
            and self.ctx.bindings.get(_receiver(node) or "") == "taskgroup"
        ):
            self.ctx.add(GATHER_UNBOUNDED, node, f"{_code(node.func)}() once per loop iteration, with no Semaphore")

    def _gathers_limited_callee(self, node: cst.Call) -> bool:
        for arg in node.args:
            if arg.star != "*":
                continue
            element = arg.value.elt if isinstance(arg.value, cst.GeneratorExp | cst.ListComp) else None
            if isinstance(element, cst.Call):
                callee = _callee(element, self.ctx)
                sub = _Context(callee.module, self.ctx.project, callee, []) if callee is not None else None
                if callee is not None and sub is not None and _has_limiter([callee.node], sub):
                    return True
        return False

    def _wait(self, node: cst.Call, name: str) -> None:
        method = _method(node)
        if name in _WAITS:
            positional_timeout = _positional(node, 1) if name.startswith("concurrent.") else None
            if _keyword(node, "timeout") is None and positional_timeout is None:
                self.ctx.add(WAIT_NO_TIMEOUT, node, f"{_short(name)}() without timeout")
        elif name == "ray.get" and _keyword(node, "timeout") is None:
            self.ctx.add(WAIT_NO_TIMEOUT, node, "ray.get() without timeout")
        elif (method in {"result", "join"} and not node.args) or (
            method == "get" and _keyword(node, "timeout") is None and _blocking_get(node)
            and not self._object_accessor(node)
        ):
            self.ctx.add(WAIT_NO_TIMEOUT, node, f"{_code(node.func)}() without timeout")

    def _object_accessor(self, node: cst.Call) -> bool:
        """`resource.Object(bucket, key).get()`: a storage object's download, not a queue or AsyncResult.

        The receiver is a capitalised accessor called on a variable (a client or resource object),
        which is how SDKs hand out sub-objects; `queue.Queue().get()` names a class of a module instead.
        """
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        if not isinstance(receiver, cst.Call) or not isinstance(receiver.func, cst.Attribute):
            return False
        accessor = receiver.func.attr.value
        if not accessor[:1].isupper() or accessor in _WAITABLE_ACCESSORS:
            return False
        head: cst.BaseExpression = receiver.func.value
        while isinstance(head, cst.Attribute | cst.Call | cst.Subscript):
            head = head.func if isinstance(head, cst.Call) else head.value
        return isinstance(head, cst.Name) and head.value not in self.ctx.module.imports

    def _remote(self, node: cst.Call, name: str) -> None:
        method = _method(node)
        timeout = _keyword(node, "timeout")
        missing = timeout is None or _is_none(timeout.value)
        module = name.split(".", 1)[0]
        if module == "requests" and _short(name) in _HTTP_VERBS and name.count(".") <= 2 and missing:
            self.ctx.add(REMOTE_NO_TIMEOUT, node, f"{_short(name)} request to {self._url(node)} without timeout=")
        elif module == "httpx" and _short(name) in _HTTP_VERBS and timeout is not None and _is_none(timeout.value):
            self.ctx.add(REMOTE_NO_TIMEOUT, node, f"{_short(name)} request to {self._url(node)} with timeout=None")
        elif name in {"urllib.request.urlopen", "urllib3.request"} and missing and _positional(node, 2) is None:
            self.ctx.add(REMOTE_NO_TIMEOUT, node, f"{_short(name)}({self._url(node)}) without timeout=")
        elif name in _BLOCKING_CONNECTS:
            host_at, timeout_at = _BLOCKING_CONNECTS[name]
            host = _keyword(node, "host") or _keyword(node, "address") or _positional(node, host_at)
            if host is not None and missing and _positional(node, timeout_at) is None:
                self.ctx.add(REMOTE_NO_TIMEOUT, node, f"{name}({_code(host.value, 30)}) connects without timeout=")
        elif method is not None:
            bound = self.ctx.bindings.get(_receiver(node) or "")
            if bound == "requests-session" and method in _HTTP_VERBS and missing:
                self.ctx.add(REMOTE_NO_TIMEOUT, node, f"Session.{method} to {self._url(node)} without timeout=")
            elif bound == "httpx-no-timeout" and method in _HTTP_VERBS and timeout is None:
                self.ctx.add(REMOTE_NO_TIMEOUT, node, f"{method} on an httpx client built with timeout=None")
            elif bound == "urllib3-no-timeout" and method in {"request", "urlopen"} and missing:
                self.ctx.add(REMOTE_NO_TIMEOUT, node, f"urllib3 {method} without timeout=")
            elif bound == "ssh-client" and method == "connect" and missing:
                self.ctx.add(REMOTE_NO_TIMEOUT, node, f"SSHClient.connect({self._url(node)}) without timeout=")

    @staticmethod
    def _url(node: cst.Call) -> str:
        arg = _keyword(node, "url") or _positional(node, 0)
        return _code(arg.value, 40) if arg is not None else "a URL"

    def _task_per_row(self, node: cst.Call, name: str) -> None:
        method = _method(node)
        receiver = self.ctx.bindings.get(_receiver(node) or "")
        if receiver == "executor-capped":
            return  # bounded concurrency: the near-miss
        is_task = (method in _TASK_METHODS) or name in _TASK_CALLS
        if is_task:
            for iterable in self.iterables:
                source = self._query_source(iterable)
                if source:
                    self.ctx.add(TASK_PER_ROW, node, f"{_code(node.func)}() once per row of {source}")
                    return
        elif method in _MAP_METHODS and receiver == "executor-uncapped":
            for arg in node.args[1:2]:
                source = self._query_source(arg.value)
                if source:
                    self.ctx.add(TASK_PER_ROW, node, f"{_code(node.func)}() over every row of {source}")
                    return

    def _query_source(self, iterable: cst.BaseExpression) -> str | None:
        name = dotted(iterable)
        if name is not None and self.ctx.bindings.get(name) == "query":
            return f"`{name}` (a query result)"
        if isinstance(iterable, cst.Call) and _is_query(iterable, self.ctx, depth=0):
            return f"{_code(iterable, 40)} (a query result)"
        return None


#: capitalised accessors that do hand out something to wait on (`app.AsyncResult(task_id).get()`)
_WAITABLE_ACCESSORS = frozenset({"AsyncResult", "GroupResult", "Queue", "JoinableQueue", "SimpleQueue",
                                 "LifoQueue", "PriorityQueue", "Future", "Event"})


def _blocking_get(node: cst.Call) -> bool:
    """`.get()`, `.get(True)`, `.get(block=True)`: a blocking queue/AsyncResult get (dict.get needs a key)."""
    if not node.args:
        return True
    if len(node.args) == 1:
        arg = node.args[0]
        is_true = isinstance(arg.value, cst.Name) and arg.value.value == "True"
        return is_true and (arg.keyword is None or arg.keyword.value == "block")
    return False


# ---------------------------------------------------------------- broad excepts

def _broad_clause(handler: cst.ExceptHandler, module: ModuleIndex, failures: tuple[str, ...] = ()) -> str | None:
    """`except Exception`, a bare `except`, or an exception that means an external system failed."""
    if handler.type is None:
        return "bare except"
    types = [e.value for e in handler.type.elements] if isinstance(handler.type, cst.Tuple) else [handler.type]
    for expr in types:
        name = module.qualify(expr)
        if name in _BROAD:
            return f"except {_short(name)}"
    for expr in types:
        name = module.qualify(expr) or ""
        if name and any(fnmatchcase(name, pattern) for pattern in failures):
            return f"except {_code(expr)}"
    return None


def is_log_call(call: cst.Call, module: ModuleIndex, project: Project | None = None) -> bool:
    """print, logging, warnings, traceback printing: a message to a person (`project` resolves a
    logger imported from another module of the project)."""
    name = module.qualify(call.func) or ""
    if name in _LOG_CALLS:
        return True
    if project is not None and isinstance(call.func, cst.Name):
        helper = project.function(name)
        if helper is not None and _only_logs(helper.node, helper.module):
            return True  # a project `log(msg)` that prints a timestamped line
    method = _method(call)
    if method not in _LOG_METHODS:
        return False
    receiver = _receiver(call) or ""
    return ("log" in receiver.lower() or name.startswith(("logging.", "loguru."))
            or _is_logger(receiver, module, project))


def _only_logs(fn: cst.FunctionDef, module: ModuleIndex) -> bool:
    """A function whose body only writes a message (log calls, `sys.stdout.write`) after computing
    locals (a timestamp): calling it records nothing a run could act on. A `global`, a branch or any
    other statement (a flag set on errors, a buffer kept for a report) makes it more than a log line."""
    statements = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else [fn.body]
    logged = False
    for index, statement in enumerate(statements):
        smalls = statement.body if isinstance(statement, cst.SimpleStatementLine) else None
        if smalls is None:
            return False
        for small in smalls:
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString) and index == 0:
                continue  # the docstring
            if isinstance(small, cst.Assign) and all(isinstance(t.target, cst.Name | cst.Tuple) for t in small.targets):
                continue
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and is_log_call(small.value, module):
                logged = True
                continue
            return False
    return logged


def _is_logger(receiver: str, module: ModuleIndex, project: Project | None) -> bool:
    """`lgr` bound at module level to `logging.getLogger(...)` (or structlog's factory), here or in the
    project module it is imported from (`from app.config import lgr`)."""
    value = module.constants.get(receiver)
    if value is None and project is not None and receiver in module.imports:
        owner_name, _, attr = module.imports[receiver].rpartition(".")
        owner = project.module_of(owner_name) if owner_name else None
        if owner is not None and owner is not module:
            module, value = owner, owner.constants.get(attr)
    return isinstance(value, cst.Call) and (module.qualify(value.func) or "") in _LOGGER_FACTORIES


def _swallowed(body: cst.BaseSuite, ctx: _Context, line: int = 0, in_loop: bool = False) -> str | None:
    """How a broad handler (at `line`, `in_loop` or not) drops the failure, or None when it re-raises
    or records it."""
    if any(isinstance(n, cst.Raise) for n in _walk(body, into_defs=False)):
        return None
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    hows: list[str] = []
    logged = False
    for statement in statements:
        smalls = statement.body if isinstance(statement, cst.SimpleStatementLine | cst.SimpleStatementSuite) else None
        if smalls is None or isinstance(smalls, cst.BaseSuite):
            return None  # an if/for/with in the handler: assume it handles the failure
        for small in smalls:
            if isinstance(small, cst.Pass):
                hows.append("pass")
            elif isinstance(small, cst.Continue):
                hows.append("continue")
            elif isinstance(small, cst.Break):
                hows.append("break")
            elif isinstance(small, cst.Return):
                if small.value is None or _is_none(small.value):
                    hows.append("return None")
                elif _is_default(small.value, ctx.module):
                    hows.append("return a default")
                elif isinstance(small.value, cst.Name) and _still_placeholder(small.value.value, line, in_loop, ctx):
                    hows.append("return a default")  # `codes = []` ... `except ...: return codes`
                else:
                    return None
            elif isinstance(small, cst.Assign | cst.AnnAssign) and small.value is not None:
                if not _is_placeholder(small.value, ctx.module):
                    return None  # `ok = False`, `status = "failed"`: the failure is recorded
                hows.append(PLACEHOLDER)
            elif isinstance(small, cst.Expr) and isinstance(call := _awaited(small.value), cst.Call):
                if _method(call) == "rollback":
                    hows.append("rollback only")
                elif _method(call) == "append" and len(call.args) == 1 \
                        and _is_placeholder(call.args[0].value, ctx.module):
                    hows.append(PLACEHOLDER)
                elif not is_log_call(call, ctx.module, ctx.project):
                    return None
                else:
                    logged = True
            else:
                return None
    dropped = [h for h in hows if h != "pass"]
    if logged:
        return f"logged, then {dropped[0]}" if dropped else LOGGED_ONLY
    return dropped[0] if dropped else "pass"


def _still_placeholder(name: str, line: int, in_loop: bool, ctx: _Context) -> bool:
    """`name` can only hold the placeholder it was given (`codes = []`) when the handler at `line`
    runs: every binding before it is a placeholder, nothing before it mutates it (a method call, an
    item or augmented assignment, a loop target) and, in a loop, nothing after it does either."""
    if ctx.fn is None:
        return False
    bound = False
    for node in _walk_all(ctx.statements, into_defs=False):
        placeholder = _placeholder_binding(node, name, ctx.module)
        if not placeholder and not _changes(node, name):
            continue
        before = ctx.module.line(node) < line
        if not placeholder and (before or in_loop):
            return False
        bound = bound or (before and placeholder)
    return bound


def _placeholder_binding(node: cst.CSTNode, name: str, module: ModuleIndex) -> bool:
    """`name = []` (or another placeholder)."""
    if not isinstance(node, cst.Assign | cst.AnnAssign) or node.value is None:
        return False
    targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
    return any(isinstance(t, cst.Name) and t.value == name for t in targets) and _is_placeholder(node.value, module)


def _changes(node: cst.CSTNode, name: str) -> bool:
    """Whether `node` (not a placeholder binding) may rebind `name` or change what it holds."""
    if isinstance(node, cst.Assign | cst.AnnAssign):
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        return any(_root_name(t) == name if isinstance(t, cst.Subscript | cst.Attribute) else name in _names_in(t)
                   for t in targets)
    if isinstance(node, cst.AugAssign | cst.For | cst.NamedExpr):
        return name in _names_in(node.target)
    if isinstance(node, cst.With):
        return any(item.asname is not None and name in _names_in(item.asname.name) for item in node.items)
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and _root_name(node.func) == name


def _root_name(expr: cst.BaseExpression) -> str | None:
    """The name an attribute or subscript chain starts from: `codes` of `codes.append`, `df["x"]`."""
    while isinstance(expr, cst.Attribute | cst.Subscript):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _names_in(node: cst.CSTNode) -> set[str]:
    return {n.value for n in _walk(node) if isinstance(n, cst.Name)}


def _awaited(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`await session.rollback()` is the call it awaits."""
    return expr.expression if isinstance(expr, cst.Await) else expr


def _is_placeholder(expr: cst.BaseExpression, module: ModuleIndex) -> bool:
    """A stand-in for a missing value: `None`, `np.nan`, `float("nan")`, an empty container or frame."""
    if _is_none(expr):
        return True
    if isinstance(expr, cst.Name | cst.Attribute):
        return (module.qualify(expr) or "") in _PLACEHOLDERS
    if isinstance(expr, cst.Call):
        name = dotted(expr.func) or ""
        if name == "float" and len(expr.args) == 1 and isinstance(expr.args[0].value, cst.SimpleString):
            return str(expr.args[0].value.evaluated_value).lower() == "nan"
        return not expr.args and name.rsplit(".", 1)[-1] in _EMPTY_FACTORIES
    return isinstance(expr, cst.List | cst.Dict | cst.Tuple | cst.Set) and not getattr(expr, "elements", None)


def _is_default(expr: cst.BaseExpression, module: ModuleIndex) -> bool:
    """A value made of constants that stands in for a result: `0`, `"n/a"`, `["*"]`, or a placeholder."""
    if _is_placeholder(expr, module):
        return True
    if isinstance(expr, cst.Integer | cst.Float | cst.SimpleString):
        return True
    if isinstance(expr, cst.UnaryOperation):
        return isinstance(expr.expression, cst.Integer | cst.Float)
    if isinstance(expr, cst.Name):
        return expr.value in {"True", "False"}
    if isinstance(expr, cst.List | cst.Tuple | cst.Set):
        return all(isinstance(e, cst.Element) and _is_default(e.value, module) for e in expr.elements)
    if isinstance(expr, cst.Dict):
        return all(
            isinstance(e, cst.DictElement) and _is_default(e.key, module) and _is_default(e.value, module)
            for e in expr.elements
        )
    return False


# ---------------------------------------------------------------- retries

def _retry_signals(ctx: _Context) -> None:
    if ctx.fn is not None:
        label = _retry_decorator(ctx.fn, ctx)
        if label is not None:
            _non_idempotent_write(ctx.statements, ctx, label)
            return
    for node in _walk_all(ctx.statements, into_defs=False):
        if isinstance(node, cst.For | cst.While):
            label = _retry_loop(node, ctx)
            if label is not None:
                _non_idempotent_write([node.body], ctx, label)


def _retry_decorator(fn: FunctionRef, ctx: _Context) -> str | None:
    for decorator in fn.node.decorators:
        expr = decorator.decorator
        call = expr if isinstance(expr, cst.Call) else None
        name = ctx.qualify(call.func if call else expr) or ""
        if name in _RETRY_DECORATORS:
            return f"@{name}"
        if call is not None and (_keyword(call, "autoretry_for") or _keyword(call, "retry_backoff")):
            return f"@{_short(name)}(autoretry_for=...)"
        keyword = _ORCHESTRATOR_RETRIES.get(name) or _ORCHESTRATOR_RETRIES.get(name.rsplit(".", 1)[0])  # @task.python
        retries = _keyword(call, keyword) if call is not None and keyword else None
        if call is not None and retries is not None and not _is_zero(retries.value):
            return f"@{_code(call.func, 30)}({keyword}={_code(retries.value, 20)})"
    for node in _walk_all(ctx.statements, into_defs=False):
        if isinstance(node, cst.Call) and (dotted(node.func) or "") == "self.retry":
            return "self.retry()"
    return None


def _retry_loop(loop: cst.For | cst.While, ctx: _Context) -> str | None:
    """A loop that retries its body: `for attempt in range(n): try ... except: continue`."""
    if isinstance(loop, cst.For):
        if isinstance(loop.iter, cst.Call) and (ctx.qualify(loop.iter.func) or "") in _RETRY_ITERATORS:
            return f"for ... in {_short(ctx.qualify(loop.iter.func) or '')}()"
        if not (isinstance(loop.iter, cst.Call) and ctx.qualify(loop.iter.func) == "range"):
            return None
        label = f"retry loop `for {_code(loop.target, 20)} in {_code(loop.iter, 30)}`"
    else:
        label = f"retry loop `while {_code(loop.test, 30)}`"
    for node in _walk(loop.body, into_defs=False):
        if not isinstance(node, cst.Try):
            continue
        exits = any(isinstance(n, cst.Break | cst.Return) for n in _walk(node.body, into_defs=False))
        for handler in node.handlers:
            last = handler.body.body[-1] if isinstance(handler.body, cst.IndentedBlock) and handler.body.body else None
            reraises = isinstance(last, cst.SimpleStatementLine) and any(isinstance(s, cst.Raise) for s in last.body)
            retries = any(isinstance(n, cst.Continue) for n in _walk(handler.body, into_defs=False))
            if not reraises and (exits or retries):
                return label
    return None


def _is_zero(expr: cst.BaseExpression) -> bool:
    """`0` or `None`: no retry at all."""
    return (isinstance(expr, cst.Integer) and expr.evaluated_value == 0) or _is_none(expr)


def _non_idempotent_write(scope: Sequence[cst.CSTNode], ctx: _Context, label: str, depth: int = 0) -> bool:
    """Signal the first non-idempotent write in `scope` (one level into analysed callees)."""
    if _mentions_idempotency(scope):
        return False
    for node in _walk_all(scope, into_defs=False):
        what = _write_kind(node, ctx)
        if what is not None:
            ctx.add(RETRY_NONIDEMPOTENT, node, f"{label} around {what}, with no idempotency key")
            return True
        if depth == 0 and isinstance(node, cst.Call):
            callee = _callee(node, ctx)
            if callee is not None and (ctx.fn is None or callee.node is not ctx.fn.node):
                sub = _Context(callee.module, ctx.project, callee, [callee.node])
                found = _first_write(callee, sub, {callee.qualname})
                if found is not None and not _mentions_idempotency([callee.node]):
                    ctx.add(RETRY_NONIDEMPOTENT, node, f"{label} around {_code(node.func)}(), which does {found}, "
                                                       "with no idempotency key")
                    return True
    return False


#: how many analysed calls below a retried call a non-idempotent write is still looked for
_WRITE_DEPTH = 3


def _first_write(fn: FunctionRef, ctx: _Context, seen: set[str], depth: int = 1) -> str | None:
    """The first non-idempotent write in `fn`, or in the analysed functions it calls (a task under
    `@task(retries=1)` whose helper's helper POSTs), up to `_WRITE_DEPTH` calls down; a helper that
    speaks of idempotency (a dedup key, an upsert) is taken at its word."""
    for node in _walk(fn.node.body, into_defs=False):
        what = _write_kind(node, ctx)
        if what is not None:
            return what
        if depth < _WRITE_DEPTH and isinstance(node, cst.Call):
            callee = _callee(node, ctx)
            if callee is None or callee.qualname in seen or _mentions_idempotency([callee.node]):
                continue
            seen.add(callee.qualname)
            found = _first_write(callee, _Context(callee.module, ctx.project, callee, [callee.node]), seen, depth + 1)
            if found is not None:
                return f"{found} in {callee.name}()"
    return None


def _write_kind(node: cst.CSTNode, ctx: _Context) -> str | None:
    if isinstance(node, cst.Call):
        method = _method(node) or _short(ctx.qualify(node.func) or "")
        if method in {"post", "patch"}:
            return f"an HTTP {method.upper()} ({_code(node.func)})"
        if method == "request":
            verb = _positional(node, 0) or _keyword(node, "method")
            text = next(iter(_strings(verb.value)), "").upper() if verb is not None else ""
            if text in {"POST", "PATCH"}:
                return f"an HTTP {text} ({_code(node.func)})"
        if method in _PUBLISH and isinstance(node.func, cst.Attribute):
            return f"a {_PUBLISH[method]} ({_code(node.func)})"
        if method == "to_sql" and isinstance(node.func, cst.Attribute):
            mode = _keyword(node, "if_exists")
            if mode is not None and "append" in _strings(mode.value):
                return f"a table append ({_code(node.func)}(if_exists=\"append\"))"
        return None
    if isinstance(node, cst.SimpleString | cst.FormattedString):
        text = " ".join("".join(_strings(node)).upper().split())
        if "INSERT " in text and "INTO" in text and not any(marker in text for marker in _SAFE_INSERT):
            return "an SQL INSERT without ON CONFLICT/MERGE"
    return None


def _mentions_idempotency(scope: Sequence[cst.CSTNode]) -> bool:
    for node in _walk_all(scope):
        texts: list[str] = []
        if isinstance(node, cst.Name):
            texts.append(node.value)
        elif isinstance(node, cst.SimpleString):
            texts.extend(_strings(node))
        for text in texts:
            lowered = text.lower().replace("-", "_")
            if any(marker.replace("-", "_") in lowered for marker in _IDEMPOTENCY_MARKERS):
                return True
    return False


# ---------------------------------------------------------------- dedup before validation, in one body

_MISSING_TESTS = frozenset({"notna", "notnull", "isna", "isnull"})


def _dedup_then_validate(ctx: _Context) -> None:
    """A frame deduplicated by a key, then filtered for missing values, within one function: when the
    copy the dedup kept has the missing value, the filter drops it and the complete duplicate is gone.
    Deduplicating whole rows is safe (duplicates are identical), so only a key (`subset=`) counts."""
    deduped: dict[str, int] = {}
    signalled: set[str] = set()
    for node in _walk_all(ctx.statements, into_defs=False):
        if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
            continue
        method = node.func.attr.value
        frame = _code(node.func.value, 60)
        if method in {"drop_duplicates", "duplicated"} and (_keyword(node, "subset") or _positional(node, 0)):
            deduped.setdefault(frame, ctx.module.line(node))
            continue
        if method == "dropna":
            key = frame
        elif method in _MISSING_TESTS and not node.args and isinstance(node.func.value, cst.Subscript | cst.Attribute):
            key = _code(node.func.value.value, 60)  # `df["c"].notna()`, `df.c.isnull()`: the frame is `df`
        else:
            continue
        line = ctx.module.line(node)
        if key in deduped and key not in signalled and line > deduped[key]:
            signalled.add(key)
            ctx.add(DEDUP_THEN_VALIDATE, node, f"`{key}` is deduplicated by key on line {deduped[key]}, then "
                    f"filtered on `{_code(node, 50)}`")


# ---------------------------------------------------------------- order-dependent state

def _loops(statements: Sequence[cst.CSTNode]) -> Iterator[cst.For]:
    for node in _walk_all(statements, into_defs=False):
        if isinstance(node, cst.For):
            yield node


@dataclass(slots=True)
class _Event:
    action: str  # "load" | "store" | "aug"
    name: str
    value: cst.BaseExpression | None = None
    #: the nested blocks of the loop body the event sits in (see `_dominated`)
    path: tuple[tuple[int, int], ...] | None = None


@dataclass(slots=True)
class _Sink:
    loads: set[str]


def _order_state(loop: cst.For, ctx: _Context) -> None:
    """Signal a loop that carries state across iterations and writes it into records or output."""
    if isinstance(loop.iter, cst.Call) and ctx.qualify(loop.iter.func) == "range":
        return  # counting, not records
    element = set(_target_names(loop.target))
    events: list[_Event] = []
    sinks: list[_Sink] = []
    tests: list[tuple[set[str], bool]] = []  # (names an `if` tests, whether its body writes output)
    _events(loop.body.body if isinstance(loop.body, cst.IndentedBlock) else [], events, sinks, tests)
    stores: dict[str, list[_Event]] = {}
    for event in events:
        if event.action in {"store", "aug"}:
            stores.setdefault(event.name, []).append(event)
    derived = _derived_from(element, events)
    for name, found in stores.items():
        if name in element:
            continue
        first_store = next(i for i, e in enumerate(events) if e.name == name and e.action in {"store", "aug"})
        read_before = any(e.name == name and e.action == "load" for e in events[:first_store])
        first = events[first_store]
        if not read_before and first.action == "store" and _loads(first.value) & derived:
            continue  # assigned afresh from the current record before any use: nothing carries over
        if not read_before and first.action == "store" and _dominated(first, events[first_store + 1:]):
            continue  # reset (`count = 0`) in a block every later use sits in: nothing carries over
        how: str | None = None
        if any(e.action == "aug" for e in found):
            how = f"running value `{name}` is updated per record and written into the output"
        elif read_before and any(_loads(e.value) & derived for e in found if e.value is not None):
            how = f"`{name}` keeps the previous record and is compared with the next one"
        elif (
            read_before
            and len({_code(e.value) for e in found if e.value is not None}) >= 2
            and any(name in names and writes for names, writes in tests)
        ):
            ctx.add(ORDER_DEPENDENT_STATE, loop, f"state machine on `{name}` decides what each record becomes")
            return
        if how is not None and any(name in sink.loads for sink in sinks):
            ctx.add(ORDER_DEPENDENT_STATE, loop, how)
            return


def _keyed_update(target: cst.BaseExpression, value: cst.BaseExpression) -> str | None:
    """`name` when the statement is `name[key] = f(name[key] or name.get(key, ...))`: a per-key running value.

    The same key on both sides is what makes it an accumulator; `r["gap"] = r["ts"] - prev["ts"]`
    writes a field of the record itself.
    """
    if not isinstance(target, cst.Subscript) or len(target.slice) != 1:
        return None
    name = _state_name(target.value)
    key = target.slice[0].slice
    if name is None or not isinstance(key, cst.Index):
        return None
    if isinstance(key.value, cst.SimpleString | cst.Integer | cst.ConcatenatedString):
        return None  # `df["date"] = f(df["date"])` rewrites one fixed column: no key per record

    wanted = _code(key.value, limit=10_000)
    for node in _walk(value):
        if isinstance(node, cst.Subscript) and _state_name(node.value) == name and len(node.slice) == 1:
            other = node.slice[0].slice
            if isinstance(other, cst.Index) and _code(other.value, limit=10_000) == wanted:
                return name
        if (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "get"
                and _state_name(node.func.value) == name and node.args
                and _code(node.args[0].value, limit=10_000) == wanted):
            return name
    return None


def _target_names(target: cst.BaseExpression) -> Iterator[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, cst.Tuple | cst.List):
        for element in target.elements:
            yield from _target_names(element.value)


def _derived_from(element: set[str], events: list[_Event]) -> set[str]:
    """Loop-element names plus locals assigned from them within the iteration."""
    derived = set(element)
    for event in events:
        if event.action == "store" and event.value is not None and _loads(event.value) & derived:
            derived.add(event.name)
    return derived


def _state_name(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.Name):
        return expr.value
    name = dotted(expr)
    if name is not None and name.startswith("self.") and name.count(".") == 1:
        return name
    return None


def _loads(node: cst.CSTNode | None) -> set[str]:
    if node is None:
        return set()
    names: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Lambda | cst.FunctionDef | cst.ClassDef):
            continue
        if isinstance(current, cst.Attribute) and _state_name(current):
            names.add(_state_name(current) or "")
            continue
        if isinstance(current, cst.Attribute):  # `record.item_id` loads `record`, not a name `item_id`
            stack.append(current.value)
            continue
        if isinstance(current, cst.Name):
            names.add(current.value)
            continue
        stack.extend(_children(current))
    return names


def _dominated(store: _Event, later: Sequence[_Event]) -> bool:
    """Every later event on the store's name sits in the block the store sits in (or deeper): each
    iteration that uses the name has just set it, so no value survives from the previous record."""
    where = store.path or ()
    return all((e.path or ())[:len(where)] == where for e in later if e.name == store.name)


def _events(
    statements: Sequence[cst.CSTNode], events: list[_Event], sinks: list[_Sink], tests: list[tuple[set[str], bool]],
    path: tuple[tuple[int, int], ...] = (),
) -> None:
    """Loads, stores and output writes of a loop body, in execution order, each with its block path."""
    for statement in statements:
        start = len(events)

        def inner(body: Sequence[cst.CSTNode], arm: int, node: cst.CSTNode = statement) -> None:
            _events(body, events, sinks, tests, (*path, (id(node), arm)))

        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                _small_events(small, events, sinks)
        elif isinstance(statement, cst.If):
            before = len(sinks)
            events.extend(_Event("load", n) for n in _loads(statement.test))
            inner(_suite(statement.body), 0)
            tests.append((_loads(statement.test), len(sinks) > before))
            if statement.orelse is not None:
                branch = statement.orelse
                inner([branch] if isinstance(branch, cst.If) else _suite(branch.body), 1)
        elif isinstance(statement, cst.For):
            events.extend(_Event("load", n) for n in _loads(statement.iter))
            # an inner loop's element is taken from what it iterates (`for field in table.fields`): a
            # local assigned from it is as fresh per record as one assigned from the outer element
            names = set(_target_names(statement.target))
            source = statement.iter if not _loads(statement.iter) & names else None  # not `[v for v in vs]`
            loop = (*path, (id(statement), 0))
            events.extend(_Event("store", n, source, loop) for n in sorted(names))
            inner(_suite(statement.body), 0)
        elif isinstance(statement, cst.While):
            events.extend(_Event("load", n) for n in _loads(statement.test))
            inner(_suite(statement.body), 0)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                events.extend(_Event("load", n) for n in _loads(item.item))
            _events(_suite(statement.body), events, sinks, tests, path)
        elif isinstance(statement, cst.Try):
            inner(_suite(statement.body), 0)
            for arm, handler in enumerate(statement.handlers, start=1):
                inner(_suite(handler.body), arm)
            for arm, extra in enumerate((statement.orelse, statement.finalbody), start=len(statement.handlers) + 1):
                if extra is not None:
                    inner(_suite(extra.body), arm)
        for event in events[start:]:
            if event.path is None:
                event.path = path


def _suite(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    return suite.body if isinstance(suite, cst.IndentedBlock) else [suite]


def _small_events(small: cst.BaseSmallStatement, events: list[_Event], sinks: list[_Sink]) -> None:
    if isinstance(small, cst.Assign | cst.AnnAssign):
        value = small.value
        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
        value_loads = _loads(value)
        events.extend(_Event("load", n) for n in value_loads)
        for target in targets:
            state = _state_name(target)
            if state is not None:
                events.append(_Event("store", state, value))
            elif isinstance(target, cst.Tuple | cst.List):
                events.extend(_Event("store", n, value) for n in _target_names(target))
            elif value is not None and (keyed := _keyed_update(target, value)) is not None:
                # balance[customer] = balance.get(customer, 0) + x: a running value kept per key
                events.append(_Event("aug", keyed, value))
            else:  # row["total"] = total, rec.seq = seq: a write into a record
                events.extend(_Event("load", n) for n in _loads(target))
                sinks.append(_Sink(value_loads))
    elif isinstance(small, cst.AugAssign):
        state = _state_name(small.target)
        value_loads = _loads(small.value)
        events.extend(_Event("load", n) for n in value_loads)
        if state is not None:
            events.append(_Event("load", state))
            events.append(_Event("aug", state, small.value))
        else:
            events.extend(_Event("load", n) for n in _loads(small.target))
            sinks.append(_Sink(value_loads))
    elif isinstance(small, cst.Expr):
        value = small.value
        events.extend(_Event("load", n) for n in _loads(value))
        if isinstance(value, cst.Yield | cst.Await) and isinstance(getattr(value, "value", None), cst.BaseExpression):
            sinks.append(_Sink(_loads(value)))
        elif isinstance(value, cst.Call) and _method(value) in _SINK_METHODS:
            sinks.append(_Sink(set().union(*(_loads(a.value) for a in value.args)) if value.args else set()))
    else:
        events.extend(_Event("load", n) for n in _loads(small))
