"""The machine a benchmark or a run ran on: CPU model, cores, threads used, SIMD flags and instruction set,
versions."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
from functools import lru_cache
from typing import Any

from compress_gate.engines._base import default_num_threads

__all__ = ["machine_description", "cpu_flags", "instruction_set", "run_machine"]

#: /proc/cpuinfo flags that decide which kernels numerical libraries dispatch to (vector width, FMA,
#: int8 dot products, bf16, AMX; x86-64 and aarch64), so results may differ in the last bits between CPUs.
_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve")
_VERSIONED_PACKAGES = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "deepsparse", "openvino", "sparseml", "torch",
                       "torchvision", "timm", "torchao", "torch-pruning")


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str | None, frozenset[str]]:
    """(model name, flags) of the first processor in /proc/cpuinfo; (None, {}) elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None, frozenset()
    model, flags = None, frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return model, flags


def cpu_flags() -> dict[str, bool]:
    """The SIMD features that decide engine speed, from /proc/cpuinfo.

    ``vnni`` is AVX-512 VNNI or AVX-VNNI (int8 dot products); ``avx512`` is AVX-512F.
    """
    _, flags = _cpuinfo()
    return {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
        "amx": "amx_tile" in flags,
    }


def _numpy_features() -> list[str]:
    """The CPU features numpy's runtime dispatch found (numpy 1 and 2 keep them in different modules)."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return sorted(name for name, present in features.items() if present)
    return []


def instruction_set() -> dict[str, list[str]]:
    """The CPU's instruction-set extensions that decide which numerical kernels run.

    ``cpuinfo``: the flags of :data:`_ISA_FLAGS` this CPU reports in /proc/cpuinfo, sorted
    (``[]`` where there is no /proc/cpuinfo); ``numpy``: the features numpy's own dispatch
    detected (e.g. ``AVX2``, ``AVX512F``, ``AVX512_ICL``). ONNX Runtime, OpenVINO and torch
    pick their kernels from the same features: a float sum or an int8 dot product may
    differ in its last bits between an AVX2 and an AVX-512 VNNI machine.
    """
    _, flags = _cpuinfo()
    return {"cpuinfo": sorted(flags & set(_ISA_FLAGS)), "numpy": _numpy_features()}


def run_machine() -> dict[str, Any]:
    """What ``run.json`` records about the machine: ``cpu_model``, ``instruction_set`` (:func:`instruction_set`),
    ``platform``, ``python`` and the ``versions`` of the packages that compute the numbers (``None``: not
    installed). No package is imported but numpy."""
    model, _ = _cpuinfo()
    return {"cpu_model": model or platform.processor() or platform.machine(),
            "instruction_set": instruction_set(), "platform": platform.platform(),
            "python": platform.python_version(),
            "versions": {package: _version(package) for package in _VERSIONED_PACKAGES}}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_description(num_threads: int | None = None) -> dict[str, Any]:
    """A JSON-able description of this machine for benchmark results.

    Keys: ``cpu_model``, ``logical_cpus``, ``physical_cores``, ``usable_cpus``
    (this process's affinity), ``threads_used`` (``num_threads`` or the usable CPUs),
    ``flags`` (:func:`cpu_flags`), ``memory_gb``, ``load_average_1m`` (other work
    competing for the CPUs when the benchmark started), ``platform``, ``python`` and
    ``versions`` of the packages that matter (``None`` when not installed). No
    package is imported.
    """
    import psutil

    model, _ = _cpuinfo()
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cpus": default_num_threads(),
        "threads_used": num_threads or default_num_threads(),
        "flags": cpu_flags(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in _VERSIONED_PACKAGES},
    }
