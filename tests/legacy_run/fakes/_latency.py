"""Deterministic fake latency and a shared call log for the stand-in libraries.

`FAKE_SEED` picks the run; each call's delay depends only on the seed and what is called, so a
rerun with the same seed sleeps the same amounts. `FAKE_LOG` is a JSON-lines file of every call.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from typing import Any

_lock = threading.Lock()
_calls: dict[str, int] = {}


def sleep(what: str, base: float) -> None:
    """Sleep about `base` seconds (x0.8-1.2), with a 1-in-8 chance of a slow call (x3)."""
    with _lock:
        n = _calls[what] = _calls.get(what, 0) + 1
    rng = random.Random(f"{os.environ.get('FAKE_SEED', '0')}:{what}:{n}")
    factor = 0.8 + 0.4 * rng.random()
    if rng.random() < 0.125:
        factor *= 3
    time.sleep(base * factor * float(os.environ.get("FAKE_LATENCY_SCALE", "1")))


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def log(record: dict[str, Any]) -> None:
    path = os.environ.get("FAKE_LOG")
    if path:
        with _lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
