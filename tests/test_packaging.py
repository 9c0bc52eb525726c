"""The built wheel: the import package is `stagegraph`, with its catalogs, templates and schema inside it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO_ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    if built.returncode != 0:  # pragma: no cover - shows why the build failed
        pytest.fail(f"pip wheel failed:\n{built.stdout}\n{built.stderr}")
    (found,) = out.glob("stagegraph-*.whl")
    return found


@pytest.mark.slow
def test_wheel_installs_the_stagegraph_package_and_nothing_named_analyzer(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"stagegraph"}
    for needed in (
        "stagegraph/report.schema.json", "stagegraph/py.typed", "stagegraph/_rules/rules.toml",
        "stagegraph/_rules/resources.toml", "stagegraph/render/templates/report.html.j2",
    ):
        assert needed in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "stagegraph = stagegraph.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_the_unpacked_wheel_runs_an_audit_from_elsewhere_and_its_schema_validates_it(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    away = tmp_path / "away"
    away.mkdir()
    report = json.loads(_audit_from(site, away, "json"))
    shipped = json.loads((site / "stagegraph" / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, shipped)
    assert report["pipelines"], "the bundled example has pipelines"
    html = _audit_from(site, away, "html")
    assert "<html" in html


def _audit_from(site: Path, cwd: Path, fmt: str) -> str:
    """`stagegraph audit` of the bundled example, importing only the unpacked wheel (not the checkout)."""
    ran = subprocess.run(
        [sys.executable, "-I", "-c",
         f"import sys; sys.path.insert(0, {str(site)!r}); from stagegraph.cli import run; "
         f"sys.argv = ['stagegraph', 'audit', {str(REPO_ROOT / 'fixtures' / 'legacy_etl')!r}, '--format', {fmt!r},"
         " '--exit-zero']; run()"],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_the_shipped_schema_is_the_shared_contract() -> None:
    contract = REPO_ROOT.parent / "shared" / "contract" / "report.schema.json"
    if not contract.exists():
        pytest.skip("no shared/ checkout beside this one")
    shipped = REPO_ROOT / "analyzer" / "report.schema.json"
    assert json.loads(shipped.read_text(encoding="utf-8")) == json.loads(contract.read_text(encoding="utf-8"))
