"""Tables a SQL string reads and writes, with sqlglot.

Handles CTEs, schema-qualified names, INSERT/UPDATE/DELETE/MERGE/CREATE TABLE AS/TRUNCATE/DROP/ALTER,
COPY ... FROM (a load) and TO (a read), CREATE/DROP SCHEMA (`s.*`) and DATABASE (`*`),
DB-API placeholders (`%s`, `%(name)s`, `:name`, `?`) and Jinja templating (`{{ ds }}`).
Unknown parts of a statically built string arrive as `*` and become wildcard table names.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

_SQL_START = re.compile(
    r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(?:(?:select|insert|update|delete|merge|create|with|truncate|replace|"
    r"upsert|drop|alter|copy|unload|call|lock|vacuum|analyze|grant|revoke)\b|"
    r"begin(?:\s+(?:transaction|work))?\s*;|start\s+transaction\b|"
    # session settings before the statements: `SET x = 1;`, `SET search_path TO s;`, `USE db;`
    r"set\s+(?:session\s+|local\s+)?[\w.$@]+\s*(?:=|to\b)|use\s+[\w.\"]+\s*;)",
    re.IGNORECASE | re.DOTALL,
)
#: maintenance statements that change no rows: `LOCK TABLE t IN ... MODE`, `VACUUM [FULL] [t]`, `ANALYZE t`.
#: They only read what they name (a lock orders writers out while it is held, not data between stages).
_MAINTENANCE = re.compile(
    r"^\s*(?:lock(?:\s+table)?(?:\s+only)?|vacuum(?:\s+(?:full|freeze|verbose|analyze))*|analyze(?:\s+verbose)?)"
    r"(?:\s+(?P<names>[\w.\"]+(?:\s*,\s*[\w.\"]+)*))?(?:\s+in\s+[\w\s]+mode)?(?:\s+nowait)?\s*;?\s*$",
    re.IGNORECASE,
)
_ANY = "sg_any_"
_NAMED_WILDCARD = re.compile(r"(\b(?:from|join|into|update|table|truncate|exists)\s+(?:[\w\"]+\.)*)\*", re.IGNORECASE)
_WORD_WILDCARD = re.compile(r"(?<=\w)\*|(?<![.\w])\*(?=\w)")
#: a Jinja expression (`{{ ds }}`): a name filled in at run time
JINJA_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
#: Jinja statements and comments (`{% if %}`, `{% endif %}`, `{# .. #}`): dropped, so the SQL of every branch
#: is kept (the tables of all branches are the tables the template may touch)
_JINJA_TAGS = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PYFMT = re.compile(r"%\(\w+\)s|%s")


@dataclass(frozen=True, slots=True)
class SqlTables:
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    parsed: bool = True
    #: files read by table functions (`FROM read_parquet('/data/x.parquet')`, DuckDB and friends) and by
    #: `COPY t FROM '/data/x.csv'`
    files: tuple[str, ...] = ()
    #: files written by `COPY t TO '/data/x.csv'` / `COPY (SELECT ...) TO '...'`
    written_files: tuple[str, ...] = ()


#: table-valued functions that read the file (or glob) named by their first argument
_FILE_READERS = frozenset({
    "read_parquet", "parquet_scan", "read_csv", "read_csv_auto", "csv_scan", "read_json", "read_json_auto",
    "read_ndjson", "read_ndjson_auto", "json_scan", "read_text", "read_blob", "delta_scan", "iceberg_scan",
})


def _file_read(function: object) -> str | None:
    """The path a table function such as `read_parquet('/data/x.parquet')` reads; '*' when it is not literal."""
    from sqlglot import exp

    if isinstance(function, exp.Anonymous):
        name = str(function.this).lower()
    elif isinstance(function, exp.Func):
        name = function.sql_name().lower()
    else:
        return None
    if name not in _FILE_READERS:
        return None
    first = (function.expressions or [function.args.get("this")])[0] if isinstance(function, exp.Expression) else None
    if isinstance(first, exp.Literal) and first.is_string:
        return re.sub(rf"\s*{_ANY}\w*\s*", "*", first.this) or "*"
    return "*"


def looks_like_sql(text: str) -> bool:
    return bool(_SQL_START.match(text)) and len(text.split()) >= 2


_FORMAT_FIELD = re.compile(r"\{\w*\}")


#: `USE db;` (a session's database; sqlglot parses it in few dialects): dropped before parsing
_USE = re.compile(r"^\s*use\s+[\w.\"]+\s*;", re.IGNORECASE | re.MULTILINE)


def _prepare(text: str) -> str:
    text = _USE.sub(" ", text)
    text = _JINJA_TAGS.sub(" ", text)
    text = JINJA_EXPRESSION.sub(_ANY, text)
    text = _FORMAT_FIELD.sub(_ANY, text)  # str.format / psycopg2.sql placeholders: a name filled in later
    text = _PYFMT.sub("NULL", text)
    if "*" not in text:
        return text
    # a `*` the code left for an unknown part of a name (`FROM *`, `FROM raw_*`, `INTO stage.*`) is a wildcard
    # table; the SQL's own stars (`SELECT *`, `t.*`, `COUNT(*)`, `a * b`) stay as they are
    text = _NAMED_WILDCARD.sub(lambda m: m.group(1) + _ANY, text)
    return _WORD_WILDCARD.sub(_ANY, text)


def _name(table: object) -> str:
    from sqlglot import exp

    assert isinstance(table, exp.Table)
    parts = [p.name for p in table.parts if p.name]
    name = ".".join(parts).lower()
    return re.sub(rf"{_ANY}\w*", "*", name)


def _container(table: object, kind: str) -> str:
    """What a DROP/CREATE of `kind` names: a table, every table of a schema (`s.*`), or of a database (`*`)."""
    if kind == "DATABASE":
        return "*"
    name = _name(table)
    if kind == "SCHEMA":
        return f"{name}.*" if name else "*"
    return name


def _maintained(match: re.Match[str]) -> set[str]:
    """The tables a LOCK/VACUUM/ANALYZE statement names."""
    return {n.strip().strip('"').lower() for n in (match.group("names") or "").split(",") if n.strip()}


@lru_cache(maxsize=4096)
def tables(text: str) -> SqlTables | None:
    """Tables read and written by `text`, or None when it is not SQL. Unparseable SQL: parsed=False."""
    if not looks_like_sql(text):
        return None
    maintenance = [_MAINTENANCE.match(part) for part in text.split(";") if part.strip()]
    if maintenance and all(maintenance):
        return SqlTables(tuple(sorted({n for m in maintenance if m for n in _maintained(m)})), ())
    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.CRITICAL)  # its parse warnings are ours to report, not stderr's

    prepared = _prepare(text)
    statements = None
    for dialect in (None, "postgres", "mysql", "tsql", "snowflake", "bigquery"):
        try:
            statements = sqlglot.parse(prepared, read=dialect)
            break
        except Exception:  # sqlglot raises many error types; any failure means "try the next dialect"
            continue
    if statements is None:
        return SqlTables((), (), parsed=False)
    reads: set[str] = set()
    writes: set[str] = set()
    files: set[str] = set()
    written: set[str] = set()
    for statement in statements:
        if statement is None:
            continue
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        targets: set[str] = set()
        target_node = None
        kind = str(statement.args.get("kind") or "").upper()
        if isinstance(statement, exp.Drop):
            # DROP TABLE a, b / DROP SCHEMA s / DROP DATABASE d (sqlglot >= 25 keeps them in `tables`)
            dropped = statement.args.get("tables") or ([statement.this] if statement.this is not None else [])
            if kind != "INDEX":  # an index holds no rows: dropping one changes no result
                targets.update(_container(t, kind) for t in dropped if isinstance(t, exp.Table))
            writes.update(targets)
            continue
        if isinstance(statement, exp.Create) and kind in {"SCHEMA", "DATABASE"}:
            # every table in it is written (created or replaced) from here on
            if isinstance(statement.this, exp.Table):
                writes.add(_container(statement.this, kind))
            continue
        if isinstance(statement, exp.Copy):
            # COPY t FROM 'f' loads f's rows into t; COPY t TO 'f' (or a query's rows) writes f
            for named in statement.args.get("files") or []:
                if isinstance(named, exp.Literal) and named.is_string:
                    named_path = re.sub(rf"\s*{_ANY}\w*\s*", "*", named.this) or "*"
                    (files if statement.args.get("kind") else written).add(named_path)
            if isinstance(statement.this, exp.Table) and statement.args.get("kind"):
                target_node = statement.this
        elif isinstance(statement, exp.Alter) and isinstance(statement.this, exp.Table):
            # ALTER TABLE changes what every reader sees; RENAME TO names a second table it writes
            targets.update(_name(t) for t in statement.find_all(exp.Table) if isinstance(t.this, exp.Identifier))
        elif isinstance(statement, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.Create):
            target_node = statement.this
            if isinstance(target_node, exp.Schema):
                target_node = target_node.this
        elif isinstance(statement, exp.TruncateTable):
            for t in statement.expressions:
                if isinstance(t, exp.Table):
                    targets.add(_name(t))
        elif isinstance(statement, exp.Command):
            command = _MAINTENANCE.match(statement.sql())
            if command is None:
                return SqlTables((), (), parsed=False)
            reads.update(_maintained(command))
            continue
        if isinstance(target_node, exp.Table):
            targets.add(_name(target_node))
        for table in statement.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                path = _file_read(table.this)  # a table-valued function such as json_populate_recordset(...)
                if path is not None:
                    files.add(path)
                continue
            name = _name(table)
            if not name or name in ctes or (name in targets and isinstance(statement, exp.TruncateTable)):
                continue
            if table is target_node:
                continue
            reads.add(name)
        if isinstance(statement, exp.Update | exp.Delete | exp.Merge | exp.Alter):
            reads.update(targets)  # they read the rows they change
        writes.update(targets)
    return SqlTables(tuple(sorted(reads)), tuple(sorted(writes)), files=tuple(sorted(files)),
                     written_files=tuple(sorted(written)))
