"""Code-derived text made inert for people: control, C1 and bidi characters become visible escapes.

String literals and file names from the analysed code can hold terminal escapes (`ESC[2J`, OSC 8
hyperlinks, C1 `\\x9b`), bidi overrides (`U+202E`) or newlines that forge report lines. Every
human-facing format renders a `sanitize`d copy of the report; machine formats (JSON, SARIF) keep
the exact values, which their encoders escape.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

T = TypeVar("T")

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape_one(match: re.Match[str]) -> str:
    ch = match.group(0)
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def escape_text(text: str) -> str:
    """`text` with every control and bidi character replaced by a visible escape."""
    return _UNSAFE.sub(_escape_one, text) if _UNSAFE.search(text) else text


def sanitize(value: T) -> T:
    """A copy of a report (or any frozen record tree) with every string passed through `escape_text`."""
    out: Any = _sanitize(value)
    return out  # type: ignore[no-any-return]


def _sanitize(value: Any) -> Any:
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, tuple):
        items = tuple(_sanitize(v) for v in value)
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    if isinstance(value, frozenset):
        return frozenset(_sanitize(v) for v in value)
    if isinstance(value, dict):
        return {_sanitize(k): _sanitize(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = _sanitize(old)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value
