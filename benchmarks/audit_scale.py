"""How a full audit scales with repository size: `python benchmarks/audit_scale.py --files 1000 5000`.

Generates a legacy-ETL-shaped repository (packages of stage modules, SQL, file I/O, a class
pipeline and a plain driver per package, plus unrelated helper modules that no pipeline uses,
as real repositories have) and times `stagegraph audit --format json` on it, end to end, as
users run it. A measurement, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = '''\
"""Stages of package {n}."""
import os
import requests
from sqlalchemy import create_engine, text

ROOT = "/srv/etl/{n}"
engine = create_engine("postgresql://etl@db/warehouse")


def extract(day):
    resp = requests.get("https://api{n}.example.com/rows", params={{"day": day}}, timeout=30)
    with open(os.path.join(ROOT, "raw.json"), "w") as fh:
        fh.write(resp.text)
    return resp.json()


def dedup(rows):
    seen, out = set(), []
    for r in rows:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


def validate(rows):
    return [r for r in rows if r.get("amount", 0) > 0]


def load(rows):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO staging.t{n} SELECT * FROM json_populate_recordset(NULL::staging.t{n}, :r)"),
                     {{"r": rows}})


def report():
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM staging.t{n}")).scalar()
'''

DRIVER = '''\
"""Nightly job {n}."""
from .stages import dedup, extract, load, report, validate


def main(day):
    rows = extract(day)
    rows = validate(rows)
    rows = dedup(rows)
    load(rows)
    report()


class Job{n}:
    def __init__(self, day):
        self.day = day
        self.rows = []

    def fetch(self):
        self.rows = extract(self.day)

    def clean(self):
        self.rows = dedup(validate(self.rows))

    def store(self):
        load(self.rows)

    def run(self):
        self.fetch()
        self.clean()
        self.store()
'''

HELPER = '''\
"""Utility module {n}.{m}: code no pipeline uses, as every legacy repository has."""
import datetime
import json


def parse_day(text):
    return datetime.date.fromisoformat(text)


def to_json(value):
    return json.dumps(value, default=str, sort_keys=True)


class Cache{m}:
    def __init__(self):
        self.items = {{}}

    def get(self, key, default=None):
        return self.items.get(key, default)

    def put(self, key, value):
        self.items[key] = value
'''


def generate(root: Path, files: int) -> None:
    packages = max(files // 10, 1)
    for n in range(packages):
        pkg = root / f"pkg{n}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "stages.py").write_text(STAGES.format(n=n))
        (pkg / "job.py").write_text(DRIVER.format(n=n))
        for m in range(7):
            (pkg / f"util{m}.py").write_text(HELPER.format(n=n, m=m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, nargs="+", default=[1000])
    args = parser.parse_args()
    stagegraph = Path(sys.executable).with_name("stagegraph")
    for files in args.files:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "repo"
            generate(root, files)
            count = sum(1 for _ in root.rglob("*.py"))
            start = time.perf_counter()
            proc = subprocess.run([str(stagegraph), "audit", str(root), "--format", "json", "-o", f"{tmp}/r.json"],
                                  capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            print(f"{count:>6} files  {elapsed:7.1f} s  ({1000 * elapsed / count:.1f} ms/file)  exit {proc.returncode}")


if __name__ == "__main__":
    main()
