"""A stand-in for `requests`: the CRM and FX answers come from files in FAKE_DATA_ROOT, with latency."""

from __future__ import annotations

import json as _json
import os
from typing import Any

import _latency


class RequestException(Exception):
    pass


class Response:
    def __init__(self, payload: Any) -> None:
        self.status_code = 200
        self._payload = payload

    def json(self) -> Any:
        return self._payload

    def raise_for_status(self) -> None:
        return None


def _data(name: str) -> Any:
    with open(os.path.join(os.environ["FAKE_DATA_ROOT"], name), encoding="utf-8") as fh:
        return _json.load(fh)


def get(url: str, params: dict[str, Any] | None = None, timeout: float | None = None, **_: Any) -> Response:
    _latency.sleep(url, 0.12 if "crm" in url else 0.05)
    _latency.log({"http": "GET", "url": url, "params": params})
    return Response(_data("crm.json") if "crm" in url else _data("fx.json"))


def post(url: str, json: Any = None, timeout: float | None = None, **_: Any) -> Response:
    _latency.sleep(url, 0.02)
    _latency.log({"http": "POST", "url": url, "body": json})
    return Response({})
