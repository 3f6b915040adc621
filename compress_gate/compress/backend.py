"""The compression-backend seam: one protocol, one registry, lazy imports.

A backend compresses a dense torch teacher into a student and exports the ONNX
artefact each engine runs. ``compression.backend`` in the run recipe names it; the
pipeline only ever talks to the :class:`Compressor` that :func:`get_compressor` returns.

==========  ==================================================  =====================
backend     what                                                extra (environment)
==========  ==================================================  =====================
sparseml    SparseML 1.8 recipes (GMP, QAT, distillation);      ``[sparseml]``
            INT8 graphs for DeepSparse and ONNX Runtime         (Python 3.11)
torch       GMP (unstructured, N:M), Torch-Pruning channels,    ``[torch]``
            INT8 (dynamic, static, QAT with torchao), KD        (Python 3.11, numpy 2)
==========  ==================================================  =====================

Adding a backend is its module(s) plus one entry in the registry,
:data:`compress_gate.config.backends.BACKENDS` (re-exported here), which names its config model
and its compressor factory by import path. Importing this module imports
neither torch nor any backend package: :func:`get_compressor` checks that the
backend's packages are installed (else :class:`InputError` naming the extra, exit 2)
and only then imports the backend's module (which itself imports them only inside
:meth:`Compressor.compress` and :meth:`Compressor.export`).

Everything the pipeline and the sweep ask of a backend is on :class:`Compressor`: the
checks before any work (:meth:`~Compressor.check_recipe`, :meth:`~Compressor.check_students`),
the files it adds to a run directory (:meth:`~Compressor.run_files`), a student's
``compression:`` section at another target sparsity or mask
(:meth:`~Compressor.student_compression`), whether its training batches carry the identity
groups (:attr:`~Compressor.needs_groups`), and the work itself. No module outside a backend
looks at that backend's config type.

Export contract: :meth:`Compressor.export` writes its artefacts into ``directory``,
checks each one's parity against the torch student (a difference over the
tolerance raises :class:`RuntimeFailure`), records what it measured with
:func:`write_parity` and returns engine kind -> artefact. An engine kind missing
from the mapping runs the ``onnxruntime`` artefact, which every backend returns.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from compress_gate.config.backends import BACKENDS, Backend
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import numpy as np

    from compress_gate.config.run import ExportConfig

__all__ = ["BACKENDS", "PARITY_FILE", "Backend", "CompressionResult", "Compressor", "check_backend_installed",
           "get_compressor", "read_parity", "write_parity"]

#: File in the export directory where a backend records the parity of each artefact:
#: ``{file name: {"max_score_difference", "tolerance", "reference"}}``.
PARITY_FILE = "parity.json"


@dataclass(frozen=True)
class CompressionResult:
    """What :meth:`Compressor.compress` produced (every backend returns one).

    Attributes
    ----------
    model : the compressed student (eval mode; QAT observers and BN statistics frozen).
    sparsity : achieved sparsity (share of exact zeros) of each weight the backend's
        pruning targets, keyed by parameter name at the start of training
        (``"layer1.0.conv1.weight"``). Empty when nothing is pruned.
    overall_sparsity : pooled over those weights, Σ zeros / Σ entries; ``nan`` when
        nothing is pruned.
    target_sparsity : the final sparsity asked for, pooled the same way (each weight's
        target weighted by its size); ``nan`` when nothing is pruned.
    quantized : quantization-aware training was applied (the model holds fake-quantize modules).
    distilled : the student was distilled from the teacher.
    epochs : epochs trained (the schedule's length).
    recipe : the SparseML recipe text as loaded (before variable overrides), for hashing; ``""``
        for a backend without one.
    """

    model: Any
    sparsity: dict[str, float]
    overall_sparsity: float
    target_sparsity: float
    quantized: bool
    distilled: bool
    epochs: float
    recipe: str = field(repr=False)


@runtime_checkable
class Compressor(Protocol):
    """What the pipeline and the sweep need from a compression backend.

    The first four members are asked before any work and must import neither torch nor
    the backend's packages (a sweep's driver asks them of a backend it may not have
    installed: ``get_compressor(..., installed=False)``).
    """

    name: str

    @property
    def needs_groups(self) -> bool:
        """Whether :meth:`compress` needs ``(inputs, targets, groups)`` batches (the joint identity
        groups, e.g. FairGRAPE's saliency) instead of ``(inputs, targets)``."""
        ...

    def check_recipe(self) -> None:
        """Refuse, before any data is loaded or any model trained, a recipe section this backend
        cannot run (:class:`InputError` naming the key); nothing to check is a no-op."""
        ...

    def run_files(self) -> dict[str, str]:
        """File name -> text the backend adds to a run directory beside ``recipe.yaml`` (e.g. the
        SparseML recipe it runs); ``{}`` when none."""
        ...

    def check_students(self, sparsities: Sequence[float], masks: Sequence[str], *, source: str | Path) -> None:
        """Refuse, before any work, sweep students this backend cannot make: target ``sparsities``
        and N:M ``masks`` (``"2:4"``) asked of the recipe at ``source``."""
        ...

    def student_compression(self, sparsity: float, *, mask: str | None = None,
                            source: str | Path) -> dict[str, Any]:
        """This ``compression:`` section (YAML-ready, ``None`` values left out) with another target
        ``sparsity`` (and N:M ``mask``): a sweep student's. :class:`InputError` when the section
        cannot take it."""
        ...

    def compress(self, teacher: Any, loader: Iterable[Any], *, task: str, seed: int,
                 progress: Callable[..., None] | None = None, checkpoint: Any = None,
                 placement: Any = None) -> CompressionResult:
        """Compress a copy of the torch ``teacher`` on ``loader`` ((inputs, targets) batches).

        ``teacher`` is not modified; it is also the distillation source when the
        backend's config asks for distillation. ``checkpoint``
        (:class:`compress_gate.models.checkpoint.EpochCheckpoint`) is where a backend that can
        resume saves its training state per epoch and finds it again; one that cannot ignores it
        (training starts from its first epoch). ``placement``
        (:class:`compress_gate.models.device.Placement`, default the CPU) is where the student
        trains; the returned model may stay on that device.
        """
        ...

    def export(self, result: CompressionResult, directory: Path, *, sample: np.ndarray, task: str,
               calib: np.ndarray | None) -> dict[str, Path]:
        """Write the student's artefacts into ``directory``; return engine kind -> artefact.

        ``sample`` (N, C, H, W) float32 are the parity inputs; ``calib`` the calibration
        inputs of a post-training quantizer: an array, or :class:`~compress_gate.data.ImageFiles`
        that the quantizer decodes batch by batch (``None`` when the data has none). Parity is
        checked (:class:`RuntimeFailure` past the tolerance) and recorded with
        :func:`write_parity`. The mapping has at least ``"onnxruntime"``.
        """
        ...


def check_backend_installed(name: str, *, where: str = "compression.backend") -> Backend:
    """The registry entry of backend ``name``, after checking its packages are importable.

    Checks with :func:`importlib.util.find_spec`, which imports nothing.

    Raises
    ------
    InputError
        ``name`` is not a known backend, or one of its packages is not installed (the
        message names the extra to install).
    """
    if name not in BACKENDS:
        raise InputError(f"`{where}` = {name!r} is not a compression backend; use one of "
                         f"{', '.join(BACKENDS)}.")
    backend = BACKENDS[name]
    missing = [package for package in backend.requires if importlib.util.find_spec(package) is None]
    make_hint = f" (in a checkout: `make {backend.make_target}`)" if backend.make_target else ""
    if missing:
        raise InputError(f"`{where}` = {name!r} needs {', '.join(missing)}, which this environment does not "
                         f"have: compress-gate's core installs only the gate, predict, bench and reports. "
                         f"Install the backend's extra in its own environment (Python {backend.python}): "
                         f"`pip install 'compress-gate[{backend.extra}]'`{make_hint}, "
                         "then rerun.")
    return backend


def get_compressor(compression_config: Any, export_config: ExportConfig | None = None, *,
                   installed: bool = True) -> Compressor:
    """The :class:`Compressor` for ``compression_config`` (its ``backend`` picks the registry entry).

    ``export_config`` (opset, parity tolerances) defaults to ``ExportConfig()``. With
    ``installed=False`` the backend's packages are not required: for the checks and the
    student sections asked before any work, which import none of them.

    Raises
    ------
    InputError
        Unknown backend, or (``installed``) its packages are not installed (naming the extra).
    """
    from compress_gate.config.run import ExportConfig

    if installed:
        backend = check_backend_installed(compression_config.backend)
    elif compression_config.backend in BACKENDS:
        backend = BACKENDS[compression_config.backend]
    else:
        backend = check_backend_installed(compression_config.backend)   # the unknown-backend message
    factory = getattr(importlib.import_module(backend.module), backend.factory)
    return factory(compression_config, export_config or ExportConfig())


def write_parity(directory: Path, parity: dict[str, dict[str, Any]]) -> Path:
    """Record ``parity`` (file name -> max_score_difference, tolerance, reference) in ``directory``."""
    from compress_gate._atomic import write_json

    path = Path(directory) / PARITY_FILE
    write_json(path, parity)
    return path


def read_parity(directory: Path, *, backend: str) -> dict[str, dict[str, Any]]:
    """The parity a backend recorded with :func:`write_parity`.

    Raises
    ------
    RuntimeFailure
        The backend recorded none: its artefacts' parity is unknown, so they are not judged.
    """
    path = Path(directory) / PARITY_FILE
    if not path.is_file():
        raise RuntimeFailure(f"{path}: the {backend!r} backend exported without recording the parity of its "
                             "artefacts; an artefact whose agreement with the torch student is unknown is not "
                             "judged. This is a bug in the backend's export.")
    return json.loads(path.read_text(encoding="utf-8"))
