"""The HTML audit report: self-contained, autoescaped, diagrams inline, nothing analysed is hidden."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from render_samples import hostile_report, sample_report

from stagegraph.model import Report
from stagegraph.render import html

needs_dot = pytest.mark.needs_dot  # the gate is decided once, in conftest.py


class _Collect(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    parser.close()
    return parser


def _tags(parsed: _Collect, name: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in parsed.tags if tag == name]


@needs_dot
def test_summary_first_then_one_diagram_and_table_per_pipeline() -> None:
    page = html.render(sample_report())
    parsed = _parse(page)
    assert len(_tags(parsed, "svg")) == 2
    assert page.index('id="summary"') < page.index('id="findings"') < page.index('class="pipeline"')
    assert page.index('class="pipeline"') < page.index('id="diagnostics"')
    tables = _tags(parsed, "table")
    assert [t["class"] for t in tables] == ["grid findings", "grid stages", "grid stages", "grid diags"]
    text = " ".join(parsed.text)
    for needle in ("files analysed", "real dependencies", "coincidental orderings", "fan-out candidates",
                   "legacy/broken.py:12", "invalid syntax", "would contend for", "dedup-before-validation"):
        assert needle in text, needle
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_self_contained_no_scripts_or_external_resources() -> None:
    page = html.render(sample_report())
    parsed = _parse(page)
    assert not _tags(parsed, "script") and not _tags(parsed, "link") and not _tags(parsed, "iframe")
    for _tag, attrs in parsed.tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"(https?:)?//", value), (key, value)
    assert "@import" not in page and "url(" not in page


def test_hostile_text_is_escaped() -> None:
    page = html.render(hostile_report())
    parsed = _parse(page)
    assert not _tags(parsed, "script") and not _tags(parsed, "img")
    for _tag, attrs in parsed.tags:
        assert not any(k.startswith("on") for k in attrs), attrs
    text = "".join(parsed.text)
    assert "</script><script>alert(1)</script>" in text  # shown as text
    assert "{{ 7*7 }}" in text  # not evaluated by the template engine
    assert "&lt;/script&gt;" in page


def test_without_dot_shows_a_note_and_the_dot_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from stagegraph.render import dot

    monkeypatch.setattr(dot, "find_dot", lambda: None)
    page = html.render(hostile_report())
    parsed = _parse(page)
    assert not _tags(parsed, "svg")
    assert len([a for a in _tags(parsed, "pre") if a.get("class") == "dotsrc"]) == 2
    assert "is not installed" in page and "apt-get install graphviz" in page
    assert not _tags(parsed, "script")


def test_empty_report_renders() -> None:
    page = html.render(Report("0.1.0", (), (), ()))
    assert "No pipelines found." in page and "No hazards found." in page and "Every file was analysed." in page
