"""The compatibility shims: each breakage is reproduced in a fresh interpreter without them.

One probe script runs twice, concurrently, in fresh interpreters: once as the
pinned stack ships (no shims) and once after ``apply_compat()``. The network is
cut inside the probe (``socket.getaddrinfo`` raises and records the host), so
the no-shim run proves an attempt without making one.
"""

import json
import os
import subprocess
import sys

import pytest

from _worlds import needs_sparseml

pytestmark = needs_sparseml

PROBE = r"""
import json, os, socket, sys, tempfile
attempts = []
def _no_network(*args, **kwargs):
    attempts.append(str(args[0]) if args else "?")
    raise OSError("network disabled by the test")
socket.getaddrinfo = _no_network
socket.create_connection = _no_network
os.environ.pop("NM_DISABLE_ANALYTICS", None)
if sys.argv[1] == "shim":
    from compress_gate.compress import apply_compat
    apply_compat()
    apply_compat()  # idempotent
out = {}
import sparseml.pytorch.optim  # builds SparseML's and SparseZoo's analytics clients
out["network_attempts"] = attempts
try:
    from sparseml.pytorch.sparsification.quantization.quantization_scheme import QuantizationScheme
    qconfig = QuantizationScheme.deepsparse().get_wrapper_qconfig()
    out["qconfig"] = "ok:" + qconfig.quantization_scheme.target_hardware
except Exception as err:
    out["qconfig"] = f"{type(err).__name__}: {err}"
import torch
from sparseml.pytorch.utils import ModuleExporter
try:
    with tempfile.TemporaryDirectory() as folder:
        ModuleExporter(torch.nn.Linear(4, 2), folder).export_onnx(torch.zeros(1, 4), name="m.onnx")
        out["export"] = "ok:" + str(os.path.getsize(os.path.join(folder, "m.onnx")))
except Exception as err:
    out["export"] = f"{type(err).__name__}: {err}"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def probes():
    env = {k: v for k, v in os.environ.items() if k != "NM_DISABLE_ANALYTICS"}
    runs = {mode: subprocess.Popen([sys.executable, "-c", PROBE, mode], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
            for mode in ("plain", "shim")}
    results = {}
    for mode, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr[-2000:]
        results[mode] = json.loads(stdout.strip().splitlines()[-1])
    return results


def test_qconfig_attribute_breaks_without_shim(probes):
    assert probes["plain"]["qconfig"] == "AttributeError: 'QConfig' object has no attribute 'quantization_scheme'"


def test_qconfig_shim_lets_sparseml_attach_its_scheme(probes):
    assert probes["shim"]["qconfig"] == "ok:deepsparse"


def test_module_exporter_uses_dynamo_without_shim(probes):
    # torch 2.13 defaults to dynamo=True, which needs onnxscript (not installed)
    assert probes["plain"]["export"] == "ModuleNotFoundError: No module named 'onnxscript'"


def test_module_exporter_exports_with_shim(probes):
    assert probes["shim"]["export"].startswith("ok:")
    assert int(probes["shim"]["export"][3:]) > 0


def test_analytics_reach_for_the_network_without_shim(probes):
    # SparseZoo's GDPR check looks up the machine's country online unless analytics are disabled
    assert probes["plain"]["network_attempts"]


def test_no_network_attempt_with_shim(probes):
    assert probes["shim"]["network_attempts"] == []


def test_apply_compat_sets_env_and_is_idempotent():
    import torch

    from compress_gate.compress import apply_compat

    apply_compat()
    export = torch.onnx.export
    apply_compat()
    assert torch.onnx.export is export  # not wrapped twice
    assert os.environ["NM_DISABLE_ANALYTICS"] == "1"


def test_export_shim_defaults_to_torchscript_but_keeps_an_explicit_choice():
    from compress_gate.compress import compat

    seen = []
    shim = compat._dynamo_default(lambda *args, **kwargs: seen.append(kwargs["dynamo"]))
    shim(None)
    shim(None, dynamo=True)
    assert seen == [False, True]


def test_scheme_qconfig_survives_deepcopy():
    # SparseML's ModuleExporter deep-copies the QAT model; the scheme must come along
    import copy

    from torch.ao.quantization import QConfig

    from compress_gate.compress import apply_compat

    apply_compat()
    from sparseml.pytorch.sparsification.quantization.quantization_scheme import QuantizationScheme

    qconfig = QuantizationScheme.deepsparse().get_qconfig()
    clone = copy.deepcopy(qconfig)
    assert isinstance(clone, QConfig)
    assert clone.quantization_scheme == qconfig.quantization_scheme
    assert (clone.activation, clone.weight) != (None, None)
