"""A generated multi-label attribute data set (``data.kind: synthetic``), drawn offline.

CelebA cannot be downloaded where the tool runs, so this stands in for the papers'
setting (Iofinova et al.: jointly trained binary attributes, identity categories that
correlate with some of them in training). Everything is **synthetic** and seeded: the
same config gives identical arrays on every call.

**Labels.** Ten binary attributes, :data:`ATTRIBUTES`, with base rates
:data:`BASE_RATES`, and two identity categories, :data:`GROUPS` (``warm``: P = 0.5,
``shadow``: P = 0.4), all drawn independently. Four attributes are correlated with an
identity in training only (:data:`CORRELATED`: ``red`` and ``large`` with ``warm``,
``striped`` and ``stroke`` with ``shadow``). A training row is kept with probability

.. math:: k^{r}, \\quad r = \\#\\{(a, g) \\in \\text{CORRELATED} : y_a \\ne y_g\\}

(``k`` = ``keep_fraction``): rare attribute/identity combinations are down-sampled, and
rows are drawn until ``n_train`` are kept. Since each attribute is correlated with one
identity and the identities are independent, the training conditionals are exactly

.. math:: P(a = 1 \\mid g = 1) = \\frac{p}{p + (1 - p) k}, \\qquad
          P(a = 1 \\mid g = 0) = \\frac{p k}{p k + 1 - p}

(p the base rate; with k = 0.2 and p = 0.35: 0.73 against 0.10). ``calib`` and ``test``
are not down-sampled: there every attribute is independent of the identities (balanced).

**Images** (``image_size`` squared, RGB, vectorised over rows, see :func:`draw_images`):
background brightness (``dark_background``) with a warm or cool tint (identity ``warm``)
and an optional 1-pixel checkerboard (``checkered``); one shape, a disc or a square
(``round``; the square's half-side equals the radius), with radius 0.23-0.32 or 0.15-0.21
of the side (``large``), centre left or right of the middle (``left``), colour a red/blue
mix on the red or the blue side (``red``), plain or with every other row darkened
(``striped``); a yellow diagonal line (``stroke``), a 2x2 spot, white on dark and black on
light backgrounds (``spot``), a green 1-pixel border (``frame``); the bottom sixth
darkened (identity ``shadow``). Then a random contrast/brightness change and Gaussian
pixel noise of standard deviation ``noise``; pixels are clipped to [0, 1] and scaled to
[-1, 1]. Continuous factors (radius, offset, colour mix, stroke and frame opacity) are
drawn uniformly on their side of the boundary, so some images are close calls.

**Ids** are ``synth-<row>`` (``synth-000042``), rows ordered train, calib, test.
"""

from __future__ import annotations

import numpy as np

from compress_gate.config.data import SyntheticDataConfig
from compress_gate.data._build import build_eval_data
from compress_gate.data._images import normalize_unit
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError

__all__ = ["ATTRIBUTES", "BASE_RATES", "GROUPS", "GROUP_RATES", "CORRELATED", "make_synthetic_data",
           "draw_labels", "draw_images", "train_conditionals"]

ATTRIBUTES = ("round", "large", "left", "red", "striped", "stroke", "frame", "spot", "dark_background",
              "checkered")
BASE_RATES = (0.5, 0.4, 0.5, 0.35, 0.3, 0.25, 0.2, 0.3, 0.5, 0.3)
GROUPS = ("warm", "shadow")
GROUP_RATES = (0.5, 0.4)
#: (attribute, identity) pairs correlated in training by down-sampling their rare combinations.
CORRELATED = (("red", "warm"), ("large", "warm"), ("striped", "shadow"), ("stroke", "shadow"))
_MIN_BA_POSITIVES = 10       # DESIGN.md: BA needs >= 10 test positives in and out of the group
_CHUNK = 4096                # rows drawn at once (bounds memory to ~50 MB at 32x32)
_SOURCE = "synthetic data (data.kind: synthetic)"

