"""Run one legacy_etl job on sample data: `python run_job.py DATA_ROOT jobs.nightly_orders` from the example's root.

The stand-in libraries in `fakes/` replace SQLAlchemy, requests and psycopg2, and `etl.config`'s
folders are pointed at DATA_ROOT before any job module reads them. The example itself is unchanged.
"""

from __future__ import annotations

import os
import runpy
import sys


def main() -> None:
    data_root, job = sys.argv[1], sys.argv[2]
    sys.path[:0] = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes"), os.getcwd()]
    os.environ["FAKE_DATA_ROOT"] = data_root
    import etl.config as config

    config.DATA_ROOT = data_root
    folders = {"LANDING_DIR": "landing", "ARCHIVE_DIR": "archive", "REJECTS_DIR": "rejects", "LOG_DIR": "logs"}
    for name, folder in folders.items():  # the same names etl/config.py derives from DATA_ROOT
        setattr(config, name, os.path.join(data_root, folder))
    runpy.run_module(job, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
