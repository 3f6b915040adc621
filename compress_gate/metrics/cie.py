"""Compression identified exemplars (Hooker et al.): modal CIEs and the Taxicab ranking.

A population is several models (seeds) of one kind, given as predicted 0/1 labels of
shape (n_models, n_samples, n_attributes): one-hot rows for multi-class. The *label
frequencies* of a sample are the share of the population's models that predict each
label: per class (multi-class), or per attribute the shares of 1 and of 0 (multi-label).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate._id_hash import GAMMA, mix
from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_indicators, _check_one_hot, _check_task

__all__ = ["ModalCIE", "modal_cie", "taxicab_score", "weighted_jaccard_similarity", "rank_by_score"]


@dataclass(frozen=True)
class ModalCIE:
    """Modal labels of both populations and which samples are modal CIEs.

    ``dense_modal``, ``compressed_modal``: (n_samples, n_attributes) uint8 (one-hot rows
    for multi-class); ``is_cie``: (n_samples,) bool.
    """

    dense_modal: np.ndarray
    compressed_modal: np.ndarray
    is_cie: np.ndarray


def _check_population(pred: object, name: str, task: str) -> np.ndarray:
    arr = np.asarray(pred)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise InputError(f"{name} has shape {arr.shape}; it must be (n_models, n_samples, n_attributes) with "
                         "at least one model. For one model pass `pred[None]`.")
    flat = _check_indicators(arr.reshape(-1, arr.shape[2]), name)
    if task == "multiclass":
        _check_one_hot(flat, name)
    return flat.reshape(arr.shape)


def _check_populations(dense_pred: object, compressed_pred: object, task: str) -> tuple[np.ndarray, np.ndarray]:
    task = _check_task(task)
    dense = _check_population(dense_pred, "dense_pred", task)
    comp = _check_population(compressed_pred, "compressed_pred", task)
    if dense.shape[1:] != comp.shape[1:]:
        raise InputError(f"dense_pred covers {dense.shape[1:]} (samples, attributes) but compressed_pred "
                         f"{comp.shape[1:]}: both populations must predict the same samples and labels.")
    return dense, comp


def _tie_uniforms(id_hash: np.ndarray, seed: int, stream: int, n_columns: int) -> np.ndarray:
    """(n, n_columns) uniforms in [0, 1), each a function of (seed, stream, id hash, column) only:
    u = (mix(mix(h xor key) + (column + 1) gamma) >> 11) 2^-53, key = mix(seed xor mix((stream + 1) gamma))."""
    with np.errstate(over="ignore"):
        key = mix(np.uint64(int(seed) & (2**64 - 1)) ^ mix(np.uint64(stream + 1) * GAMMA))
        columns = (np.arange(n_columns, dtype=np.uint64) + np.uint64(1)) * GAMMA
        x = mix(mix(id_hash.astype(np.uint64)[:, None] ^ key) + columns[None, :])
    return (x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _tied_uniforms(id_hash: np.ndarray, seed: int, stream: int, mask: np.ndarray) -> np.ndarray:
    """``_tie_uniforms(id_hash, seed, stream, K)[mask]`` for a (n, K) bool ``mask``, drawn only for the
    rows that hold a tie (each uniform depends on its own hash and column only, so the values are
    the same; a population of one model has no tie and draws nothing)."""
    rows = np.flatnonzero(mask.any(axis=1))
    return _tie_uniforms(id_hash[rows], seed, stream, mask.shape[1])[mask[rows]]


def _modal(pred: np.ndarray, task: str, draw) -> np.ndarray:
    """Most frequent label per sample; a tie is broken uniformly at random: ``draw(mask)`` gives
    the uniforms of the tied entries of ``mask`` (n, K) (multi-class: of the rows, column 0)."""
    votes = pred.sum(axis=0, dtype=np.int32)                       # (n, K)
    if task == "multilabel":
        modal = 2 * votes > pred.shape[0]
        tie = 2 * votes == pred.shape[0]
        modal[tie] = draw(tie) < 0.5
        return modal.astype(np.uint8)
    is_top = votes == votes.max(axis=1, keepdims=True, initial=0)
    n_top = is_top.sum(axis=1)
    pick = np.zeros(votes.shape[0], dtype=np.int64)                # which of a row's top classes wins
    tie_rows = np.zeros(votes.shape, dtype=bool)
    tie_rows[:, 0] = n_top > 1
    tied = np.flatnonzero(tie_rows[:, 0])
    pick[tied] = np.floor(draw(tie_rows) * n_top[tied]).astype(np.int64)
    winner = np.argmax(is_top & (np.cumsum(is_top, axis=1) == pick[:, None] + 1), axis=1)
    modal = np.zeros(votes.shape, dtype=np.uint8)
    modal[np.arange(votes.shape[0]), winner] = 1
    return modal


def modal_cie(dense_pred: np.ndarray, compressed_pred: np.ndarray, *, task: str, seed: int,
              id_hash: np.ndarray | None = None) -> ModalCIE:
    """Modal CIEs: samples whose modal label in the compressed population differs from
    the dense population's.

    Modal label: multi-class, the class most models predict; multi-label, per attribute
    the value (0 or 1) most models predict, and a sample is a CIE when any attribute's
    modal value differs. Ties are broken uniformly at random with ``seed`` (the dense
    population draws first, then the compressed one), so a run is reproducible. With
    ``id_hash`` (:func:`~compress_gate.metrics.poisson_bootstrap.hash_ids` of the sample ids)
    a tie's draw is instead a counter-based uniform keyed by (seed, population, id hash,
    attribute), so the result of a sample does not depend on the other samples, their
    order or how they are split into shards.

    Parameters
    ----------
    dense_pred, compressed_pred : ndarray of shape (n_models, n_samples, n_attributes), {0, 1}
        The populations may have different numbers of models.
    task : "multilabel" or "multiclass"
    seed : int
    id_hash : ndarray of shape (n_samples,), uint64, default=None

    Returns
    -------
    ModalCIE
    """
    dense, comp = _check_populations(dense_pred, compressed_pred, task)
    if id_hash is None:
        rng = np.random.default_rng(seed)
        draws = [lambda mask: rng.random(int(mask.sum()))] * 2
    else:
        hashes = np.asarray(id_hash)
        if hashes.dtype != np.uint64 or hashes.shape != (dense.shape[1],):
            raise InputError(f"id_hash must be the ({dense.shape[1]},) uint64 hashes of the sample ids "
                             f"(hash_ids); got dtype {hashes.dtype}, shape {hashes.shape}.")
        draws = [lambda mask, stream=stream: _tied_uniforms(hashes, seed, stream, mask) for stream in (0, 1)]
    dense_modal = _modal(dense, task, draws[0])
    comp_modal = _modal(comp, task, draws[1])
    return ModalCIE(dense_modal=dense_modal, compressed_modal=comp_modal,
                    is_cie=(dense_modal != comp_modal).any(axis=1))


def _frequency_gap(dense: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|Md c_comp - Mc c_dense| summed over labels, Md Mc): integer numerator, exact ties."""
    md, mc = dense.shape[0], comp.shape[0]
    gap = np.abs(mc * dense.sum(axis=0, dtype=np.int64) - md * comp.sum(axis=0, dtype=np.int64))
    return gap.sum(axis=1), md * mc


