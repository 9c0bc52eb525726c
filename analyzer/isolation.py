"""Where hostile input is contained: a deep stack for the analysis, and a worker process for risky parses.

- `deep_stack(fn)` runs the analysis in a thread with a large C stack and a raised recursion limit,
  so code nested up to `source.MAX_DEPTH` levels is walked without a `RecursionError` or a C-stack
  overflow (libcst and the facts layer recurse once or more per level of the tree).
- `ParseWorker` parses text with libcst in a child process. A native crash, a hang or an
  out-of-memory kills only the child: the file becomes one `parser-crash` diagnostic and the
  next file gets a fresh worker. Only files the CPython screen flags go there (see `source.parse_text`).
"""

from __future__ import annotations

import json
import os
import selectors
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: recursion limit inside the analysis thread; the thread's stack is sized for it
RECURSION_LIMIT = 40_000
STACK_BYTES = 512 * 1024 * 1024
#: seconds one risky file may take in the parse worker before it counts as a crash
WORKER_TIMEOUT = 30.0

_state = threading.local()


def deep_stack(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run `fn` on a thread with a deep stack (re-entrant calls run inline)."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if getattr(_state, "deep", False):
            return fn(*args, **kwargs)
        box: dict[str, Any] = {}

        def target() -> None:
            _state.deep = True
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the calling thread, which re-raises it
                box["error"] = exc

        old_limit = sys.getrecursionlimit()
        old_size = threading.stack_size()
        try:
            threading.stack_size(STACK_BYTES)
            sys.setrecursionlimit(max(old_limit, RECURSION_LIMIT))
            worker = threading.Thread(target=target, name="stagegraph-analysis", daemon=True)
            worker.start()
        finally:
            threading.stack_size(old_size)
        try:
            while worker.is_alive():  # a short join keeps Ctrl-C deliverable to the main thread
                worker.join(0.2)
        finally:
            if not worker.is_alive():
                sys.setrecursionlimit(old_limit)
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


# ------------------------------------------------------------------ the parse worker

#: how the worker is started; tests replace it with a worker that dies
WORKER_COMMAND: list[str] = [sys.executable, "-m", f"{__package__}.isolation"]


class WorkerDied(Exception):
    """The parse worker crashed, hung or was killed while parsing one file."""


class ParseWorker:
    """A long-lived child process that parses texts with libcst and reports only the outcome."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
            self._proc = subprocess.Popen(WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, env=env)
        return self._proc

    def parse(self, text: str, timeout: float = WORKER_TIMEOUT) -> dict[str, Any]:
        """`{"ok": True}` or `{"ok": False, "message": ..., "line": ...}`; raises WorkerDied."""
        proc = self._start()
        data = text.encode("utf-8", "surrogatepass")
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(struct.pack(">Q", len(data)) + data)
            proc.stdin.flush()
            line = _read_line(proc.stdout, timeout)
        except (OSError, ValueError, TimeoutError) as exc:
            self.close()
            raise WorkerDied(_death(exc, proc)) from None
        if not line:
            self.close()
            raise WorkerDied(_death(None, proc))
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            self.close()
            raise WorkerDied("the parse worker sent a garbled reply") from None
        return reply

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def _read_line(stream: Any, timeout: float) -> bytes:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError
    line: bytes = stream.readline()
    return line


def _death(exc: BaseException | None, proc: subprocess.Popen[bytes]) -> str:
    if isinstance(exc, TimeoutError):
        return f"the parser took longer than {WORKER_TIMEOUT:.0f} s"
    code = proc.poll()
    if code is not None and code < 0:
        return f"the parser crashed (signal {-code})"
    return f"the parser crashed (exit status {code})"


def _serve() -> None:
    """Worker main loop: length-prefixed texts in, one JSON line per text out."""
    from .source import libcst_parse

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    parse = deep_stack(libcst_parse)
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return
        (size,) = struct.unpack(">Q", header)
        text = stdin.read(size).decode("utf-8", "surrogatepass")
        result = parse("-", text)
        if isinstance(result, tuple):
            reply: dict[str, Any] = {"ok": False, "message": result[0], "line": result[1]}
        else:
            reply = {"ok": True}
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    _serve()
