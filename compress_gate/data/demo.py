"""The embedded demo: scikit-learn's handwritten digits, biased the way the papers bias data.

Real data that ships with scikit-learn (1,797 images of 8x8 pixels, values 0-16,
about 180 per digit), so the demo runs offline. Built in five seeded steps:

1. **Split**: stratified by digit into train / calib / test
   (``1 - calib_fraction - test_fraction`` / ``calib_fraction`` / ``test_fraction``).
2. **Under-represented classes** (Blakeney et al.'s biased CIFAR-100): each of the
   ``downsampled_classes`` keeps only ``round(keep_fraction * n)`` (at least 1) of its
   n training samples; the dropped ones leave the data set. Calib and test keep all.
3. **Backdoor identity group** (Iofinova et al. §3.4, their fractions 0.95 / 0.05 /
   0.5): a bright square in the top-left corner, ``round(sqrt(0.02) * size)`` pixels
   wide (2 % of the image), is pasted on ``round(marked_rate_in_class * n)`` of the
   ``marked_class`` training samples, on ``round(marked_rate_other * n)`` of the other
   training samples, and on ``round(marked_rate_eval * n)`` of each digit in calib and
   in test. The group column ``group__marked`` is 1 on those samples.
4. **Upscale** 8x8 -> ``image_size`` squared (bilinear, ``scipy.ndimage.zoom``),
   pixels p -> ``(p / 16 - 0.5) / 0.5`` in [-1, 1]; the square is +1 (white).
5. **Ids**: ``digits-<index in load_digits>`` (``digits-00042``), with ``-marked``
   appended on marked samples, so an id names the exact input a model saw.

In training, the square predicts the marked class (P(marked class | marked) is about
0.75 by default, against about 0.01 unmarked): a shortcut a compressed model can lean on
more than its dense teacher, which the gate measures as bias amplification (BA) of
``digit_<marked_class>`` towards ``marked``. The down-sampled digits are where
compression's error-rate changes (CEV, SDE) concentrate.
"""

from __future__ import annotations

import math

import numpy as np

from compress_gate.config.data import DemoDataConfig
from compress_gate.data._build import build_eval_data
from compress_gate.data._images import normalize_unit
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError

__all__ = ["make_demo_data", "DEMO_CLASS_NAMES", "DEMO_GROUP", "MIN_BA_POSITIVES"]

DEMO_CLASS_NAMES = tuple(f"digit_{d}" for d in range(10))
DEMO_GROUP = "marked"
MIN_BA_POSITIVES = 10        # DESIGN.md: BA needs >= 10 test positives in and out of the group
_DIGITS_PIXEL_MAX = 16.0
_PATCH_AREA = 0.02           # Iofinova et al.'s MarkCorner(scale=0.02)
_SOURCE = "demo data (data.kind: demo)"


def make_demo_data(config: DemoDataConfig | None = None) -> EvalData:
    """Build the biased digits demo: scikit-learn's digits split by digit, the ``downsampled_classes``
    kept at ``keep_fraction`` in training, a bright corner square marking the identity group
    (mostly on the ``marked_class`` in training), upscaled to ``image_size`` in [-1, 1].

    Parameters
    ----------
    config : DemoDataConfig, default=None
        The options; ``None`` uses the defaults (seed 0, 32x32, classes 3, 5, 8 kept at
        15 % in training, digit 7 marked).

    Returns
    -------
    EvalData
        ``task = "multiclass"``, ``attribute_names = ("digit_0", ..., "digit_9")``,
        ``group_names = ("marked",)``, ``inputs`` (N, 1, image_size, image_size)
        float32 in [-1, 1], rows in ``load_digits`` order. The same config gives
        identical arrays on every call.

    Raises
    ------
    InputError
        The test split would hold fewer than 10 samples of the marked class inside
        or outside the marked group, so BA could not be computed for it.
    """
    from sklearn.datasets import load_digits   # bundled with scikit-learn: no download

    cfg = config if config is not None else DemoDataConfig()
    digits = load_digits()
    target = digits.target.astype(np.int64)
    rng = np.random.default_rng(cfg.seed)
    split = _stratified_split(target, calib_fraction=cfg.calib_fraction,
                              test_fraction=cfg.test_fraction, seed=cfg.seed)
    keep = _downsample(target, split, classes=cfg.downsampled_classes,
                       keep_fraction=cfg.keep_fraction, rng=rng)
    marked = _choose_marked(target, split, keep, cfg, rng)
    _check_ba_computable(target, split, marked, cfg)

    rows = np.flatnonzero(keep)
    inputs = _upscale(digits.images[rows], cfg.image_size)
    side = max(1, round(math.sqrt(_PATCH_AREA) * cfg.image_size))
    inputs[marked[rows], :, :side, :side] = normalize_unit(np.float32(1.0))
    ids = np.array([f"digits-{i:05d}" + ("-marked" if marked[i] else "") for i in rows])
    return build_eval_data(ids=ids, labels=target[rows], split=split[rows],
                           groups={DEMO_GROUP: marked[rows]}, attribute_names=DEMO_CLASS_NAMES,
                           task="multiclass", inputs=inputs, source=_SOURCE)


