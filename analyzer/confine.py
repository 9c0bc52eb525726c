"""What the analysed repository may make stagegraph run, read or write: nothing outside itself.

- `git_command` runs git so that nothing the analysed repository configured is executed: no
  fsmonitor, hooks, pager, external diff or textconv, no optional locks, no system config.
- `repo_root` and `inside` confine paths that come from the analysed code or its config
  (catalogs, output folders, Airflow `sql=` files and search paths) to the repository.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

#: settings that would make a read-only git command run a program the repository chose
_GIT_SAFETY = (
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.pager=cat",
    "-c", "core.sshCommand=false",
    "-c", "core.askPass=",
    "-c", "credential.helper=",
    "-c", "diff.external=",
    "-c", "core.untrackedCache=false",
    "-c", "protocol.allow=never",
)


def git_command(folder: Path, *args: str) -> list[str]:
    """argv for `git -C folder args...` that executes nothing configured by the repository."""
    return ["git", "--no-pager", "--no-optional-locks", *_GIT_SAFETY, "-C", str(folder), *args]


def git_env() -> dict[str, str]:
    """The environment for git: no system config, no prompts, no pager, no external diff."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_EXTERNAL_DIFF", "GIT_PAGER", "GIT_ASKPASS",
                                                              "SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat",
                "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_REPLACE_OBJECTS": "1"})
    return env


@lru_cache(maxsize=256)
def repo_root(start: Path) -> Path:
    """The repository holding `start`: the nearest folder with `.git`, else `start` itself."""
    here = Path(os.path.abspath(start))
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder.resolve()
    return here.resolve()


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, symlinks resolved, is `root` or under it."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True
