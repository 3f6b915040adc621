"""The gate's limits YAML: defaults, bound resolution, and one clear error per mistake."""

from __future__ import annotations

import pytest

from compress_gate.config.gate import GATED_METRICS, GateConfig, Limit, load_gate_config
from compress_gate.errors import InputError


def _load(tmp_path, text: str) -> GateConfig:
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    return load_gate_config(path)


def _error(tmp_path, text: str) -> str:
    with pytest.raises(InputError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_standalone_limits_file(tmp_path):
    config = _load(tmp_path, """
confidence: 0.9
n_resamples: 200
seed: 3
judge: raw
mitigation: {calibrate_thresholds: true, override_budget: 0.02}
limits:
  - {metric: accuracy, change: absolute, min: -0.02}
  - {metric: ba, change: absolute, max: 0.02, bound: point, name: worst BA increase}
  - {metric: cev, max: 50}
  - {metric: override_share, max: 0.05}
""")
    assert (config.confidence, config.n_resamples, config.seed, config.judge) == (0.9, 200, 3, "raw")
    assert config.mitigation.calibrate_thresholds and config.mitigation.override_budget == 0.02
    acc, ba, cev, share = config.limits
    assert (acc.direction, acc.value, acc.bound, acc.name) == ("min", -0.02, "lower",
                                                               "accuracy absolute change >= -0.02 (lower)")
    assert (ba.direction, ba.bound, ba.name) == ("max", "point", "worst BA increase")
    assert (cev.bound, cev.change) == ("upper", None)
    assert share.bound == "point"           # no interval for override_share


def test_recipe_gate_section_and_empty_file(tmp_path):
    config = _load(tmp_path, "model: {arch: resnet}\ngate:\n  limits:\n    - {metric: sde, max: 10}\n")
    assert [limit.metric for limit in config.limits] == ["sde"]
    empty = _load(tmp_path, "limits: []\n")   # a deliberate gate without limits: the defaults
    assert empty.limits == () and empty.judge == "thresholds" and empty.n_resamples == 1000
    assert not empty.mitigation.calibrate_thresholds and empty.mitigation.override_budget == 0.0
    for text in ("", "# only a comment\n", "null\n", "gate:\n"):   # issue 9: an empty file used to pass
        assert "is empty" in _error(tmp_path, text) and "limits: []" in _error(tmp_path, text)


def test_unknown_metric_lists_the_valid_ones(tmp_path):
    message = _error(tmp_path, "limits:\n  - {metric: bias, max: 0.1}\n")
    assert message.startswith(f"{tmp_path / 'limits.yaml'}: `limits[0].metric` = 'bias': Input should be "
                              "'accuracy', 'fpr'")
    for name in GATED_METRICS:
        assert repr(name) in message


def test_unknown_key_lists_the_valid_keys(tmp_path):
    message = _error(tmp_path, "gate:\n  limits:\n    - {metric: ba, max_increase: 0.1}\n")
    assert "unknown key `gate.limits[0].max_increase`. Valid keys here: bound, change, max, metric, min, name, unmeasured." \
        in message
    assert "unknown key `treshold`. Valid keys here: confidence, judge, limits, mitigation, n_resamples, seed." \
        in _error(tmp_path, "treshold: 1\n")


@pytest.mark.parametrize("limit, fragment", [
    ("{metric: ba}", "set exactly one of `max` or `min` for metric 'ba'"),
    ("{metric: ba, max: 1, min: 0}", "set exactly one of `max` or `min`"),
    ("{metric: cev, change: relative, max: 5}", "metric 'cev' does not take `change: relative`; allowed: absent"),
    ("{metric: engine_agreement, min: 0.99, bound: lower}", "metric 'engine_agreement' has no confidence interval"),
    ("{metric: fnr, change: percent, max: 5}", "`limits[0].change` = 'percent'"),
    ("{metric: fnr, max: .nan}", "`limits[0].max` = nan"),
    ("{metric: fnr, max: 1, bound: middle}", "`limits[0].bound` = 'middle'"),
])
def test_bad_limits(tmp_path, limit, fragment):
    assert fragment in _error(tmp_path, f"limits:\n  - {limit}\n")


def test_cross_field_checks(tmp_path):
    # too few resamples for the confidence: refused, naming the key and the minimum (issue 20, item 1)
    for text in ("n_resamples: 0\nlimits:\n  - {metric: ba, max: 0.1}\n",
                 "n_resamples: 3\nlimits:\n  - {metric: ba, max: 0.1, bound: point}\n",
                 "n_resamples: 199\nlimits:\n  - {metric: accuracy, change: absolute, min: -0.02}\n"):
        message = _error(tmp_path, text)
        assert "is too small for confidence 0.95" in message and "at least 200 resamples" in message, message
        assert "Set `n_resamples: 1000`" in message
    assert "at least 1000 resamples" in _error(tmp_path, "confidence: 0.99\nn_resamples: 999\n"
                                               "limits:\n  - {metric: ba, max: 0.1}\n")
    assert _load(tmp_path, "n_resamples: 200\nlimits:\n  - {metric: ba, max: 0.1}\n")
    # the optimistic end of the interval is refused (issue 20, item 2)
    message = _error(tmp_path, "limits:\n  - {metric: accuracy, change: absolute, min: -0.02, bound: upper}\n")
    assert "`bound: upper` on a `min` limit gates the optimistic end" in message and "`bound: lower`" in message
    assert _load(tmp_path, "n_resamples: 0\nlimits:\n  - {metric: override_share, max: 0.1}\n")  # no interval
    assert "limit names must be unique; repeated: ['x']" in _error(
        tmp_path, "limits:\n  - {metric: ba, max: 0.1, name: x}\n  - {metric: cev, max: 1, name: x}\n")
    assert "`mitigation.override_budget` = 1.5" in _error(tmp_path, "mitigation: {override_budget: 1.5}\n")
    assert "`confidence` = 1" in _error(tmp_path, "confidence: 1\n")
    assert "`gate` must be a mapping" in _error(tmp_path, "gate: [1, 2]\n")


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(InputError, match="no such limits file") as info:
        load_gate_config(tmp_path / "nope.yaml")
    assert "compress-gate init" not in str(info.value)   # init writes recipes, not limits files
    assert "malformed YAML" in _error(tmp_path, "limits: [\n")


def test_limit_is_frozen():
    limit = Limit(metric="ba", max=0.1)
    with pytest.raises(Exception):
        limit.max = 0.2  # type: ignore[misc]


def test_exponent_numbers_are_numbers_and_quoted_ones_are_not(tmp_path):
    # YAML 1.2 reads 1e-3 as a float (PyYAML alone would give the string "1e-3")
    config = _load(tmp_path, "limits:\n  - {metric: ba, change: absolute, max: 1e-3}\n")
    assert config.limits[0].value == 0.001
    assert "is a string" in _error(tmp_path, "limits:\n  - {metric: ba, change: absolute, max: '1e-3'}\n")


def test_docs_metric_table_is_the_registry():
    from pathlib import Path

    from compress_gate.config.gate import metric_table
    docs = (Path(__file__).parents[1] / "docs" / "gate.md").read_text(encoding="utf-8")
    assert metric_table() in docs


def test_every_member_metric_has_its_measure_and_no_other():
    from compress_gate.gate._measures import MEMBER_METRICS
    assert set(MEMBER_METRICS) == {m for m, spec in GATED_METRICS.items() if spec.source == "member"}