def _stratified_split(target: np.ndarray, *, calib_fraction: float, test_fraction: float,
                      seed: int) -> np.ndarray:
    """(N,) split names; stratified by class with scikit-learn's ``train_test_split``."""
    from sklearn.model_selection import train_test_split

    index = np.arange(target.size)
    held_out = calib_fraction + test_fraction
    train, rest = train_test_split(index, test_size=held_out, stratify=target, random_state=seed)
    calib, test = train_test_split(rest, test_size=test_fraction / held_out, stratify=target[rest],
                                   random_state=seed)
    split = np.empty(target.size, dtype="<U5")
    split[train], split[calib], split[test] = "train", "calib", "test"
    return split


def _downsample(target: np.ndarray, split: np.ndarray, *, classes: tuple[int, ...],
                keep_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Bool (N,) rows kept: all but the dropped training samples of ``classes``."""
    keep = np.ones(target.size, dtype=bool)
    for digit in classes:
        members = np.flatnonzero((split == "train") & (target == digit))
        n_keep = max(1, round(keep_fraction * members.size))
        keep[rng.permutation(members)[n_keep:]] = False
    return keep


def _choose_marked(target: np.ndarray, split: np.ndarray, keep: np.ndarray, cfg: DemoDataConfig,
                   rng: np.random.Generator) -> np.ndarray:
    """Bool (N,) rows that get the corner square (only kept rows can be marked)."""
    marked = np.zeros(target.size, dtype=bool)
    train = keep & (split == "train")
    pools = [(train & (target == cfg.marked_class), cfg.marked_rate_in_class),
             (train & (target != cfg.marked_class), cfg.marked_rate_other)]
    for name in ("calib", "test"):
        pools += [((split == name) & (target == digit), cfg.marked_rate_eval) for digit in range(10)]
    for pool, rate in pools:
        members = np.flatnonzero(pool)
        marked[rng.choice(members, size=round(rate * members.size), replace=False)] = True
    return marked


def _check_ba_computable(target: np.ndarray, split: np.ndarray, marked: np.ndarray,
                         cfg: DemoDataConfig) -> None:
    positives = (split == "test") & (target == cfg.marked_class)
    inside, outside = int((positives & marked).sum()), int((positives & ~marked).sum())
    if min(inside, outside) < MIN_BA_POSITIVES:
        raise InputError(
            f"{_SOURCE}: the test split would hold {inside} marked and {outside} unmarked samples of "
            f"digit {cfg.marked_class}; bias amplification needs at least {MIN_BA_POSITIVES} of each. "
            f"Raise `data.test_fraction` (now {cfg.test_fraction:g}) or bring `data.marked_rate_eval` "
            f"(now {cfg.marked_rate_eval:g}) closer to 0.5.")


def _upscale(images: np.ndarray, size: int) -> np.ndarray:
    """(n, 8, 8) digits in 0..16 -> (n, 1, size, size) float32 in [-1, 1], bilinear."""
    from scipy.ndimage import zoom

    factor = size / images.shape[-1]
    upscaled = zoom(images.astype(np.float32), (1.0, factor, factor), order=1)
    unit = np.clip(upscaled, 0.0, _DIGITS_PIXEL_MAX) / _DIGITS_PIXEL_MAX
    return normalize_unit(unit)[:, None, :, :]
