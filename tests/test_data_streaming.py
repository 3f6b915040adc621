"""Streamed image sources: the transform by hand, streaming equal to in memory, bad images named or skipped."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _data_fixtures import write_image
from PIL import Image

from compress_gate.config.data import CsvDataConfig
from compress_gate.data import ImageFiles, ImageTransform, load_csv_data, save_eval_data
from compress_gate.errors import InputError

torch = pytest.importorskip("torch")

SPLITS = ["train"] * 8 + ["calib"] * 4 + ["test"] * 4


def _write_csv(root, n=16):
    lines = ["path,split,a,b,g"]
    for i in range(n):
        write_image(root / "imgs" / f"{i:02d}.png", size=(20, 16), seed=i)
        lines.append(f"imgs/{i:02d}.png,{SPLITS[i]},{i % 2},{(i // 2) % 2},{(i // 4) % 2}")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root / "data.csv"


def _config(path, **options) -> CsvDataConfig:
    return CsvDataConfig(path=path, task="multilabel", label_columns=("a", "b"), group_columns=("g",),
                         image_size=8, **options)


def _in_memory(data):
    return dataclasses.replace(data, inputs=data.inputs[:])   # the old path: every image decoded at once


# --- the transform, by hand ---------------------------------------------------------------------
def test_transform_crops_the_centre_square_and_normalises_per_channel(tmp_path):
    # a 4x2 (w x h) RGB image; centre square side 2 at left round((4-2)/2) = 1: columns 1, 2;
    # resize 2 -> 2 keeps the pixels; x_c = (p/255 - mean_c) / std_c
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)
    pixels[..., 0] = [[10, 20, 30, 40], [50, 60, 70, 80]]
    pixels[..., 1] = 255
    pixels[..., 2] = [[0, 51, 102, 0], [0, 153, 204, 0]]
    Image.fromarray(pixels, mode="RGB").save(tmp_path / "x.png")
    transform = ImageTransform(2, channels=3, mean=(0.2, 0.5, 0.0), std=(0.5, 0.25, 1.0))
    got = ImageFiles([tmp_path / "x.png"], transform)[0]
    red = (np.array([[20, 30], [60, 70]]) / 255 - 0.2) / 0.5
    green = (np.ones((2, 2)) - 0.5) / 0.25                      # 255/255 = 1 -> 2.0
    blue = np.array([[51, 102], [153, 204]]) / 255             # [[0.2, 0.4], [0.6, 0.8]]
    np.testing.assert_allclose(got, np.stack([red, green, blue]), atol=1e-6)


def test_transform_resizes_bilinearly_after_the_crop(tmp_path):
    # grey 4x2: crop [[20, 30], [60, 70]]; bilinear 2 -> 1 weighs the four pixels equally: 45;
    # default mean = std = 0.5: (45/255 - 0.5) / 0.5
    Image.fromarray(np.array([[10, 20, 30, 40], [50, 60, 70, 80]], dtype=np.uint8), mode="L").save(tmp_path / "g.png")
    got = ImageFiles([tmp_path / "g.png"], ImageTransform(1, channels=1))[0]
    assert got.shape == (1, 1, 1)
    assert got[0, 0, 0] == pytest.approx((45 / 255 - 0.5) / 0.5, abs=1e-6)


def test_image_files_select_lazily_and_refuse_materialising(tmp_path):
    data = load_csv_data(_config(_write_csv(tmp_path)))
    test = data.inputs[data.mask("test")]
    assert isinstance(test, ImageFiles) and test.shape == (4, 3, 8, 8)
    np.testing.assert_array_equal(test[:], data.inputs[12:16])
    batches = list(data.inputs.batches(5))
    assert [len(b) for b in batches] == [5, 5, 5, 1]
    np.testing.assert_array_equal(np.concatenate(batches), data.inputs[:])
    with pytest.raises(TypeError, match="what streaming avoids"):
        np.asarray(data.inputs)


# --- streaming equals the in-memory path --------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_training_batches_equal_the_in_memory_ones(tmp_path, workers):
    from compress_gate.config.run import AugmentConfig
    from compress_gate.pipeline.teacher import training_loader

    data = load_csv_data(_config(_write_csv(tmp_path), workers=workers))
    augment = AugmentConfig(hflip=True, crop_scale=(0.5, 1.0))
    streamed = list(training_loader(data, batch_size=3, seed=7, augment=augment))
    memory = list(training_loader(_in_memory(data), batch_size=3, seed=7, augment=augment))
    assert len(streamed) == len(memory) == 3                     # 8 train rows in batches of 3
    for (x, y), (x0, y0) in zip(streamed, memory):
        torch.testing.assert_close(x, x0, rtol=0, atol=0)
        torch.testing.assert_close(y, y0, rtol=0, atol=0)


def test_teacher_and_predictions_equal_the_in_memory_path(tmp_path):
    from compress_gate.compress import export_onnx
    from compress_gate.engines import score_model
    from compress_gate.models import train_model
    from compress_gate.pipeline.teacher import training_loader

    data = load_csv_data(_config(_write_csv(tmp_path)))
    weights, scores = [], []
    for source in (data, _in_memory(data)):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                    torch.nn.Flatten(), torch.nn.Linear(4, 2))
        train_model(model, training_loader(source, batch_size=4, seed=0), task="multilabel", epochs=2, lr=0.1, seed=0)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        path = export_onnx(model, tmp_path / f"m{len(scores)}.onnx", input_shape=(3, 8, 8), task="multilabel")
        rows = source.mask("calib", "test")
        scores.append(score_model(path, source.inputs[rows], engine="onnxruntime", batch_size=3).scores)
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
    np.testing.assert_array_equal(scores[0], scores[1])


# --- bad images ---------------------------------------------------------------------------------
def test_a_wrong_mode_image_is_refused_naming_the_file(tmp_path):
    path = _write_csv(tmp_path)
    Image.fromarray(np.full((16, 20), 4000, dtype=np.uint16)).save(tmp_path / "imgs/03.png")   # mode I;16
    with pytest.raises(InputError, match=r"03\.png \(data\.csv line 5, column path\): the image has mode 'I;16'"):
        load_csv_data(_config(path))


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])      # the header reads, the pixels do not


def test_a_file_broken_after_the_check_is_named_by_training_and_scoring(tmp_path):
    from compress_gate.engines._predict import predict_scores
    from compress_gate.pipeline.teacher import training_loader

    data = load_csv_data(_config(_write_csv(tmp_path)))
    _truncate(tmp_path / "imgs/02.png")
    with pytest.raises(InputError) as info:
        list(training_loader(data, batch_size=4, seed=0))
    assert "02.png (data.csv line 4, column path): cannot read the image" in str(info.value)
    assert "Traceback" not in str(info.value) and "on_bad_image: skip" in str(info.value)
    with pytest.raises(InputError, match=r"02\.png .*cannot read the image"):
        predict_scores(_NeverRuns(), data.inputs)


class _NeverRuns:
    """An engine stand-in: decoding fails before any batch reaches it."""

    batch_size, fixed_batch, model_path = 16, False, "m.onnx"

    def run(self, batch):  # noqa: ANN001, ANN201
        raise AssertionError("no batch should reach the engine")


def test_skip_leaves_bad_rows_out_and_lists_them(tmp_path):
    path = _write_csv(tmp_path)
    (tmp_path / "imgs/01.png").unlink()
    _truncate(tmp_path / "imgs/05.png")
    (tmp_path / "imgs/09.png").write_bytes(b"not an image")
    data = load_csv_data(_config(path, on_bad_image="skip"))
    assert [s.id for s in data.skipped] == ["imgs/01.png", "imgs/05.png", "imgs/09.png"]
    assert "no such image file" in data.skipped[0].reason and "cannot read" in data.skipped[1].reason
    assert data.skipped[2].path.endswith("09.png")
    assert data.n_samples == 13 and not set(data.ids) & {s.id for s in data.skipped}
    assert data.inputs.shape[0] == 13 and data.inputs[:].shape == (13, 3, 8, 8)   # every kept row decodes
    with pytest.raises(InputError, match="01.png .*no such image file"):
        load_csv_data(_config(path))                              # fail (the default) stops at the first


@pytest.mark.parametrize("block", [1, 3, 4096])
def test_the_scan_finds_the_same_bad_rows_in_any_block_size(tmp_path, monkeypatch, block):
    # the files are checked SCAN_BLOCK rows at a time (bounded memory); blocks of 1 and 3 split the 16
    # rows so that bad rows fall in different blocks and at block edges (rows 3, 5, 15)
    monkeypatch.setattr("compress_gate.data.image_files.SCAN_BLOCK", block)
    path = _write_csv(tmp_path)
    for name in ("03", "05", "15"):
        (tmp_path / f"imgs/{name}.png").unlink()
    seen = []
    data = load_csv_data(_config(path, on_bad_image="skip"), progress=lambda done, total: seen.append((done, total)))
    assert [s.id for s in data.skipped] == ["imgs/03.png", "imgs/05.png", "imgs/15.png"]
    assert data.n_samples == 13 and seen == [(k, 16) for k in range(1, 17)]


def test_score_names_a_bad_image_before_writing_anything(tmp_path):
    from typer.testing import CliRunner

    from compress_gate.cli import app
    from compress_gate.compress import export_onnx

    data = load_csv_data(_config(_write_csv(tmp_path)))
    npz = save_eval_data(data, tmp_path / "data.npz")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    onnx = export_onnx(model, tmp_path / "m.onnx", input_shape=(3, 8, 8), task="multilabel")
    result = CliRunner().invoke(app, ["score", str(onnx), str(npz), "--out", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output            # streamed from the files data.npz lists
    (tmp_path / "imgs/13.png").write_bytes(b"broken")
    result = CliRunner().invoke(app, ["score", str(onnx), str(npz), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "13.png: cannot read the image" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_lists_skipped_images_in_run_json_and_report_json(tmp_path):
    # a user's network (test_user_model_run's recipe) on 580 PNG files at 16 px, 2 of them bad
    import json

    import yaml
    from test_user_model_run import needs_torch_backend, user_recipe
    from typer.testing import CliRunner

    from compress_gate.cli import app

    if needs_torch_backend.args[0]:
        pytest.skip(needs_torch_backend.kwargs["reason"])
    rng = np.random.default_rng(0)
    lines = ["path,split,a,b,c,g"]
    for i, split in enumerate(["train"] * 240 + ["calib"] * 100 + ["test"] * 240):
        write_image(tmp_path / "imgs" / f"{i:03d}.png", size=(16, 16), seed=i)
        lines.append(f"imgs/{i:03d}.png,{split}," + ",".join(str(v) for v in rng.integers(0, 2, 4)))
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "imgs/007.png").unlink()
    (tmp_path / "imgs/400.png").write_bytes(b"not a png")
    compression = {"backend": "torch", "epochs": 2, "batch_size": 32,
                   "pruning": {"params": ["__ALL_PRUNABLE__"], "final_sparsity": 0.5, "init_sparsity": 0.05,
                               "start_epoch": 0.0, "end_epoch": 1.0, "update_frequency": 0.5}}
    path = user_recipe(tmp_path, compression)
    recipe = yaml.safe_load(path.read_text())
    recipe["data"] = {"kind": "csv", "path": "data.csv", "task": "multilabel", "label_columns": ["a", "b", "c"],
                      "group_columns": ["g"], "image_size": 16, "on_bad_image": "skip"}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code in (0, 1), result.output
    listed = json.loads((tmp_path / "run" / "run.json").read_text())["skipped_images"]
    assert [entry["id"] for entry in listed] == ["imgs/007.png", "imgs/400.png"]
    assert "no such image file" in listed[0]["reason"] and "cannot read the image" in listed[1]["reason"]
    report = json.loads((tmp_path / "run" / "gate" / "report.json").read_text())
    assert report["run"]["skipped_images"] == listed
    assert report["inputs"]["n_test"] == 239                          # 240 test rows, one skipped
