"""Why threshold calibration does (not) lower bias amplification: per attribute and (attribute, identity) pair.

Reads a finished multi-label sweep (``compress-gate sweep recipes/multilabel.yaml ...``): for
every student run directory, ``data.npz`` and the deployment engine's teacher and student
predictions. Per attribute it reports the train and test prevalence, the student's raw (0.5)
and calibrated thresholds (fit on ``calib`` as the gate fits them), the predicted positives
on ``test`` against the true ones, TCB raw and calibrated (and the teacher's), and per
(attribute, identity) pair BA of the teacher (0.5, as the gate judges it), of the student raw
and calibrated, and the increases, with the identity's share of true and predicted
positives. Run:

    python benchmarks/calibration_explained.py SWEEP_DIR [--out benchmarks/results/calibration_explained]

Writes ``<out>.json`` and ``<out>.md``. It recomputes with the library's own functions
(``calibrate_thresholds``, ``bias_amplification``, ``train_class_balance``), so its BA
increases are the gate's point values.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from compress_gate.data import align_scores, load_eval_data, load_predictions
from compress_gate.metrics import bias_amplification, train_class_balance
from compress_gate.mitigation import apply_thresholds, calibrate_thresholds


def _scores(data, path: Path, split: str) -> np.ndarray:
    return align_scores(data, load_predictions(path), data.mask(split))


def _share(member: np.ndarray, rows: np.ndarray) -> float:
    """The identity's share of ``rows`` (nan when there is none)."""
    return float(member[rows].mean()) if rows.any() else float("nan")


def explain_student(run_dir: Path, engine: str = "onnxruntime") -> dict:
    """The per-attribute and per-pair numbers of one student run directory (module docstring)."""
    data = load_eval_data(run_dir / "data.npz")
    predictions = run_dir / "predictions" / engine
    train, calib, test = (data.mask(split) for split in ("train", "calib", "test"))
    y_train, g_train, y_test, g_test = data.labels[train], data.groups[train], data.labels[test], data.groups[test]
    teacher, student = (_scores(data, predictions / f"{name}.npz", "test") for name in ("teacher", "student"))
    thresholds = calibrate_thresholds(data.labels[calib], _scores(data, predictions / "student.npz", "calib"))
    labels = {"teacher": apply_thresholds(teacher, None), "raw": apply_thresholds(student, None),
              "calibrated": apply_thresholds(student, thresholds)}
    train_mean = y_train.mean(axis=0)
    tcb = {key: train_class_balance(y_test, pred, train_mean=train_mean) for key, pred in labels.items()}
    ba = {key: bias_amplification(y_test, pred, g_test, train_labels=y_train, train_groups=g_train).values
          for key, pred in labels.items()}
    attributes = []
    for i, name in enumerate(data.attribute_names):
        pairs = []
        for j, group in enumerate(data.group_names):
            if not np.isfinite(ba["teacher"][i, j]):
                continue
            member = g_test[:, j] == 1
            pairs.append({"identity": group, "teacher_ba": ba["teacher"][i, j], "raw_ba": ba["raw"][i, j],
                          "calibrated_ba": ba["calibrated"][i, j],
                          "raw_increase": ba["raw"][i, j] - ba["teacher"][i, j],
                          "calibrated_increase": ba["calibrated"][i, j] - ba["teacher"][i, j],
                          "share_of_true_positives": _share(member, y_test[:, i] == 1),
                          "share_of_raw_positives": _share(member, labels["raw"][:, i] == 1),
                          "share_of_calibrated_positives": _share(member, labels["calibrated"][:, i] == 1)})
        attributes.append({
            "attribute": name, "train_prevalence": float(train_mean[i]), "test_prevalence": float(y_test[:, i].mean()),
            "raw_threshold": 0.5, "calibrated_threshold": float(thresholds[i]),
            "true_positives": int(y_test[:, i].sum()),
            "predicted_teacher": int(labels["teacher"][:, i].sum()), "predicted_raw": int(labels["raw"][:, i].sum()),
            "predicted_calibrated": int(labels["calibrated"][:, i].sum()),
            "tcb_teacher": float(tcb["teacher"][i]), "tcb_raw": float(tcb["raw"][i]),
            "tcb_calibrated": float(tcb["calibrated"][i]), "pairs": pairs})
    return {"run_dir": str(run_dir), "attributes": attributes}


def _markdown(students: dict[str, dict]) -> str:
    lines = []
    for name, found in students.items():
        lines += [f"### {name}", "", "| attribute | prevalence train / test | threshold raw → calibrated | "
                  "predicted positives raw / calibrated (true) | TCB teacher / raw / calibrated | pair: BA increase "
                  "raw → calibrated (identity's share of true / raw / calibrated positives) |", "|---|---|---|---|---|---|"]
        for a in found["attributes"]:
            pairs = "; ".join(f"{p['identity']}: {p['raw_increase']:+.4f} → {p['calibrated_increase']:+.4f} "
                              f"({p['share_of_true_positives']:.3f} / {p['share_of_raw_positives']:.3f} / "
                              f"{p['share_of_calibrated_positives']:.3f})" for p in a["pairs"]) or "–"
            lines.append(f"| {a['attribute']} | {a['train_prevalence']:.3f} / {a['test_prevalence']:.3f} | 0.5 → "
                         f"{a['calibrated_threshold']:.3f} | {a['predicted_raw']} / {a['predicted_calibrated']} "
                         f"({a['true_positives']}) | {a['tcb_teacher']:.3f} / {a['tcb_raw']:.3f} / "
                         f"{a['tcb_calibrated']:.3f} | {pairs} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calibration_explained")
    parser.add_argument("--engine", default="onnxruntime")
    args = parser.parse_args()
    students = {run.name: explain_student(run, args.engine) for run in sorted(args.sweep_dir.glob("sparsity-*"))
                if (run / "predictions").is_dir()}
    args.out.with_suffix(".json").write_text(json.dumps(students, indent=1, default=float) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(students))
    print(_markdown(students))


if __name__ == "__main__":
    main()
