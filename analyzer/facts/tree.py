"""Fast traversal of libcst trees.

`CSTNode.children` builds its answer by running a visitor over the node, which dominated the
profile on real repositories (several passes walk every function). Reading the dataclass fields
directly gives the same children in the same (source) order, without whitespace nodes, at a
fraction of the cost.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import libcst as cst

_SKIP = (
    cst.SimpleWhitespace, cst.ParenthesizedWhitespace, cst.EmptyLine, cst.TrailingWhitespace, cst.Newline,
    cst.Comment, cst.LeftParen, cst.RightParen, cst.Comma, cst.Dot, cst.Colon, cst.Semicolon,
    cst.LeftSquareBracket, cst.RightSquareBracket, cst.LeftCurlyBrace, cst.RightCurlyBrace, cst.AssignEqual,
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(kind)
            if f.name not in {"lpar", "rpar", "whitespace_before", "whitespace_after", "leading_lines",
                              "lines_after_decorators", "header", "footer", "leading_whitespace",
                              "trailing_whitespace", "semicolon", "comma", "whitespace_after_star",
                              "whitespace_after_param", "whitespace_before_colon", "whitespace_after_colon"}
        )
        _FIELDS[kind] = names
    return names


#: per concrete type: 1 = a node to visit, 0 = whitespace/punctuation or not a node (ABC checks are slow)
_KIND: dict[type, int] = {}
#: child lists computed during one extraction (trees are alive for its duration; `reset` clears it)
_CACHE: dict[int, tuple[cst.CSTNode, list[cst.CSTNode]]] = {}


def _is_node(value: object) -> int:
    kind = type(value)
    known = _KIND.get(kind)
    if known is None:
        known = int(isinstance(value, cst.CSTNode) and not isinstance(value, _SKIP))
        _KIND[kind] = known
    return known


def reset() -> None:
    """Forget cached child lists (call when the trees they describe are released)."""
    _CACHE.clear()


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes of `node` in source order (whitespace and punctuation left out)."""
    cached = _CACHE.get(id(node))
    if cached is not None and cached[0] is node:  # holding the node keeps its id from being reused
        return cached[1]
    out: list[cst.CSTNode] = []
    for name in _fields(type(node)):
        value = getattr(node, name)
        if type(value) is list or type(value) is tuple:
            out.extend(item for item in value if _is_node(item))
        elif _is_node(value):
            out.append(value)
    _CACHE[id(node)] = (node, out)
    return out


def walk(node: cst.CSTNode | Sequence[cst.CSTNode], skip_defs: bool = False) -> Iterator[cst.CSTNode]:
    """Every node below `node`, pre-order in source order; `skip_defs` does not enter nested defs."""
    stack: list[cst.CSTNode] = list(reversed(node)) if isinstance(node, Sequence) else [node]
    roots = {id(n) for n in stack}
    while stack:
        current = stack.pop()
        yield current
        if skip_defs and id(current) not in roots and isinstance(current, cst.FunctionDef | cst.ClassDef | cst.Lambda):
            continue
        stack.extend(reversed(children(current)))


def strings(node: cst.CSTNode) -> Iterator[str]:
    """The literal text of every string under `node` (f-string placeholders dropped)."""
    for sub in walk(node):
        if isinstance(sub, cst.SimpleString):
            value = sub.evaluated_value
            yield value if isinstance(value, str) else value.decode("utf-8", "replace")
        elif isinstance(sub, cst.FormattedString):
            yield "".join(p.value for p in sub.parts if isinstance(p, cst.FormattedStringText))


# ---------------------------------------------------------------- positions

try:  # libcst's codegen state is internal API; if it moves, fall back to the public (slower) provider
    from libcst._nodes.internal import CodegenState as _CodegenState
except ImportError:  # pragma: no cover - depends on the installed libcst
    _CodegenState = None  # type: ignore[assignment, misc]

_NEWLINE = re.compile(r"\r\n?|\n")
Position = tuple[int, int]  # (line, column): one-based line, zero-based column, as libcst's PositionProvider


def start_positions(module: cst.Module) -> dict[cst.CSTNode, Position]:
    """Where every node starts, with PositionProvider's semantics (leading whitespace excluded).

    One codegen pass that only counts lines and columns: about 4x faster than resolving
    PositionProvider through a MetadataWrapper, which dominated analysis time on real repositories.
    """
    if _CodegenState is not None:
        try:
            state = _LineState(default_indent=module.default_indent, default_newline=module.default_newline)
            module._codegen(state)
            return state.starts
        except (TypeError, AttributeError):  # pragma: no cover - an incompatible libcst
            pass
    from libcst.metadata import MetadataWrapper, PositionProvider

    resolved = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {node: (r.start.line, r.start.column) for node, r in resolved.items()}


if _CodegenState is not None:

    @dataclasses.dataclass
    class _LineState(_CodegenState):  # type: ignore[misc, valid-type]
        line: int = 1
        column: int = 0
        starts: dict[cst.CSTNode, Position] = dataclasses.field(default_factory=dict)
        _stack: list[Position] = dataclasses.field(default_factory=list)

        def add_indent_tokens(self) -> None:
            for token in self.indent_tokens:
                self.column += len(token)

        def add_token(self, value: str) -> None:
            if "\n" in value or "\r" in value:
                parts = _NEWLINE.split(value)
                self.line += len(parts) - 1
                self.column = len(parts[-1])
            else:
                self.column += len(value)

        def before_codegen(self, node: cst.CSTNode) -> None:
            self._stack.append((self.line, self.column))

        def after_codegen(self, node: cst.CSTNode) -> None:
            start = self._stack.pop()
            self.starts.setdefault(node, start)  # a syntactic position recorded inside wins

        @contextmanager
        def record_syntactic_position(
            self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
        ) -> Iterator[None]:
            start = (self.line, self.column)
            try:
                yield
            finally:
                self.starts[node] = self.starts[start_node] if start_node is not None else start
