"""The report's figures, drawn with matplotlib's Agg canvas and embedded as PNG data URIs.

Each figure is the picture a paper uses for the same number, so readers can compare:

- :func:`error_balance_figure`: normalized FPR change vs FNR change per attribute, the
  balance line and a 95% covariance ellipse, the teacher at the origin (Blakeney et
  al. 2021, Fig. 3).
- :func:`bias_amplification_figure`: BA per (attribute, identity category) for the
  teacher, the student and the mitigated student (Iofinova et al. 2023, Fig. 1 and 6).
- :func:`uncertainty_figure`: teacher and student score histograms, and the share of
  uncertain samples among CIEs vs all samples (Iofinova et al. 2023, Fig. 5).
- :func:`ap_per_group_figure`: the student's AP per joint group as a percentage of the
  teacher's (Lin et al. 2022, FairGRAPE's AP-per-group figure).

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global
state), so rendering is safe in worker threads and never opens a window.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate._format import is_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["covariance_ellipse", "error_balance_figure", "bias_amplification_figure",
           "uncertainty_figure", "ap_per_group_figure", "figure_data_uri", "is_number"]

_TEACHER, _STUDENT, _AFTER = "#4c72b0", "#dd8452", "#55a868"


def covariance_ellipse(points: np.ndarray, *, confidence: float = 0.95
                       ) -> tuple[tuple[float, float], float, float, float] | None:
    r"""The ``confidence`` ellipse of 2-D points under a Gaussian fit.

    With the sample covariance :math:`\Sigma` (``ddof=1``) and its eigenpairs
    :math:`(\lambda_j, v_j)`, the ellipse is centred on the mean, its full axes are
    :math:`2\sqrt{q\,\lambda_j}` with :math:`q = -2\ln(1-c)` (the chi-square quantile
    with 2 degrees of freedom), and it is rotated to :math:`v_1` (largest eigenvalue).

    Returns
    -------
    ``((cx, cy), width, height, angle_degrees)``, or ``None`` with fewer than 3 points
    (the covariance of 2 points is a segment, not an ellipse worth drawing).
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3:
        return None
    centre = points.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(np.cov(points, rowvar=False))
    eigvals = np.clip(eigvals, 0.0, None)
    q = -2.0 * math.log(1.0 - confidence)
    major, minor = eigvecs[:, 1], eigvals[::-1]
    angle = math.degrees(math.atan2(major[1], major[0]))
    return ((float(centre[0]), float(centre[1])), float(2 * math.sqrt(q * minor[0])),
            float(2 * math.sqrt(q * minor[1])), angle)


