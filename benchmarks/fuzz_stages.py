"""Longer fuzz run than the suite's: `python benchmarks/fuzz_stages.py --examples 500`.

Runs `tests/test_hostile_input.py::test_hypothesmith_programs_inside_stage_bodies` (hypothesmith
programs inside the stage bodies of a small pipeline: the run never raises, the good pipeline is
always reported, every diagnostic names a real file) with more examples than the suite's bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

TEST = "tests/test_hostile_input.py::test_hypothesmith_programs_inside_stage_bodies"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "STAGEGRAPH_FUZZ_EXAMPLES": str(args.examples)}
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=root, env=env))


if __name__ == "__main__":
    main()
