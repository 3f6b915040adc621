"""Issue 9, input half: every bad input is refused (exit 2, one message naming the file and the key or
column, no traceback) or judged (exit 1); none passes a gate that has a failing limit.

Table-driven over the commands that read user files (`gate`, `predict`, `run`'s recipe loading,
`bench`'s model loading), plus a Hypothesis property over random limits documents.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import compress_gate.data._npz as npz_module
from compress_gate.cli import app
from compress_gate.data import load_eval_data, save_eval_data, save_predictions
from compress_gate.errors import InputError
from _gate_data import make_data, teacher_logits, write_files
from _worlds import needs_torch
from test_bundle_runtime import inputs as bundle_inputs
from test_bundle_runtime import make_bundle
from test_pipeline_config import SPARSEML, write_recipe

runner = CliRunner()

FAILING_LIMITS = """\
n_resamples: 200
seed: 0
limits:
  - {metric: ba, change: absolute, max: 0.03, name: worst BA increase}
"""


def _invoke(args: list[str]):
    result = runner.invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, AssertionError)
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, " ".join(output.split())   # rich wraps long lines


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("biased"), biased=True)


def _gate(files, out, *extra):
    return _invoke(["gate", "--data", files["data"], "--teacher", files["teacher"], "--student",
                    files["student_0"], "--out", out, *extra])


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


# --- gate: the limits file -------------------------------------------------------------------
LIMITS_CASES = [
    # (id, file content, substrings the message must hold)
    ("zero-bytes", "", ["is empty", "limits: []"]),
    ("only-comments", "# limits to come\n", ["is empty"]),
    ("null-document", "null\n", ["is empty"]),
    ("no-limits-key", "n_resamples: 20\n", ["`limits` is missing"]),
    ("empty-gate-section", "gate:\n", ["`gate:` is empty"]),
    ("duplicate-top-level", FAILING_LIMITS + "limits: []\n", ["`limits` appears twice", "line 3", "line 5"]),
    ("duplicate-nested", "limits:\n  - {metric: ba, max: 0.03, max: 1.0}\n", ["`max` appears twice", "line 2"]),
    ("max-true", "limits:\n  - {metric: ba, change: absolute, max: true}\n",
     ["`limits[0].max` = True is a boolean", "must be a number"]),
    ("max-string", "limits:\n  - {metric: ba, change: absolute, max: \"0.1\"}\n",
     ["`limits[0].max` = '0.1' is a string", "without quotes"]),
    ("bool-as-string", "mitigation: {calibrate_thresholds: 'true'}\nlimits: []\n",
     ["`mitigation.calibrate_thresholds` = 'true'", "true or false"]),
    ("int-as-float", "n_resamples: 20.5\nlimits: []\n", ["`n_resamples` = 20.5", "an integer"]),
    ("int-as-exponent", "n_resamples: 1e3\nlimits: []\n",
     ["`n_resamples` = 1000.0 is a float (YAML reads 1e3 and 1000.0 as floats)", "must be an integer",
      "without an exponent or a decimal point: 1000."]),
    ("sparseml-recipe", SPARSEML, ["YAML tag", "SparseML", "docs/gate.md"]),
    ("unknown-key-cites-docs", "limit: []\n", ["unknown key `limit`", "docs/gate.md"]),
]


@pytest.mark.parametrize("content, expected", [c[1:] for c in LIMITS_CASES], ids=[c[0] for c in LIMITS_CASES])
def test_bad_limits_file_exits_2_naming_file_and_key(biased, tmp_path, content, expected):
    limits = _write(tmp_path / "limits.yaml", content)
    code, message = _gate(biased, tmp_path / "out", "--limits", limits)
    assert code == 2, message
    assert str(limits) in message
    for part in expected:
        assert part in message, (part, message)
    assert "README.md, 'Recipe reference'" not in message
    assert not (tmp_path / "out" / "report.json").exists()


def _special(tmp_path: Path, kind: str) -> tuple[Path, str]:
    if kind == "directory":
        (tmp_path / "adir").mkdir()
        return tmp_path / "adir", "is a directory"
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return tmp_path / "pipe", "is a FIFO"
    if kind == "device":
        return Path("/dev/zero"), "is a character device"
    return tmp_path / "nope.yaml", "no such limits file"


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "missing"])
def test_limits_path_that_is_not_a_file_is_named_as_such(biased, tmp_path, kind):
    path, expected = _special(tmp_path, kind)
    code, message = _gate(biased, tmp_path / "out", "--limits", path)
    assert code == 2 and f"{path}: {expected}" in message, message
    assert "compress-gate init" not in message    # init writes recipes; never suggested for --limits


# --- gate: the data and prediction files -----------------------------------------------------
def _savez(path: Path, columns: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **columns)
    return path


def _columns(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


DATA_CASES = [
    # (id, renamed columns, added columns, message parts)
    ("group-single-underscore", {"group__male": "group_male"}, {}, ["`group_male` (did you mean `group__male`?)"]),
    ("group-miscased", {"group__male": "Group__male"}, {}, ["`Group__male` (did you mean `group__male`?)"]),
    ("labels-miscased", {"labels": "Labels"}, {}, ["`Labels` (did you mean `labels`?)"]),
    ("unknown-column", {}, {"notes": np.zeros(2200)}, ["unknown column(s) `notes`", "extra column"]),
]


@pytest.mark.parametrize("rename, added, expected", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_unknown_or_misspelled_data_column_exits_2(biased, tmp_path, rename, added, expected):
    columns = {rename.get(k, k): v for k, v in _columns(biased["data"]).items()} | added
    data = _savez(tmp_path / "data.npz", columns)
    files = dict(biased, data=data)
    code, message = _gate(files, tmp_path / "out", "--limits", _write(tmp_path / "l.yaml", FAILING_LIMITS))
    assert code == 2, message
    assert message.startswith(f"{data}: ") or f"{data}: " in message
    for part in expected:
        assert part in message, (part, message)


def test_extra_columns_are_allowed_by_name_and_never_read(biased, tmp_path):
    # an allowed extra column whose bytes are not even a valid deflate stream: it is never decompressed
    data = tmp_path / "data.npz"
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in _columns(biased["data"]).items():
            with archive.open(f"{name}.npy", "w") as handle:
                np.lib.format.write_array(handle, value, allow_pickle=False)
        archive.writestr(zipfile.ZipInfo("notes.npy"), b"\x93NUMPY garbage")
    loaded = load_eval_data(data, extra_columns=["notes"])
    assert loaded.group_names == ("male", "young")
    with pytest.raises(InputError, match=r"unknown column\(s\) `notes`"):
        load_eval_data(data)
    with pytest.raises(InputError, match="`group__male`, a column the tool reads"):
        load_eval_data(data, extra_columns=["group__male"])   # an identity column cannot be dropped


@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty (0 bytes)"),
    (None, "not an .npz archive (a single .npy array)"),
    (b"PK\x03\x04 truncated", "not a readable .npz archive"),
], ids=["zero-bytes", "npy", "corrupt-zip"])
def test_unreadable_data_file_exits_2(biased, tmp_path, content, expected):
    data = tmp_path / "data.npz"
    if content is None:
        np.save(tmp_path / "x.npy", np.zeros(3))
        data = tmp_path / "x.npy"
    else:
        data.write_bytes(content)
    code, message = _gate(dict(biased, data=data), tmp_path / "out", "--limits",
                          _write(tmp_path / "l.yaml", FAILING_LIMITS))
    assert code == 2 and f"{data}: {expected}" in message, message


def test_column_too_big_is_refused_before_decompression_naming_file_and_column(biased, tmp_path, monkeypatch):
    monkeypatch.setattr(npz_module, "MAX_COLUMN_BYTES", 4096)
    code, message = _gate(biased, tmp_path / "out", "--limits", _write(tmp_path / "l.yaml", FAILING_LIMITS))
    assert code == 2 and f"{biased['data']}: column `ids` holds" in message, message
    assert "was not loaded" in message


def test_member_larger_than_its_header_declares_is_corrupt(biased, tmp_path):
    # a zip directory that promises far more bytes than the .npy header declares: refused unread
    data = tmp_path / "data.npz"
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in _columns(biased["data"]).items():
            with archive.open(f"{name}.npy", "w") as handle:
                np.lib.format.write_array(handle, value, allow_pickle=False)
                if name == "split":
                    handle.write(b"\0" * (1 << 20))   # 1 MiB the header does not declare
    with pytest.raises(InputError, match=r"column `split` is corrupt: its header declares"):
        load_eval_data(data)


def test_wrong_row_count_is_refused_before_the_column_is_read(tmp_path):
    data = make_data()
    path = save_eval_data(data, tmp_path / "data.npz")
    columns = _columns(path) | {"group__male": np.zeros(5, dtype=np.uint8)}
    with pytest.raises(InputError, match=r"`group__male` has shape \(5,\) but `ids` has 2200 rows"):
        load_eval_data(_savez(path, columns))


def test_unknown_prediction_column_exits_2(biased, tmp_path):
    student = _savez(tmp_path / "student.npz", _columns(biased["student_0"]) | {"labels": np.zeros(1600)})
    code, message = _gate(dict(biased, student_0=student), tmp_path / "out", "--limits",
                          _write(tmp_path / "l.yaml", FAILING_LIMITS))
    assert code == 2 and f"{student}: unknown column(s) `labels`" in message, message


def test_gate_allow_column_keeps_named_extra_columns_unread(biased, tmp_path):
    data = _savez(tmp_path / "data.npz", _columns(biased["data"]) | {"notes": np.zeros(2200)})
    student = _savez(tmp_path / "student.npz", _columns(biased["student_0"]) | {"notes": np.zeros(1600)})
    files = dict(biased, data=data, student_0=student)
    limits = _write(tmp_path / "l.yaml", FAILING_LIMITS)
    code, message = _gate(files, tmp_path / "refused", "--limits", limits)
    assert code == 2 and "unknown column(s) `notes`" in message, message
    code, message = _gate(files, tmp_path / "judged", "--limits", limits, "--allow-column", "notes")
    assert code == 1, message             # judged (the biased student fails its BA limit), not rejected


def test_ba_without_group_columns_says_so(tmp_path):
    data = make_data()
    data_path = tmp_path / "data.npz"
    columns = _columns(save_eval_data(data, data_path))
    _savez(data_path, {k: v for k, v in columns.items() if not k.startswith("group__")})
    rows = data.mask("calib", "test")
    scores = (1 / (1 + np.exp(-teacher_logits(data)[rows]))).astype(np.float32)
    teacher = save_predictions(tmp_path / "t.npz", data.ids[rows], scores)
    code, message = _invoke(["gate", "--data", data_path, "--teacher", teacher, "--student", teacher,
                             "--out", tmp_path / "out", "--limits", _write(tmp_path / "l.yaml", FAILING_LIMITS)])
    assert code == 1, message
    assert "no identity group column" in message and "no positive prediction" not in message


# --- gate: ONNX models -----------------------------------------------------------------------
def _model(path: Path, kind: str) -> Path:
    """(N, 1, 2, 2) -> Flatten -> MatMul (4, 3) -> Sigmoid; ``kind`` breaks it on purpose."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[2.0, -1.0, 0.5], [-1.0, 2.0, 0.0], [0.5, 0.5, -2.0], [0.0, -1.0, 2.0]], np.float32)
    nodes, inits = [], [numpy_helper.from_array(weights, "W")]
    source = "input"
    if kind == "int64":
        nodes.append(helper.make_node("Cast", ["input"], ["as_float"], to=TensorProto.FLOAT))
        source = "as_float"
    nodes += [helper.make_node("Flatten", [source], ["flat"], axis=1),
              helper.make_node("MatMul", ["flat", "W"], ["logits"])]
    if kind == "nan":
        inits.append(numpy_helper.from_array(np.zeros((1, 3), np.float32), "zero"))
        nodes += [helper.make_node("Mul", ["logits", "zero"], ["zeros"]),
                  helper.make_node("Div", ["zeros", "zero"], ["scores"])]
    elif kind == "logits":
        nodes.append(helper.make_node("Identity", ["logits"], ["scores"]))
    else:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["scores"]))
    elem = TensorProto.INT64 if kind == "int64" else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("input", elem, ["batch", 1, 2, 2])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
                              initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