def taxicab_score(dense_pred: np.ndarray, compressed_pred: np.ndarray, *, task: str) -> np.ndarray:
    r"""Taxicab score per sample: the L1 distance between the populations' label frequencies.

    .. math:: T_i = \sum_c \lvert p_\mathrm{dense}(c \mid i) - p_\mathrm{comp}(c \mid i) \rvert

    with :math:`p(c \mid i)` the share of the population's models predicting label c for
    sample i; shares, not counts, so populations of different sizes compare.
    Multi-class: c runs over the classes, T in [0, 2]. Multi-label: per attribute the
    shares of 1 and of 0 differ by the same amount, and the score counts the positive
    share once, :math:`T_i = \sum_k \lvert p_\mathrm{dense}(y_k=1) - p_\mathrm{comp}(y_k=1) \rvert`,
    in [0, K]. Computed from integer counts, so equal scores tie exactly.

    Parameters
    ----------
    dense_pred : ndarray of shape (n_dense, n_samples, n_attributes), values in {0, 1}
        One row of 0/1 predictions per model of the dense population (multi-class: one-hot).
    compressed_pred : ndarray of shape (n_compressed, n_samples, n_attributes), values in {0, 1}
        The compressed population's, on the same samples.
    task : {"multilabel", "multiclass"}

    Returns
    -------
    ndarray of shape (n_samples,), float64, >= 0
    """
    dense, comp = _check_populations(dense_pred, compressed_pred, task)
    numerator, denominator = _frequency_gap(dense, comp)
    return numerator / denominator


def weighted_jaccard_similarity(dense_pred: np.ndarray, compressed_pred: np.ndarray, *, task: str) -> np.ndarray:
    r"""Weighted Jaccard similarity of the populations' label-frequency distributions.

    .. math:: J_i = \frac{\sum_c \min(p_\mathrm{dense}(c \mid i), p_\mathrm{comp}(c \mid i))}
                         {\sum_c \max(p_\mathrm{dense}(c \mid i), p_\mathrm{comp}(c \mid i))}

    over the classes (multi-class) or over each attribute's values 1 and 0
    (multi-label). With T the :func:`taxicab_score`, :math:`J = (1 - T/2)/(1 + T/2)`
    (multi-class) and :math:`J = (K - T)/(K + T)` (multi-label): a strictly decreasing
    function of T, so both rank samples alike. It is here to check that.

    Parameters
    ----------
    dense_pred, compressed_pred, task
        As :func:`taxicab_score`.

    Returns
    -------
    ndarray of shape (n_samples,), float64, in [0, 1]
    """
    dense, comp = _check_populations(dense_pred, compressed_pred, task)
    md, mc = dense.shape[0], comp.shape[0]
    a = mc * dense.sum(axis=0, dtype=np.int64)         # frequencies scaled by Md Mc
    b = md * comp.sum(axis=0, dtype=np.int64)
    if task == "multilabel":
        a = np.concatenate([a, md * mc - a], axis=1)
        b = np.concatenate([b, md * mc - b], axis=1)
    return np.minimum(a, b).sum(axis=1) / np.maximum(a, b).sum(axis=1)


def rank_by_score(score: np.ndarray, *, seed: int) -> np.ndarray:
    """Sample indices ordered by score, highest first; equal scores in a random order
    drawn with ``seed`` (a seeded permutation, then a stable sort).

    Parameters
    ----------
    score : ndarray of shape (n_samples,), finite

    Returns
    -------
    ndarray of shape (n_samples,), int64: ``score[order]`` is non-increasing.
    """
    s = np.asarray(score, dtype=np.float64)
    if s.ndim != 1:
        raise InputError(f"score has shape {s.shape}; it must be 1-D, one score per sample.")
    if not np.isfinite(s).all():
        raise InputError(f"score has NaN or infinite values at rows {np.flatnonzero(~np.isfinite(s))[:5].tolist()}; "
                         "a ranking needs finite scores.")
    shuffled = np.random.default_rng(seed).permutation(s.shape[0])
    return shuffled[np.argsort(-s[shuffled], kind="stable")].astype(np.int64)
