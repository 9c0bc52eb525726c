"""Shared helpers for the workflow tests: real git repos in tmp dirs, tiny pipeline programs, an engine stand-in.

The stand-in (`install_stand_in`) replaces only the facts extractor and the checks with a
tiny regex model of plain drivers (`def main(): rows = dedup(rows) ...`), so the workflow
layer (baseline, diff mode, hook, exit codes) is tested on findings even while the real
engine is being written. Tests that need the *real* engine say so and do not use it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagegraph.checks import Hit
from stagegraph.model import Effect, Link, Location, Pipeline, PipelineFacts, Stage

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}

STAGES = '''\
"""Stage functions of the orders pipeline."""


def extract():
    return [{"id": 1, "amount": "10"}, {"id": 1, "amount": "x"}, {"id": 2, "amount": "7"}]


def dedup(rows):
    seen = set()
    out = []
    for row in rows:
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        out.append(row)
    return out


def validate(rows):
    good = []
    for row in rows:
        if not str(row["amount"]).isdigit():
            raise ValueError(f"bad amount in {row!r}")
        good.append(row)
    return good


def load(rows):
    with open("orders.csv", "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(f"{row['id']},{row['amount']}\\n")
'''

DRIVER_CLEAN = '''\
"""Driver of the orders pipeline: validate, then dedup, then load."""
from etl.stages import dedup, extract, load, validate


def main():
    rows = extract()
    rows = validate(rows)
    rows = dedup(rows)
    load(rows)
'''

DRIVER_DIRTY = '''\
"""Driver of the orders pipeline: dedup runs before validation."""
from etl.stages import dedup, extract, load, validate


def main():
    rows = extract()
    rows = dedup(rows)
    rows = validate(rows)
    load(rows)
'''

UNRELATED = '''\
"""A helper no pipeline uses."""


def greet(name):
    return f"hello {name}"
'''


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check, env=env)


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_repo(root: Path, files: dict[str, str], message: str = "base") -> Path:
    """A git repo at `root` with `files` committed on branch main."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")
    write_files(root, files)
    commit(root, message)
    return root


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def orders_project(driver: str = DRIVER_CLEAN) -> dict[str, str]:
    return {"etl/__init__.py": "", "etl/stages.py": STAGES, "etl/driver.py": driver, "tools/greet.py": UNRELATED}


def shift_lines(text: str, count: int = 7) -> str:
    """The same module with `count` unrelated lines inserted after the docstring (shifts every line)."""
    first, _, rest = text.partition("\n")
    padding = "".join(f"# unrelated note {i}\n" for i in range(count))
    return f"{first}\n{padding}{rest}"


@dataclass(frozen=True)
class Ran:
    """What one `stagegraph` command did: exit status and its two streams."""

    returncode: int
    stdout: str
    stderr: str


def stagegraph(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    """Run the real command line in `cwd`, in-process (no interpreter start-up per call)."""
    from click.testing import CliRunner

    from stagegraph.cli import main

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


# ------------------------------------------------------------------ engine stand-in

_CALL = re.compile(r"^[ \t]+(?:(?P<target>\w+)[ \t]*=[ \t]*)?(?P<callee>\w+)\((?P<args>[^)]*)\)", re.MULTILINE)


def _stand_in_extract(modules: Sequence[object], resources: object, roles: object, jobs: int = 1
                      ) -> tuple[list[PipelineFacts], list[object], dict[str, object]]:
    """One plain pipeline per `def main():`, one stage per call statement in it, data flow by variable name."""
    facts: list[PipelineFacts] = []
    definitions: dict[str, Location] = {}
    for module in modules:
        for m in re.finditer(r"^def (\w+)\(", module.text, re.MULTILINE):  # type: ignore[attr-defined]
            line = module.text.count("\n", 0, m.start()) + 1  # type: ignore[attr-defined]
            definitions.setdefault(m.group(1), Location(module.relpath, line))  # type: ignore[attr-defined]
    for module in modules:
        text: str = module.text  # type: ignore[attr-defined]
        relpath: str = module.relpath  # type: ignore[attr-defined]
        start = text.find("def main(")
        if start < 0:
            continue
        main_line = text.count("\n", 0, start) + 1
        body_end = len(text)
        body_start = text.find("\n", start) + 1
        nxt = re.compile(r"^\S", re.MULTILINE).search(text, body_start)
        if nxt:
            body_end = nxt.start()
        stages: list[Stage] = []
        for m in _CALL.finditer(text, start, body_end):
            line = text.count("\n", 0, m.start()) + 1
            args = [a.strip() for a in m.group("args").split(",") if a.strip()]
            reads = tuple(Effect("variable", a, relpath, line, key=a) for a in args)
            target = m.group("target")
            writes = (Effect("variable", target, relpath, line, key=target),) if target else ()
            stages.append(Stage(f"{m.group('callee')}#{len(stages) + 1}", m.group("callee"), relpath, line,
                                definition=definitions.get(m.group("callee")), reads=reads, writes=writes))
        declared = tuple(Link(a.id, b.id, "order") for a, b in itertools.pairwise(stages))
        facts.append(PipelineFacts(f"{relpath}::main", "main", "plain", relpath, main_line, tuple(stages), declared))
    return facts, [], {}


def _stand_in_check(pipeline: Pipeline) -> Iterator[Hit]:
    names = [s.name for s in pipeline.stages]
    if "dedup" in names and "validate" in names and names.index("dedup") < names.index("validate"):
        dedup = pipeline.stages[names.index("dedup")]
        validate = pipeline.stages[names.index("validate")]
        yield Hit("dedup-before-validation", f"`{dedup.name}` runs before `{validate.name}`", dedup.file,
                  dedup.line, stages=(dedup.id, validate.id))


def install_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the facts layer and the checks for the stand-in (in this process only)."""

    import stagegraph.checks as checks_module
    import stagegraph.facts as facts_module

    monkeypatch.setattr(facts_module, "extract", _stand_in_extract)
    monkeypatch.setattr(checks_module, "all_checks", lambda: {"dedup-before-validation": _stand_in_check})
