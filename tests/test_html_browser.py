"""The HTML report in a real headless browser: the diagram and tables render; a screenshot is kept as an artefact."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import CHROMIUM
from render_samples import sample_report

from stagegraph.render import html

ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = [pytest.mark.slow, pytest.mark.needs_chromium, pytest.mark.needs_dot]  # gates: conftest.py


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(html.render(sample_report()), encoding="utf-8")
    return path


def test_browser_renders_diagram_and_tables(report_file: Path, tmp_path: Path) -> None:
    done = _chromium(tmp_path, "--dump-dom", report_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<svg") == 2  # one diagram per pipeline, parsed as SVG by the browser
    assert dom.count('<table class="grid stages">') == 2
    assert "fetch_orders" in dom and "dedup-before-validation" in dom and "legacy/broken.py" in dom


def test_screenshot_artifact(report_file: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", "--hide-scrollbars",
                     report_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page compresses far smaller
