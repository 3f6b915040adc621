"""Recipe-driven compression: a SparseML recipe's schedule run over a training loader.

SparseML owns the algorithms (``GMPruningModifier``, ``QuantizationModifier``,
``DistillationModifier``, ...); this module loads the recipe, hands the schedule
to :func:`compress_gate.models.train_model`, and measures what it achieved.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress_gate.compress.backend import CompressionResult
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.models.device import Placement
    from compress_gate.models.training import ProgressCallback, Task

__all__ = ["check_recipe", "compress_model", "load_recipe"]


def load_recipe(recipe: str | Path) -> str:
    """The YAML text of a SparseML recipe given as a path or as the YAML text itself.

    A ``Path``, or a ``str`` without a newline, is a file path; a ``str`` with a
    newline is the recipe text. SparseZoo stubs (``zoo:...``) are refused: the
    tool never touches the network.

    Raises
    ------
    InputError
        A missing or unreadable file, or a ``zoo:`` stub.
    """
    if isinstance(recipe, str) and "\n" in recipe:
        return recipe
    text = str(recipe)
    if text.startswith("zoo:"):
        raise InputError(f"recipe {text!r} is a SparseZoo stub; compress-gate never downloads. Give the path "
                         "of a local recipe YAML, e.g. recipes/sparseml/gmp90.yaml.")
    path = Path(text)
    if not path.is_file():
        raise InputError(f"{path}: no such SparseML recipe file. Check the path, or start from one of "
                         "recipes/sparseml/*.yaml.")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the recipe ({err}).") from err


def compress_model(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    recipe: str | Path,
    *,
    task: Task,
    teacher: torch.nn.Module | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    recipe_variables: Mapping[str, Any] | None = None,
    lr: float = 0.01,
    optimizer: str = "sgd",
    placement: Placement | None = None,
) -> CompressionResult:
    """Run a SparseML recipe's schedule on a copy of ``model`` and report what it achieved.

    Steps: load the recipe (``recipe_variables`` override its top-level
    variables, e.g. ``{"num_epochs": 4}``) into a ``ScheduledModifierManager``;
    train a deep copy of ``model`` for the manager's ``max_epochs`` with
    :func:`~compress_gate.models.train_model` (which steps and finalizes the
    manager; ``teacher`` feeds a ``DistillationModifier`` and is unused
    otherwise); freeze QAT observers and BN statistics; measure sparsity.
    ``model`` and ``teacher`` are not modified. ``placement`` (default the CPU): where the
    copies train (:func:`~compress_gate.models.train_model`); the student stays there.

    Sparsity is measured on the weights the recipe's pruning modifiers target
    (resolved with SparseML's own parameter matching on the untrained copy), as
    the share of exact zeros, pooled by size for ``overall_sparsity``.

    Raises
    ------
    InputError
        The recipe is missing, malformed, names an unknown modifier or key, has
        a variable override it does not define, targets no parameter of this
        model, or needs a teacher that was not given.
    RuntimeFailure
        Training diverged.
    """
    from compress_gate.compress.export import freeze_quantization, is_quantized_model
    from compress_gate.compress.sparsity import per_weight_sparsity, pooled_sparsity, zero_count
    from compress_gate.models.training import has_distillation_modifier, train_model

    text, source, manager = _checked_manager(recipe, recipe_variables)
    student = copy.deepcopy(model)
    targets = _pruning_targets(manager, student, source)
    epochs = float(manager.max_epochs)
    distilled = has_distillation_modifier(manager)
    frozen_teacher = None
    if teacher is not None and distilled:
        frozen_teacher = copy.deepcopy(teacher).to(placement.device if placement else "cpu").eval()
        for parameter in frozen_teacher.parameters():
            parameter.requires_grad_(False)
    train_model(student, loader, task=task, epochs=epochs, lr=lr, seed=seed,
                optimizer=optimizer,  # type: ignore[arg-type]
                manager=manager, teacher=frozen_teacher, progress=progress, placement=placement)
    freeze_quantization(student.eval())

    counts = {name: zero_count(p) for name, (p, _) in targets.items()}
    total = sum(size for _, size in counts.values())
    target = sum(goal * p.numel() for p, goal in targets.values()) / total if total else math.nan
    return CompressionResult(model=student, sparsity=per_weight_sparsity(counts),
                             overall_sparsity=pooled_sparsity(counts.values()), target_sparsity=target,
                             quantized=is_quantized_model(student), distilled=distilled, epochs=epochs,
                             recipe=text)


def check_recipe(recipe: str | Path, recipe_variables: Mapping[str, Any] | None = None) -> None:
    """Load the SparseML recipe as :func:`compress_model` will, without a model or data.

    Runs in seconds (SparseML's import dominates), so ``compress-gate run`` refuses a
    typo in a modifier name, key or value, or a schedule of no length, before any data is
    loaded or any model trained. Which parameters the pruning patterns match needs the
    model and is checked when compression starts.

    Raises
    ------
    InputError
        As :func:`compress_model` for everything but the parameter patterns.
    """
    _checked_manager(recipe, recipe_variables)


def _checked_manager(recipe: str | Path, variables: Mapping[str, Any] | None) -> tuple[str, str, Any]:
    """(text, source name, SparseML manager) of a recipe whose schedule has a length."""
    from compress_gate.compress.compat import apply_compat

    apply_compat()
    text = load_recipe(recipe)
    source = "recipe text" if isinstance(recipe, str) and "\n" in recipe else str(recipe)
    manager = _load_manager(text, variables, source)
    epochs = float(manager.max_epochs)
    if not epochs > 0:
        raise InputError(f"{source}: the recipe's schedule has no length (max epoch {epochs}); add an "
                         "EpochRangeModifier with end_epoch: eval(num_epochs).")
    return text, source, manager


def _load_manager(text: str, variables: Mapping[str, Any] | None, source: str) -> Any:
    from sparseml.pytorch.optim import ScheduledModifierManager

    try:
        return ScheduledModifierManager.from_yaml(text, recipe_variables=dict(variables or {}))
    except Exception as err:  # yaml, TypeError (unknown key), ValueError (bad value / variable)
        detail = " ".join(str(err).split())
        raise InputError(f"{source}: SparseML cannot load the recipe ({type(err).__name__}: {detail}). Check "
                         "the modifier names, their keys and values against SparseML 1.8's recipe syntax, and "
                         "that every overridden variable is defined at the top of the recipe.") from err


def _pruning_targets(manager: Any, model: torch.nn.Module, source: str) -> dict[str, tuple[Any, float]]:
    """Parameter name -> (parameter, final sparsity) for every weight a pruning modifier targets.

    Uses the modifier's own matching (SparseML 1.8 ``_create_named_layers_and_params``),
    so ``__ALL_PRUNABLE__``, regexes and per-sparsity dicts resolve exactly as in training.
    """
    from sparseml.pytorch.sparsification.pruning.modifier_pruning_base import BasePruningModifier

    targets: dict[str, tuple[Any, float]] = {}
    for modifier in manager.iter_modifiers():
        if not isinstance(modifier, BasePruningModifier):
            continue
        try:
            found = modifier._create_named_layers_and_params(model)
        except Exception as err:
            detail = " ".join(str(err).split())
            raise InputError(f"{source}: {type(modifier).__name__} params {modifier.params!r} has a pattern that "
                             f"matches no parameter of this model ({detail}). Fix the pattern: parameter names "
                             "look like 'layer1.0.conv1.weight'.") from err
        goals = getattr(modifier, "_final_sparsity", None)
        for index, item in enumerate(found):
            goal = goals[index] if isinstance(goals, list) else goals
            name = f"{item.layer_name}.{item.param_name}"
            targets[name] = (item.param, float(goal) if goal is not None else math.nan)
    return targets
