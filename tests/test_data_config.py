"""The recipe's data section: validation messages, dispatch, relative paths, training arrays."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from _data_fixtures import write_celeba, write_image

from compress_gate.config.data import (CelebADataConfig, CsvDataConfig, DemoDataConfig,
                                       NpzDataConfig, parse_data_config)
from compress_gate.data import EvalData, load_dataset, training_arrays
from compress_gate.errors import InputError


def _parse(text: str):
    return parse_data_config(yaml.safe_load(text), source="recipe.yaml")


def _parse_error(text: str) -> str:
    with pytest.raises(InputError) as info:
        _parse(text)
    return str(info.value)


def test_each_kind_parses_from_yaml():
    assert _parse("{kind: demo}") == DemoDataConfig()
    celeba = _parse("{kind: celeba, root: faces, targets: [Smiling], groups: [Male, Young]}")
    assert isinstance(celeba, CelebADataConfig) and celeba.groups == ("Male", "Young")
    csv = _parse("{kind: csv, path: a.csv, task: multilabel, label_columns: [x, y]}")
    assert isinstance(csv, CsvDataConfig) and csv.channels == 3 and csv.path_column == "path"
    assert isinstance(_parse("{kind: npz, path: a.npz}"), NpzDataConfig)


def test_docstring_examples_are_valid_yaml_configs():
    import compress_gate.config.data as module

    for model in (DemoDataConfig, CelebADataConfig, CsvDataConfig, NpzDataConfig):
        example = model.__doc__.split("Example::", 1)[1]
        section = yaml.safe_load(example)["data"]
        assert isinstance(parse_data_config(section, source="doc"), model), model.__name__
    assert "kind: demo" in module.__doc__


def test_missing_kind_lists_the_kinds():
    message = _parse_error("{root: x}")
    assert "`data.kind`" in message and "demo, celeba, csv, npz" in message and "is missing" in message


def test_unknown_kind():
    assert "= 'imagenet' is not one of them" in _parse_error("{kind: imagenet}")


def test_not_a_mapping():
    assert "`data` must be a mapping" in _parse_error("demo")


def test_unknown_key_names_its_path_and_the_valid_keys():
    message = _parse_error("{kind: demo, seeds: 3}")
    assert "unknown key `data.seeds`" in message and "keep_fraction" in message


def test_wrong_value_names_its_path():
    message = _parse_error("{kind: demo, keep_fraction: 0}")
    assert "`data.keep_fraction` = 0" in message and "greater than 0" in message


def test_demo_fractions_must_leave_training_data():
    assert "calib_fraction + test_fraction = 0.9" in _parse_error(
        "{kind: demo, calib_fraction: 0.4, test_fraction: 0.5}")


def test_demo_repeated_downsampled_class():
    assert "lists 3 more than once" in _parse_error("{kind: demo, downsampled_classes: [3, 3]}")


def test_csv_multiclass_needs_one_label_column():
    message = _parse_error("{kind: csv, path: a.csv, task: multiclass, label_columns: [a, b]}")
    assert "exactly one label column" in message and "multilabel" in message


def test_csv_classes_only_for_multiclass():
    assert "delete it for task: multilabel" in _parse_error(
        "{kind: csv, path: a.csv, task: multilabel, label_columns: [a], classes: [x, y]}")


def test_celeba_needs_targets():
    assert "`data.targets` is required" in _parse_error("{kind: celeba, root: x}")


def test_configs_are_frozen():
    with pytest.raises(Exception):
        DemoDataConfig().seed = 3  # type: ignore[misc]


def test_load_dataset_resolves_paths_against_the_recipe_folder(tmp_path):
    write_celeba(tmp_path / "faces")
    celeba = load_dataset(_parse("{kind: celeba, root: faces, targets: [Smiling], groups: [Male], "
                                 "image_size: 8}"), base_dir=tmp_path)
    assert celeba.n_samples == 12 and celeba.attribute_names == ("Smiling",)
    for i, name in enumerate("abcd"):
        write_image(tmp_path / "imgs" / f"{name}.png", size=(8, 8), seed=i)
    (tmp_path / "list.csv").write_text("path,split,y,g\nimgs/a.png,train,1,0\nimgs/b.png,calib,0,1\n"
                                       "imgs/c.png,test,1,1\nimgs/d.png,test,0,0\n")
    csv = load_dataset(_parse("{kind: csv, path: list.csv, task: multilabel, label_columns: [y], "
                              "group_columns: [g], image_size: 8}"), base_dir=tmp_path)
    assert csv.labels[:, 0].tolist() == [1, 0, 1, 0] and csv.groups[:, 0].tolist() == [0, 1, 1, 0]
    inputs, targets = training_arrays(csv)                # multi-label: float 0/1 matrix
    assert inputs.shape == (1, 3, 8, 8) and targets.dtype == np.float32 and targets.tolist() == [[1.0]]


def test_load_dataset_demo_and_npz(tmp_path):
    demo = load_dataset(DemoDataConfig(image_size=16), base_dir=tmp_path)
    assert demo.inputs.shape[1:] == (1, 16, 16)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", inputs=rng.normal(size=(4, 2, 3, 3)).astype(np.float32),
             labels=np.array([[1, 0], [0, 1], [1, 1], [0, 0]]), split=np.array(["train", "calib",
                                                                                  "test", "test"]))
    npz = load_dataset(_parse("{kind: npz, path: a.npz}"), base_dir=tmp_path)
    assert npz.task == "multilabel" and npz.n_samples == 4


def test_load_dataset_refuses_a_raw_mapping(tmp_path):
    with pytest.raises(TypeError, match="parse_data_config"):
        load_dataset({"kind": "demo"}, base_dir=tmp_path)  # type: ignore[arg-type]


def _tiny(inputs=True) -> EvalData:
    return EvalData(ids=np.array(["a", "b", "c"]), labels=np.eye(2, dtype=np.uint8)[[0, 1, 1]],
                    split=np.array(["train", "test", "test"]), groups=np.zeros((3, 0), bool),
                    group_names=(), attribute_names=("x", "y"), task="multiclass",
                    inputs=np.zeros((3, 1, 2, 2), np.float32) if inputs else None)


def test_training_arrays_errors():
    with pytest.raises(InputError, match="has no `inputs`"):
        training_arrays(_tiny(inputs=False))
    with pytest.raises(InputError, match="no rows with split 'calib'"):
        training_arrays(_tiny(), split="calib")
    with pytest.raises(InputError, match="split 'valid' is not one of"):
        training_arrays(_tiny(), split="valid")
    inputs, targets = training_arrays(_tiny(), split="test")
    assert targets.tolist() == [1, 1] and targets.dtype == np.int64 and inputs.shape == (2, 1, 2, 2)
