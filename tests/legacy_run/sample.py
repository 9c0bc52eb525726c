"""Sample data for legacy_etl's nightly job, and a runner that collects what a run changed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
CURRENCIES = ("EUR", "USD", "GBP")


def write_sample(root: Path, orders: int = 4000, customers: int = 300, seed: int = 7) -> Path:
    """Landing orders (with duplicates and invalid rows), CRM customers, FX rates and an old load log."""
    rng = random.Random(seed)
    for folder in ("landing", "archive", "rejects", "logs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    with open(root / "landing" / "orders.jsonl", "w", encoding="utf-8") as fh:
        for n in range(orders):
            order_id = f"o{n if rng.random() > 0.05 else max(0, n - 1)}"
            total = round(rng.uniform(-5, 200), 2) if rng.random() > 0.02 else 0
            currency = rng.choice(CURRENCIES) if rng.random() > 0.01 else "XXX"
            fh.write(json.dumps({"order_id": order_id, "customer_id": f"c{rng.randrange(customers)}",
                                 "total": total, "currency": currency, "order_ts": f"2026-11-30T{n % 24:02d}:00"})
                     + "\n")
    crm = [{"customer_id": f"c{n}", "name": f"  customer   {n} ", "email": f" C{n}@Example.COM "}
           for n in range(customers)]
    (root / "crm.json").write_text(json.dumps({"customers": crm}), encoding="utf-8")
    (root / "fx.json").write_text(json.dumps({"rates": {"EUR": 1.0, "USD": 1.08, "GBP": 0.86}}), encoding="utf-8")
    (root / "logs" / "load.log").write_text("loaded 0 orders\n", encoding="utf-8")
    return root


def run_job(example: Path, data: Path, seed: int, env: dict[str, str] | None = None,
            job: str = "jobs.nightly_orders") -> dict[str, object]:
    """Run the job once in a subprocess; return what it changed: files (hashed) and calls (sorted)."""
    log = data / "calls.jsonl"
    environment = {**os.environ, "FAKE_SEED": str(seed), "FAKE_LOG": str(log), **(env or {})}
    environment.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, str(HERE / "run_job.py"), str(data), job], cwd=example,
                          env=environment, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"the job failed:\n{proc.stdout}\n{proc.stderr}")
    files = {p.relative_to(data).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
             for p in sorted(data.rglob("*")) if p.is_file() and p.name not in ("calls.jsonl", "timings.jsonl")}
    calls = sorted(log.read_text(encoding="utf-8").splitlines()) if log.exists() else []
    return {"files": files, "calls": calls}