@pytest.fixture(scope="module")
def data_with_inputs(tmp_path_factory):
    data = make_data()
    inputs = np.random.default_rng(0).standard_normal((data.n_samples, 1, 2, 2)).astype(np.float32)
    return save_eval_data(dataclasses.replace(data, inputs=inputs), tmp_path_factory.mktemp("d") / "data.npz")


@pytest.mark.parametrize("kind, expected", [
    ("int64", "the model's input 'input' has dtype int64; the tool feeds float32"),
    ("nan", "the model produced non-finite scores for"),
    ("logits", "the model's output 'scores' is not probabilities in [0, 1]"),
], ids=["int64-input", "nan-output", "logits-output"])
def test_bad_student_model_exits_2_naming_the_model(data_with_inputs, tmp_path, kind, expected):
    teacher, student = _model(tmp_path / "teacher.onnx", "ok"), _model(tmp_path / "student.onnx", kind)
    code, message = _invoke(["gate", "--data", data_with_inputs, "--teacher-model", teacher, "--student-model",
                             student, "--out", tmp_path / "out", "--limits",
                             _write(tmp_path / "l.yaml", FAILING_LIMITS)])
    assert code == 2, message
    assert f"{student}: {expected}" in message, message
    assert "predictions/" not in message        # never blamed on a predictions file that does not exist


