"""report.html and MODEL_CARD.md from a report.json dict: layout, escaping, undefined values."""

from __future__ import annotations

import base64
import math
import html
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from _report_fixture import demo_report, passing_minimal_report, table_cell_texts

from compress_gate.report.schema import LimitResult
from compress_gate.report import render_html, write_model_card
from compress_gate.report._format import fmt, fmt_ci, fmt_limit, judged_value
from compress_gate.report.figures import covariance_ellipse, error_balance_figure
from compress_gate.report.html import build_html
from compress_gate.report.model_card import build_model_card, md

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Collector(HTMLParser):
    """Tags, attributes and text of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("h1", "h2", "h3"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False

    def handle_data(self, data):
        if self._in_heading:
            self.headings[-1] += data


@pytest.fixture(scope="module")
def demo_html() -> str:
    return build_html(demo_report())


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    return parser


# --- formatting ------------------------------------------------------------------------

def _limit(**fields: object) -> LimitResult:
    """A judged limit with plausible defaults for the fields a test does not set."""
    base = {"name": "x", "metric": "ba", "observed": 0.2, "bound": "point", "gated": 0.2, "limit": 0.1,
            "direction": "max", "passed": False, "outcome": "fail", "reason": "r"}
    return LimitResult.model_validate({**base, **fields})


def test_fmt_numbers_and_undefined():
    assert fmt(0.03125) == "0.03125"
    assert fmt(0.123456) == "0.1235"
    assert fmt(1234) == "1,234"
    assert fmt(0.125, percent=True) == "12.5%"
    assert fmt(0.0297, signed=True) == "+0.0297"
    assert fmt(-3, signed=True) == "-3"
    assert fmt(True) == "yes"
    assert fmt(None, reason="teacher FPR is 0") == "undefined (teacher FPR is 0)"
    assert fmt({"undefined": "N_test(A=1, I=1) = 4 < 10"}) == "undefined (N_test(A=1, I=1) = 4 < 10)"
    assert fmt(math.nan, reason="empty group") == "undefined (empty group)"
    assert fmt(math.inf) == "undefined (infinite)"
    assert fmt("-inf") == "undefined (infinite)"  # report.json writes ±inf as strings
    assert fmt_ci([0.1, None]) == "[0.1, undefined (not computed)]"
    assert fmt_ci(None) == "no interval"
    assert fmt_limit(_limit(direction="min", limit=0.85)) == "≥ 0.85"
    assert fmt_limit(_limit(direction="max", limit=0.02)) == "≤ 0.02"
    assert judged_value(_limit(bound="upper", ci=[0.1, 0.3], gated=0.3)) == "upper bound 0.3"
    assert judged_value(_limit(bound="lower", direction="min", ci=[0.1, 0.3], gated=0.1)) == "lower bound 0.1"
    # a pass always needs the bound; `bound: point` says that a point outside fails
    assert judged_value(_limit(bound="point", gated=0.25)) == "upper bound 0.25 (fails on the point)"
    assert judged_value(_limit(bound="upper", gated=None)) == \
        "upper bound undefined (none (degenerate or not measured))"


def test_covariance_ellipse_hand_computed():
    # mean 0; sample covariance (ddof=1): var x = (1+1)/3 = 2/3, var y = (4+4)/3 = 8/3, cov 0.
    # q = -2 ln(0.05) = 5.99146; axes 2*sqrt(q*8/3) (along y) and 2*sqrt(q*2/3) (along x).
    points = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -2.0], [0.0, 2.0]])
    (cx, cy), width, height, angle = covariance_ellipse(points, confidence=0.95)
    q = -2 * math.log(0.05)
    assert (cx, cy) == pytest.approx((0.0, 0.0))
    assert width == pytest.approx(2 * math.sqrt(q * 8 / 3))
    assert height == pytest.approx(2 * math.sqrt(q * 2 / 3))
    assert angle % 180 == pytest.approx(90.0)


def test_covariance_ellipse_needs_three_points():
    assert covariance_ellipse(np.array([[0.0, 1.0], [1.0, 0.0]])) is None


def test_error_balance_figure_is_none_when_every_change_is_undefined():
    assert error_balance_figure({"a": None, "b": {"undefined": "x"}}, {"a": 3.0, "b": 1.0}) is None


def test_markdown_escaping():
    assert md("a|b <i>*x*</i>") == r"a\|b \<i\>\*x\*\</i\>"
    assert md("two\nlines") == "two lines"


# --- the HTML page ---------------------------------------------------------------------

def test_page_is_self_contained(demo_html):
    page = _parse(demo_html)
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags and "iframe" not in tags and "object" not in tags
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            if key in attrs:  # embedded data, or a link to a footnote on the page
                assert attrs[key].startswith(("data:", "#note-")), (tag, attrs[key][:80])
    assert not re.search(r"https?://", demo_html)
    assert "@import" not in demo_html and "url(" not in demo_html


def test_every_figure_is_an_embedded_png(demo_html):
    images = [attrs for tag, attrs in _parse(demo_html).tags if tag == "img"]
    assert len(images) == 3  # error balance, bias amplification, uncertainty
    for attrs in images:
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix)
        assert base64.b64decode(attrs["src"][len(prefix):]).startswith(PNG_MAGIC)
        assert attrs["alt"]


def test_verdict_comes_first_with_each_limit(demo_html):
    page = _parse(demo_html)
    assert page.headings[:2] == ["compress-gate report", "Verdict"]
    assert demo_html.index("FAIL: release refused (2 of 4 limit(s) exceeded)") < demo_html.index("<img")
    verdict = demo_html[demo_html.index('id="verdict"'):demo_html.index('id="error-balance"')]
    assert "95% CI" in verdict
    # one compact row per limit: outcome, observed, CI, limit, n; the judged bound and reason in <details>
    assert re.search(r"<td>ba:smiling/male</td><td class=\"fail\">FAIL</td><td>0.031</td><td>\[0.012, 0.047\]</td>"
                     r"<td>≤ 0.02</td><td>1,200</td><td><details><summary>why</summary><p>ba: upper bound 0.047</p>",
                     verdict)
    # an undefined observed value is a mark linked to its footnote
    assert re.search(r"<td>ba:eyeglasses/young</td><td class=\"fail\">FAIL</td><td class=\"undefined\">n/a<sup>"
                     r"<a href=\"#note-1\">1</a></sup></td>", verdict)
    assert '<li id="note-1">student BA undefined (no positive predictions) where' in demo_html


def test_expected_sections_in_order(demo_html):
    headings = _parse(demo_html).headings
    expected = ["Verdict", "Error balance: FPR vs FNR change (Blakeney et al., Fig. 3)",
                "Bias amplification (Iofinova et al., Fig. 1 and 6)",
                "Uncertainty and CIEs (Iofinova et al., Fig. 5)",
                "Subgroups and intersections (Hooker et al., Table 3)", "Speed bought vs bias cost"]
    positions = [headings.index(h) for h in expected]
    assert positions == sorted(positions)


def test_text_is_escaped(demo_html):
    assert "accuracy &lt;script&gt;" in demo_html
    assert "<script" not in demo_html
    report = demo_report()
    report["inputs"]["attribute_names"][0] = 'x"><img src=y onerror=alert(1)>'
    page = build_html(report)
    assert "onerror=alert(1)>" not in page
    assert "x&quot;&gt;&lt;img src=y onerror=alert(1)&gt;" in page


def _footnotes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<li id="note-\d+">(.*?)</li>', page)]


def test_undefined_values_show_their_reason_once_as_a_footnote(demo_html):
    notes = _footnotes(demo_html)
    for reason in ("teacher FPR is 0",                   # normalized change of `bald`
                   "N_test(A=1, I=0) = 3 < 10",          # BA not computed (in three columns)
                   "no positives"):                      # tiny intersection FNR
        assert notes.count(reason) == 1, notes
    assert len(notes) == len(set(notes))
    cells = table_cell_texts(demo_html)
    marks = [c for c in cells if c.startswith("n/a")]
    assert len(marks) > len(notes)                        # reasons shared by several cells
    for cell in cells:                             # no reason sentence in a table cell
        assert "undefined" not in cell and not any(reason in cell for reason in notes), cell
    assert "excluded 1: bald" in demo_html
    assert ">nan<" not in demo_html and "None" not in demo_html


def test_subgroup_table_has_sizes_and_normalized_differences(demo_html):
    section = demo_html[demo_html.index('id="subgroups"'):demo_html.index('id="speed-vs-bias"')]
    assert "<td>male &amp; not young</td>" in section
    assert section.count("<tr>") == 1 + 9  # header + all, 4 groups, 4 intersections
    assert "norm. diff FNR %" in section and "<td>1,200</td>" in section


def test_benchmarks_beside_bias_cost(demo_html):
    section = demo_html[demo_html.index('id="speed-vs-bias"'):demo_html.index('id="per-attribute"')]
    assert 'class="side-by-side"' in section
    assert "Speed bought" in section and "Bias cost" in section
    assert "<td>deepsparse</td>" in section and "no CUDA GPU on this machine" in section
    assert "<td>2.72× [2.6, 2.8] vs teacher</td>" in section and "<td>reference</td>" in section
    assert "largest BA increase" in section and "+0.0706 (smiling / young)" in section


def test_minimal_report_renders_with_notes(tmp_path):
    path = render_html(passing_minimal_report(), tmp_path / "sub" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert "PASS: release allowed" in page
    assert "No limits were configured" in page
    assert "No benchmarks in this report" in page
    assert "No mitigation was applied." in page
    assert "No engine cross-check" in page
    assert not list((tmp_path / "sub").glob(".*tmp*"))  # atomic write left no temporary file


def test_report_without_defined_points_says_why():
    report = passing_minimal_report()
    report["metrics"]["delta"] = {"fpr": {"a": None}, "fnr": {"a": None}}
    report["metrics"]["ba"] = {"teacher": {}, "student": {}, "increase": {}}
    page = build_html(report)
    assert "No figure: no attribute has a defined normalized change" in page
    assert "No figure: no (attribute, identity) pair has a defined BA" in page


# --- the model card ----------------------------------------------------------------------

def test_model_card_sections_and_content(tmp_path):
    path = write_model_card(demo_report(), tmp_path / "MODEL_CARD.md", intended_use="Sorting | photos")
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^##+ (.+)$", text, flags=re.M)
    for heading in ("Model details", "Compression applied", "Intended use", "Factors", "Metrics",
                    "Evaluation data", "Gate limits and verdict", "Quantitative analyses (disaggregated)",
                    "Mitigations shipped", "Known limitations and caveats"):
        assert heading in headings
    assert "Primary use: Sorting \\| photos" in text
    assert "| ba:smiling/male | 0.031 | \\[0.012, 0.047\\] | upper bound 0.047 | ≤ 0.02 | FAIL |" in text
    assert "overall\\_sparsity: 0.8" in text
    assert "2.72x for student on deepsparse at batch 1" in text
    assert "Groups with fewer than 30 test samples" in text and "not male \\& not young (n=4)" in text
    assert "Student BA undefined for 3 (attribute, identity) pair(s)" in text
    # every table row has the header's number of cells
    for block in re.findall(r"((?:^\|.*\|$\n?)+)", text, flags=re.M):
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in block.strip().splitlines()}
        assert len(counts) == 1, block


def test_model_card_without_run_or_mitigation():
    text = build_model_card(passing_minimal_report())
    assert "Primary use: **not stated by the model owner.**" in text
    assert "Not recorded: this report comes from `compress-gate gate`" in text
    assert "No limits were configured." in text
    assert "None: the model ships with the default decision rule" in text


def test_the_runs_similarity_is_a_section_of_the_page_before_the_notes(demo_html):
    # the fixture's run.similarity: layer1 CKA 0.98765 (SVCCA undefined), layer2 0.5 / 0.25, means 0.743825 / 0.25
    section = demo_html[demo_html.index('<section id="similarity">'):demo_html.index('<section id="undefined">')]
    assert demo_html.count('<section id="similarity">') == 1
    cells = table_cell_texts(section)
    assert cells[:2] + cells[3:] == ["layer1", "0.9877", "layer2", "0.5000", "0.2500",
                                     "mean over layers", "0.7438", "0.2500"]
    assert cells[2].startswith("n/a")                            # layer1's SVCCA: a footnote, as every n/a
    assert _footnotes(demo_html).count("the layer's output is constant over the rows") == 1
    assert "512 fixed calib rows (seed 0)" in section and "SVCCA keeps 99%" in section
    assert "run: similarity" not in demo_html                   # not dumped again in the provenance list


def test_a_report_without_a_run_has_no_similarity_section():
    assert 'id="similarity"' not in build_html(passing_minimal_report())


def test_the_model_card_gives_the_mean_similarity():
    card = build_model_card(demo_report())
    assert ("- Representation similarity to the teacher (mean over 2 layers, 512 calib rows): "
            "linear CKA 0.7438, SVCCA 0.2500.") in card
    assert "similarity" not in card.replace("Representation similarity", "")
