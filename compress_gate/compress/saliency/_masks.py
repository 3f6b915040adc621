"""Shared pieces of the saliency pruners: parameter selection, counts, top-k, batches, masks.

Counting convention (all methods): a tensor of ``n`` weights at sparsity ``s`` loses
``round_half_up(s · n)`` weights. Per-layer methods (FairGRAPE) hit that count exactly in
every selected tensor; global methods (SNIP, GraSP) hit it exactly over the union of the
selected tensors (``N = Σ n``), so a single tensor's sparsity is whatever the ranking gives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import torch

Task = Literal["multilabel", "multiclass"]

_TASKS = ("multilabel", "multiclass")


def n_pruned(n: int, sparsity: float) -> int:
    """Number of weights removed from ``n`` at ``sparsity``: ``floor(s · n + 1/2)`` (half rounds up)."""
    return int(math.floor(sparsity * n + 0.5))


def check_common(sparsity: float, task: str, seed: int, batches: int | None) -> None:
    """Raise InputError for a sparsity outside [0, 1), an unknown task, a non-int seed or a bad batch count."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise InputError(f"pruning sparsity = {sparsity!r} must be a number in [0, 1) (the share of the "
                         "selected weights removed), e.g. `sparsity: 0.8`.")
    if task not in _TASKS:
        raise InputError(f"pruning task = {task!r} is not one of {list(_TASKS)}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"pruning seed = {seed!r} must be an integer.")
    if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int) or batches < 1):
        raise InputError(f"pruning batches = {batches!r} must be a positive integer (or None for the "
                         "whole loader, where allowed).")


def select_params(model: torch.nn.Module, params: Sequence[str]) -> dict[str, torch.nn.Parameter]:
    """The parameters named by ``params``, in the model's order, SparseML's way.

    An entry starting with ``re:`` is a regular expression matched with ``re.match``
    (anchored at the start only, as SparseML does); any other entry is an exact name.
    Every entry must match at least one floating-point parameter.
    """
    if isinstance(params, str) or not params:
        raise InputError(f"pruning params = {params!r} must be a non-empty list of parameter names or "
                         "`re:` regexes, e.g. ['re:.*conv.*\\.weight$'].")
    named = dict(model.named_parameters())
    patterns: list[tuple[str, re.Pattern[str] | None]] = []
    for entry in params:
        if not isinstance(entry, str) or not entry:
            raise InputError(f"pruning params entry {entry!r} must be a non-empty string.")
        try:
            patterns.append((entry, re.compile(entry[3:]) if entry.startswith("re:") else None))
        except re.error as err:
            raise InputError(f"pruning params entry {entry!r} is not a valid regex ({err}).") from err
    chosen: dict[str, torch.nn.Parameter] = {}
    for entry, pattern in patterns:
        hits = [name for name in named if (pattern.match(name) if pattern else name == entry)]
        if not hits:
            raise InputError(f"pruning params entry {entry!r} matches no parameter of the model. Its "
                             f"parameters include {list(named)[:8]}; write `re:` before a regex.")
        for name in hits:
            if not named[name].is_floating_point():
                raise InputError(f"pruning params entry {entry!r} selects {name!r}, which is not a "
                                 "floating-point tensor; select weights only.")
    for name, param in named.items():   # the model's order, whatever the order of the patterns
        if any(pattern.match(name) if pattern else name == entry for entry, pattern in patterns):
            chosen[name] = param
    return chosen