@pytest.mark.parametrize("kind, expected", [
    ("int64", "has dtype int64"), ("directory", "is a directory"), ("junk", "not a valid ONNX model"),
])
def test_bench_refuses_bad_models_with_exit_2(tmp_path, kind, expected):
    if kind == "directory":
        model = tmp_path / "m.onnx"
        model.mkdir()
    elif kind == "junk":
        model = _write(tmp_path / "m.onnx", os.urandom(256))
    else:
        model = _model(tmp_path / "m.onnx", kind)
    code, message = _invoke(["bench", model, "--engine", "onnxruntime", "--iterations", "1", "--warmup", "0"])
    assert code == 2 and f"{model}: " in message and expected in message, message


# --- predict -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.mark.parametrize("case, expected", [
    ("zero-bytes", "the file is empty (0 bytes)"),
    ("npy", "not an .npz archive (a single .npy array)"),
    ("directory", "is a directory"),
    ("duplicate-ids", "ids must be unique, one per sample: 1 id(s) repeat, e.g. 's1' (rows [1, 2])"),
    ("int64-pixels", "inputs have dtype int64; this model takes float32"),
    ("misspelled-ids", "`IDs` (did you mean `ids`?)"),
])
def test_predict_bad_inputs_exit_2(bundle, tmp_path, case, expected):
    path = tmp_path / "x.npz"
    x = bundle_inputs(4)
    if case == "zero-bytes":
        path.write_bytes(b"")
    elif case == "npy":
        path = tmp_path / "x.npy"
        np.save(path, x)
    elif case == "directory":
        path.mkdir()
    elif case == "duplicate-ids":
        np.savez(path, inputs=x, ids=np.array(["s0", "s1", "s1", "s3"]))
    elif case == "int64-pixels":
        np.savez(path, inputs=(x * 100).astype(np.int64))
    else:
        np.savez(path, inputs=x, IDs=np.array(["s0", "s1", "s2", "s3"]))
    out = tmp_path / "preds.npz"
    code, message = _invoke(["predict", bundle, path, "--out", out])
    assert code == 2 and expected in message, message
    assert case in ("duplicate-ids", "int64-pixels") or f"{path}: " in message
    assert not out.exists()


