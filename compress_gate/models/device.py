"""Where the torch side of a run computes: the recipe's ``device`` and ``amp`` keys.

``device: auto | cpu | cuda | cuda:N`` (default ``auto``) places teacher training, the
student's fine-tuning (QAT included), the similarity stage and the torch-side predictions;
``auto`` is ``cuda`` (device 0) when ``torch.cuda.is_available()``, else ``cpu``. ONNX export
always runs on the CPU (the models are moved back first), and the engines choose their own
devices (``engines:``). ``amp: bf16 | fp16`` (default none) runs the forward passes of
training under ``torch.autocast`` in that dtype, on CUDA only; fp16 scales the loss
(``torch.amp.GradScaler``) so small gradients do not underflow.

:func:`select_device` is the one place that reads the keys; :class:`Placement` is what the
training loops and stages use.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_PATTERN", "AMP_DTYPES", "Placement", "cpu_placement", "select_device"]

#: The values ``device`` accepts.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
#: ``amp`` value -> torch dtype name.
AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


@dataclass
class Placement:
    """A device and an optional autocast dtype, with the calls a training step needs.

    On the CPU without ``amp`` every method is the plain operation, so a CPU run computes
    exactly as it did before devices existed.
    """

    device: torch.device
    amp: str | None = None
    scaler: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.amp == "fp16":
            import torch

            self.scaler = torch.amp.GradScaler("cuda")

    def batches(self, loader: Any) -> Any:
        """``loader`` with its batches' tensors on the device; ``loader`` itself on the CPU.

        The view keeps ``len`` and reaches the loader's generators through ``.loader``
        (:func:`compress_gate.models.checkpoint.loader_generators`).
        """
        return loader if self.device.type == "cpu" else _OnDevice(loader, self.device)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """``torch.autocast`` in the ``amp`` dtype on CUDA; nothing otherwise."""
        if self.amp is None:
            yield
            return
        import torch

        with torch.autocast("cuda", dtype=getattr(torch, AMP_DTYPES[self.amp])):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled under fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under fp16 unscaled first and skipped on an inf/NaN gradient."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        """The loss scaler's state (for an epoch checkpoint); ``None`` without fp16."""
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`."""
        if self.scaler is not None and state is not None:
            self.scaler.load_state_dict(state)

    def describe(self, cpu_name: str) -> dict[str, Any]:
        """What run.json records: the device, its name (the GPU's, else ``cpu_name``, the CPU's model as
        the caller's machine record gives it) and the autocast dtype."""
        name = str(torch_cuda().get_device_name(self.device)) if self.device.type == "cuda" else cpu_name
        return {"device": str(self.device), "name": name, "amp": self.amp}


def cpu_placement() -> Placement:
    """The CPU, no autocast (the default of every loop)."""
    import torch

    return Placement(torch.device("cpu"))


def select_device(device: str = "auto", amp: str | None = None, *, source: str = "recipe") -> Placement:
    """The :class:`Placement` the recipe's ``device`` and ``amp`` keys name: ``auto`` is ``cuda`` (GPU 0)
    when ``torch.cuda.is_available()``, else ``cpu``; ``cuda`` is ``cuda:0``.

    Raises
    ------
    InputError
        ``device`` is not one of auto/cpu/cuda/cuda:N; ``cuda`` or ``cuda:N`` where
        ``torch.cuda.is_available()`` is false; ``cuda:N`` with N >= ``torch.cuda.device_count()``;
        ``amp`` that is not bf16/fp16, or ``amp`` on the CPU. Each message names the key
        (prefixed by ``source``) and the fix; torch is not installed (the core install: a run trains
        with torch).
    """
    try:
        import torch
    except ImportError as error:
        raise InputError(f"{source}: `compress-gate run` trains and compresses with torch, which does not import "
                         f"here ({error}). Install the [torch] or [sparseml] extra (docs/install.md).") from None

    if not DEVICE_PATTERN.match(device):
        raise InputError(f"{source}: `device` = {device!r} must be auto, cpu, cuda or cuda:N (N a GPU index).")
    if amp is not None and amp not in AMP_DTYPES:
        raise InputError(f"{source}: `amp` = {amp!r} must be bf16 or fp16 (or absent: full precision).")
    available = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if available else "cpu"
    if device.startswith("cuda"):
        if not available:
            raise InputError(f"{source}: `device` = {device!r} but torch sees no CUDA GPU here (torch "
                             f"{torch.__version__}, CUDA build {torch.version.cuda}). Set `device: auto` (CUDA "
                             "where present, else the CPU) or `device: cpu`.")
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise InputError(f"{source}: `device` = {device!r} but this machine has {count} CUDA device(s), "
                             f"cuda:0 to cuda:{count - 1}. Choose one of them, or `device: cuda`.")
        placement = torch.device("cuda", index)
    else:
        placement = torch.device("cpu")
    if amp is not None and placement.type != "cuda":
        raise InputError(f"{source}: `amp` = {amp!r} needs a CUDA device, but the run computes on the CPU "
                         f"(`device` = {device!r}). Remove `amp`, or run where a GPU is present.")
    return Placement(placement, amp)


def torch_cuda() -> Any:
    """``torch.cuda`` (imported here: this module imports torch only when a function needs it)."""
    import torch

    return torch.cuda


class _OnDevice:
    """A view of a loader whose batches' tensors arrive on ``device`` (length and generators kept)."""

    def __init__(self, loader: Any, device: torch.device) -> None:
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        import torch

        for batch in self.loader:
            yield tuple(item.to(self.device, non_blocking=True) if isinstance(item, torch.Tensor) else item
                        for item in batch)