def unpack(batch: Any, *, with_groups: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(inputs, targets)`` or ``(inputs, targets, groups)`` from one loader batch.

    ``with_groups`` requires the third item, a (B, G) 0/1 tensor.
    """
    import torch

    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise InputError("a pruning loader batch must be (inputs, targets) or (inputs, targets, groups); "
                         f"got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}.")
    inputs, targets = batch[0], batch[1]
    groups = batch[2] if len(batch) == 3 else None
    if with_groups:
        if groups is None:
            raise InputError("FairGRAPE needs batches (inputs, targets, groups) with groups a (B, G) 0/1 "
                             "tensor; build the loader with `group_training_loader(data, ...)`.")
        if groups.ndim != 2 or groups.shape[0] != inputs.shape[0] or not torch.all((groups == 0) | (groups == 1)):
            raise InputError(f"loader groups have shape {tuple(groups.shape)}; they must be (B, G) 0/1 with "
                             f"B = {inputs.shape[0]} rows like the inputs.")
    return inputs, targets, groups


def take(loader: Iterable[Any], batches: int | None) -> Iterator[Any]:
    """The first ``batches`` batches of ``loader`` (all when None); at least one must exist."""
    count = 0
    for batch in loader:
        if batches is not None and count == batches:
            break
        count += 1
        yield batch
    if count == 0:
        raise InputError("the pruning loader yielded no batch; give it some training rows.")


def seeded_order(scores: torch.Tensor, seed: int) -> torch.Tensor:
    """Indices of the flat ``scores`` from highest to lowest; ties in a random order fixed by ``seed``.

    Raises RuntimeFailure on a non-finite score (a NaN or infinite gradient).
    """
    import torch

    if not torch.isfinite(scores).all():
        raise RuntimeFailure("pruning scores contain NaN or infinity (the loss or its gradients overflowed); "
                             "check the model's outputs on the loader's batches.")
    perm = torch.randperm(scores.numel(), generator=torch.Generator().manual_seed(seed))
    return perm[torch.sort(scores[perm], descending=True, stable=True).indices]


def global_keep_masks(scores: dict[str, torch.Tensor], sparsity: float, seed: int) -> dict[str, torch.Tensor]:
    """Keep the ``N − round(s · N)`` highest scores over all tensors together; 0/1 masks per name."""
    import torch

    flat = torch.cat([score.detach().reshape(-1).double().cpu() for score in scores.values()])
    keep = flat.numel() - n_pruned(flat.numel(), sparsity)
    kept = torch.zeros(flat.numel(), dtype=torch.bool)
    kept[seeded_order(flat, seed)[:keep]] = True
    masks, start = {}, 0
    for name, score in scores.items():
        masks[name] = kept[start:start + score.numel()].reshape(score.shape).to(score)
        start += score.numel()
    return masks


def gradients(loss: torch.Tensor, weights: list[torch.nn.Parameter], **options: Any) -> list[torch.Tensor]:
    """``torch.autograd.grad(loss, weights, **options)``, with zeros for a weight the loss does not use."""
    import torch

    grads = torch.autograd.grad(loss, weights, allow_unused=True, **options)
    return [torch.zeros_like(w) if grad is None else grad for w, grad in zip(weights, grads)]


def apply_masks(params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor]) -> None:
    """Multiply every selected parameter by its mask, in place."""
    import torch

    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name]))


class ScoringMode:
    """Context manager: the model in eval mode (no dropout, BatchNorm statistics untouched), or with
    ``train`` in train mode (batch statistics), with the selected parameters requiring gradients.

    On exit the modules' modes, the ``requires_grad`` flags and every buffer (BatchNorm's
    running statistics, which a train-mode forward pass moves) are restored.
    """

    def __init__(self, model: torch.nn.Module, params: dict[str, torch.nn.Parameter], *, train: bool = False) -> None:
        self.model, self.params, self.train = model, params, train
        self.modes = {module: module.training for module in model.modules()}
        self.requires = {name: param.requires_grad for name, param in params.items()}
        self.buffers = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}

    def __enter__(self) -> torch.nn.Module:
        self.model.train(self.train)
        for param in self.params.values():
            param.requires_grad_(True)
        return self.model

    def __exit__(self, *exc: object) -> None:
        import torch

        for module, training in self.modes.items():
            module.train(training)
        for name, param in self.params.items():
            param.requires_grad_(self.requires[name])
        with torch.no_grad():
            for name, buffer in self.model.named_buffers():
                buffer.copy_(self.buffers[name])
