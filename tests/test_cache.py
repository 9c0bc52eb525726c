"""The result cache: a hit gives the report a fresh run gives; bad entries are rebuilt, never trusted."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stagegraph import cache, engine
from stagegraph.cli import main
from stagegraph.model import Diagnostic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


#: a rule with findings in the small fixture
RULE = "coincidental-order"
SMALL = FIXTURES / "cases" / "cross_module_alias"


def copy(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("expected.json"))
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of a small fixture, a repository of its own."""
    return copy(SMALL, tmp_path)


def audit(folder: Path, *args: str) -> str:
    with contextlib.chdir(folder):
        result = CliRunner().invoke(main, ["audit", ".", "--format", "json", *args], catch_exceptions=False,
                                    env={"GIT_CEILING_DIRECTORIES": str(folder.parent), "STAGEGRAPH_NO_CACHE": ""})
    assert result.exit_code in (0, 1), result.stderr
    return result.stdout


class Counting:
    """Wraps `engine.facts_of` to count fresh analyses (a cache hit makes none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = engine.facts_of

        def counted(*args: object, **kwargs: object) -> cache.FactsOutcome:
            self.calls += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(engine, "facts_of", counted)


def entries(folder: Path) -> list[Path]:
    return sorted((folder / f"v{cache.FORMAT}").glob("*.json"))


def test_hit_gives_the_golden_report_without_analysing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = copy(FIXTURES / "legacy_etl", tmp_path)
    golden = (FIXTURES / "legacy_etl" / "expected.json").read_text(encoding="utf-8")
    store = tmp_path / "cache"
    counting = Counting(monkeypatch)
    assert audit(project, "--cache-dir", str(store)) == golden
    assert counting.calls == 1 and len(entries(store)) == 1
    assert audit(project, "--cache-dir", str(store)) == golden
    assert counting.calls == 1  # the second run came from the cache


def test_rule_settings_apply_to_a_hit(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "cache"
    fresh = json.loads(audit(project, "--no-cache", "--disable", RULE))
    audit(project, "--cache-dir", str(store))
    counting = Counting(monkeypatch)
    cached = json.loads(audit(project, "--cache-dir", str(store), "--disable", RULE))
    assert counting.calls == 0
    assert cached == fresh
    assert not any(f["rule"] == RULE for f in cached["findings"])


def test_no_cache_reads_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "cache"
    audit(project, "--no-cache", "--cache-dir", str(store))
    assert not store.exists()


@pytest.mark.parametrize("change", ["edit a module", "add a module", "edit a sql file", "edit a catalog",
                                    "edit the analyzer"])
def test_what_the_key_covers(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    store = tmp_path / "cache"
    catalog = project / "extra.toml"
    catalog.write_text("", encoding="utf-8")
    (project / "pyproject.toml").write_text('[tool.stagegraph]\nresource-catalogs = ["extra.toml"]\n',
                                            encoding="utf-8")
    (project / "etl" / "query.sql").write_text("SELECT 1\n", encoding="utf-8")
    audit(project, "--cache-dir", str(store))
    module = next(p for p in sorted(project.rglob("*.py")) if p.stat().st_size)
    if change == "edit a module":
        module.write_text(module.read_text(encoding="utf-8") + "\nX = 1\n", encoding="utf-8")
    elif change == "add a module":
        (module.parent / "zz_new.py").write_text("Y = 2\n", encoding="utf-8")
    elif change == "edit a sql file":
        (project / "etl" / "query.sql").write_text("SELECT 2\n", encoding="utf-8")
    elif change == "edit the analyzer":
        # a checkout edited without a version bump: what the older code concluded is not reused
        from stagegraph import cache

        monkeypatch.setattr(cache, "code_digest", lambda: "edited")
    else:
        catalog.write_text("# changed\n", encoding="utf-8")
    counting = Counting(monkeypatch)
    audit(project, "--cache-dir", str(store))
    assert counting.calls == 1
    assert len(entries(store)) == 2


def _flip(data: bytes) -> bytes:
    middle = len(data) * 3 // 4
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def _header(data: bytes, **changes: object) -> bytes:
    header, _, body = data.partition(b"\n")
    return json.dumps({**json.loads(header), **changes}).encode() + b"\n" + body


def _forged_body(data: bytes) -> bytes:
    """A body with a record the model does not have, with a matching checksum (planted, not damaged)."""
    import hashlib

    header, _, body = data.partition(b"\n")
    forged = body.replace(b'"C":"Pipeline"', b'"C":"Popen"', 1)
    return _header(header + b"\n" + forged, size=len(forged), sha256=hashlib.sha256(forged).hexdigest())


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "flipped byte": _flip,
    "other format": lambda data: _header(data, format=cache.FORMAT + 1),
    "other tool version": lambda data: _header(data, tool="0.0.0-other"),
    "other key": lambda data: _header(data, key="0" * 64),
    "unknown record": _forged_body,
    "not json": lambda data: b"\x80\x81 not an entry\n\x00",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_bad_entry_is_rebuilt_never_trusted(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             damage: str) -> None:
    golden = (SMALL / "expected.json").read_text(encoding="utf-8")
    store = tmp_path / "cache"
    audit(project, "--cache-dir", str(store))
    (entry,) = entries(store)
    good = entry.read_bytes()
    entry.write_bytes(DAMAGE[damage](good))
    counting = Counting(monkeypatch)
    assert audit(project, "--cache-dir", str(store)) == golden
    assert counting.calls == 1
    assert entry.read_bytes() == good  # rebuilt in place


def test_an_unusable_cache_folder_is_no_cache(project: Path, tmp_path: Path) -> None:
    golden = (SMALL / "expected.json").read_text(encoding="utf-8")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert audit(project, "--cache-dir", str(blocked / "cache")) == golden


def test_the_codec_round_trips_records_and_refuses_others() -> None:
    outcome = cache.FactsOutcome((), (Diagnostic("a.py", "syntax-error", "bad", 3, "x"),), (),
                                 {"a.py": {3: frozenset({"b", "a"})}}, ("a.py", "b.py"))
    assert cache.decode(json.loads(json.dumps(cache.encode(outcome)))) == outcome
    with pytest.raises(TypeError):
        cache.encode(object())
    with pytest.raises(ValueError):
        cache.decode({"C": "Path", "F": ["/etc"]})
    with pytest.raises(ValueError):
        cache.decode({"X": []})


def test_default_folder_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STAGEGRAPH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert cache.default_dir() == tmp_path / "stagegraph"
    monkeypatch.setenv("STAGEGRAPH_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.default_dir() == tmp_path / "mine"
