"""A stand-in for `psycopg2.connect` (legacy_etl's `etl/db.py` opens one at import time)."""

from __future__ import annotations

from typing import Any


class Connection:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def cursor(self) -> Any:
        raise RuntimeError("the sample-data harness does not run the psycopg2 jobs")

    def commit(self) -> None:
        return None


def connect(dsn: str) -> Connection:
    return Connection(dsn)
