"""FairGRAPE (Lin, Kim & Joo, ECCV 2022): fairness-aware gradient pruning.

Which variant this is
---------------------
- **Importance** of weight ``j`` for sensitive group ``g`` (the paper's first-order
  Taylor importance, after Molchanov et al. 2019; squared as the authors' ``impt = 0``,
  ``(|w| · |∂L/∂w|)²``):

  .. math:: I_g(w_j) = \\sum_b \\bigl( w_j \\, \\partial L_{b,g} / \\partial w_j \\bigr)^2

  summed over the loader's batches ``b``, where :math:`L_{b,g}` is the mean task loss of
  the rows of batch ``b`` in group ``g`` (a batch without such rows adds 0), each group's
  gradient taken fresh at the same weights. The authors' code (Bernardo1998/FairGRAPE
  b677eb9, ``prune.importance_by_class0``) differs in three ways that are defects, not
  choices, and are not copied: it never zeroes the gradients, so group ``g``'s
  "gradient" is the sum of every earlier group's and batch's; it takes an Adam step
  after every group's backward, so the groups are scored at different weights; and it
  divides only the last group's importance by the batch count. Groups are the columns
  of the loader's (B, G) 0/1 group matrix; they may overlap (a row in two groups counts
  for both). ``importance="abs"`` uses :math:`|w_j \\, \\partial L_{b,g}/\\partial w_j|`.
  ``scoring`` is the model's mode while scoring: ``"eval"`` (running BatchNorm
  statistics, no dropout) or ``"train"`` (the authors' ``model.train()``: batch statistics;
  the running statistics are restored afterwards, as the authors score a copy). In train
  mode one forward pass per batch serves every group (the authors run one per group; the
  same outputs unless the model has dropout).
- **Target shares**, per selected tensor (layer) ``l``:
  :math:`T_{l,g} = \\sum_{j \\in l} I_g(w_j) / \\sum_{g'} \\sum_{j \\in l} I_{g'}(w_j)`
  (uniform ``1/G`` when the layer's total importance is 0). ``targets="dense"`` computes
  them once, on the model as given, and keeps them for every step; ``"per_iteration"``
  (the authors' code) recomputes them from each step's importance on the masked model.
- **Greedy selection** (the paper's Algorithm 1, one weight at a time): start with no
  weight kept and current shares :math:`P = 1/G`; repeat until the layer keeps its quota:
  on every ``visits_per_choice``-th visit (the first included) choose the group with the
  largest deficit, :math:`\\arg\\min_g (P_g - T_g)` (lowest index on a tie); visit that
  group's most important candidate weight not yet visited; if it is not kept yet, keep
  it and set :math:`P_g = S_g / \\sum_{g'} S_{g'}` with :math:`S_g` the importance of the
  kept weights for group ``g`` (uniform while that sum is 0). ``visits_per_choice = 1``
  chooses at every visit (the paper); the authors' ``para_batch = p`` chooses every
  ``p + 1`` visits (their default ``p = 1``: every second visit, kept or not). A group
  whose candidates are exhausted is never chosen, and a visit that would fall on one
  chooses again (the authors' code would index past the end). Each group visits
  candidates in order of its own importance, ties in a random order fixed by ``seed``.
- **Iterative**, per layer, on one of two schedules. ``steps = T`` (default 5): the
  geometric schedule :math:`s_t = 1 - (1 - s)^{t/T}` (a constant share of the remaining
  weights per step; :math:`s_T = s` exactly), keeping ``n_l − round_half_up(s_t · n_l)``
  weights at step ``t``, so every layer ends exactly at ``round_half_up(s · n_l)`` pruned.
  ``keep_per_iter = k`` (the authors' ``main_test.py``):
  :math:`s_t = \\min(1 - k^t, s)` for ``t = 1 .. ceil(log_k(1 − s))`` (16 iterations at
  ``s = 0.8``, ``k = 0.9``), keeping ``int(n_l · (1 − s_t))`` weights, their count (floor:
  at most one more pruned weight per layer than the geometric count). Each step
  recomputes the importance on the masked model and selects among the weights still
  unpruned. An optional ``finetune(model, masks)`` callback runs between steps (the paper
  and the authors fine-tune there); the masks are re-applied after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from compress_gate.compress.saliency._masks import (ScoringMode, Task, apply_masks, check_common, gradients,
                                                    n_pruned, select_params, take, unpack)
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import torch

__all__ = ["prune_fairgrape", "group_importance", "target_shares", "greedy_keep", "kept_counts"]

Importance = Literal["squared", "abs"]
Targets = Literal["dense", "per_iteration"]
Scoring = Literal["eval", "train"]
Finetune = Callable[["torch.nn.Module", dict[str, "torch.Tensor"]], None]

#: The project's number of steps when neither ``steps`` nor ``keep_per_iter`` is given.
DEFAULT_STEPS = 5


def group_importance(model: torch.nn.Module, loader: Iterable[Any], params: dict[str, torch.nn.Parameter], *,
                     task: Task, groups: Sequence[int] | None = None, batches: int | None = None,
                     importance: Importance = "squared", scoring: Scoring = "eval") -> dict[str, np.ndarray]:
    r"""Per-group importance of every weight of the tensors ``params`` names, name -> float64 (G, *shape).

    .. math:: I_g(w_j) = \sum_b \bigl( w_j \, \partial L_{b,g} / \partial w_j \bigr)^2

    (``importance="abs"``: the absolute value instead of the square), summed over ``batches``
    batches of ``loader``, :math:`L_{b,g}` the mean task loss of batch b's rows in group g (a
    batch without such rows adds 0), each group's gradient taken fresh at the same weights.

    ``groups`` picks columns of the loader's group matrix (all when None); row ``g`` of
    each result belongs to the ``g``-th picked column. The model runs in ``scoring`` mode
    (its modes, flags and BatchNorm statistics are restored afterwards).

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
    with ScoringMode(model, params, train=_check_choice("scoring", scoring, ("eval", "train")) == "train"):
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


