"""The run recipe (``recipe.yaml``): one validated object for ``compress-gate run``.

Sections (every key is documented in ``docs/recipe.md``)::

    seed: 0                      # one seed for data order, training, pruning masks, bootstrap
    output: ../runs/demo         # the run directory (relative to this file)
    model:                       # the dense teacher: a checkpoint, or a training spec
      arch: resnet
      width: 16
      depth: 1
      train: {epochs: 15, lr: 0.05, batch_size: 64}
    data: {kind: demo}           # compress_gate.config.data.DataConfig
    compression:
      backend: sparseml          # COMPRESSION_BACKENDS; absent means sparseml
      recipe: |                  # SparseML's own recipe YAML (or `recipe_path: sparse.yaml`)
        modifiers:
          - !EpochRangeModifier
            start_epoch: 0.0
            end_epoch: 4.0
          - !GMPruningModifier
            ...
      distillation: false
    export: {opset: 13}
    engines: {deployment: onnxruntime, check: [deepsparse]}
    gate: {limits: [...]}        # compress_gate.config.gate.GateConfig
    tracking: {mlflow_uri: ..., register: ...}   # optional: compress_gate.config.tracking.TrackingConfig
    augment: {hflip: true, crop_scale: [0.7, 1.0]}   # training batches only; default none
    device: auto                 # auto | cpu | cuda | cuda:N: torch training and similarity
    amp: bf16                    # bf16 | fp16 autocast in training, CUDA only; default none

:func:`load_run_config` validates the whole file once: every problem is reported with
its key path and a fix (:class:`InputError`, exit 2); relative paths are resolved
against the recipe's directory and must exist.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from compress_gate._paths import require_regular_file
from compress_gate.config._load import read_yaml, validate
from compress_gate.config.audit import AuditConfig, resolve_audit_paths
from compress_gate.config.compression import (COMPRESSION_BACKENDS, CompressionConfig,
                                              SparseMLCompressionConfig, _RecipeLoader, parse_compression_config)
from compress_gate.config.tracking import TrackingConfig
from compress_gate.config.data import DataConfig, parse_data_config
from compress_gate.config.gate import GateConfig, parse_gate_config
from compress_gate.config.model import AugmentConfig, ModelConfig, TrainSpec
from compress_gate.engines import ENGINE_KINDS
from compress_gate.errors import InputError

__all__ = ["EngineKind", "TrainSpec", "AugmentConfig", "ModelConfig", "SparseMLCompressionConfig", "CompressionConfig",
           "COMPRESSION_BACKENDS", "parse_compression_config", "ExportConfig", "BenchmarkConfig",
           "EnginesConfig", "RunConfig", "load_run_config", "recipe_hash"]

#: Engine kinds a recipe may name, a config value (the runtime class is :class:`compress_gate.engines.Engine`):
#: the kinds of the engine registry (:data:`compress_gate.engines.ENGINES`, a module that imports no
#: engine library), so a new engine is one registry entry.
EngineKind = Literal[ENGINE_KINDS]  # type: ignore[valid-type]
_Frozen = ConfigDict(extra="forbid", frozen=True)


class ExportConfig(BaseModel):
    """ONNX export: opset and the parity tolerances (max |score difference| ONNX vs torch).

    Example: ``{opset: 13, parity_atol: 1.0e-4, quantized_parity_atol: 0.05,
    requantized_parity_atol: 0.25, parity_samples: 64}``. ``parity_atol`` applies to FP32
    graphs, ``quantized_parity_atol`` to SparseML's INT8 graph (integer kernels round
    differently from fake quantization), ``requantized_parity_atol`` to ONNX Runtime's QDQ
    graph (ONNX Runtime re-quantizes the float twin with its own calibration, so it is a
    slightly different model; its predictions are what the gate judges). A larger
    difference stops the run (exit 3).
    """

    model_config = _Frozen
    opset: int = Field(13, ge=13, le=17, strict=True)
    parity_atol: float = Field(1e-4, gt=0, le=1, strict=True)
    quantized_parity_atol: float = Field(0.05, gt=0, le=1, strict=True)
    requantized_parity_atol: float = Field(0.25, gt=0, le=1, strict=True)
    parity_samples: int = Field(64, ge=1, le=100_000, strict=True)


class BenchmarkConfig(BaseModel):
    """Latency/throughput benchmark of teacher and student on each engine.

    Example: ``{enabled: true, engines: [onnxruntime, deepsparse], batch_sizes: [1, 32],
    warmup: 5, iterations: 30}``. Engines that are unavailable (no GPU) are skipped with the reason.
    """

    model_config = _Frozen
    enabled: bool = Field(True, strict=True)
    engines: tuple[EngineKind, ...] = ("onnxruntime", "deepsparse")
    batch_sizes: tuple[StrictInt, ...] = Field((1, 32), min_length=1)
    warmup: int = Field(5, ge=0, le=10_000, strict=True)
    iterations: int = Field(30, ge=1, le=100_000, strict=True)

    @model_validator(mode="after")
    def _positive_batches(self) -> BenchmarkConfig:
        if any(b < 1 for b in self.batch_sizes):
            raise ValueError(f"`batch_sizes` = {list(self.batch_sizes)} must all be >= 1")
        return self


class EnginesConfig(BaseModel):
    """Which engine's predictions are judged (``deployment``) and which are checked against it.

    Example: ``{deployment: onnxruntime, check: [deepsparse], batch_size: 32, benchmark: {...}}``.
    """

    model_config = _Frozen
    deployment: EngineKind = "onnxruntime"
    check: tuple[EngineKind, ...] = ("deepsparse",)
    batch_size: int = Field(32, ge=1, le=65536, strict=True)
    benchmark: BenchmarkConfig = BenchmarkConfig()

    @model_validator(mode="after")
    def _check_differs(self) -> EnginesConfig:
        if self.deployment in self.check:
            raise ValueError(f"`check` lists the deployment engine {self.deployment!r}; it lists the "
                             "*other* engines compared with it")
        return self


class RunConfig(BaseModel):
    """A validated run recipe: ``seed``, ``output``, and one model per section (``model``, ``data``,
    ``compression``, ``export``, ``engines``, ``gate``, ``audit``, optional ``tracking`` and ``augment``).

    Frozen, unknown keys forbidden. After :func:`load_run_config`, paths are absolute and ``data.seed`` / ``gate.seed``
    equal the top-level ``seed`` unless the recipe sets them.
    """

    model_config = _Frozen
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True)
    output: Path
    model: ModelConfig
    data: DataConfig
    compression: CompressionConfig
    export: ExportConfig = ExportConfig()
    engines: EnginesConfig = EnginesConfig()
    gate: GateConfig = GateConfig()
    audit: AuditConfig = AuditConfig()
    tracking: TrackingConfig | None = None
    augment: AugmentConfig = AugmentConfig()
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$")
    amp: Literal["bf16", "fp16"] | None = None

    @property
    def cache_dir(self) -> Path:
        """Where trained teachers are cached: ``model.cache_dir``, else ``<output>/../.cache``."""
        return self.model.cache_dir or self.output.parent / ".cache"


def _read_recipe_yaml(path: Path) -> dict[str, Any]:
    return read_yaml(path, what="recipe file", loader=_RecipeLoader,
                     missing_hint=f"Check the path, or run `compress-gate init {path}` to write a starter "
                                  "recipe there.",
                     empty_hint="A recipe is a mapping of sections (seed, output, model, data, compression, "
                                "export, engines, gate); run `compress-gate init` for a starter recipe.")


# --- loading ---------------------------------------------------------------------------------
def _resolve(base: Path, value: Path | None) -> Path | None:
    return None if value is None else (base / value.expanduser()).resolve()


def _require_file(path: Path | None, key: str, source: Path, fix: str, *, directory_ok: bool = False) -> None:
    """``path`` (when set) must exist, and be a regular file (or a directory where ``directory_ok``)."""
    if path is None:
        return
    if not path.exists():
        raise InputError(f"{source}: `{key}` = {str(path)!r} does not exist (relative paths are resolved "
                         f"against the recipe's directory {source.parent}). {fix}")
    if not (directory_ok and path.is_dir()):
        try:
            require_regular_file(path, "file", missing_hint=fix)
        except InputError as err:
            raise InputError(f"{source}: `{key}`: {err}") from err


def _section(raw: dict[str, Any], key: str) -> Any:
    value = raw.get(key)
    return {} if value is None and key in ("export", "engines", "gate", "audit", "augment") else value


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate the run recipe at ``path``; resolve relative paths against its directory.

    Raises
    ------
    InputError
        Missing/malformed file, unknown or missing keys (with the valid keys), wrong
        values, or a file the recipe names (checkpoint, SparseML recipe, data) that is missing.
    """
    source = Path(path).resolve()
    raw = _read_recipe_yaml(source)
    base = source.parent
    for key in ("model", "data", "compression"):
        if key not in raw:
            raise InputError(f"{source}: the `{key}` section is required but missing. Run `compress-gate "
                             "init` for a starter recipe with every section, or see docs/recipe.md.")
    data = parse_data_config(raw["data"], source=source, prefix=("data",))
    data_paths = {k: _resolve(base, getattr(data, k)) for k in ("root", "path") if hasattr(data, k)}
    for key, value in data_paths.items():
        _require_file(value, f"data.{key}", source, "Fix the path to the dataset.", directory_ok=key == "root")
    gate = parse_gate_config(_section(raw, "gate"), source=source, prefix=("gate",))
    compression = parse_compression_config(raw["compression"], source=source, prefix=("compression",))
    config = validate(RunConfig, {**raw, "data": data.model_copy(update=data_paths), "gate": gate,
                                  "compression": compression,
                                  "export": _section(raw, "export"), "engines": _section(raw, "engines"),
                                  "audit": _section(raw, "audit"), "augment": _section(raw, "augment")},
                      source=source)
    model = config.model.model_copy(update={"checkpoint": _resolve(base, config.model.checkpoint),
                                            "cache_dir": _resolve(base, config.model.cache_dir),
                                            "factory": _resolve_factory_file(config.model.factory, base, source)})
    _require_file(model.checkpoint, "model.checkpoint", source,
                  "Point it at a state_dict saved with torch.save, or replace it with `train: {epochs: 6}`.")
    data = _data_at_model_size(config.data, model.input_size, source)
    if config.amp is not None and config.device == "cpu":
        raise InputError(f"{source}: `amp` = {config.amp!r} needs a CUDA device, but `device` is 'cpu'. Remove "
                         "`amp`, or set `device: cuda` (or `auto`) and run where a GPU is present.")
    compression = config.compression.resolved(base, source)
    return config.model_copy(update={"output": _resolve(base, config.output), "model": model,
                                     "compression": compression, "data": _inherit_seed(data, config.seed),
                                     "gate": _inherit_seed(config.gate, config.seed),
                                     "audit": resolve_audit_paths(config.audit, base)})


