"""Per-layer representation similarity of a teacher and a student on one fixed batch.

Forward hooks record each chosen layer's output in both models; the NumPy measures of
:mod:`compress_gate.metrics.similarity` compare them. torch is imported when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["layer_similarity"]


def _default_layers(teacher: torch.nn.Module, student: torch.nn.Module) -> list[str]:
    """Names of the teacher's Conv2d and Linear modules that the student has under the same name."""
    import torch

    in_student = dict(student.named_modules())
    return [name for name, module in teacher.named_modules()
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and name in in_student]


def _activations(model: torch.nn.Module, inputs: torch.Tensor, layers: list[str], which: str,
                 spatial_mean: bool = False) -> dict[str, np.ndarray]:
    """Each layer's output on ``inputs`` as (n_samples, features) float64, model in eval mode under no_grad.

    With ``spatial_mean``, an output of shape (n, C, *spatial) is first averaged over its spatial dims to (n, C).
    """
    import torch

    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise InputError(f"layers {missing} are not modules of the {which}; choose among its module names, "
                         f"e.g. {[n for n in modules if n][:8]}.")
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: seen[name].append(out.detach()))
             for name in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    repeated = [name for name, outs in seen.items() if len(outs) != 1]
    if repeated:
        raise InputError(f"layers {repeated} of the {which} did not run exactly once in a forward pass; "
                         "choose layers that run once per input (not shared or unused modules).")
    if spatial_mean:
        seen = {name: [outs[0].mean(dim=tuple(range(2, outs[0].dim())))] if outs[0].dim() > 2 else outs
                for name, outs in seen.items()}
    return {name: outs[0].reshape(outs[0].shape[0], -1).double().cpu().numpy() for name, outs in seen.items()}


def layer_similarity(teacher: torch.nn.Module, student: torch.nn.Module, inputs: torch.Tensor, *,
                     layers: list[str] | None = None, keep: float = 0.99,
                     spatial_mean: bool = False) -> dict[str, dict[str, float]]:
    """Linear CKA and SVCCA between the teacher's and the student's output of each layer.

    Both models run once on the same batch ``inputs`` (eval mode, no gradients; their
    train/eval mode is restored). A layer's output is flattened per sample to
    (n_samples, n_features), so the batch should hold well more samples than the SVCCA
    kept directions (see :func:`compress_gate.metrics.svcca`).

    Parameters
    ----------
    teacher, student : torch.nn.Module
    inputs : torch.Tensor of shape (n_samples, ...), a fixed batch (e.g. a calib subset)
    layers : module names present in both models; default every Conv2d and Linear of the
        teacher that the student has under the same name
    keep : share of variance SVCCA keeps, default 0.99
    spatial_mean : average a layer's (n, C, H, W) output over H, W to (n, C) before comparing
        (per-channel means; keeps n_samples well above the feature count), default False

    Returns
    -------
    dict
        ``{layer: {"cka": float, "svcca": float}}`` in the teacher's module order; values
        in [0, 1], ``nan`` for a layer whose output is constant over the batch.
    """
    from compress_gate.metrics.similarity import linear_cka, svcca

    names = list(layers) if layers is not None else _default_layers(teacher, student)
    if not names:
        raise InputError("no layer to compare: the teacher has no Conv2d or Linear module that the student has "
                         "under the same name. Pass `layers=[...]` with module names of both models.")
    ours = _activations(teacher, inputs, names, "teacher", spatial_mean)
    theirs = _activations(student, inputs, names, "student", spatial_mean)
    return {name: {"cka": linear_cka(ours[name], theirs[name]), "svcca": svcca(ours[name], theirs[name], keep=keep)}
            for name in names}
