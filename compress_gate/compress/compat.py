"""Compatibility shims that let SparseML 1.8 run on the pinned stack (torch 2.13).

:func:`apply_compat` is called once before SparseML is used; it is idempotent.
Each shim is the smallest change that fixes one breakage, and each has a test
(``tests/test_compat.py``) that reproduces the failure in a fresh interpreter
without the shim:

1. ``NM_DISABLE_ANALYTICS=1`` is set before any Neural Magic package is
   imported, so sparseml / sparsezoo / deepsparse never reach the network.
2. QAT: torch 2.13's ``QConfig`` declares ``__slots__ = ()``, and SparseML's
   ``QuantizationScheme.get_qconfig`` / ``get_wrapper_qconfig`` (also reached
   through ``QATWrapper._load_qconfigs``) set ``qconfig.quantization_scheme =
   scheme``, which raises ``AttributeError``. SparseML builds every such QConfig
   in ``_get_qconfig`` of ``sparseml.pytorch.sparsification.quantization.
   quantization_scheme`` (and of its legacy copy under ``sparseml.modifiers``);
   the shim makes that function return ``SchemeQConfig``, a ``QConfig``
   subclass with a ``__dict__``, so the attribute can be set. It is still a
   ``QConfig`` (a namedtuple of the same two observers) for torch.
3. ONNX export: torch 2.13's ``torch.onnx.export`` defaults to
   ``dynamo=True``, which needs ``onnxscript`` (not installed; the project
   exports with the TorchScript exporter, opset 13-17). SparseML's ``export_onnx`` calls
   ``torch.onnx.export(**kwargs)`` without ``dynamo``. The shim wraps
   ``torch.onnx.export`` so that a call that does not name ``dynamo`` uses the
   TorchScript exporter (``dynamo=False``); an explicit ``dynamo=True`` is kept.

Two more SparseML behaviours are handled where SparseML is driven, not here:
its console logging and default ``./sparse_logs/`` folder (see
:func:`compress_gate.models.training.quiet_sparseml`), and a QAT start
at epoch 0 on an eval-mode model fuses BN away (``train_model`` switches to
train mode first).
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

__all__ = ["apply_compat"]

_LOCK = threading.Lock()
_APPLIED = False
_SHIM_MARK = "_compress_gate_shim"


def apply_compat() -> None:
    """Apply every shim once (later calls do nothing).

    Imports torch and SparseML's quantization modules, so call it inside the
    function that needs SparseML, never at module import time.
    """
    global _APPLIED
    os.environ["NM_DISABLE_ANALYTICS"] = "1"
    with _LOCK:
        if _APPLIED:
            return
        _patch_torch_onnx_export()
        _patch_sparseml_qconfig()
        _APPLIED = True


def _make_scheme_qconfig_class() -> type:
    from torch.ao.quantization import QConfig

    class SchemeQConfig(QConfig):  # type: ignore[misc, valid-type]
        """A torch ``QConfig`` that can carry SparseML's ``quantization_scheme``.

        No ``__slots__`` here, so instances have a ``__dict__``; everything else
        (fields, equality, pickling through ``__getnewargs__``) is QConfig's.
        """

        def __reduce__(self) -> tuple:  # keep the attribute through deepcopy/pickle
            return (_rebuild_scheme_qconfig, (tuple(self), dict(self.__dict__)))

    SchemeQConfig.__module__ = __name__
    SchemeQConfig.__qualname__ = "SchemeQConfig"
    return SchemeQConfig


def _rebuild_scheme_qconfig(fields: tuple, state: dict) -> Any:
    qconfig = _LazySchemeQConfig.get()(*fields)
    qconfig.__dict__.update(state)
    return qconfig


class _LazySchemeQConfig:
    """Holds ``SchemeQConfig``, built on first use so importing this module stays light."""

    cls: type | None = None

    @classmethod
    def get(cls) -> type:
        if cls.cls is None:
            cls.cls = _make_scheme_qconfig_class()
        return cls.cls


def _patch_sparseml_qconfig() -> None:
    import importlib

    scheme_class = _LazySchemeQConfig.get()
    for module_name in (
        "sparseml.pytorch.sparsification.quantization.quantization_scheme",
        "sparseml.modifiers.quantization_legacy.utils.quantization_scheme",
    ):
        module = importlib.import_module(module_name)
        original = module._get_qconfig
        if getattr(original, _SHIM_MARK, False):
            continue

        @functools.wraps(original)
        def _get_qconfig(activation_args: Any, weight_args: Any, _original: Any = original) -> Any:
            qconfig = _original(activation_args, weight_args)
            return scheme_class(activation=qconfig.activation, weight=qconfig.weight)

        setattr(_get_qconfig, _SHIM_MARK, True)
        module._get_qconfig = _get_qconfig


def _patch_torch_onnx_export() -> None:
    import torch.onnx

    if not getattr(torch.onnx.export, _SHIM_MARK, False):
        torch.onnx.export = _dynamo_default(torch.onnx.export)


def _dynamo_default(export: Any) -> Any:
    """``export`` with ``dynamo=False`` unless the caller names ``dynamo``."""

    @functools.wraps(export)
    def export_torchscript_by_default(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("dynamo", False)
        return export(*args, **kwargs)

    setattr(export_torchscript_by_default, _SHIM_MARK, True)
    return export_torchscript_by_default
