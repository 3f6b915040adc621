"""The ``compression:`` section: one model per compression backend, chosen by ``backend``.

:data:`COMPRESSION_BACKENDS` is the config side of the backend registry
(:data:`compress_gate.config.backends.BACKENDS`: one entry per backend names its config model
and its code); :func:`parse_compression_config` validates a section into the model its
``backend`` names.
The SparseML backend's model lives here, with the YAML loader and dumper that keep SparseML's
``!Modifier`` tags (a recipe may write its SparseML recipe as a tagged mapping); the torch
backend's in :mod:`compress_gate.config.torch_backend`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from compress_gate.config._load import StrictLoader, validate
from compress_gate.config.backends import COMPRESSION_BACKENDS
from compress_gate.config.torch_backend import TorchCompressionConfig
from compress_gate.errors import InputError

__all__ = ["SparseMLCompressionConfig", "CompressionConfig", "COMPRESSION_BACKENDS", "DEFAULT_BACKEND",
           "parse_compression_config"]

_Frozen = ConfigDict(extra="forbid", frozen=True)


class _Tagged:
    """A YAML node with a SparseML tag (``!GMPruningModifier``), kept to be re-emitted in block style."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _RecipeLoader(StrictLoader):
    """The strict loader (duplicate keys refused) that keeps ``!Tag`` nodes (SparseML modifiers) as :class:`_Tagged`."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tagged:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return _Tagged("!" + suffix, value)


_RecipeLoader.add_multi_constructor("!", _construct_tagged)


class _RecipeDumper(yaml.SafeDumper):
    """SafeDumper that writes :class:`_Tagged` back with its tag."""


def _represent_tagged(dumper: yaml.SafeDumper, node: _Tagged) -> yaml.Node:
    if isinstance(node.value, dict):
        return dumper.represent_mapping(node.tag, node.value)
    if isinstance(node.value, list):
        return dumper.represent_sequence(node.tag, node.value)
    return dumper.represent_scalar(node.tag, str(node.value))


_RecipeDumper.add_representer(_Tagged, _represent_tagged)


class SparseMLCompressionConfig(BaseModel):
    """``backend: sparseml``: the SparseML recipe that prunes/quantizes the student, and whether to distil.

    ``recipe`` is SparseML's own YAML, as a block string (``recipe: |``) or as a tagged
    mapping; ``recipe_path`` names a SparseML recipe file instead. Exactly one of the two.
    ``distillation: true`` hands the dense teacher to the recipe's ``!DistillationModifier``
    (which sets hardness and temperature); the recipe must have one, and a recipe with
    one needs ``distillation: true``. ``lr``, ``optimizer`` and ``batch_size`` drive the
    training loop that steps the schedule (the recipe's LR modifiers, if any, override ``lr``).
    """

    model_config = _Frozen
    backend: Literal["sparseml"] = "sparseml"
    recipe: str | None = None
    recipe_path: Path | None = None
    distillation: bool = Field(False, strict=True)
    lr: float = Field(0.01, gt=0, le=10, strict=True)
    optimizer: Literal["sgd", "adam"] = "sgd"
    batch_size: int = Field(64, ge=1, le=65536, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _mapping_to_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("recipe"), dict):
            data = {**data, "recipe": yaml.dump(data["recipe"], Dumper=_RecipeDumper, sort_keys=False)}
        return data

    @model_validator(mode="after")
    def _one_recipe(self) -> SparseMLCompressionConfig:
        if (self.recipe is None) == (self.recipe_path is None):
            raise ValueError("give exactly one of `recipe` (SparseML recipe YAML inline) or `recipe_path` "
                             "(a SparseML recipe file, e.g. ../recipes/sparseml/gmp90_qat.yaml)")
        if self.recipe is not None and "Modifier" not in self.recipe:
            raise ValueError("`recipe` holds no SparseML modifier (e.g. `!GMPruningModifier`); write "
                             "SparseML's recipe YAML under `recipe: |`")
        return self

    @property
    def source(self) -> str | Path:
        """The recipe this section names: the inline YAML text, else the recipe file's path."""
        return self.recipe if self.recipe is not None else self.recipe_path  # type: ignore[return-value]

    def resolved(self, base: Path, source: Path) -> SparseMLCompressionConfig:
        """``recipe_path`` made absolute against the recipe's directory ``base`` and required to exist;
        the SparseML text checked (:func:`_check_sparseml_text`)."""
        from compress_gate.config.run import _require_file, _resolve

        compression = self.model_copy(update={"recipe_path": _resolve(base, self.recipe_path)})
        _require_file(compression.recipe_path, "compression.recipe_path", source,
                      "Point it at a SparseML recipe, e.g. recipes/sparseml/gmp90_qat.yaml.")
        _check_sparseml_text(compression, source)
        return compression


def _registered_compression(value: Any) -> Any:
    """The ``compression`` field: an instance of a registered backend's config model, or a mapping
    validated by the model its ``backend`` names (:data:`COMPRESSION_BACKENDS`)."""
    if isinstance(value, tuple(COMPRESSION_BACKENDS.values())):
        return value
    backend = value.get("backend", DEFAULT_BACKEND) if isinstance(value, dict) else None
    if backend not in COMPRESSION_BACKENDS:
        raise ValueError("`compression` must be a mapping whose `backend` is one of "
                         f"{', '.join(COMPRESSION_BACKENDS)}")
    return COMPRESSION_BACKENDS[backend].model_validate({**value, "backend": backend})


if TYPE_CHECKING:
    CompressionConfig = Union[SparseMLCompressionConfig, TorchCompressionConfig]
else:   # any registered backend's model, so a new backend is a registry entry
    CompressionConfig = Annotated[Any, PlainValidator(_registered_compression)]
"""The ``compression:`` section: one backend's settings, chosen by ``backend``."""

#: A ``compression:`` section without ``backend`` is a SparseML recipe: every recipe written
#: before the backend seam keeps its meaning.
DEFAULT_BACKEND = "sparseml"


def parse_compression_config(raw: Any, *, source: str | Path,
                             prefix: tuple[Any, ...] = ("compression",)) -> CompressionConfig:
    """Validate a ``compression:`` mapping into the config model its ``backend`` names.

    An absent ``backend`` means :data:`DEFAULT_BACKEND` (``sparseml``). Key paths in messages
    are as written in YAML (``compression.lr``), with the valid keys of that backend.

    Raises
    ------
    InputError
        Not a mapping, an unknown ``backend``, or a key invalid for that backend.
    """
    where = ".".join(str(p) for p in prefix) or "compression"
    backends = ", ".join(COMPRESSION_BACKENDS)
    if not isinstance(raw, dict):
        raise InputError(f"{source}: `{where}` must be a mapping with a `backend` ({backends}), got {raw!r}. "
                         f"Write e.g. `{where}: {{backend: sparseml, recipe_path: sparse.yaml}}`.")
    backend = raw.get("backend", DEFAULT_BACKEND)
    if backend not in COMPRESSION_BACKENDS:
        raise InputError(f"{source}: `{where}.backend` = {backend!r} is not a compression backend; it must be "
                         f"one of {backends} (absent means {DEFAULT_BACKEND}). Set e.g. `backend: sparseml`.")
    return validate(COMPRESSION_BACKENDS[backend], {**raw, "backend": backend},  # type: ignore[return-value]
                    source=source, prefix=prefix)


_DISTILLATION_TAG = re.compile(r"^[\s-]*!DistillationModifier\b", re.MULTILINE)
_FLOW_MODIFIER = re.compile(r"!(\w+Modifier)\s*\{")


def _check_sparseml_text(compression: SparseMLCompressionConfig, source: Path) -> None:
    """Checks SparseML's loader would fail on obscurely: flow-style modifiers, and ``distillation``
    disagreeing with whether the recipe has a DistillationModifier."""
    path = compression.recipe_path
    key = "compression.recipe" if path is None else "compression.recipe_path"
    try:
        text = compression.recipe if path is None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{source}: `{key}` = {str(path)!r} cannot be read ({err}).") from err
    text = text or ""
    try:
        yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source}: the SparseML recipe in `{key}` is not valid YAML{where}: "
                         f"{getattr(err, 'problem', None) or err}. Fix it there (a repeated key would "
                         "silently replace the first copy).") from err
    flow = _FLOW_MODIFIER.search(text)
    if flow:
        raise InputError(f"{source}: `{key}` writes `!{flow.group(1)} {{...}}` in flow style; SparseML 1.8 reads "
                         "modifiers in block style only. Write the tag on its own line and each setting below "
                         f"it, e.g. `- !{flow.group(1)}` then `    start_epoch: 0.0`.")
    has_modifier = bool(_DISTILLATION_TAG.search(text))
    if compression.distillation and not has_modifier:
        raise InputError(f"{source}: `compression.distillation` is true but the SparseML recipe has no "
                         "`!DistillationModifier`, so the teacher would be ignored. Add one (with start_epoch, "
                         "hardness and temperature) or set `distillation: false`.")
    if has_modifier and not compression.distillation:
        raise InputError(f"{source}: the SparseML recipe has a `!DistillationModifier` but "
                         "`compression.distillation` is false. Set `distillation: true` to distil from the "
                         "dense teacher, or remove the modifier.")