_RED, _BLUE = np.array([0.9, 0.15, 0.1]), np.array([0.15, 0.25, 0.9])
_YELLOW, _GREEN, _WHITE = np.array([0.95, 0.9, 0.15]), np.array([0.1, 0.85, 0.2]), np.ones(3)
_WARM, _COOL = np.array([0.15, 0.05, -0.15]), np.array([-0.15, 0.0, 0.15])


def train_conditionals(base_rate: float, keep_fraction: float) -> tuple[float, float]:
    r"""``(P(a=1 | g=1), P(a=1 | g=0))`` in ``train`` for a correlated (attribute, identity) pair.

    With base rate p and keep fraction k (a training row with y_a != y_g is kept with
    probability k), :math:`P(a=1 \mid g=1) = p / (p + (1 - p) k)` and
    :math:`P(a=1 \mid g=0) = p k / (p k + 1 - p)`; k = 1 gives (p, p).

    >>> train_conditionals(0.5, 0.2)
    (0.8333333333333334, 0.16666666666666666)
    """
    p, k = base_rate, keep_fraction
    return p / (p + (1 - p) * k), p * k / (p * k + 1 - p)


def draw_labels(n: int, rng: np.random.Generator, *, keep_fraction: float | None) -> tuple[np.ndarray,
                                                                                            np.ndarray]:
    """``n`` rows of ``(labels (n, 10) uint8, groups (n, 2) uint8)``.

    With ``keep_fraction`` None every row is drawn independently (calib, test); else rows
    are drawn in batches and each kept with probability ``keep_fraction ** r`` (module
    docstring) until ``n`` are kept (train).
    """
    labels, groups, have = [], [], 0
    while have < n:
        batch = max(n - have, 256) if keep_fraction is None else max(4 * (n - have), 1024)
        y = (rng.random((batch, len(ATTRIBUTES))) < np.asarray(BASE_RATES)).astype(np.uint8)
        g = (rng.random((batch, len(GROUPS))) < np.asarray(GROUP_RATES)).astype(np.uint8)
        if keep_fraction is not None:
            rare = sum((y[:, ATTRIBUTES.index(a)] != g[:, GROUPS.index(i)]).astype(int) for a, i in CORRELATED)
            kept = rng.random(batch) < keep_fraction ** rare
            y, g = y[kept], g[kept]
        labels.append(y)
        groups.append(g)
        have += len(y)
    return np.concatenate(labels)[:n], np.concatenate(groups)[:n]


