"""SNIP (Lee et al., ICLR 2019): one-shot pruning by connection sensitivity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from compress_gate.compress.saliency._masks import (ScoringMode, Task, apply_masks, check_common,
                                                    global_keep_masks, gradients, select_params, take, unpack)

if TYPE_CHECKING:
    import torch

__all__ = ["prune_snip", "snip_scores"]


def snip_scores(model: torch.nn.Module, loader: Iterable[Any], params: dict[str, torch.nn.Parameter], *,
                task: Task, batches: int | None) -> dict[str, torch.Tensor]:
    r"""Connection sensitivity of every selected weight.

    .. math:: S_j = \bigl| w_j \cdot \bar g_j \bigr|, \qquad
              \bar g = \frac{1}{B} \sum_{b=1}^{B} \nabla_w L_b

    where :math:`L_b` is the mean task loss of batch ``b`` (BCE with logits, or
    cross-entropy) and ``B`` the number of batches used (the first ``batches`` of
    ``loader``, all when None). This is SNIP's :math:`|\partial L / \partial c_j|` at mask :math:`c = 1`. The model runs in
    eval mode, so BatchNorm statistics are not changed. A third batch item (groups) is ignored.
    """
    import torch

    from compress_gate.models.training import task_loss

    sums = {name: torch.zeros_like(param) for name, param in params.items()}
    count = 0
    with ScoringMode(model, params):
        for batch in take(loader, batches):
            inputs, targets, _ = unpack(batch, with_groups=False)
            grads = gradients(task_loss(model(inputs), targets, task), list(params.values()))
            for name, grad in zip(params, grads):
                sums[name] += grad
            count += 1
    return {name: (params[name].detach() * total / count).abs() for name, total in sums.items()}


def prune_snip(model: torch.nn.Module, loader: Iterable[Any], *, sparsity: float, params: Sequence[str],
               task: Task, groups: Sequence[int] | None = None, seed: int, batches: int | None = 1
               ) -> dict[str, torch.Tensor]:
    """Prune ``model`` in place with SNIP and return the 0/1 masks (parameter name -> mask).

    Scores are :func:`snip_scores` at the model's current weights (at initialisation when
    the model is fresh, as in the paper, or at trained weights), on the first ``batches``
    batches of ``loader``. Global selection over the parameters ``params`` names (SparseML
    style: exact names, or ``re:`` regexes): the ``N − round_half_up(sparsity · N)``
    highest scores are kept, ``N`` the number of selected weights; ties are broken in a
    random order fixed by ``seed``. ``groups`` is accepted for a call signature shared
    with :func:`prune_fairgrape` and is not used: SNIP is group-blind (its loss pools all rows).

    Raises
    ------
    InputError
        Sparsity outside [0, 1), unknown task, a ``params`` entry that matches nothing,
        malformed batches or an empty loader.
    RuntimeFailure
        A score is NaN or infinite.
    """
    check_common(sparsity, task, seed, batches)
    selected = select_params(model, params)
    masks = global_keep_masks(snip_scores(model, loader, selected, task=task, batches=batches), sparsity, seed)
    apply_masks(selected, masks)
    return masks
