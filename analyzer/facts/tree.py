"""Fast traversal of libcst trees.

`CSTNode.children` builds its answer by running a visitor over the node, which dominated the
profile on real repositories (several passes walk every function). Reading the dataclass fields
directly gives the same children in the same (source) order, without whitespace nodes, at a
fraction of the cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

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
