"""One entry point from the recipe's ``data:`` section to :class:`EvalData`."""

from __future__ import annotations

from pathlib import Path

from compress_gate.config.data import (CelebADataConfig, CsvDataConfig, DataConfig, DemoDataConfig,
                                       NpzDataConfig, SyntheticDataConfig)
from compress_gate.data._images import Progress
from compress_gate.data.celeba import load_celeba
from compress_gate.data.contract import EvalData
from compress_gate.data.demo import make_demo_data
from compress_gate.data.generic import load_csv_data, load_npz_data
from compress_gate.data.synthetic import make_synthetic_data

__all__ = ["load_dataset"]


def load_dataset(config: DataConfig, *, base_dir: Path, progress: Progress | None = None) -> EvalData:
    """Build the eval data a ``data:`` section describes.

    Parameters
    ----------
    config : DemoDataConfig, CelebADataConfig, CsvDataConfig, NpzDataConfig or SyntheticDataConfig
    base_dir : Path
        The recipe's folder; relative ``root``/``path`` values are resolved against it.
    progress : callable, default=None
        ``progress(done, total)`` while image files are read (CelebA and CSV only).

    Returns
    -------
    EvalData
        Validated as ``load_eval_data`` validates ``data.npz``, with ``inputs`` set.

    Raises
    ------
    InputError
        Whatever the chosen source refuses (missing files, bad cells, unreadable images).
    """
    base_dir = Path(base_dir)
    if isinstance(config, DemoDataConfig):
        return make_demo_data(config)
    if isinstance(config, CelebADataConfig):
        return load_celeba(config, base_dir=base_dir, progress=progress)
    if isinstance(config, CsvDataConfig):
        return load_csv_data(config, base_dir=base_dir, progress=progress)
    if isinstance(config, NpzDataConfig):
        return load_npz_data(config, base_dir=base_dir)
    if isinstance(config, SyntheticDataConfig):
        return make_synthetic_data(config)
    raise TypeError(f"load_dataset: expected a data config model, got {type(config).__name__}; "
                    "validate the recipe's data section with parse_data_config first.")
