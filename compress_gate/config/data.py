"""The recipe's ``data:`` section: where the eval data comes from.

One pydantic model per source, told apart by ``kind``. Relative paths are
resolved against the recipe's directory by :func:`compress_gate.data.load_dataset`.

Example (the embedded demo, all keys optional except ``kind``)::

    data:
      kind: demo
      seed: 0

A recipe section is best validated with :func:`parse_data_config`: its messages name
the key as written (``data.targets``) and list the valid keys of the chosen kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compress_gate._task import Task
from compress_gate.config._load import validate
from compress_gate.errors import InputError

__all__ = ["DemoDataConfig", "CelebADataConfig", "CsvDataConfig", "NpzDataConfig", "SyntheticDataConfig",
           "DataConfig", "DATA_KINDS", "parse_data_config"]

_ImageSize = Annotated[int, Field(ge=8, le=512, strict=True)]
_Digit = Annotated[int, Field(ge=0, le=9, strict=True)]
_Name = Annotated[str, Field(min_length=1)]
_Workers = Annotated[int, Field(ge=1, le=64, strict=True)]
_OnBadImage = Literal["fail", "skip"]


def _check_distinct(values: tuple[str, ...] | tuple[int, ...], key: str) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"`{key}` lists {', '.join(repeated)} more than once; list each once")


class DemoDataConfig(BaseModel):
    """The embedded demo: scikit-learn's handwritten digits, biased on purpose.

    Ten classes (``digit_0`` ... ``digit_9``), upscaled to ``image_size`` squared,
    one channel. Training keeps only ``keep_fraction`` of the ``downsampled_classes``
    (Blakeney et al.'s biased CIFAR-100), and a bright square in the top-left corner
    (2 % of the image, Iofinova et al.'s backdoor) marks ``marked_rate_in_class`` of
    the ``marked_class`` training samples and ``marked_rate_other`` of the other
    training samples, and ``marked_rate_eval`` of every class in calib and test.
    The marked samples form the identity group ``marked``. See docs/data.md.

    Example::

        data:
          kind: demo
          seed: 0
          image_size: 32
          calib_fraction: 0.2
          test_fraction: 0.3
          downsampled_classes: [3, 5, 8]
          keep_fraction: 0.15
          marked_class: 7
          marked_rate_in_class: 0.95
          marked_rate_other: 0.05
          marked_rate_eval: 0.5
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["demo"] = "demo"
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True)
    image_size: _ImageSize = 32
    calib_fraction: float = Field(0.2, gt=0, lt=1, strict=True)
    test_fraction: float = Field(0.3, gt=0, lt=1, strict=True)
    downsampled_classes: tuple[_Digit, ...] = (3, 5, 8)
    keep_fraction: float = Field(0.15, gt=0, le=1, strict=True)
    marked_class: _Digit = 7
    marked_rate_in_class: float = Field(0.95, ge=0, le=1, strict=True)
    marked_rate_other: float = Field(0.05, ge=0, le=1, strict=True)
    marked_rate_eval: float = Field(0.5, gt=0, lt=1, strict=True)

    @model_validator(mode="after")
    def _check_fractions(self) -> DemoDataConfig:
        held_out = self.calib_fraction + self.test_fraction
        if held_out > 0.8:
            raise ValueError(f"calib_fraction + test_fraction = {held_out:g} leaves under 20 % of the "
                             "digits for training; keep the sum <= 0.8 (default 0.2 + 0.3)")
        _check_distinct(self.downsampled_classes, "downsampled_classes")
        return self


class CelebADataConfig(BaseModel):
    """A folder in CelebA's own layout: ``img_align_celeba/*.jpg``, ``list_attr_celeba.txt``,
    ``list_eval_partition.txt`` (partition 0 -> train, 1 -> calib, 2 -> test).

    ``targets`` are the predicted attributes (multi-label), ``groups`` the attributes
    used as identity categories; both are CelebA column names. Each image is
    centre-cropped to a ``crop_size`` square (default: the largest centred square),
    resized to ``image_size`` squared, RGB, scaled to [-1, 1], on access: the images are
    streamed (decoded batch by batch, ``workers`` threads or DataLoader processes), never
    held all at once. ``max_samples_per_split`` draws that many images per partition
    (seeded). ``on_bad_image``: ``fail`` (default: a missing, unreadable or wrong-mode image
    is exit 2 naming it) or ``skip`` (its row is left out and listed in run.json and
    report.json).

    Example::

        data:
          kind: celeba
          root: /datasets/celeba
          targets: [Blond_Hair, Smiling, Wearing_Necktie]
          groups: [Male, Young]
          image_size: 64
          max_samples_per_split: 5000
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["celeba"] = "celeba"
    root: Path
    targets: tuple[_Name, ...] = Field(min_length=1)
    groups: tuple[_Name, ...] = ()
    image_size: _ImageSize = 64
    crop_size: int | None = Field(None, ge=1, strict=True)
    max_samples_per_split: int | None = Field(None, ge=1, strict=True)
    seed: int = Field(0, ge=0, strict=True)
    workers: _Workers = 2
    on_bad_image: _OnBadImage = "fail"

    @model_validator(mode="after")
    def _check_names(self) -> CelebADataConfig:
        _check_distinct(self.targets, "targets")
        _check_distinct(self.groups, "groups")
        return self


class CsvDataConfig(BaseModel):
    """A CSV with one row per image: its path, split, label column(s) and group columns.

    Image paths are relative to the CSV's folder. ``split`` values are ``train``,
    ``calib`` or ``test``. Multi-class: one label column of class names, in the order
    of ``classes`` (default: sorted, numerically when all are integers). Multi-label:
    one 0/1 column per attribute. Group columns hold 0/1. Ids are the ``id_column``
    values, or the image path as written. Images are centre-cropped, resized to
    ``image_size`` squared, ``channels`` 1 (grey) or 3 (RGB), scaled to [-1, 1], on access
    (streamed by ``workers`` threads or DataLoader processes; never held all at once).
    ``on_bad_image``: ``fail`` (default: a missing, unreadable or wrong-mode image is exit 2
    naming it) or ``skip`` (its row is left out and listed in run.json and report.json).
    Every other header column is an error unless ``extra_columns`` lists it (then it
    is left unread), so a misspelled group column is never silently dropped.

    Example::

        data:
          kind: csv
          path: data/images.csv          # columns: path, split, label, male
          task: multiclass
          label_columns: [label]
          group_columns: [male]
          image_size: 64
          channels: 3
          extra_columns: [notes]         # header columns kept unread
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["csv"] = "csv"
    path: Path
    task: Task
    label_columns: tuple[_Name, ...] = Field(min_length=1)
    classes: tuple[_Name, ...] | None = None
    group_columns: tuple[_Name, ...] = ()
    path_column: _Name = "path"
    split_column: _Name = "split"
    id_column: _Name | None = None
    image_size: _ImageSize = 64
    crop_size: int | None = Field(None, ge=1, strict=True)
    channels: Literal[1, 3] = 3
    extra_columns: tuple[_Name, ...] = ()
    workers: _Workers = 2
    on_bad_image: _OnBadImage = "fail"

    @model_validator(mode="after")
    def _check_columns(self) -> CsvDataConfig:
        if self.task == "multiclass" and len(self.label_columns) != 1:
            raise ValueError(f"a multiclass CSV has exactly one label column of class names, got "
                             f"label_columns = {list(self.label_columns)}; use task: multilabel for "
                             "several 0/1 columns")
        if self.classes is not None:
            if self.task != "multiclass":
                raise ValueError("`classes` orders the class names of a multiclass CSV; delete it "
                                 "for task: multilabel (the label columns name the attributes)")
            if len(self.classes) < 2:
                raise ValueError(f"`classes` = {list(self.classes)} must name at least 2 classes")
            _check_distinct(self.classes, "classes")
        _check_distinct(self.label_columns, "label_columns")
        _check_distinct(self.group_columns, "group_columns")
        used = {self.path_column, self.split_column, self.id_column, *self.label_columns, *self.group_columns}
        both = sorted(used & set(self.extra_columns))
        if both:
            raise ValueError(f"`extra_columns` lists {both}, which the recipe reads; extra columns are the "
                             "ones left unread. Remove them from `extra_columns`")
        return self


class NpzDataConfig(BaseModel):
    """An ``.npz`` of arrays in the eval-data contract, with the model ``inputs``.

    Keys: ``inputs`` (N, C, H, W) float32, ``labels`` ((N,) class indices or (N, K)
    0/1), ``split`` (N,) str, ``group__<name>`` (N,) 0/1 per identity category;
    optional ``ids`` (default: SHA-256 of each input tensor), ``attribute_names``, ``task``.
    Any other array is an error unless ``extra_columns`` lists it (then it is left unread).

    Example::

        data:
          kind: npz
          path: data/eval.npz
          extra_columns: [filenames]   # arrays kept in the file, unread
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["npz"] = "npz"
    path: Path
    extra_columns: tuple[_Name, ...] = ()


class SyntheticDataConfig(BaseModel):
    """A generated multi-label attribute data set: 10 drawn attributes, 2 identity groups.

    Small RGB images (``image_size`` squared) on which each attribute is drawn (shape,
    size, position, colour, texture, a stroke, a frame, ...), with the identity groups
    ``warm`` (background tint) and ``shadow`` (darkened bottom band). In ``train`` each
    row with a rare attribute/identity combination of a correlated pair is kept with
    probability ``keep_fraction`` (strong correlation); ``calib`` and ``test`` are drawn
    balanced (attributes independent of the groups). ``noise`` is the standard
    deviation of Gaussian pixel noise on the [0, 1] scale. See docs/data.md.

    Example::

        data:
          kind: synthetic
          seed: 0
          image_size: 16
          n_train: 12000
          n_calib: 4000
          n_test: 20000
          keep_fraction: 0.2
          noise: 0.1
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["synthetic"] = "synthetic"
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True)
    image_size: int = Field(16, ge=12, le=64, strict=True)
    n_train: int = Field(12_000, ge=100, le=1_000_000, strict=True)
    n_calib: int = Field(4_000, ge=100, le=1_000_000, strict=True)
    n_test: int = Field(20_000, ge=100, le=1_000_000, strict=True)
    keep_fraction: float = Field(0.2, gt=0, le=1, strict=True)
    noise: float = Field(0.1, ge=0, le=0.5, strict=True)