# --- run: the recipe -----------------------------------------------------------------------------
RECIPE_CASES = [
    ("zero-bytes", lambda p: _write(p, ""), ["is empty", "compress-gate init"]),
    ("duplicate-section", lambda p: _write(p, write_recipe(p).read_text() + "seed: 4\n"),
     ["`seed` appears twice", "line 1"]),
    ("seed-true", lambda p: write_recipe(p, seed=True), ["`seed` = True is a boolean"]),
    ("distillation-int", lambda p: write_recipe(p, compression={"recipe": SPARSEML, "distillation": 1}),
     ["`compression.distillation` = 1", "true or false"]),
    ("epochs-string", lambda p: write_recipe(p, model={"arch": "resnet", "train": {"epochs": "1"}}),
     ["`model.train.epochs` = '1' is a string"]),
    ("sparseml-duplicate", lambda p: write_recipe(p, compression={"recipe": SPARSEML + "version: 2\n"}),
     ["SparseML recipe in `compression.recipe`", "`version` appears twice"]),
    ("unknown-key-cites-docs", lambda p: write_recipe(p, export={"opsett": 13}),
     ["unknown key `export.opsett`", "docs/recipe.md"]),
    ("data-key-cites-docs", lambda p: write_recipe(p, data={"kind": "demo", "image_size": "8"}),
     ["`data.image_size` = '8' is a string", "docs/data.md"]),
    ("synthetic-size-string", lambda p: write_recipe(p, data={"kind": "synthetic", "n_test": "20000"}),
     ["`data.n_test` = '20000' is a string"]),
    ("torch-sparsity-string", lambda p: write_recipe(p, compression={
        "backend": "torch", "epochs": 2, "pruning": {"params": ["re:.*"], "final_sparsity": "0.9",
                                                     "end_epoch": 1, "update_frequency": 0.5}}),
     ["`compression.pruning.final_sparsity` = '0.9' is a string"]),
    ("torch-epochs-bool", lambda p: write_recipe(p, compression={"backend": "torch", "epochs": True,
                                                                  "distillation": {}}),
     ["`compression.epochs` = True is a boolean"]),
]