def _resolve_factory_file(factory: str | None, base: Path, source: Path) -> str | None:
    """``"path/net.py:build"`` with the path made absolute (against the recipe's directory) and
    required to exist; a ``"package.module:function"`` factory is returned as written."""
    target, sep, function = (factory or "").rpartition(":")
    if not sep or not (target.endswith(".py") or "/" in target or "\\" in target):
        return factory
    path = _resolve(base, Path(target))
    _require_file(path, "model.factory", source, "Point it at the Python file that defines the network, "
                  "e.g. `factory: \"models/net.py:build\"`.")
    return f"{path}:{function}"


def _data_at_model_size(data: DataConfig, input_size: int | None, source: Path) -> DataConfig:
    """The data section with ``image_size`` = ``model.input_size`` where the source loads images at a size.

    A data section that sets a different ``image_size`` is an InputError; a source of fixed arrays
    (``npz``) keeps its own size (checked against ``input_size`` when the teacher is built).
    """
    if input_size is None or "image_size" not in type(data).model_fields:
        return data
    if "image_size" in data.model_fields_set and data.image_size != input_size:  # type: ignore[union-attr]
        raise InputError(f"{source}: `model.input_size` = {input_size} but `data.image_size` = "
                         f"{data.image_size}; the images are loaded at the model's input size. Delete "  # type: ignore[union-attr]
                         "`data.image_size` (or set both to the same value).")
    return data.model_copy(update={"image_size": input_size})


