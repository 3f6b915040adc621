"""GraSP (Wang et al., ICLR 2020): one-shot pruning that preserves gradient flow."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from compress_gate.compress.saliency._masks import (ScoringMode, Task, apply_masks, check_common,
                                                    global_keep_masks, gradients, select_params, take, unpack)
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["prune_grasp", "hessian_gradient_product", "grasp_scores"]

#: Softmax temperature of the GraSP authors' code (logits are divided by it before the loss).
DEFAULT_TEMPERATURE = 200.0


def hessian_gradient_product(model: torch.nn.Module, loader: Iterable[Any],
                             params: dict[str, torch.nn.Parameter], *, task: Task, batches: int | None,
                             temperature: float = 1.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    r"""The gradient :math:`g` and the Hessian-gradient product :math:`Hg` of the loss.

    With :math:`L = \sum_{b=1}^{B} L_b`, :math:`L_b` the mean task loss of batch ``b`` on
    logits divided by ``temperature``:

    .. math:: g = \nabla_w L, \qquad Hg = \nabla_w \bigl( \mathrm{sg}(g)^\top \nabla_w L \bigr)

    (``sg``: no gradient through ``g``; torch double backward). Only the selected
    parameters are differentiated: ``H`` is their block of the Hessian. The model runs in
    eval mode. Returns ``(g, Hg)``, each parameter name -> tensor of the parameter's shape.
    """
    import torch

    from compress_gate.models.training import task_loss

    weights = list(params.values())
    data = [unpack(batch, with_groups=False)[:2] for batch in take(loader, batches)]
    with ScoringMode(model, params):
        grad = [torch.zeros_like(w) for w in weights]
        for inputs, targets in data:
            for total, part in zip(grad, gradients(task_loss(model(inputs) / temperature, targets, task), weights)):
                total += part
        hg = [torch.zeros_like(w) for w in weights]
        for inputs, targets in data:
            parts = gradients(task_loss(model(inputs) / temperature, targets, task), weights, create_graph=True)
            inner = sum((g.detach() * part).sum() for g, part in zip(grad, parts))
            for total, part in zip(hg, gradients(inner, weights)):
                total += part
    names = list(params)
    return dict(zip(names, grad)), dict(zip(names, hg))


def grasp_scores(model: torch.nn.Module, loader: Iterable[Any], params: dict[str, torch.nn.Parameter], *,
                 task: Task, batches: int | None, temperature: float) -> dict[str, torch.Tensor]:
    r"""GraSP's score :math:`S(-w) = -w \odot Hg` (Wang et al., eq. 8).

    A weight with a high score is one whose removal reduces gradient flow least (or
    increases it); GraSP removes the highest scores. See :func:`hessian_gradient_product`.
    """
    _, hg = hessian_gradient_product(model, loader, params, task=task, batches=batches, temperature=temperature)
    return {name: -params[name].detach() * hg[name] for name in params}


def prune_grasp(model: torch.nn.Module, loader: Iterable[Any], *, sparsity: float, params: Sequence[str],
                task: Task, groups: Sequence[int] | None = None, seed: int, batches: int | None = 1,
                temperature: float = DEFAULT_TEMPERATURE) -> dict[str, torch.Tensor]:
    """Prune ``model`` in place with GraSP and return the 0/1 masks (parameter name -> mask).

    Scores are :func:`grasp_scores` on the first ``batches`` batches (all when None), logits divided by
    ``temperature`` (200, the authors' code). GraSP's sign convention: the
    ``round_half_up(sparsity · N)`` *highest* scores :math:`-w \\odot Hg` are removed, over
    all selected weights together (``N`` of them); equivalently the lowest are kept. Ties
    are broken in a random order fixed by ``seed``. ``groups`` is accepted for a call
    signature shared with :func:`prune_fairgrape` and is not used (GraSP is group-blind).

    Raises
    ------
    InputError
        Sparsity outside [0, 1), temperature not > 0, unknown task, a ``params`` entry
        that matches nothing, malformed batches or an empty loader.
    RuntimeFailure
        A score is NaN or infinite.
    """
    check_common(sparsity, task, seed, batches)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise InputError(f"GraSP temperature = {temperature!r} must be a number > 0 (the authors use 200).")
    selected = select_params(model, params)
    scores = grasp_scores(model, loader, selected, task=task, batches=batches, temperature=float(temperature))
    masks = global_keep_masks({name: -score for name, score in scores.items()}, sparsity, seed)
    apply_masks(selected, masks)
    return masks