@pytest.mark.parametrize("make, expected", [c[1:] for c in RECIPE_CASES], ids=[c[0] for c in RECIPE_CASES])
def test_bad_recipe_exits_2_before_anything_runs(tmp_path, make, expected):
    recipe = make(tmp_path / "recipe.yaml")
    code, message = _invoke(["run", recipe])
    assert code == 2, message
    assert str(recipe) in message
    for part in expected:
        assert part in message, (part, message)
    assert "README.md, 'Recipe reference'" not in message
    assert not (tmp_path / "runs").exists()


def test_recipe_path_that_is_a_directory_is_named_as_such(tmp_path):
    code, message = _invoke(["run", tmp_path])
    assert code == 2 and f"{tmp_path}: is a directory, not a recipe file" in message, message


@needs_torch
def test_random_bytes_checkpoint_is_not_a_valid_checkpoint(tmp_path):
    from compress_gate.models.fit import read_state_dict

    junk = _write(tmp_path / "teacher.pt", os.urandom(512))
    with pytest.raises(InputError) as info:
        read_state_dict(junk, "teacher checkpoint")
    message = str(info.value)
    assert message.startswith(f"{junk}: not a valid teacher checkpoint")
    assert "weights_only=False" not in message


# --- property: random limits documents never pass a gate with a failing limit ---------------------
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 50), st.floats(-1.0, 2.0, allow_nan=False),
                     st.sampled_from(["0.1", "true", "", "ba", "upper", "1e-3", "null"]))
_KEYS = st.sampled_from(["metric", "change", "max", "min", "bound", "name", "limits", "gate", "confidence",
                         "n_resamples", "seed", "judge", "mitigation", "calibrate_thresholds", "Limits", "x"])
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=6)
_FAILING = {"metric": "ba", "change": "absolute", "max": 0.03, "name": "worst BA increase"}


_VALID_TOP = st.fixed_dictionaries({}, optional={
    "confidence": st.floats(0.5, 0.99), "seed": st.integers(0, 5), "judge": st.sampled_from(["raw", "mitigated"]),
    "mitigation": st.fixed_dictionaries({}, optional={"calibrate_thresholds": st.booleans(),
                                                      "override_budget": st.floats(0.0, 0.05)})})
_VALID_LIMIT = st.fixed_dictionaries({"metric": st.sampled_from(["accuracy", "fpr", "cev", "subgroup_fnr"]),
                                      "max": st.floats(0.0, 1e3)})


