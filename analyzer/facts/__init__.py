"""The facts layer: the only code that reads libcst trees. Produces PipelineFacts per pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analyzer.catalog import ResourceCatalog, RoleModel
from analyzer.model import Diagnostic, PipelineFacts
from analyzer.source import ParsedModule

Suppressions = Mapping[str, Mapping[int, frozenset[str]]]


def extract(
    modules: Sequence[ParsedModule], resources: ResourceCatalog, roles: tuple[RoleModel, ...]
) -> tuple[list[PipelineFacts], list[Diagnostic], Suppressions]:
    return [], [], {}
