"""Eval data and predictions: the contract the gate judges, sample identity, and the data sources."""

from compress_gate.data.contract import (
    SPLITS,
    EvalData,
    Predictions,
    Task,
    align_scores,
    load_eval_data,
    load_predictions,
    save_eval_data,
    save_predictions,
)
from compress_gate.data.identity import sample_id
from compress_gate.data._images import renormalize_
from compress_gate.data._records import SkippedImage
from compress_gate.data.image_files import ImageFiles, ImageTransform
from compress_gate.data.celeba import load_celeba
from compress_gate.data.demo import make_demo_data
from compress_gate.data.generic import load_csv_data, load_npz_data
from compress_gate.data.sources import load_dataset
from compress_gate.data.training import training_arrays

__all__ = [
    "SPLITS",
    "EvalData",
    "Predictions",
    "Task",
    "align_scores",
    "load_eval_data",
    "load_predictions",
    "save_eval_data",
    "save_predictions",
    "sample_id",
    "load_celeba",
    "make_demo_data",
    "load_csv_data",
    "load_npz_data",
    "load_dataset",
    "training_arrays",
    "renormalize_",
    "ImageFiles",
    "ImageTransform",
    "SkippedImage",
]
