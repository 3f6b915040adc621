"""report.html in a real headless browser (Debian `chromium`): it renders, logs no console
error, shows the expected headings, and its screenshot is not blank.

Skipped, with the reason, where no chromium is installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from _report_fixture import demo_report

from compress_gate.report import render_html

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH; install the Debian "
                                "package `chromium` (apt-get install -y chromium) to run the browser test")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
CONSOLE_LINE = re.compile(r"CONSOLE[:(]")  # e.g. `INFO:CONSOLE:1] "Uncaught ReferenceError ..."`
STUDENT_ORANGE = np.array([0xDD, 0x84, 0x52]) / 255  # drawn only inside the figures


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def _screenshot(tmp_path: Path, page: Path, height: int) -> np.ndarray:
    import matplotlib.image

    shot = tmp_path / f"{page.stem}.png"
    result = _chromium(tmp_path, page, f"--screenshot={shot}", f"--window-size=1200,{height}")
    assert shot.is_file(), f"no screenshot; chromium said:\n{result.stderr[-2000:]}"
    assert not _console_lines(result.stderr), _console_lines(result.stderr)
    return matplotlib.image.imread(shot)[..., :3]


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self._open = False

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3"):
            self._open = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3"):
            self._open = False

    def handle_data(self, data):
        if self._open:
            self.headings[-1] += data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return render_html(demo_report(), tmp_path_factory.mktemp("report") / "report.html")


def test_console_check_catches_errors(tmp_path):
    # the check below is meaningful: a page with a script error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script></body></html>")
    result = _chromium(tmp_path, bad, "--dump-dom")
    assert any("boom" in line for line in _console_lines(result.stderr)), result.stderr[-2000:]


def test_report_renders_headings_without_console_errors(tmp_path, rendered):
    result = _chromium(tmp_path, rendered, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not _console_lines(result.stderr), _console_lines(result.stderr)
    parser = _Headings()
    parser.feed(result.stdout)
    for heading in ("compress-gate report", "Verdict",
                    "Error balance: FPR vs FNR change (Blakeney et al., Fig. 3)",
                    "Bias amplification (Iofinova et al., Fig. 1 and 6)",
                    "Uncertainty and CIEs (Iofinova et al., Fig. 5)",
                    "Subgroups and intersections (Hooker et al., Table 3)",
                    "Speed bought vs bias cost", "Speed bought", "Bias cost"):
        assert heading in parser.headings
    assert result.stdout.count("<img") == 3


def test_screenshot_is_not_blank_and_shows_the_figures(tmp_path, rendered):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert _screenshot(tmp_path, blank, 800).std() < 1e-3  # the variance check can fail

    pixels = _screenshot(tmp_path, rendered, 5000)
    assert pixels.std() > 0.05
    assert (pixels.min(axis=2) < 0.9).mean() > 0.02  # more than a few dark pixels: text and plots
    orange = (np.abs(pixels - STUDENT_ORANGE).max(axis=2) < 0.03).sum()
    assert orange > 500, "the figures' student colour is missing: the embedded PNGs did not render"
