"""A stand-in for the few SQLAlchemy calls legacy_etl makes: an in-memory warehouse with latency."""

from __future__ import annotations

import json
import threading
from typing import Any

import _latency

_lock = threading.Lock()
_tables: dict[str, list[dict[str, Any]]] = {}


class TextClause:
    def __init__(self, sql: str) -> None:
        self.text = sql


def text(sql: str) -> TextClause:
    return TextClause(sql)


class Result:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def one(self) -> Any:
        return self._rows[0]


class Connection:
    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, clause: TextClause, params: dict[str, Any] | None = None) -> Result:
        sql = clause.text
        _latency.sleep(sql[:40], 0.03 if sql.startswith("MERGE") else 0.015)
        params = params or {}
        _latency.log({"db": sql, "params": _latency.digest(params)})
        return Result(_run(sql, params))


def _run(sql: str, params: dict[str, Any]) -> list[Any]:
    with _lock:
        if sql.startswith("TRUNCATE staging.orders"):
            _tables["staging.orders"] = []
        elif sql.startswith("INSERT INTO staging.orders"):
            _tables.setdefault("staging.orders", []).extend(json.loads(params["rows"]))
        elif sql.startswith("INSERT INTO staging.customers"):
            _tables.setdefault("staging.customers", []).extend(json.loads(params["rows"]))
        elif sql.startswith("MERGE INTO dw.dim_customers"):
            _tables["dw.dim_customers"] = list(_tables.get("staging.customers", []))
        elif "INSERT INTO dw.fact_orders" in sql:
            fresh = [o for o in _tables.get("staging.orders", []) if o["total_eur"] > 0]
            _tables.setdefault("dw.fact_orders", []).extend(fresh)
        elif sql.startswith("SELECT count(*), sum(total_eur) FROM dw.fact_orders"):
            rows = _tables.get("dw.fact_orders", [])
            return [(len(rows), round(sum(o["total_eur"] for o in rows), 2))]
    return []


class Engine:
    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options

    def begin(self) -> Connection:
        return Connection()

    def connect(self) -> Connection:
        return Connection()


def create_engine(url: str, **options: Any) -> Engine:
    return Engine(url, **options)
