"""Magnitude pruning masks, unstructured and N:M, kept applied during training.

**Unstructured** (SparseML's ``UnstructuredPruningMaskCreator``): at sparsity s, the
round(s · |W|) entries of W with the smallest |w| are masked (ties broken by position).

**N:M** (Iofinova et al., Appendix F; NVIDIA's 2:4): weights are grouped in runs
of M consecutive input channels, for every output channel and kernel position
(a conv weight (O, I, kH, kW) is read as (O, kH, kW, I), a linear weight (O, I) as
is). A group may lose at most M − N entries, and within a group the smallest
magnitudes go first. At sparsity s ≤ 1 − N/M, the round(s · |W|) masked entries are
the smallest among each group's M − N smallest (so a gradual schedule reaches
exactly N kept of M at s = 1 − N/M). The input-channel count must be a multiple of M.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["magnitude_mask", "nm_mask", "match_params", "MaskSet"]


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """0/1 mask (weight's shape and dtype) masking the round(sparsity·|W|) smallest |w|."""
    import torch

    flat = weight.detach().abs().flatten()
    count = round(flat.numel() * sparsity)
    mask = torch.ones_like(flat)
    if count > 0:
        mask[torch.argsort(flat, stable=True)[:count]] = 0
    return mask.view_as(weight)


def nm_mask(weight: torch.Tensor, sparsity: float, n: int, m: int) -> torch.Tensor:
    """0/1 mask of ``weight`` at ``sparsity`` with at most ``m - n`` masked entries per group of ``m`` input channels.

    Groups are runs of ``m`` consecutive input channels per output channel and kernel position
    (a conv weight (O, I, kH, kW) is read as (O, kH, kW, I)). The round(sparsity · |W|) masked
    entries are the smallest |w| among each group's ``m - n`` smallest (ties by position), so
    sparsity 1 − n/m keeps exactly n of every m.

    Raises
    ------
    ValueError
        ``weight`` is not 2-D or 4-D, its input-channel count is not a multiple of
        ``m``, or ``sparsity`` > 1 − n/m.
    """
    import torch

    if weight.ndim not in (2, 4) or weight.shape[1] % m:
        raise ValueError(f"an {n}:{m} mask needs a linear (O, I) or conv (O, I, kH, kW) weight with I a multiple "
                         f"of {m}; got shape {tuple(weight.shape)}")
    if sparsity > 1 - n / m + 1e-9:
        raise ValueError(f"sparsity {sparsity} exceeds what an {n}:{m} mask allows ({1 - n / m})")
    grouped = weight.detach().abs()
    if weight.ndim == 4:
        grouped = grouped.permute(0, 2, 3, 1)
    layout = grouped.shape
    groups = grouped.reshape(-1, m)
    ranks = torch.argsort(groups, dim=1, stable=True)  # per group, positions from smallest |w| up
    candidates = ranks[:, : m - n]  # the only entries a group may lose, smallest first
    values = torch.gather(groups, 1, candidates)
    order = torch.argsort(values.flatten(), stable=True)  # within a group: rank-0 precedes rank-1 on ties
    count = round(weight.numel() * sparsity)
    mask = torch.ones_like(groups)
    chosen = order[:count]
    mask[chosen // (m - n), candidates.flatten()[chosen]] = 0
    mask = mask.reshape(layout)
    if weight.ndim == 4:
        mask = mask.permute(0, 3, 1, 2)
    return mask.contiguous().to(weight.dtype)


def match_params(model: torch.nn.Module, patterns: Sequence[str]) -> dict[str, torch.nn.Parameter]:
    """Parameters named by ``patterns``, as SparseML matches them.

    A pattern is an exact parameter name, ``re:<regex>`` (``re.match`` on the full
    name), or ``__ALL_PRUNABLE__`` (the weight of every conv and linear layer).

    Raises
    ------
    InputError
        A pattern matches no parameter (the message lists a few names to pick from).
    """
    from torch import nn

    named = dict(model.named_parameters())
    prunable = {f"{name}.weight" for name, module in model.named_modules()
                if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))}
    found: dict[str, nn.Parameter] = {}
    for pattern in patterns:
        if pattern == "__ALL_PRUNABLE__":
            hits = [name for name in named if name in prunable]
        elif pattern.startswith("re:"):
            regex = re.compile(pattern[3:])
            hits = [name for name in named if regex.match(name)]
        else:
            hits = [pattern] if pattern in named else []
        if not hits:
            examples = ", ".join(sorted(prunable)[:4])
            raise InputError(f"compression.pruning.params: {pattern!r} matches no parameter of this model. "
                             f"Parameter names look like {examples}; use 're:<regex>' for a pattern.")
        found.update({name: named[name] for name in hits})
    return found


class MaskSet:
    """Masks of named weights, re-applied after every optimizer step (``apply``).

    ``update(sparsity)`` recomputes every mask from the current magnitudes (N:M
    when ``nm`` is given) and applies it.
    """

    def __init__(self, params: dict[str, torch.nn.Parameter], nm: tuple[int, int] | None = None) -> None:
        import torch

        if nm is not None:
            bad = [f"{name} {tuple(p.shape)}" for name, p in params.items()
                   if p.ndim not in (2, 4) or p.shape[1] % nm[1]]
            if bad:
                raise InputError(f"compression.pruning.mask = '{nm[0]}:{nm[1]}' needs conv/linear weights whose "
                                 f"input-channel count is a multiple of {nm[1]}; these are not: {', '.join(bad)}. "
                                 "Exclude them from `params` (e.g. the stem conv on 3 RGB channels).")
        self.params, self.nm = params, nm
        self.masks = {name: torch.ones_like(p) for name, p in params.items()}

    def update(self, sparsity: float) -> None:
        """Recompute the masks at ``sparsity`` from current magnitudes, then apply them."""
        for name, param in self.params.items():
            if self.nm is None:
                self.masks[name] = magnitude_mask(param, sparsity)
            else:
                self.masks[name] = nm_mask(param, sparsity, *self.nm)
        self.apply()

    def apply(self) -> None:
        """Zero every masked weight (in place, outside autograd)."""
        import torch

        with torch.no_grad():
            for name, param in self.params.items():
                param.mul_(self.masks[name])
