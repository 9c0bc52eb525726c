"""Messages as text whose code spans are data: `Text` (a `str` that also keeps its spans) and `Template`.

Check messages mark stage names, targets and resources as code. Keeping those spans as data,
instead of as backticks inside a string, lets each renderer draw them properly (`<code>` in HTML,
a fenced span in Markdown) and stops an analysed name that contains a backtick or Markdown
punctuation from changing what is code and what is prose. `str(text)` is still the familiar
backtick form, which the terminal and the JSON `message` field show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# ------------------------------------------------------------------ structured text

Part = tuple[str, bool]  # (text, is code)
_SPAN = re.compile(r"`([^`]*)`")
_FIELD = re.compile(r"\{(\w+)\}")


class Text(str):
    """A message as plain text (backticks around code, as before) that also keeps its code spans as data.

    Renderers use `parts` so a name with a backtick in it, or Markdown punctuation, can never
    change what is code and what is prose; `str` operations still see the familiar backtick form.
    """

    parts: tuple[Part, ...]

    def __new__(cls, parts: Iterable[Part]) -> Text:
        merged: list[Part] = []
        for text, is_code in parts:
            if not text and not is_code:
                continue
            if merged and merged[-1][1] == is_code and not is_code:
                merged[-1] = (merged[-1][0] + text, False)
            else:
                merged.append((text, is_code))
        obj = super().__new__(cls, "".join(f"`{t}`" if c else t for t, c in merged))
        obj.parts = tuple(merged)
        return obj


def code(value: str) -> Text:
    """One code span."""
    return Text([(value, True)])


def plain(value: str) -> Text:
    """Prose, never code, whatever it contains."""
    return Text([(value, False)])


def join(values: Iterable[str], sep: str = ", ") -> Text:
    """Values (Text keeps its spans) joined by plain `sep`."""
    parts: list[Part] = []
    for i, value in enumerate(values):
        if i:
            parts.append((sep, False))
        parts.extend(parts_of(value))
    return Text(parts)


def parts_of(value: str) -> tuple[Part, ...]:
    """The spans of a Text, or of a plain string read as backtick-delimited Markdown (older messages)."""
    if isinstance(value, Text):
        return value.parts
    out: list[Part] = []
    pos = 0
    for m in _SPAN.finditer(value):
        out.append((value[pos:m.start()], False))
        out.append((m.group(1), True))
        pos = m.end()
    out.append((value[pos:], False))
    return tuple((t, c) for t, c in out if t or c)


class Template(str):
    """A message template whose backticks mark code spans; `format` returns `Text`.

    The spans come from the template, never from the values, so analysed text cannot forge them.
    """

    def format(self, *args: object, **values: object) -> Text:  # type: ignore[override]
        parts: list[Part] = []
        pos = 0
        for m in _SPAN.finditer(self):
            parts.extend(self._fill(self[pos:m.start()], values))
            inner = "".join(t for t, _ in self._fill(m.group(1), values))
            parts.append((inner, True))
            pos = m.end()
        parts.extend(self._fill(self[pos:], values))
        return Text(parts)

    @staticmethod
    def _fill(piece: str, values: Mapping[str, object]) -> list[Part]:
        out: list[Part] = []
        pos = 0
        for m in _FIELD.finditer(piece):
            out.append((piece[pos:m.start()], False))
            value = values[m.group(1)]
            out.extend(value.parts if isinstance(value, Text) else [(str(value), False)])
            pos = m.end()
        out.append((piece[pos:], False))
        return out
