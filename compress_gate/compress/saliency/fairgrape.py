"""FairGRAPE (Lin, Kim & Joo, ECCV 2022): fairness-aware gradient pruning.

Which variant this is
---------------------
- **Importance** of weight ``j`` for sensitive group ``g`` (the paper's first-order
  Taylor importance, after Molchanov et al. 2019, as the authors' code computes it):

  .. math:: I_g(w_j) = \\sum_b \\bigl( w_j \\, \\partial L_{b,g} / \\partial w_j \\bigr)^2

  summed over the loader's batches ``b``, where :math:`L_{b,g}` is the mean task loss of
  the rows of batch ``b`` in group ``g`` (a batch without such rows adds 0). Groups are
  the columns of the loader's (B, G) 0/1 group matrix; they may overlap (a row in two
  groups counts for both). ``importance="abs"`` uses :math:`|w_j \\, \\partial L_{b,g}/\\partial w_j|`.
- **Target shares**, per selected tensor (layer) ``l``, from the model as given (dense):
  :math:`T_{l,g} = \\sum_{j \\in l} I_g(w_j) / \\sum_{g'} \\sum_{j \\in l} I_{g'}(w_j)`
  (uniform ``1/G`` when the layer's total importance is 0). They are computed once and
  kept for every step.
- **Greedy selection** (the paper's Algorithm 1, one weight at a time, the authors'
  ``para_batch = 1``): start with no weight kept and current shares :math:`P = 1/G`;
  repeat until the layer keeps its quota: take the group with the largest deficit,
  :math:`\\arg\\min_g (P_g - T_g)` (lowest index on a tie), and its most important
  candidate weight not yet visited; if it is not kept yet, keep it and set
  :math:`P_g = S_g / \\sum_{g'} S_{g'}` with :math:`S_g` the importance of the kept
  weights for group ``g`` (uniform while that sum is 0). Each group visits candidates
  in order of its own importance, ties in a random order fixed by ``seed``.
- **Iterative**, per layer: ``steps`` pruning steps on the geometric schedule
  :math:`s_t = 1 - (1 - s)^{t/T}` (a constant share of the remaining weights per step,
  as the authors' ``keep_per_iter``; :math:`s_T = s` exactly). Step ``t`` recomputes the
  importance on the masked model and keeps ``n_l − round_half_up(s_t · n_l)`` of the
  weights still unpruned, so every layer ends exactly at ``round_half_up(s · n_l)``
  pruned weights. An optional ``finetune(model, masks)`` callback runs between steps
  (the paper fine-tunes there); the masks are re-applied after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from compress_gate.compress.saliency._masks import (ScoringMode, Task, apply_masks, check_common, gradients,
                                                    n_pruned, select_params, take, unpack)
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import torch

__all__ = ["prune_fairgrape", "group_importance", "target_shares", "greedy_keep"]

Importance = Literal["squared", "abs"]
Finetune = Callable[["torch.nn.Module", dict[str, "torch.Tensor"]], None]


def group_importance(model: torch.nn.Module, loader: Iterable[Any], params: dict[str, torch.nn.Parameter], *,
                     task: Task, groups: Sequence[int] | None = None, batches: int | None = None,
                     importance: Importance = "squared") -> dict[str, np.ndarray]:
    """Per-group importance :math:`I_g(w_j)` (module docstring), name -> float64 (G, *shape).

    ``groups`` picks columns of the loader's group matrix (all when None); row ``g`` of
    each result belongs to the ``g``-th picked column. The model runs in eval mode.

    Raises InputError when a picked column is out of range or no batch has a row of it.
    """
    import torch

    from compress_gate.models.training import task_loss

    if importance not in ("squared", "abs"):
        raise InputError(f"FairGRAPE importance = {importance!r} is not one of ['squared', 'abs'].")
    weights = list(params.values())
    sums: list[list[torch.Tensor]] | None = None
    columns: list[int] = []
    seen = None
    with ScoringMode(model, params):
        for batch in take(loader, batches):
            inputs, targets, member = unpack(batch, with_groups=True)
            if sums is None:
                columns = _check_columns(groups, member.shape[1])
                sums = [[torch.zeros_like(w, dtype=torch.float64) for w in weights] for _ in columns]
                seen = np.zeros(len(columns), dtype=np.int64)
            logits = model(inputs)
            for g, column in enumerate(columns):
                rows = member[:, column] > 0
                if not rows.any():
                    continue
                seen[g] += int(rows.sum())
                grads = gradients(task_loss(logits[rows], targets[rows], task), weights, retain_graph=True)
                for total, w, grad in zip(sums[g], weights, grads):
                    taylor = (w.detach() * grad).double()
                    total += taylor.square() if importance == "squared" else taylor.abs()
    empty = [columns[g] for g in np.flatnonzero(seen == 0)]
    if empty:
        raise InputError(f"FairGRAPE: group column(s) {empty} have no row in the loader's batches, so their "
                         "importance is undefined. Drop them with `groups=` or add rows of those groups.")
    return {name: np.stack([sums[g][i].cpu().numpy() for g in range(len(columns))])
            for i, name in enumerate(params)}


def _check_columns(groups: Sequence[int] | None, n_columns: int) -> list[int]:
    if groups is None:
        return list(range(n_columns))
    picked = list(groups)
    if not picked or len(set(picked)) != len(picked) or any(
            isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < n_columns for c in picked):
        raise InputError(f"FairGRAPE groups = {groups!r} must be distinct column indices in [0, {n_columns}) "
                         "of the loader's group matrix, or None for all.")
    return [int(c) for c in picked]


def target_shares(importance: np.ndarray) -> np.ndarray:
    """Each group's share of one layer's total importance, (G,); uniform when the total is 0.

    ``importance`` is (G, ...) for one layer.
    """
    per_group = importance.reshape(importance.shape[0], -1).sum(axis=1)
    total = per_group.sum()
    return per_group / total if total > 0 else np.full(len(per_group), 1.0 / len(per_group))


def greedy_keep(importance: np.ndarray, candidates: np.ndarray, target: np.ndarray, keep: int,
                rank: np.ndarray) -> np.ndarray:
    """The paper's greedy selection (module docstring) of ``keep`` weights of one layer.

    Parameters
    ----------
    importance : (G, n) float, per-group importance of the layer's weights (flattened)
    candidates : (n,) bool, the weights that may be kept (not pruned at an earlier step)
    target : (G,) float, target shares summing to 1
    keep : int, at most ``candidates.sum()``
    rank : (n,) int, a permutation of range(n): among equal importances, lower rank first

    Returns
    -------
    (n,) bool, exactly ``keep`` True entries, all among ``candidates``.
    """
    n_groups = importance.shape[0]
    pool = np.flatnonzero(candidates)
    if not 0 <= keep <= len(pool):
        raise RuntimeFailure(f"FairGRAPE: asked to keep {keep} of {len(pool)} candidate weights.")
    orders = [pool[np.lexsort((rank[pool], -importance[g, pool]))].tolist() for g in range(n_groups)]
    columns = importance.T.tolist()
    target_list = target.tolist()
    kept = np.zeros(importance.shape[1], dtype=bool)
    pointer = [0] * n_groups
    share = [1.0 / n_groups] * n_groups
    sums = [0.0] * n_groups
    selected = 0
    while selected < keep:
        deficit = [share[g] - target_list[g] if pointer[g] < len(pool) else np.inf for g in range(n_groups)]
        g = deficit.index(min(deficit))
        index = orders[g][pointer[g]]
        pointer[g] += 1
        if kept[index]:
            continue
        kept[index] = True
        selected += 1
        sums = [s + v for s, v in zip(sums, columns[index])]
        total = sum(sums)
        share = [s / total for s in sums] if total > 0 else [1.0 / n_groups] * n_groups
    return kept


def prune_fairgrape(model: torch.nn.Module, loader: Iterable[Any], *, sparsity: float, params: Sequence[str],
                    task: Task, groups: Sequence[int] | None = None, seed: int, steps: int = 5,
                    batches: int | None = None, importance: Importance = "squared",
                    finetune: Finetune | None = None) -> dict[str, torch.Tensor]:
    """Prune ``model`` in place with FairGRAPE (module docstring) and return the 0/1 masks.

    ``loader`` yields ``(inputs, targets, groups)`` with groups (B, G) 0/1, e.g.
    :func:`group_training_loader`; ``groups`` picks its columns (all when None).
    ``params`` names the pruned tensors SparseML's way (exact names or ``re:`` regexes);
    each ends with exactly ``round_half_up(sparsity · n)`` of its ``n`` weights pruned.
    ``batches``: batches per importance pass (the whole loader when None). ``seed`` fixes
    the tie order. Cost: ``steps`` passes of one forward and ``G`` backwards per batch,
    and a Python loop over the kept weights per layer and step.

    Raises
    ------
    InputError
        Bad sparsity, task, steps, groups or params; batches without a group matrix;
        a group without rows.
    RuntimeFailure
        Non-finite importance.
    """
    import torch

    check_common(sparsity, task, seed, batches)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"FairGRAPE steps = {steps!r} must be a positive integer (pruning iterations).")
    selected = select_params(model, params)
    masks = {name: torch.ones_like(param) for name, param in selected.items()}
    rng = np.random.default_rng(seed)
    targets: dict[str, np.ndarray] = {}
    for step in range(1, steps + 1):
        level = sparsity if step == steps else 1.0 - (1.0 - sparsity) ** (step / steps)
        scores = group_importance(model, loader, selected, task=task, groups=groups, batches=batches,
                                  importance=importance)
        for name, score in scores.items():
            if not np.isfinite(score).all():
                raise RuntimeFailure(f"FairGRAPE: importance of {name!r} is NaN or infinite (the loss or its "
                                     "gradients overflowed); check the model's outputs on the loader.")
            flat = score.reshape(score.shape[0], -1)
            if name not in targets:
                targets[name] = target_shares(flat)
            n = flat.shape[1]
            candidates = masks[name].reshape(-1).cpu().numpy() > 0
            kept = greedy_keep(flat, candidates, targets[name], n - n_pruned(n, level), rng.permutation(n))
            masks[name] = torch.from_numpy(kept.reshape(masks[name].shape)).to(masks[name])
        apply_masks(selected, masks)
        if finetune is not None and step < steps:
            finetune(model, masks)
            apply_masks(selected, masks)
    return masks
