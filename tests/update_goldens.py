"""Regenerate the golden reports: `fixtures/legacy_etl/expected.json` and `fixtures/cases/<case>/expected.json`.

Each golden is exactly what `stagegraph audit . --format json` prints inside the fixture folder, treated
as a project of its own (git discovery stops at the folder, so paths are relative to it, as in a user's
repository). Regenerate deliberately
(`python tests/update_goldens.py` or `STAGEGRAPH_UPDATE=1 pytest tests/test_fixtures.py`) and read
`git diff fixtures/` before committing: the goldens pin behaviour, so every change in them is a
behaviour change someone should have meant.
"""

from __future__ import annotations

import contextlib
import sys
from functools import cache
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
GOLDEN_NAME = "expected.json"


def fixture_dirs() -> list[Path]:
    """Every folder with a golden: the bundled example, then each situation case."""
    cases = sorted(p for p in (FIXTURES / "cases").iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return [FIXTURES / "legacy_etl", *cases]


def fixture_id(folder: Path) -> str:
    return folder.relative_to(FIXTURES).as_posix()


@cache
def audit_json(folder: Path) -> str:
    """The JSON report of one fixture folder, produced by the real CLI entry point (in-process)."""
    from stagegraph.cli import main

    home, target = (folder, ".") if folder.is_dir() else (folder.parent, folder.name)
    with contextlib.chdir(home):
        result = CliRunner().invoke(main, ["audit", target, "--format", "json"], catch_exceptions=False,
                                    env={"GIT_CEILING_DIRECTORIES": str(home.parent)})
    if result.exit_code not in (0, 1):
        raise RuntimeError(f"stagegraph audit {folder} exited {result.exit_code}: {result.stderr[-2000:]}")
    return result.stdout


def write_golden(folder: Path) -> bool:
    """Write the golden; True when it changed."""
    golden = folder / GOLDEN_NAME
    new = audit_json(folder)
    old = golden.read_text(encoding="utf-8") if golden.exists() else None
    if old == new:
        return False
    golden.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    wanted = set(argv)
    changed = []
    for folder in fixture_dirs():
        if wanted and fixture_id(folder) not in wanted and folder.name not in wanted:
            continue
        if write_golden(folder):
            changed.append(fixture_id(folder))
    for name in changed:
        print(f"updated {name}/{GOLDEN_NAME}")
    print(f"{len(changed)} golden(s) changed; review with: git diff -- fixtures/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