def figure_data_uri(fig: Figure) -> str:
    """Encode ``fig`` as a ``data:image/png;base64,...`` URI (Agg canvas, 110 dpi)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _defined_points(delta_fpr: Mapping[str, Any], delta_fnr: Mapping[str, Any]
                    ) -> tuple[list[str], np.ndarray]:
    names = [n for n in delta_fpr if is_number(delta_fpr[n]) and is_number(delta_fnr.get(n))]
    return names, np.array([[delta_fpr[n], delta_fnr[n]] for n in names], dtype=float).reshape(-1, 2)


def error_balance_figure(delta_fpr: Mapping[str, Any], delta_fnr: Mapping[str, Any], *,
                         after: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
                         label_points: bool = True) -> Figure | None:
    """Scatter of normalized FPR change (x) vs FNR change (y), in percent, teacher at 0.

    Points on the dashed balance line (δFPR = δFNR) shifted both error types alike;
    the ellipse (95%, see :func:`covariance_ellipse`) shows how widely compression
    spread the attributes' errors (its size is what CEV measures; its distance from
    the line is what SDE measures). ``after`` adds the mitigated student in green.
    Undefined changes (teacher rate 0) are left out. ``None`` when no point is defined.
    """
    from matplotlib.patches import Ellipse

    names, points = _defined_points(delta_fpr, delta_fnr)
    if not names:
        return None
    series = [("student", points, _STUDENT, names)]
    if after is not None:
        after_names, after_points = _defined_points(*after)
        if after_names:
            series.append(("after mitigation", after_points, _AFTER, after_names))
    fig = _new_figure(6.0, 5.4)
    ax = fig.add_subplot()
    reach = max(float(np.abs(np.concatenate([s[1] for s in series])).max()), 1.0)
    for label, pts, colour, pt_names in series:
        ax.scatter(pts[:, 0], pts[:, 1], s=28, color=colour, label=f"{label} (n={len(pts)})", zorder=3)
        ellipse = covariance_ellipse(pts)
        if ellipse is not None:
            centre, width, height, angle = ellipse
            ax.add_patch(Ellipse(centre, width, height, angle=angle, fill=False, color=colour, lw=1.5,
                                 label=f"95% ellipse ({label})"))
            reach = max(reach, abs(centre[0]) + max(width, height) / 2, abs(centre[1]) + max(width, height) / 2)
        if label_points and len(pt_names) <= 40 and colour == _STUDENT:
            for name, (x, y) in zip(pt_names, pts):
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    reach *= 1.1
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.plot([-reach, reach], [-reach, reach], ls="--", color="grey", lw=1, label="balance δFPR = δFNR")
    ax.axhline(0, color="lightgrey", lw=0.8, zorder=0)
    ax.axvline(0, color="lightgrey", lw=0.8, zorder=0)
    ax.scatter([0], [0], marker="*", s=120, color=_TEACHER, label="teacher", zorder=4)
    ax.set_xlabel("normalized FPR change δFPR (%)")
    ax.set_ylabel("normalized FNR change δFNR (%)")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _ba_pairs(teacher: Mapping[str, Mapping[str, Any]], *others: Mapping[str, Mapping[str, Any]] | None
              ) -> list[tuple[str, str]]:
    pairs = []
    for attr, row in teacher.items():
        for group, value in row.items():
            values = [value] + [(o or {}).get(attr, {}).get(group) for o in others if o is not None]
            if any(is_number(v) for v in values):
                pairs.append((attr, group))
    return pairs


def bias_amplification_figure(teacher: Mapping[str, Mapping[str, Any]],
                              student: Mapping[str, Mapping[str, Any]],
                              after: Mapping[str, Mapping[str, Any]] | None = None,
                              *, max_pairs: int = 60) -> Figure | None:
    """Grouped horizontal bars: BA per (attribute, identity) for teacher, student, mitigated.

    Positive BA means the model predicts the attribute with the identity it co-occurs
    with in training more often than the test labels do. Undefined values draw no bar
    (the table beside the figure gives their reasons). Shows the ``max_pairs`` pairs
    with the largest student BA increase. ``None`` when no pair is defined.
    """
    pairs = _ba_pairs(teacher, student, after)
    if not pairs:
        return None

    def value(table: Mapping[str, Mapping[str, Any]] | None, attr: str, group: str) -> float:
        v = (table or {}).get(attr, {}).get(group)
        return float(v) if is_number(v) else math.nan

    def increase(pair: tuple[str, str]) -> float:
        diff = value(student, *pair) - value(teacher, *pair)
        return -math.inf if math.isnan(diff) else diff

    pairs = sorted(sorted(pairs, key=increase, reverse=True)[:max_pairs])
    series = [("teacher", teacher, _TEACHER), ("student", student, _STUDENT)]
    if after is not None:
        series.append(("student after mitigation", after, _AFTER))
    height = 0.8 / len(series)
    fig = _new_figure(7.0, 1.2 + 0.22 * len(pairs) * len(series))
    ax = fig.add_subplot()
    y = np.arange(len(pairs))
    for k, (label, table, colour) in enumerate(series):
        ax.barh(y + k * height, [value(table, *p) for p in pairs], height=height, color=colour, label=label)
    ax.set_yticks(y + height * (len(series) - 1) / 2, [f"{a} / {g}" for a, g in pairs], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("bias amplification (BA)")
    ax.legend(fontsize=8, loc="best")
    return fig


def uncertainty_figure(histogram: Mapping[str, Sequence[float]] | None,
                       cie: Mapping[str, Any] | None) -> Figure | None:
    """Left: score histograms of teacher and student (shaded: the uncertain band
    (0.1, 0.9)). Right: share of uncertain samples among CIEs (teacher's and student's
    scores) vs among all test samples (teacher). ``None`` when neither part has data.
    """
    has_hist = bool(histogram) and len(histogram.get("edges") or []) >= 2
    shares = [(label, (cie or {}).get(key)) for label, key in (
        ("CIEs (teacher scores)", "share_uncertain_teacher"),
        ("CIEs (student scores)", "share_uncertain_student"),
        ("all samples (teacher)", "share_uncertain_all_teacher"))]
    shares = [(label, float(v)) for label, v in shares if is_number(v)]
    if not has_hist and not shares:
        return None
    fig = _new_figure(9.0 if has_hist and shares else 5.5, 3.4)
    axes = fig.subplots(1, int(has_hist) + int(bool(shares)), squeeze=False)[0]
    if has_hist:
        ax = axes[0]
        edges = np.asarray(histogram["edges"], dtype=float)
        for label, colour in (("teacher", _TEACHER), ("student", _STUDENT)):
            counts = histogram.get(label)
            if counts is not None and len(counts) == len(edges) - 1:
                ax.stairs(np.asarray(counts, dtype=float), edges, label=label, color=colour, lw=1.8)
        ax.axvspan(0.1, 0.9, color="grey", alpha=0.12, label="uncertain (0.1, 0.9)")
        ax.set_xlabel("score")
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
    if shares:
        ax = axes[-1]
        colours = [_TEACHER, _STUDENT, "grey"][: len(shares)]
        bars = ax.bar(range(len(shares)), [v for _, v in shares], color=colours)
        ax.bar_label(bars, labels=[f"{v:.0%}" for _, v in shares], fontsize=8)
        ax.set_xticks(range(len(shares)), [label for label, _ in shares], fontsize=7, rotation=15)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share with a score in (0.1, 0.9)")
    return fig


def ap_per_group_figure(percent_of_teacher: Mapping[str, Any]) -> Figure | None:
    """Bars: the student's AP per group (``all`` and each joint group) as a percentage of the
    teacher's AP in the same group; the dashed line at 100 % is the teacher. Groups with an
    undefined percentage draw no bar (the table gives why). ``None`` when none is defined.
    """
    values = [(name, float(v)) for name, v in percent_of_teacher.items() if is_number(v)]
    if not values:
        return None
    fig = _new_figure(max(4.5, 1.0 + 0.9 * len(values)), 3.2)
    ax = fig.add_subplot()
    colours = [_TEACHER if name == "all" else _STUDENT for name, _ in values]
    bars = ax.bar(range(len(values)), [v for _, v in values], color=colours)
    ax.bar_label(bars, labels=[f"{v:.1f}%" for _, v in values], fontsize=8)
    ax.axhline(100.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(values)), [name for name, _ in values], fontsize=7, rotation=20)
    ax.set_ylabel("student AP, % of teacher AP")
    ax.set_ylim(0, max(105.0, 1.1 * max(v for _, v in values)))
    return fig
