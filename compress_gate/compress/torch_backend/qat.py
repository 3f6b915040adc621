"""Quantization-aware training (``quantization: qat``) with torchao's pt2e flow, and its INT8 export.

The maintained path on torch 2.13: ``torch.ao.quantization``'s eager QAT is deprecated in
favour of torchao, whose pt2e flow captures the student with ``torch.export``, inserts
fake quantization where :class:`X86InductorQuantizer` (``is_qat=True``) annotates it
(INT8 symmetric per-channel weights, UINT8 affine activations, moving-average observers),
and converts the trained graph to quantize/dequantize ops.

Steps, in the fine-tuning loop of :func:`.finetune.fine_tune`:

1. At the first step whose epoch reaches ``qat.start_epoch``, :func:`fold_batchnorm`
   folds every BatchNorm that follows a convolution into it, in place, with its running
   statistics: :math:`W' = W\\,\\gamma/\\sqrt{\\sigma^2+\\epsilon}`,
   :math:`b' = \\beta + (b - \\mu)\\,\\gamma/\\sqrt{\\sigma^2+\\epsilon}` (zeros stay zeros and
   the weight tensors stay the same ``Parameter`` objects, so pruning masks keep
   applying). The BN statistics are frozen from then on, as they are in the deployed
   graph. Why fold first: torchao's own QAT conv-BN fusion makes ``convert_pt2e``
   re-trace 96 pattern graphs with ``torch.export`` (measured 60-100 s per conversion on
   the shared 2-core machine, 0.4 s without BatchNorms).
2. The folded student is captured (``torch.export``, dynamic batch) and prepared with
   ``prepare_qat_pt2e``; the prepared graph shares the student's parameters, and the
   optimizer is rebuilt over them (momentum restarts).
3. From ``qat.disable_quantization_observer_epoch`` on, observers stop updating the scales.

After training, :class:`QATStudent` holds the fake-quantized graph (what trained; its
forward) and the float student (the same weights without fake quantization, exported
as the FP32 artefact). :func:`export_qat_int8` converts a copy (``convert_pt2e``) and
exports it with ``torch.onnx.export(dynamo=True)`` (onnxscript), a QDQ graph:
``QuantizeLinear``/``DequantizeLinear`` around every Conv and Gemm, INT8 weight
initializers renamed to the torch weight names so that sparsity is measured per layer.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    from collections.abc import Iterator

    from compress_gate.config.torch_backend import QATConfig

__all__ = ["QAT_KEY_VALUE", "FakeQuantization", "QATStudent", "check_qat_installed", "export_qat_int8",
           "fold_batchnorm"]

#: ``compress_gate.quantized`` metadata value of the QAT graph.
QAT_KEY_VALUE = "qat"
#: Largest batch the captured graphs accept (torch.export needs a bound; the ONNX graph has none).
_MAX_BATCH = 1 << 20


def check_qat_installed() -> None:
    """InputError naming the extra when torchao or onnxscript (the dynamo ONNX exporter's) is missing."""
    missing = [package for package in ("torchao", "onnxscript") if importlib.util.find_spec(package) is None]
    if missing:
        raise InputError(f"compression.quantization = qat needs {', '.join(missing)}, which this environment does "
                         "not have (torchao's pt2e QAT, and onnxscript for the ONNX export of its INT8 graph). "
                         "Install the torch backend's extra: `pip install 'compress-gate[torch]'`, or use "
                         "`quantization: static` (post-training).")


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torchao's and the exporter's import-time and progress chatter (CUDA kernels it cannot load here)."""
    loggers = [logging.getLogger(name)
               for name in ("torchao", "torch.onnx", "torch.export", "torch._export", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold each BatchNorm that is the only user of a convolution's output into it, in place; return the count.

    :math:`W' = W\,\gamma/\sqrt{\sigma^2+\epsilon}`, :math:`b' = \beta + (b - \mu)\,\gamma/\sqrt{\sigma^2+\epsilon}`
    with the BatchNorm's running statistics (zeros stay zeros). The convolution keeps its weight ``Parameter``
    (values rewritten) and gets a new bias ``Parameter``; the BatchNorm becomes
    ``nn.Identity``. The model must trace with ``torch.fx``.

    Raises
    ------
    RuntimeFailure
        The model does not trace with ``torch.fx``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as err:  # fx raises many types on untraceable code
        raise RuntimeFailure(f"QAT cannot fold this model's BatchNorms: torch.fx could not trace it "
                             f"({type(err).__name__}: {err}).") from err
    modules = dict(model.named_modules())
    folded = 0
    for node in graph.nodes:
        source = node.args[0] if node.op == "call_module" and node.args else None
        if not (isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm)
                and getattr(source, "op", None) == "call_module"
                and isinstance(modules.get(source.target), nn.modules.conv._ConvNd) and len(source.users) == 1):
            continue
        conv, bn = modules[source.target], modules[node.target]
        weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                            bn.weight, bn.bias)
        with torch.no_grad():
            conv.weight.copy_(weight)
        conv.bias = nn.Parameter(bias.detach().clone())
        parent, _, name = node.target.rpartition(".")
        setattr(modules[parent] if parent else model, name, nn.Identity())
        folded += 1
    return folded


class FakeQuantization:
    """Starts QAT in the training loop at ``config.start_epoch``: folds the BatchNorms, captures the
    student and prepares it with fake quantization (the optimizer is rebuilt over the same
    parameters), and stops the observers from ``disable_quantization_observer_epoch`` on.

    ``input_shape`` is one sample's (C, H, W). ``step(model, epoch)`` is called before each
    training step's forward pass with the epoch reached so far; it returns the module to
    train from then on (``model`` itself until QAT starts, then the fake-quantized graph).
    """

    def __init__(self, config: QATConfig, *, input_shape: tuple[int, ...]) -> None:
        check_qat_installed()
        self.config, self.input_shape = config, tuple(int(s) for s in input_shape)
        self.float_model: nn.Module | None = None
        self.fake_quant: nn.Module | None = None
        self.observing = True

    def step(self, model: nn.Module, epoch: float) -> nn.Module:
        """The module to train at ``epoch`` (see the class docstring)."""
        if self.fake_quant is None and epoch >= self.config.start_epoch:
            self.float_model, self.fake_quant = model, self._prepare(model)
        frozen = self.config.disable_quantization_observer_epoch
        if self.fake_quant is not None and self.observing and frozen is not None and epoch >= frozen:
            self._disable_observers()
        return self.fake_quant if self.fake_quant is not None else model

    def finish(self) -> QATStudent:
        """The trained :class:`QATStudent`, observers disabled, in eval mode.

        Raises
        ------
        RuntimeFailure
            QAT never started (no training step reached ``start_epoch``).
        """
        if self.fake_quant is None or self.float_model is None:
            raise RuntimeFailure(f"QAT never started: no training step reached qat.start_epoch = "
                                 f"{self.config.start_epoch}. Lower it.")
        self._disable_observers()
        student = QATStudent(self.float_model.eval(), self.fake_quant)
        student.eval()
        return student

    def _prepare(self, model: nn.Module) -> nn.Module:
        with _quiet():
            from torchao.quantization.pt2e import allow_exported_model_train_eval
            from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
            from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
                X86InductorQuantizer,
                get_default_x86_inductor_quantization_config,
            )

            fold_batchnorm(model.eval())
            captured = _capture(model.train(), self.input_shape)
            quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=True))
            prepared = prepare_qat_pt2e(captured, quantizer)
        allow_exported_model_train_eval(prepared)  # train()/eval() only switch dropout/BN patterns (none left)
        prepared.train()  # the patched train() returns None, not the module
        return prepared

    def _disable_observers(self) -> None:
        from torchao.quantization.pt2e import disable_observer

        self.fake_quant.apply(disable_observer)  # type: ignore[union-attr]
        self.observing = False


class QATStudent(nn.Module):
    """The QAT student: ``fake_quant`` (torchao's prepared graph, the forward) and ``float_model``.

    ``float_model`` shares ``fake_quant``'s parameters (the trained weights, BatchNorms
    folded) and is kept out of the module tree, so parameters and ``state_dict`` are
    ``fake_quant``'s alone.
    """

    def __init__(self, float_model: nn.Module, fake_quant: nn.Module) -> None:
        super().__init__()
        self.fake_quant = fake_quant
        object.__setattr__(self, "float_model", float_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fake_quant(x)


def export_qat_int8(student: QATStudent, path: str | Path, *, input_shape: tuple[int, ...], task: str,
                    opset: int = 18) -> Path:
    """Convert ``student``'s fake-quantized graph to INT8 and export it as a QDQ scores graph to ``path``.

    Same contract as :func:`.export.export_fp32` (input ``"input"`` with a dynamic batch
    axis, output ``"scores"``, ``compress_gate.task``), with ``compress_gate.quantized =
    "qat"``; each Conv/Gemm's INT8 weight initializer is named after its torch weight
    (``layer1.0.conv1.weight``). ``student`` is not modified. Opset 18: the dynamo exporter's
    lowest. Written atomically.

    Raises
    ------
    RuntimeFailure
        Conversion or export failed (nothing is written).
    """
    import onnx

    from compress_gate._atomic import atomic_path
    from compress_gate.compress.scores import ScoresModel
    from compress_gate.compress.export import INPUT_NAME, OUTPUT_NAME, QUANTIZED_KEY, TASK_KEY, annotate_onnx

    path = Path(path)
    try:
        with _quiet():
            from torchao.quantization.pt2e import allow_exported_model_train_eval
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

            converted = convert_pt2e(copy.deepcopy(student.fake_quant))
            allow_exported_model_train_eval(converted)
            names = _weight_names(converted)
            program = torch.onnx.export(
                ScoresModel(converted, task).eval(), (torch.zeros((2, *input_shape)),), input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], opset_version=opset, dynamo=True, verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=_MAX_BATCH)},))
        proto = program.model_proto
        renames = {f"model.{attr}": torch_name for attr, torch_name in names.items()}
        for initializer in proto.graph.initializer:
            initializer.name = renames.get(initializer.name, initializer.name)
        for node in proto.graph.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
        with atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
            annotate_onnx(tmp, {TASK_KEY: task, QUANTIZED_KEY: QAT_KEY_VALUE})
    except Exception as err:  # torchao and the exporter raise many types; the user needs one message
        raise RuntimeFailure(f"QAT INT8 export to {path} failed ({type(err).__name__}: {err}). Nothing was "
                             "written there.") from err
    return path


def _capture(model: nn.Module, input_shape: tuple[int, ...]) -> torch.fx.GraphModule:
    """``torch.export`` graph of ``model`` with a dynamic batch axis (example batch 2: 1 would specialise)."""
    batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    example = torch.zeros((2, *input_shape), device=next(model.parameters()).device)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()


def _weight_names(converted: torch.fx.GraphModule) -> dict[str, str]:
    """Frozen INT8 weight attribute -> torch weight name, from each conv/linear node's module path."""
    ops = {torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default, torch.ops.aten.linear.default}
    names = {}
    for node in converted.graph.nodes:
        if node.op != "call_function" or node.target not in ops or len(node.args) < 2:
            continue
        dequantize, stack = node.args[1], node.meta.get("nn_module_stack")
        weight = dequantize.args[0] if isinstance(dequantize, torch.fx.Node) and dequantize.args else None
        if isinstance(weight, torch.fx.Node) and weight.op == "get_attr" and stack:
            names[weight.target] = f"{list(stack.values())[-1][0]}.weight"
    return names
