"""Fit a built module to the data: load its checkpoint, replace its head, check its output shape.

The order, for a module ``m``, a checkpoint state ``s`` (optional), the head's module path
``h`` (optional) and the data's K outputs:

1. when ``s[h.weight]`` has a different number of outputs than ``m.h``, ``m.h`` is first
   rebuilt with the checkpoint's count, so the checkpoint loads (a pretrained backbone);
2. ``s`` is loaded strictly (every key, every shape);
3. ``m`` runs on a (2, C, S, S) zero input and must return a (2, K') tensor;
4. when K' != K, ``m.h`` is replaced by a freshly initialised layer of the same kind with
   K outputs (``nn.Linear``: ``in_features`` -> K; a convolution: ``in_channels`` -> K, same
   kernel, stride, padding), and the check of step 3 is repeated with K.

A head that must be replaced but is not named, a head path that is not a module, and a
model whose output is not a (batch, K) tensor are :class:`InputError` naming the key and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress_gate._keyed_state import keyed_state
from compress_gate._paths import require_regular_file
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["read_state_dict", "load_state", "head_module", "head_outputs", "replace_head", "output_count",
           "fit_to_data", "check_layers"]


def read_state_dict(path: Path, what: str, *, key: str | None = None) -> dict[str, Any]:
    """The state_dict saved at ``path`` (``torch.load(weights_only=True)``; a ``{"state_dict": ...}``
    wrapper is unwrapped). Raises InputError for a missing or unreadable file or another object.

    ``key``: the file is one the tool wrote for this key (a cache file,
    :mod:`compress_gate._keyed_state`): its stored key must be ``key``, and the fix
    for a bad file is deleting it (the tool makes it again), not saving a new one.
    """
    import torch

    require_regular_file(path, what, missing_hint="Check `model.checkpoint` in the recipe.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors differ by file; all mean "unreadable"
        # torch's own message advises weights_only=False, i.e. running the file's code: never relayed.
        fix = (f"Delete the cache file {path}; the next run makes it again." if key is not None
               else "Save the weights with torch.save(model.state_dict(), path).")
        raise InputError(f"{path}: not a valid {what}: torch.load(weights_only=True) cannot read it as a "
                         f"state_dict ({type(err).__name__}). The file may be truncated, not a PyTorch "
                         f"checkpoint, or a pickle of code, which is never run. {fix}") from err
    if key is not None:
        state = keyed_state(state, key, path, what)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: the {what} holds a {type(state).__name__}, not a state_dict. Save it "
                         "with torch.save(model.state_dict(), path).")
    return state


def load_state(model: torch.nn.Module, state: dict[str, Any], *, path: Path, what: str, fix: str) -> None:
    """Load ``state`` into ``model``: every key and shape must fit, else InputError naming the first misfit."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatches
        first = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err)).rstrip(".")
        raise InputError(f"{path}: the {what} does not fit the recipe's model: {first}. {fix}") from err
    if result.missing_keys or result.unexpected_keys:
        raise InputError(f"{path}: the {what} does not fit the recipe's model: missing "
                         f"{list(result.missing_keys)[:3]}, unexpected {list(result.unexpected_keys)[:3]}. {fix}")


def head_module(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """The ``nn.Linear`` or convolution at module path ``path`` (``model.head``)."""
    from torch import nn

    try:
        module = model.get_submodule(path)
    except AttributeError as err:
        names = [name for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
        raise InputError(f"`model.head` = {path!r} is not a module of {type(model).__name__}. Its linear and "
                         f"convolution layers are e.g. {names[-3:]}; name the final one.") from err
    if not isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
        raise InputError(f"`model.head` = {path!r} is a {type(module).__name__}; it must name the final "
                         "nn.Linear or convolution (the layer whose outputs are the logits).")
    return module


def head_outputs(module: torch.nn.Module) -> int:
    """Output count of a head layer: ``out_features`` (linear) or ``out_channels`` (convolution)."""
    return int(getattr(module, "out_features", None) or module.out_channels)  # type: ignore[arg-type]


def replace_head(model: torch.nn.Module, path: str, outputs: int) -> None:
    """Replace the layer at ``path`` by a freshly initialised one of the same kind with ``outputs`` outputs."""
    from torch import nn

    old = head_module(model, path)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, outputs, bias=old.bias is not None)
    else:
        new = type(old)(old.in_channels, outputs, old.kernel_size, stride=old.stride, padding=old.padding,
                        dilation=old.dilation, bias=old.bias is not None)
    new = new.to(dtype=old.weight.dtype, device=old.weight.device)
    parent_path, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, name, new)


