"""Models from anywhere: a factory in a file outside the package, a package factory, torchvision/timm,
the built-in architectures; checkpoints, head replacement, feature layers, normalisation; each error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from compress_gate.config.run import load_run_config
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError

torch = pytest.importorskip("torch")

from compress_gate.models.fit import fit_to_data, read_state_dict, replace_head  # noqa: E402
from compress_gate.pipeline.teacher import build_teacher_module, obtain_teacher  # noqa: E402

EXAMPLE_NET = Path(__file__).resolve().parents[1] / "examples" / "your-model" / "net.py"


def rgb_data(n: int = 24, side: int = 16, outputs: int = 3) -> EvalData:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (n, outputs)).astype(np.uint8)
    split = np.array(["train", "calib", "test"])[np.arange(n) % 3]
    return EvalData(ids=np.array([f"s{i}" for i in range(n)]), labels=labels, split=split,
                    groups=(np.arange(n) % 2 == 0)[:, None], group_names=("g",),
                    attribute_names=tuple(f"a{i}" for i in range(outputs)), task="multilabel",
                    inputs=rng.standard_normal((n, 3, side, side)).astype(np.float32))


def config(tmp_path, model, data=None):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 0, "output": "runs/x", "model": {"cache_dir": "cache", **model},
        "data": data or {"kind": "synthetic", "image_size": 16},
        "compression": {"backend": "torch", "quantization": "dynamic"}}))
    return load_run_config(path)


def factory_file(tmp_path, body: str) -> str:
    (tmp_path / "user_net.py").write_text("import torch\nfrom torch import nn\n\n" + body)
    return "user_net.py:build"


def test_a_file_factory_outside_the_package_builds_and_carries_its_paths(tmp_path):
    (tmp_path / "net.py").write_bytes(EXAMPLE_NET.read_bytes())
    cfg = config(tmp_path, {"factory": "net.py:build", "kwargs": {"num_classes": 3, "width": 4},
                            "layers": ["stage1", "stage3"], "head": "classifier", "train": {"epochs": 1}})
    assert cfg.model.factory == f"{(tmp_path / 'net.py').resolve()}:build"   # resolved against the recipe
    module, replaced = build_teacher_module(cfg, rgb_data())
    assert type(module).__name__ == "SeparableSENet" and not replaced
    assert module.head_path == "classifier" and module.feature_layers == ("stage1", "stage3")
    assert module.input_shape == (3, 16, 16)
    assert module(torch.zeros(2, 3, 16, 16)).shape == (2, 3)


def test_a_package_factory_and_a_builtin_are_entries_of_one_registry(tmp_path):
    cfg = config(tmp_path, {"factory": "compress_gate.models.mobilenet:MobileNetV1",
                            "kwargs": {"num_outputs": 3, "in_channels": 3, "alpha": 0.25}, "train": {"epochs": 1}})
    module, _ = build_teacher_module(cfg, rgb_data(side=32))
    assert type(module).__name__ == "MobileNetV1" and module.head_path is None
    assert module.feature_layers[:2] == ("layer1", "layer2")   # the top-level stages by default
    builtin, _ = build_teacher_module(config(tmp_path, {"arch": "resnet", "width": 4, "depth": 1,
                                                        "train": {"epochs": 1}}), rgb_data())
    assert builtin.head_path == "fc" and builtin.feature_layers == ("layer1", "layer2", "layer3")


def test_a_checkpoint_with_another_head_size_is_loaded_and_its_head_replaced(tmp_path):
    (tmp_path / "net.py").write_bytes(EXAMPLE_NET.read_bytes())
    torch.manual_seed(0)
    from compress_gate.models.registry import resolve_factory

    pretrained = resolve_factory("net.py:build", base_dir=tmp_path)(num_classes=5, width=4)
    torch.save(pretrained.state_dict(), tmp_path / "pretrained.pt")
    model = {"factory": "net.py:build", "kwargs": {"num_classes": 3, "width": 4}, "checkpoint": "pretrained.pt",
             "head": "classifier", "layers": ["stage1"]}
    # the factory builds 3 outputs, the checkpoint has 5: the head is rebuilt at 5 to load, then at 3
    module, replaced = build_teacher_module(config(tmp_path, {**model, "train": {"epochs": 1}}), rgb_data(),
                                            state=read_state_dict(tmp_path / "pretrained.pt", "checkpoint"))
    assert replaced and module.classifier.out_features == 3
    assert torch.equal(module.stage2.pointwise.weight, pretrained.stage2.pointwise.weight)
    with pytest.raises(InputError, match="was replaced by a new layer for the data's 3 outputs, so it is untrained"):
        obtain_teacher(config(tmp_path, model), rgb_data(), save_to=tmp_path / "t.pt")
    tuned, info = obtain_teacher(config(tmp_path, {**model, "train": {"epochs": 1, "batch_size": 4}}), rgb_data(),
                                 save_to=tmp_path / "t.pt")
    assert info.source == "trained" and tuned(torch.zeros(1, 3, 16, 16)).shape == (1, 3)
    assert not torch.equal(tuned.stage2.pointwise.weight, pretrained.stage2.pointwise.weight)   # fine-tuned


def test_replace_head_keeps_the_layer_kind_and_input_width():
    conv_head = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.Conv2d(8, 5, 1, bias=False))
    replace_head(conv_head, "1", 2)
    assert isinstance(conv_head[1], torch.nn.Conv2d) and conv_head[1].in_channels == 8
    assert conv_head[1].out_channels == 2 and conv_head[1].bias is None


def test_fit_without_a_head_refuses_an_output_mismatch():
    with pytest.raises(InputError, match="has 5 outputs but the data has 3 attributes/classes. Set `model.head`"):
        fit_to_data(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)), num_outputs=3,
                    input_shape=(3, 2, 2), head=None, state=None, checkpoint=None, source="`model.factory` = 'x'")


@pytest.mark.parametrize(("body", "expected"), [
    ("def build(:\n", "importing .*user_net.py failed \\(SyntaxError"),
    ("import not_a_package_xyz\ndef build(): pass\n", "failed \\(ModuleNotFoundError"),
    ("def other(): pass\n", "has no attribute `build`"),
    ("build = 3\n", "has a non-callable int `build`"),
    ("def build(): return 'a network'\n", "returned a str, not a torch.nn.Module"),
    ("def build(): raise ValueError('bad width')\n", "raised ValueError when called with `model.kwargs` = {}: bad width"),
    ("def build(): return nn.Sequential(nn.Conv2d(1, 4, 3))\n", "fails on an input of shape \\(2, 3, 16, 16\\)"),
    ("def build(): return nn.Conv2d(3, 4, 3)\n", "returns \\(2, 4, 14, 14\\) for a batch of 2"),
    ("class T(nn.Module):\n    def forward(self, x): return x.mean((2, 3)), x\ndef build(): return T()\n",
     "returns tuple for a batch of 2"),
])
def test_a_bad_factory_is_an_input_error_naming_the_key(tmp_path, body, expected):
    cfg = config(tmp_path, {"factory": factory_file(tmp_path, body), "train": {"epochs": 1}})
    with pytest.raises(InputError, match=expected) as info:
        build_teacher_module(cfg, rgb_data())
    assert "model." in str(info.value)


@pytest.mark.parametrize(("model", "expected"), [
    ({"head": "nope"}, "`model.head` = 'nope' is not a module of Sequential"),
    ({"head": "0"}, "`model.head` = '0' is a Flatten; it must name the final nn.Linear"),
    ({"layers": ["9"]}, "`model.layers` names \\['9'\\]"),
    ({}, "has no top-level `layer<k>` modules"),
    ({"input_size": 32, "layers": ["1"]}, "`model.input_size` = 32 but the data's images are 16x16"),
    ({"mean": [0.5], "std": [0.5], "layers": ["1"]}, "give 1 values but the images have 3 channel"),
])
def test_bad_head_layers_and_sizes_are_input_errors(tmp_path, model, expected):
    body = "def build(): return nn.Sequential(nn.Flatten(), nn.Linear(768, 3))\n"
    (tmp_path / "d.npz").write_bytes(b"")   # an npz source keeps its arrays' size: checked on the loaded data
    cfg = config(tmp_path, {"factory": factory_file(tmp_path, body), "train": {"epochs": 1}, **model},
                 data={"kind": "npz", "path": "d.npz"} if "input_size" in model else None)
    with pytest.raises(InputError, match=expected):
        build_teacher_module(cfg, rgb_data())


@pytest.mark.parametrize("package", ["torchvision", "timm"])
def test_torchvision_and_timm_name_their_extra_when_they_do_not_import(tmp_path, package, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.split(".")[0] == package:
            raise ImportError(f"No module named '{package}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    monkeypatch.delitem(__import__("sys").modules, package, raising=False)
    cfg = config(tmp_path, {package: "resnet18", "kwargs": {"num_classes": 3}, "train": {"epochs": 1}})
    with pytest.raises(InputError, match=f"`model.{package}` needs the {package} package.*compress-gate\\[{package}\\]"):
        build_teacher_module(cfg, rgb_data())


def test_the_cache_key_follows_the_factory_file_and_the_checkpoint(tmp_path):
    from compress_gate.pipeline.teacher import teacher_cache_key

    body = "def build(): return nn.Sequential(nn.Flatten(), nn.Linear(768, 3))\n"
    cfg = config(tmp_path, {"factory": factory_file(tmp_path, body), "train": {"epochs": 1}})
    key = teacher_cache_key(cfg, rgb_data())
    factory_file(tmp_path, body + "# edited\n")
    assert teacher_cache_key(cfg, rgb_data()) != key


# --- training-time augmentation ---------------------------------------------------------------
def batch_of(images):
    return [(image, torch.tensor(0.0)) for image in images]


def test_hflip_mirrors_some_images_and_keeps_the_others_seeded():
    from compress_gate.models.augment import AugmentBatch

    images = torch.arange(64 * 3, dtype=torch.float32).reshape(64, 1, 1, 3)
    out, _ = AugmentBatch(hflip=True, crop_scale=None, seed=0)(batch_of(images))
    flipped = (out == images.flip(-1)).flatten(1).all(1)
    kept = (out == images).flatten(1).all(1)
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54       # each one or the other, ~half
    again, _ = AugmentBatch(hflip=True, crop_scale=None, seed=0)(batch_of(images))
    assert torch.equal(out, again)


def test_a_random_crop_is_one_window_resized_back():
    import torch.nn.functional as F

    from compress_gate.models.augment import AugmentBatch

    image = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4)
    same, _ = AugmentBatch(hflip=False, crop_scale=(1.0, 1.0), seed=0)(batch_of([image]))
    assert torch.equal(same[0], image)                             # scale 1: the whole image, same size
    out, _ = AugmentBatch(hflip=False, crop_scale=(0.25, 0.25), seed=3)(batch_of([image]))
    # side round(4 * sqrt(0.25)) = 2: one of the 3 x 3 windows of 2 x 2 pixels, resized to 4 x 4
    windows = [F.interpolate(image[None, :, t:t + 2, l:l + 2], size=(4, 4), mode="bilinear", align_corners=False)[0]
               for t in range(3) for l in range(3)]
    assert sum(torch.equal(out[0], window) for window in windows) == 1