def _check_choice(key: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"FairGRAPE {key} = {value!r} is not one of {list(allowed)}.")
    return str(value)


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
                rank: np.ndarray, *, visits_per_choice: int = 1) -> np.ndarray:
    """The paper's greedy selection (Algorithm 1) of ``keep`` weights of one layer, one weight at a time.

    Current shares start at 1/G. On every ``visits_per_choice``-th visit the group with the
    largest deficit, argmin_g (P_g − T_g) (lowest index on a tie; never an exhausted group), is
    chosen; the visit goes to that group's most important candidate not yet visited (ties by
    ``rank``); a weight not yet kept is kept and P_g becomes S_g / Σ S (S_g: the kept weights'
    importance for g; uniform while that sum is 0).

    Parameters
    ----------
    importance : (G, n) float, per-group importance of the layer's weights (flattened)
    candidates : (n,) bool, the weights that may be kept (not pruned at an earlier step)
    target : (G,) float, target shares summing to 1
    keep : int, at most ``candidates.sum()``
    rank : (n,) int, a permutation of range(n): among equal importances, lower rank first
    visits_per_choice : int >= 1, the deficit group is chosen anew every this many visits

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
    selected = visits = g = 0
    while selected < keep:
        if visits % visits_per_choice == 0 or pointer[g] == len(pool):
            deficit = [share[h] - target_list[h] if pointer[h] < len(pool) else np.inf for h in range(n_groups)]
            g = deficit.index(min(deficit))
        visits += 1
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


def kept_counts(n: int, sparsity: float, *, steps: int | None = None, keep_per_iter: float | None = None) -> list[int]:
    """Weights a tensor of ``n`` keeps after each pruning step, reaching sparsity ``s`` at the last.

    ``steps = T``: ``n − round_half_up(s_t · n)`` with :math:`s_t = 1 - (1 - s)^{t/T}`, ``s_T = s``.
    ``keep_per_iter = k``: ``int(n · (1 − s_t))`` with :math:`s_t = \\min(1 - k^t, s)` for
    ``t = 1 .. ceil(log_k(1 − s))``, :math:`k^t` and the count computed as the authors' code does
    (a running product). Give one of the two (``steps`` defaults to 5 when neither is given).

    >>> kept_counts(100, 0.75, steps=2), kept_counts(100, 0.75, keep_per_iter=0.6)
    ([50, 25], [60, 36, 25])
    """
    if steps is not None and keep_per_iter is not None:
        raise InputError(f"FairGRAPE: give `steps` ({steps}) or `keep_per_iter` ({keep_per_iter}), not both: "
                         "they are two schedules.")
    if keep_per_iter is not None:
        if isinstance(keep_per_iter, bool) or not isinstance(keep_per_iter, float) or not 0 < keep_per_iter < 1:
            raise InputError(f"FairGRAPE keep_per_iter = {keep_per_iter!r} must be a number in (0, 1) (the share of "
                             "the remaining weights kept per iteration; the authors' 0.9).")
        counts, remaining = [], 1.0
        for _ in range(math.ceil(math.log(1.0 - sparsity, keep_per_iter)) if sparsity > 0 else 1):
            remaining *= keep_per_iter
            counts.append(int(n * (1 - min(1 - remaining, sparsity))))
        return counts
    steps = DEFAULT_STEPS if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"FairGRAPE steps = {steps!r} must be a positive integer (pruning iterations).")
    return [n - n_pruned(n, sparsity if t == steps else 1.0 - (1.0 - sparsity) ** (t / steps))
            for t in range(1, steps + 1)]


def prune_fairgrape(model: torch.nn.Module, loader: Iterable[Any], *, sparsity: float, params: Sequence[str],
                    task: Task, groups: Sequence[int] | None = None, seed: int, steps: int | None = None,
                    keep_per_iter: float | None = None, batches: int | None = None,
                    importance: Importance = "squared", targets: Targets = "dense", visits_per_choice: int = 1,
                    scoring: Scoring = "eval", finetune: Finetune | None = None) -> dict[str, torch.Tensor]:
    """Prune ``model`` in place with FairGRAPE and return the 0/1 masks, name -> mask.

    At each step of the schedule: per-group importance of the remaining weights
    (:func:`group_importance`), each layer's target shares (from the dense model, or anew per
    step with ``targets="per_iteration"``), then :func:`greedy_keep` of the step's quota per
    layer; the masked weights are zeroed (and ``finetune`` called when given).

    ``loader`` yields ``(inputs, targets, groups)`` with groups (B, G) 0/1, e.g.
    :func:`group_training_loader`; ``groups`` picks its columns (all when None).
    ``params`` names the pruned tensors SparseML's way (exact names or ``re:`` regexes).
    Schedule: ``steps`` or ``keep_per_iter`` (:func:`kept_counts`). ``batches``: batches per
    importance pass (the whole loader when None). ``seed`` fixes the tie order. The
    project's defaults are the paper's procedure as this project runs it; the authors'
    released procedure is ``keep_per_iter=0.9, targets="per_iteration", visits_per_choice=2,
    scoring="train"``, a ``finetune`` callback and the whole loader (docs/compression.md).
    Cost: one forward and ``G`` backwards per batch and step, and a Python loop over the
    kept weights per layer and step.

    Raises
    ------
    InputError
        Bad sparsity, task, schedule, groups, params or options; batches without a group
        matrix; a group without rows.
    RuntimeFailure
        Non-finite importance.
    """
    import torch

    check_common(sparsity, task, seed, batches)
    _check_choice("targets", targets, ("dense", "per_iteration"))
    if isinstance(visits_per_choice, bool) or not isinstance(visits_per_choice, int) or visits_per_choice < 1:
        raise InputError(f"FairGRAPE visits_per_choice = {visits_per_choice!r} must be a positive integer (the "
                         "authors' para_batch + 1).")
    selected = select_params(model, params)
    schedule = {name: kept_counts(param.numel(), sparsity, steps=steps, keep_per_iter=keep_per_iter)
                for name, param in selected.items()}
    masks = {name: torch.ones_like(param) for name, param in selected.items()}
    rng = np.random.default_rng(seed)
    shares: dict[str, np.ndarray] = {}
    n_steps = len(next(iter(schedule.values())))
    for step in range(n_steps):
        scores = group_importance(model, loader, selected, task=task, groups=groups, batches=batches,
                                  importance=importance, scoring=scoring)
        for name, score in scores.items():
            if not np.isfinite(score).all():
                raise RuntimeFailure(f"FairGRAPE: importance of {name!r} is NaN or infinite (the loss or its "
                                     "gradients overflowed); check the model's outputs on the loader.")
            flat = score.reshape(score.shape[0], -1)
            if name not in shares or targets == "per_iteration":
                shares[name] = target_shares(flat)
            candidates = masks[name].reshape(-1).cpu().numpy() > 0
            kept = greedy_keep(flat, candidates, shares[name], schedule[name][step], rng.permutation(flat.shape[1]),
                               visits_per_choice=visits_per_choice)
            masks[name] = torch.from_numpy(kept.reshape(masks[name].shape)).to(masks[name])
        apply_masks(selected, masks)
        if finetune is not None and step < n_steps - 1:
            finetune(model, masks)
            apply_masks(selected, masks)
    return masks