def _side(flag: np.ndarray, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """+U(low, high) where ``flag`` is 1, -U(low, high) where 0: a factor on its side of 0."""
    return np.where(flag == 1, 1.0, -1.0) * rng.uniform(low, high, flag.shape)


def _blend(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: np.ndarray | float = 1.0) -> np.ndarray:
    """``img`` (n, 3, S, S) with ``colour`` ((3,) or (n, 3)) laid over ``mask`` (n, S, S) at opacity ``alpha``."""
    weight = (mask * np.reshape(alpha, (-1, 1, 1)))[:, None]
    colour = np.broadcast_to(colour, (len(img), 3))[:, :, None, None]
    return img * (1 - weight) + colour * weight


def draw_images(labels: np.ndarray, groups: np.ndarray, *, size: int, noise: float,
                rng: np.random.Generator) -> np.ndarray:
    """Draw one image per row: (n, 3, size, size) float32 in [0, 1].

    Each attribute and identity sets one visible factor (background brightness and tint,
    checkerboard, disc or square, its size, side, colour and stripes, a diagonal stroke, a
    spot, a border, a shadowed bottom sixth); then a random contrast/brightness change and
    Gaussian pixel noise of standard deviation ``noise``, clipped to [0, 1].

    ``labels`` (n, 10) and ``groups`` (n, 2) are 0/1 in the order of ATTRIBUTES and GROUPS.
    Vectorised over the n rows: every step is an array operation on (n, size, size).
    """
    n = len(labels)
    a = {name: labels[:, i] for i, name in enumerate(ATTRIBUTES)}
    warm, shadow = groups[:, 0], groups[:, 1]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    y, x = y[None], x[None]

    def col(values: np.ndarray) -> np.ndarray:
        return values[:, None, None]

    brightness = np.where(a["dark_background"] == 1, rng.uniform(0.1, 0.3, n), rng.uniform(0.55, 0.75, n))
    tint = np.where(warm[:, None] == 1, _WARM, _COOL)
    img = np.broadcast_to((brightness[:, None] + tint)[:, :, None, None], (n, 3, size, size)).copy()
    checker = np.where((x + y) % 2 == 0, 0.12, -0.12) * col(a["checkered"].astype(float))
    img += checker[:, None]

    radius = size * np.where(a["large"] == 1, rng.uniform(0.23, 0.32, n), rng.uniform(0.15, 0.21, n))
    cx = size / 2 - 0.5 - size * _side(a["left"], 0.03, 0.16, rng)
    cy = size / 2 - 0.5 + size * rng.uniform(-0.12, 0.12, n)
    dx, dy = x - col(cx), y - col(cy)
    disc = dx ** 2 + dy ** 2 <= col(radius) ** 2
    square = np.maximum(np.abs(dx), np.abs(dy)) <= col(radius)
    shape = np.where(col(a["round"]) == 1, disc, square).astype(float)
    mix = 0.5 + _side(a["red"], 0.08, 0.5, rng)
    colour = mix[:, None] * _RED + (1 - mix[:, None]) * _BLUE
    stripes = np.where(y % 2 == 0, 0.35, 1.0) * np.ones_like(shape)
    shade = np.where(col(a["striped"]) == 1, stripes, 1.0)
    img = _blend(img, shape, colour)
    img *= np.where(shape > 0, shade, 1.0)[:, None]

    main = np.abs(x - y) <= 0.5
    anti = np.abs(x + y - (size - 1)) <= 0.5
    stroke = np.where(col(rng.random(n) < 0.5), main, anti) * col(a["stroke"].astype(float))
    img = _blend(img, stroke, _YELLOW, rng.uniform(0.5, 0.9, n))
    px, py = rng.integers(1, size - 2, n), rng.integers(1, size - 2, n)
    spot = (x >= col(px)) & (x < col(px) + 2) & (y >= col(py)) & (y < col(py) + 2)
    spot_colour = np.where(brightness[:, None] < 0.45, _WHITE, np.zeros(3))
    img = _blend(img, spot * col(a["spot"].astype(float)), spot_colour)
    border = (x == 0) | (y == 0) | (x == size - 1) | (y == size - 1)
    img = _blend(img, border * col(a["frame"].astype(float)), _GREEN, rng.uniform(0.6, 1.0, n))
    band = y >= size - max(2, size // 6)
    img *= np.where(band & (col(shadow) == 1), 0.4, 1.0)[:, None]

    contrast, offset = rng.uniform(0.85, 1.1, (n, 1, 1, 1)), rng.uniform(-0.05, 0.05, (n, 1, 1, 1))
    img = (img - 0.5) * contrast + 0.5 + offset + rng.normal(0.0, noise, img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _check_ba_computable(labels: np.ndarray, groups: np.ndarray, cfg: SyntheticDataConfig) -> None:
    for attribute, identity in CORRELATED:
        positives = labels[:, ATTRIBUTES.index(attribute)] == 1
        member = groups[:, GROUPS.index(identity)] == 1
        inside, outside = int((positives & member).sum()), int((positives & ~member).sum())
        if min(inside, outside) < _MIN_BA_POSITIVES:
            raise InputError(
                f"{_SOURCE}: the test split would hold {inside} `{attribute}` samples with `{identity}` and "
                f"{outside} without; bias amplification needs at least {_MIN_BA_POSITIVES} of each. Raise "
                f"`data.n_test` (now {cfg.n_test}; 20000 by default).")


def _available_memory() -> int:
    """Bytes of memory this process can still allocate without swapping (psutil's ``available``)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _check_fits_in_memory(cfg: SyntheticDataConfig) -> None:
    """Refuse, before anything is drawn, a data set whose images cannot be built in this machine's memory.

    The images are float32 (n, 3, S, S), built in chunks that are then concatenated and scaled
    to [-1, 1]: the peak holds two copies, so the estimate is ``2 * n * 3 * S^2 * 4`` bytes
    (1e6 rows per split at 64 px: 147 GB of images, 295 GB at the peak).
    """
    rows = cfg.n_train + cfg.n_calib + cfg.n_test
    images = rows * 3 * cfg.image_size ** 2 * np.dtype(np.float32).itemsize
    available = _available_memory()
    if 2 * images > available:
        raise InputError(
            f"{_SOURCE}: {rows:,} rows (n_train + n_calib + n_test) of 3x{cfg.image_size}x{cfg.image_size} float32 "
            f"images take {_gb(images)}, and about {_gb(2 * images)} while they are built, but this machine has "
            f"{_gb(available)} of memory available; nothing was drawn. Lower "
            "`data.n_train`, `data.n_calib`, `data.n_test` or `data.image_size`, or run on a machine with more "
            "memory.")


def _gb(n_bytes: int) -> str:
    """``n_bytes`` in gigabytes (10^9 bytes), three decimals below 1 GB: ``147.5 GB``, ``0.006 GB``."""
    return f"{n_bytes / 1e9:,.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e9:.3f} GB"


def make_synthetic_data(config: SyntheticDataConfig | None = None) -> EvalData:
    """Generate the synthetic data set: ten attributes and two identities drawn with their base rates,
    training rows down-sampled where a correlated attribute and identity disagree (kept with
    probability ``keep_fraction ** r``), calib and test balanced; one image per row.

    Parameters
    ----------
    config : SyntheticDataConfig, default=None
        ``None`` uses the defaults (seed 0, 16x16, 12,000 / 4,000 / 20,000 rows).

    Returns
    -------
    EvalData
        ``task = "multilabel"``, ``attribute_names = ATTRIBUTES``, groups ``warm`` and
        ``shadow``, ``inputs`` (N, 3, image_size, image_size) float32 in [-1, 1].

    Raises
    ------
    InputError
        The images would not fit in the memory available (:func:`_check_fits_in_memory`,
        checked before anything is drawn), or the test split would hold fewer than 10
        positives of a correlated attribute inside or outside its identity group (BA could
        not be computed).
    """
    cfg = config if config is not None else SyntheticDataConfig()
    _check_fits_in_memory(cfg)
    rng = np.random.default_rng(cfg.seed)
    parts = [draw_labels(cfg.n_train, rng, keep_fraction=cfg.keep_fraction),
             draw_labels(cfg.n_calib, rng, keep_fraction=None),
             draw_labels(cfg.n_test, rng, keep_fraction=None)]
    _check_ba_computable(*parts[2], cfg)
    labels = np.concatenate([p[0] for p in parts])
    groups = np.concatenate([p[1] for p in parts])
    split = np.repeat(np.array(["train", "calib", "test"]), [cfg.n_train, cfg.n_calib, cfg.n_test])
    images = np.concatenate([draw_images(labels[i:i + _CHUNK], groups[i:i + _CHUNK], size=cfg.image_size,
                                         noise=cfg.noise, rng=rng) for i in range(0, len(labels), _CHUNK)])
    ids = np.char.add("synth-", np.char.zfill(np.arange(len(labels)).astype(str), 6))
    return build_eval_data(ids=ids, labels=labels, split=split,
                           groups={name: groups[:, i] for i, name in enumerate(GROUPS)},
                           attribute_names=ATTRIBUTES, task="multilabel", inputs=normalize_unit(images),
                           source=_SOURCE)
