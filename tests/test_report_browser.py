"""report.html in a real headless browser (Debian `chromium`): it renders, logs no console
error, shows the expected headings, and its screenshot is not blank.

Skipped, with the reason, where no chromium is installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from _report_fixture import demo_report, table_cell_texts

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


def test_report_reads_at_a_glance_in_the_browser(tmp_path, rendered):
    # the DOM chromium built: one compact row per limit with its detail closed, undefined cells as
    # marks, each undefined reason once in the footnotes and never in a table cell
    dom = _chromium(tmp_path, rendered, "--dump-dom").stdout
    verdict = dom[dom.index('id="verdict"'):dom.index('id="error-balance"')]
    assert verdict.count("<details>") == len(demo_report()["limits"]) and "<details open" not in dom
    notes = [html.unescape(m) for m in re.findall(r'<li id="note-\d+">(.*?)</li>', dom)]
    assert notes and len(notes) == len(set(notes))
    cells = table_cell_texts(dom)
    assert sum(c.startswith("n/a") for c in cells) > len(notes)
    for cell in cells:
        assert "undefined" not in cell and not any(note in cell for note in notes), cell


def test_sweep_limits_are_an_outcome_grid_in_the_browser(tmp_path):
    from compress_gate.pipeline._sweep_html import write_sweep_html

    outcomes = {0.5: ("pass", "pass"), 0.8: ("pass", "not_enough_evidence"), 0.9: ("fail", "pass")}
    students = [{"requested_sparsity": s, "mask": None, "student": f"sparsity-{s}", "run_dir": str(tmp_path / f"s{s}"),
                 "bundle": str(tmp_path / f"s{s}" / "release"), "verdict": "pass" if s < 0.85 else "fail",
                 "limits": [{"name": "worst BA increase", "metric": "ba", "observed": s / 10, "ci": [s / 20, s / 5],
                             "limit": 0.05, "outcome": ba},
                            {"name": "accuracy drop", "metric": "accuracy", "observed": -s / 20, "ci": [-0.06, 0.0],
                             "limit": -0.05, "outcome": acc}]}
                for s, (ba, acc) in outcomes.items()]
    page = write_sweep_html({"recipe": "r.yaml", "chosen": 0.8, "chosen_student": "sparsity-0.8",
                             "students": students, "correlations": {}}, tmp_path / "sweep.html")
    dom = _chromium(tmp_path, page, "--dump-dom").stdout
    grid = dom[dom.index('<table class="grid">'):]
    grid = grid[:grid.index("</table>")]
    assert re.findall(r"<th>(.*?)</th>", grid) == ["sparsity", "worst BA increase", "accuracy drop"]
    rows = re.findall(r"<tr>(.*?)</tr>", grid)[1:]
    texts = [[" ".join(re.sub("<[^>]+>", " ", c).split()) for c in re.findall(r"<td>(.*?)</td>", row)] for row in rows]
    word = {"pass": "pass", "fail": "FAIL", "not_enough_evidence": "undecided"}
    assert texts == [[f"{s:g}", f"{word[ba]} {s / 10:.4f}", f"{word[acc]} {-s / 20:.4f}"]
                     for s, (ba, acc) in outcomes.items()]
    per_student = dom[dom.index('id="table"'):]
    assert "limits" not in re.findall(r"<th>(.*?)</th>", per_student[:per_student.index("</table>")])
