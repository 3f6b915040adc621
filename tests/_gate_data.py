"""Synthetic eval data and prediction files for the gate's tests: a faithful and a biased student.

Three attributes, two identity groups. "smiling" is more common among "young" people in
training, so its BA direction is g = young (1). The teacher is a good classifier; the
faithful student is the teacher's logit plus small noise; the biased student pushes
"smiling" up for young and down for everyone else, which amplifies the bias (BA rises)
and moves FPR/FNR unevenly across attributes (CEV rises).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress_gate.data import EvalData, save_eval_data, save_predictions

ATTRIBUTES = ("smiling", "eyeglasses", "wavy_hair")
GROUPS = ("male", "young")
SIZES = {"train": 600, "calib": 400, "test": 1200}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_data(seed: int = 0) -> EvalData:
    """Labels correlated with groups; splits train/calib/test in SIZES."""
    rng = np.random.default_rng(seed)
    n = sum(SIZES.values())
    groups = rng.random((n, 2)) < np.array([0.45, 0.5])
    base = np.array([0.25, 0.2, 0.35])
    rate = np.tile(base, (n, 1))
    rate[:, 0] += 0.35 * groups[:, 1]          # smiling: young 0.60 vs 0.25
    rate[:, 1] += 0.25 * groups[:, 0]          # eyeglasses: male 0.45 vs 0.20
    labels = (rng.random((n, 3)) < rate).astype(np.uint8)
    split = np.repeat(list(SIZES), list(SIZES.values()))
    return EvalData(ids=np.array([f"img{i:05d}" for i in range(n)]), labels=labels, split=split,
                    groups=groups, group_names=GROUPS, attribute_names=ATTRIBUTES, task="multilabel")


def teacher_logits(data: EvalData, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 2.5 * (2.0 * data.labels - 1.0) + rng.normal(0.0, 1.5, data.labels.shape)


def student_logits(data: EvalData, teacher: np.ndarray, *, biased: bool, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = teacher + rng.normal(0.0, 0.1, teacher.shape)
    if biased:
        young = data.groups[:, 1]
        logits[:, 0] += np.where(young, 2.5, -2.5)
        logits[:, 2] -= 1.5
    return logits


def write_files(directory: Path, *, biased: bool, students: int = 1, seed: int = 0) -> dict[str, Path]:
    """data.npz, teacher.npz and student_<i>.npz under ``directory``; returns their paths."""
    data = make_data(seed)
    teacher = teacher_logits(data)
    rows = data.mask("calib", "test")
    paths = {"data": save_eval_data(data, directory / "data.npz"),
             "teacher": save_predictions(directory / "teacher.npz", data.ids[rows],
                                         _sigmoid(teacher[rows]).astype(np.float32))}
    for i in range(students):
        logits = student_logits(data, teacher, biased=biased, seed=2 + i)
        paths[f"student_{i}"] = save_predictions(directory / f"student_{i}.npz", data.ids[rows],
                                                 _sigmoid(logits[rows]).astype(np.float32))
    return paths


LIMITS_YAML = """\
confidence: 0.95
n_resamples: 200
seed: 0
limits:
  - {metric: ba, change: absolute, max: 0.03, name: worst BA increase}
  - {metric: accuracy, change: absolute, min: -0.05, name: accuracy drop}
  - {metric: cev, max: 1000, name: CEV}
  - {metric: subgroup_fnr, change: absolute, max: 0.05, name: worst subgroup FNR increase}
"""

#: LIMITS_YAML with BA and accuracy limits that a faithful student meets (a biased one still fails).
PASSABLE_LIMITS_YAML = LIMITS_YAML.replace("max: 0.03", "max: 0.2").replace("min: -0.05", "min: -0.2")
