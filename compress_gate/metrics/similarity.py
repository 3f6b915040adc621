"""Similarity of two layers' representations: linear CKA and SVCCA (pure NumPy).

A representation is an activation matrix of shape (n_samples, n_features): one row per
input, in the same order for both models; the widths may differ. Both measures are in
[0, 1], equal 1 for identical representations, and are invariant to an orthogonal
transform and an isotropic scaling of either representation (CKA) or to any invertible
linear transform of the kept subspace (SVCCA). Blakeney et al. ("Simon Says") relate
SVCCA between a pruned and its dense model to the bias pruning induces.
"""

from __future__ import annotations

import numpy as np

from compress_gate.errors import InputError

__all__ = ["linear_cka", "svcca"]


def _check_activations(x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Both matrices as float64, columns centred; raises InputError naming the bad one."""
    out = []
    for name, value in (("x", x), ("y", y)):
        arr = np.asarray(value)
        if arr.ndim != 2 or arr.dtype.kind not in "uifb":
            raise InputError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; it must be a numeric "
                             "(n_samples, n_features) activation matrix. Flatten each sample's activations "
                             "with `a.reshape(len(a), -1)`.")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise InputError(f"{name} has NaN or infinite activations; check the layer's outputs.")
        out.append(arr - arr.mean(axis=0))
    if out[0].shape[0] != out[1].shape[0]:
        raise InputError(f"x has {out[0].shape[0]} rows but y has {out[1].shape[0]}: both must hold the "
                         "activations of the same inputs, one row per input, in the same order.")
    return out[0], out[1]


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    r"""Linear centred kernel alignment (Kornblith et al., 2019).

    With :math:`X, Y` column-centred,

    .. math:: \mathrm{CKA}(X, Y) = \frac{\lVert Y^\top X \rVert_F^2}
              {\lVert X^\top X \rVert_F \, \lVert Y^\top Y \rVert_F}

    computed through the (n, n) Gram matrices :math:`XX^\top, YY^\top` when that is
    smaller (:math:`\lVert Y^\top X\rVert_F^2 = \langle XX^\top, YY^\top\rangle_F`).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features_x)
    y : ndarray of shape (n_samples, n_features_y)

    Returns
    -------
    float
        In [0, 1]. ``nan`` when either representation is constant over the samples
        (including n_samples < 2): its alignment is undefined.

    Examples
    --------
    >>> linear_cka(np.array([[1.0, 0], [-1, 1], [0, -1]]), np.array([[1.0, 1], [0, -1], [-1, 0]]))
    0.7
    """
    x, y = _check_activations(x, y)
    if x.shape[0] <= max(x.shape[1], y.shape[1]):
        k, l_ = x @ x.T, y @ y.T
        cross, norm_x, norm_y = np.vdot(k, l_), np.linalg.norm(k), np.linalg.norm(l_)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if norm_x == 0 or norm_y == 0:
        return float("nan")
    return float(np.clip(cross / (norm_x * norm_y), 0.0, 1.0))


def _kept_directions(x: np.ndarray, keep: float) -> np.ndarray | None:
    """Left singular vectors of centred ``x`` that explain a ``keep`` share of its variance
    (the fewest that reach it); None for a constant ``x``."""
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    variance = s**2
    if variance.sum() <= 0:
        return None
    explained = np.cumsum(variance) / variance.sum()
    m = int(np.searchsorted(explained, keep * (1 - 1e-12))) + 1
    return u[:, :min(m, len(s))]


def svcca(x: np.ndarray, y: np.ndarray, *, keep: float = 0.99) -> float:
    r"""Singular vector canonical correlation analysis (Raghu et al., 2017): mean canonical correlation.

    1. SVD of each centred representation; keep the fewest top directions that explain
       ``keep`` of its variance (99 % in the paper): :math:`X' = U_{x,m} S_{x,m}`.
    2. CCA between :math:`X'` and :math:`Y'`: the canonical correlations
       :math:`\rho_1 \ge \dots \ge \rho_r`, :math:`r = \min(m_x, m_y)`, are the singular
       values of :math:`U_{x,m}^\top U_{y,m}` (orthonormal bases of the two subspaces).
    3. :math:`\mathrm{SVCCA} = \frac1r \sum_i \rho_i`.

    It needs n_samples well above m_x + m_y: with n <= m_x + m_y the subspaces of any two
    representations intersect and correlations near 1 are guaranteed.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features_x)
    y : ndarray of shape (n_samples, n_features_y)
    keep : float in (0, 1], default=0.99
        Share of variance the kept directions explain.

    Returns
    -------
    float
        In [0, 1]. ``nan`` when either representation is constant over the samples.
    """
    if not 0.0 < float(keep) <= 1.0:
        raise InputError(f"keep={keep!r} must be in (0, 1], the share of variance kept (0.99 in SVCCA).")
    x, y = _check_activations(x, y)
    if x.shape[0] < 2:
        return float("nan")
    ux, uy = _kept_directions(x, keep), _kept_directions(y, keep)
    if ux is None or uy is None:
        return float("nan")
    rho = np.linalg.svd(ux.T @ uy, compute_uv=False)
    return float(np.clip(rho, 0.0, 1.0).mean())