def output_count(model: torch.nn.Module, input_shape: Sequence[int], *, source: str) -> int:
    """K of the (2, K) tensor ``model`` returns for a (2, *input_shape) zero input (eval mode, no grad)."""
    import torch

    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros((2, *input_shape)))
    except Exception as err:  # the user's forward
        raise InputError(f"{source} fails on an input of shape (2, {', '.join(map(str, input_shape))}), the "
                         f"data's images: {type(err).__name__}: {err}. Make the network take "
                         f"{input_shape[0]}-channel {input_shape[1]}x{input_shape[2]} images (`model.kwargs`, "
                         "`model.input_size`), or fix its forward.") from err
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InputError(f"{source} returns {shape} for a batch of 2; it must return one logit row per "
                         "image, a (batch, outputs) tensor. Flatten the output, or return only the logits "
                         "(not a tuple or dict).")
    return int(out.shape[1])


def fit_to_data(model: torch.nn.Module, *, num_outputs: int, input_shape: Sequence[int], head: str | None,
                state: dict[str, Any] | None, checkpoint: Path | None, source: str) -> bool:
    """Fit ``model`` to the data in place; returns whether the head was replaced.

    1. When the checkpoint's ``<head>.weight`` has another output count than the head, the head
       is rebuilt with the checkpoint's count so the checkpoint loads; 2. the checkpoint state is
       loaded strictly; 3. the model must map a (2, C, S, S) zero input to (2, K'); 4. when
       K' != ``num_outputs``, the head is replaced by a fresh layer of the same kind with K
       outputs and step 3 is repeated.

    Raises
    ------
    InputError
        The checkpoint does not fit, the output is not (batch, K'), or K' != K without ``head``.
    """
    if head is not None:
        layer = head_module(model, head)
        saved = state.get(f"{head}.weight") if state is not None else None
        if saved is not None and saved.shape[0] != head_outputs(layer):
            replace_head(model, head, int(saved.shape[0]))
    if state is not None:
        load_state(model, state, path=checkpoint or Path("checkpoint"), what="model.checkpoint",
                   fix="Use the network it was saved from (`model` source and `model.kwargs`); a different "
                       "final layer is replaced when `model.head` names it.")
    outputs = output_count(model, input_shape, source=source)
    if outputs == num_outputs:
        return False
    if head is None:
        raise InputError(f"{source} has {outputs} outputs but the data has {num_outputs} attributes/classes. "
                         "Set `model.head` to the module path of its final layer (e.g. `head: classifier`) to "
                         f"replace it by a new {num_outputs}-output layer (then `model.train` fine-tunes it), or "
                         "build the network with the right output count (`model.kwargs`).")
    replace_head(model, head, num_outputs)
    outputs = output_count(model, input_shape, source=source)
    if outputs != num_outputs:
        raise InputError(f"`model.head` = {head!r}: with that layer replaced by a {num_outputs}-output one the "
                         f"model still returns {outputs} outputs, so it is not the final layer. Name the layer "
                         "whose outputs are the logits.")
    return True


def check_layers(model: torch.nn.Module, layers: Sequence[str] | None) -> tuple[str, ...]:
    """The feature stages (module paths) of ``model``: ``layers`` when given (each must exist), else
    its top-level ``layer<k>`` modules in order (possibly none)."""
    modules = dict(model.named_modules())
    if layers is not None:
        missing = [name for name in layers if name not in modules or not name]
        if missing:
            raise InputError(f"`model.layers` names {missing}, which {type(model).__name__} does not have. List "
                             f"module paths of its feature stages, e.g. {[n for n, _ in model.named_children()][:4]}.")
        return tuple(layers)
    stages = [name for name, _ in model.named_children() if name.startswith("layer") and name[5:].isdigit()]
    return tuple(sorted(stages, key=lambda name: int(name[5:])))
