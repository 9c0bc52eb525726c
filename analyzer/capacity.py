"""Pool sizes and executor caps read from the code, for the plan's resource capacity check.

The facts layer records which stages touch which connection (`Resource`), not how big its pool
is, so this is a small libcst pass of its own: assignments like `engine = create_engine(url,
pool_size=20)`, `conn = psycopg2.connect(dsn)` (one connection), `ThreadedConnectionPool(1, 8)`
and `ThreadPoolExecutor(max_workers=4)`. Only literal sizes count; anything else is reported as
unknown rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

SQLALCHEMY_DEFAULT_POOL, SQLALCHEMY_DEFAULT_OVERFLOW = 5, 10
_SINGLE_CONNECTION = {"connect"}  # psycopg2.connect, sqlite3.connect, pymysql.connect, ...
_HINTS = ("create_engine", "connect(", "ConnectionPool", "Executor", "Pool(")


@dataclass(frozen=True, slots=True)
class Pool:
    """A connection pool or executor created in the code, and how many users it admits at once."""

    name: str  # the variable it is bound to (what `Resource.name` calls it)
    kind: str  # "sqlalchemy-engine", "connection", "connection-pool", "executor"
    capacity: int | None  # None: not a literal, or unbounded
    detail: str
    file: str
    line: int


def scan(root: Path, files: Iterable[str] | None = None) -> tuple[Pool, ...]:
    """Every pool and executor bound to a name in the Python files under `root` (or just `files`)."""
    paths = [root / f for f in files] if files is not None else sorted(root.rglob("*.py"))
    pools: list[Pool] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not any(hint in text for hint in _HINTS):
            continue
        try:
            wrapper = MetadataWrapper(cst.parse_module(text))
        except cst.ParserSyntaxError:
            continue
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        visitor = _PoolVisitor(rel)
        wrapper.visit(visitor)
        pools.extend(visitor.pools)
    return tuple(sorted(pools, key=lambda p: (p.file, p.line, p.name)))


def _dotted(node: cst.CSTNode) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _literal_int(node: cst.BaseExpression | None) -> int | None:
    return int(node.evaluated_value) if isinstance(node, cst.Integer) else None


class _PoolVisitor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.pools: list[Pool] = []

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.value, cst.Call):
            return
        name = _dotted(node.targets[0].target).rsplit(".", 1)[-1]
        if name:
            self._add(_pool_of(node.value, name, self.file, self.get_metadata(PositionProvider, node).start.line))

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if isinstance(node.item, cst.Call) and node.asname is not None:
            pool = _pool_of(node.item, _dotted(node.asname.name), self.file,
                            self.get_metadata(PositionProvider, node).start.line)
            self._add(pool if pool is not None and pool.kind == "executor" else None)

    def _add(self, pool: Pool | None) -> None:
        if pool is not None:
            self.pools.append(pool)


def _pool_of(call: cst.Call, name: str, file: str, line: int) -> Pool | None:
    callee = _dotted(call.func)
    last = callee.rsplit(".", 1)[-1]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    if last in ("create_engine", "create_async_engine"):
        if "poolclass" in keywords:
            return Pool(name, "sqlalchemy-engine", None, f"{callee}(poolclass=...)", file, line)
        size = _literal_int(keywords["pool_size"]) if "pool_size" in keywords else SQLALCHEMY_DEFAULT_POOL
        overflow = (_literal_int(keywords["max_overflow"]) if "max_overflow" in keywords
                    else SQLALCHEMY_DEFAULT_OVERFLOW)
        if size is None or overflow is None:
            return Pool(name, "sqlalchemy-engine", None, f"{callee}(pool_size not a literal)", file, line)
        detail = (f"pool_size={size}{'' if 'pool_size' in keywords else ' (default)'}, "
                  f"max_overflow={overflow}{'' if 'max_overflow' in keywords else ' (default)'}")
        return Pool(name, "sqlalchemy-engine", size + max(overflow, 0), detail, file, line)
    if last in ("ThreadedConnectionPool", "SimpleConnectionPool", "AbstractConnectionPool"):
        maxconn = keywords.get("maxconn") or (positional[1] if len(positional) > 1 else None)
        size = _literal_int(maxconn)
        return Pool(name, "connection-pool", size, f"{callee}(maxconn={size if size is not None else '?'})",
                    file, line)
    if last in ("ConnectionPool", "BlockingConnectionPool") and "max_connections" in keywords:
        size = _literal_int(keywords["max_connections"])
        return Pool(name, "connection-pool", size, f"{callee}(max_connections={size})", file, line)
    if last in ("ThreadPoolExecutor", "ProcessPoolExecutor") or callee in ("multiprocessing.Pool", "mp.Pool"):
        cap = keywords.get("max_workers") or keywords.get("processes") or (positional[0] if positional else None)
        size = _literal_int(cap)
        return Pool(name, "executor", size, f"{callee}({'max_workers=' + str(size) if size else 'no cap'})",
                    file, line)
    if last in _SINGLE_CONNECTION and "." in callee and callee.split(".")[0] in (
        "psycopg2", "psycopg", "sqlite3", "pymysql", "MySQLdb", "cx_Oracle", "oracledb", "pyodbc", "duckdb",
    ):
        return Pool(name, "connection", 1, f"{callee}(...): one connection", file, line)
    return None