DataConfig = Annotated[Union[DemoDataConfig, CelebADataConfig, CsvDataConfig, NpzDataConfig,
                             SyntheticDataConfig],
                       Field(discriminator="kind")]
"""The ``data:`` section: one of the five sources, chosen by ``kind``."""

DATA_KINDS: dict[str, type[BaseModel]] = {
    "demo": DemoDataConfig, "celeba": CelebADataConfig, "csv": CsvDataConfig, "npz": NpzDataConfig,
    "synthetic": SyntheticDataConfig,
}


def parse_data_config(raw: Any, *, source: str | Path,
                      prefix: tuple[Any, ...] = ("data",)) -> DataConfig:
    """Validate a ``data:`` mapping into the config model its ``kind`` names.

    Unlike validating the tagged union directly, messages give the key path as
    written in YAML (``data.targets``, not ``data.celeba.targets``) and list the
    valid keys of that kind.

    Raises
    ------
    InputError
        Not a mapping, ``kind`` missing or unknown, or a key invalid for that kind.
    """
    where = ".".join(str(p) for p in prefix) or "data"
    kinds = ", ".join(DATA_KINDS)
    if not isinstance(raw, dict):
        raise InputError(f"{source}: `{where}` must be a mapping with a `kind` ({kinds}), got "
                         f"{raw!r}. Write e.g. `{where}: {{kind: demo}}`.")
    kind = raw.get("kind")
    if kind not in DATA_KINDS:
        got = "is missing" if kind is None else f"= {kind!r} is not one of them"
        raise InputError(f"{source}: `{where}.kind` says where the data comes from and must be one "
                         f"of {kinds}; it {got}. Set e.g. `kind: demo` for the embedded demo.")
    return validate(DATA_KINDS[kind], raw, source=source, prefix=prefix, docs="docs/data.md")  # type: ignore[return-value]