@st.composite
def limits_documents(draw) -> str:
    """A limits document that holds the failing BA limit, with valid or random siblings, keys and damage."""
    others = draw(st.lists(st.one_of(_VALID_LIMIT, st.dictionaries(_KEYS, _VALUES, max_size=4)), max_size=2))
    top = draw(st.one_of(_VALID_TOP, st.dictionaries(
        _KEYS.filter(lambda k: k not in ("limits", "gate", "n_resamples")), _VALUES, max_size=3)))
    doc = {**top, "n_resamples": draw(st.sampled_from([0, 5, 200])), "limits": [_FAILING, *others]}
    if draw(st.booleans()):
        doc = {"gate": doc}
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=draw(st.sampled_from([None, False])))
    damage = draw(st.sampled_from(["none", "none", "truncate", "append-duplicate", "append-key",
                                   "bom-and-comment"]))
    if damage == "truncate":   # a file cut anywhere: before the failing limit it must not pass either
        text = text[:draw(st.integers(0, len(text)))]
    elif damage == "append-duplicate":
        text += "limits: []\n" if "gate" not in doc else "gate: {limits: []}\n"
    elif damage == "append-key":
        text += yaml.safe_dump({draw(_KEYS): draw(_VALUES)})
    elif damage == "bom-and-comment":
        text = "\ufeff# limits\n" + text
    return text


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=limits_documents())
def test_random_limits_documents_never_pass_a_failing_gate(biased, tmp_path_factory, text):
    work = tmp_path_factory.mktemp("fuzz")
    limits = _write(work / "limits.yaml", text)
    code, message = _gate(biased, work / "out", "--limits", limits)
    assert code in (1, 2), (code, text, message)
    if code == 2:
        assert str(limits) in message, message


# --- the pieces, pinned ---------------------------------------------------------------------------
def test_strict_loader_refuses_duplicates_on_one_line_and_allows_merge_overrides():
    from compress_gate.config._load import DuplicateKeyError, StrictLoader

    with pytest.raises(DuplicateKeyError, match=r"the key `a` appears twice in one mapping \(line 1 and line 1\)"):
        yaml.load("{a: 1, b: 2, a: 3}", Loader=StrictLoader)  # noqa: S506
    merged = yaml.load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n", Loader=StrictLoader)  # noqa: S506
    assert merged["other"] == {"x": 3, "y": 2}


@pytest.mark.parametrize("name, expected", [
    ("group_male", "group__male"), ("Group__male", "group__male"), ("groups-young", "group__young"),
    ("GRP_old", "group__old"), ("Labels", "labels"), ("split_", "split"), ("IDS", "ids"), ("notes", None),
])
def test_suggested_column_names(name, expected):
    from compress_gate.data._columns import EVAL_COLUMNS, suggest_column

    assert suggest_column(name, EVAL_COLUMNS, groups=True) == expected


@pytest.mark.parametrize("text, value", [("1e3", 1000.0), ("1.5e3", 1500.0), ("1.e3", 1000.0), (".5e1", 5.0),
                                         ("-2.5E-2", -0.025), ("1.0e+3", 1000.0)])
def test_floats_with_an_exponent_are_numbers_as_in_yaml_1_2(text, value):
    from compress_gate.config._load import StrictLoader

    assert yaml.load(f"x: {text}", Loader=StrictLoader) == {"x": value}  # noqa: S506


def test_int_as_exponent_is_not_called_a_fraction(biased, tmp_path):
    limits = _write(tmp_path / "l.yaml", "n_resamples: 1e3\nlimits: []\n")
    code, message = _gate(biased, tmp_path / "out", "--limits", limits)
    assert code == 2 and "a number with a fraction" not in message, message


@pytest.mark.parametrize("error, advice", [
    ("Unable to allocate 1.64 GiB for an array with shape (2200,) and data type <U200000",
     "a string column (ids, most likely) is too wide"),
    ("Unable to allocate 8.00 GiB for an array with shape (1000, 1000000) and data type float64",
     "shard the eval data and predictions"),
], ids=["long-id", "numbers"])
def test_out_of_memory_advises_the_fix_for_what_did_not_fit(biased, tmp_path, monkeypatch, error, advice):
    def out_of_memory(**_):
        raise MemoryError(error)
    monkeypatch.setattr("compress_gate.pipeline.gate.run_gate", out_of_memory)
    code, message = _gate(biased, tmp_path / "out")
    assert code == 3 and error in message and advice in message, message
    assert ("n_resamples" in message) == (advice != "a string column (ids, most likely) is too wide")