def _inherit_seed(section: Any, seed: int) -> Any:
    """``section`` with the recipe's top-level ``seed`` unless the section sets its own."""
    if "seed" in type(section).model_fields and "seed" not in section.model_fields_set:
        return section.model_copy(update={"seed": seed})
    return section


def recipe_hash(path: str | Path, config: RunConfig) -> str:
    """SHA-256 identifying a recipe: of the recipe file's bytes, then of each file it points at.

    .. math:: h = \\mathrm{sha256}(\\mathrm{bytes(recipe)} \\| \\mathrm{sha256(sparseml\\_recipe)}
              \\| \\mathrm{sha256(checkpoint)} \\| \\mathrm{sha256(factory\\ file)})

    (absent files contribute nothing; a backend without a ``recipe_path`` links no file). Paths themselves are not hashed, so the same
    recipe on another machine or in another folder has the same hash.
    """
    digest = hashlib.sha256(Path(path).read_bytes())
    target, _, _ = (config.model.factory or "").rpartition(":")
    factory_file = Path(target) if target.endswith(".py") and Path(target).is_file() else None
    for linked in (getattr(config.compression, "recipe_path", None), config.model.checkpoint, factory_file):
        if linked is not None:
            digest.update(hashlib.sha256(Path(linked).read_bytes()).digest())
    return digest.hexdigest()
