"""Which installation a test needs. The core suite runs everywhere (`make test-core`: Python 3.13,
numpy 2, no torch); these marks skip a test, with the reason, where its extra is not installed.
Test modules that import torch at the top use ``pytest.importorskip`` instead."""

from __future__ import annotations

import importlib.util

import pytest


def _missing(*packages: str) -> list[str]:
    return [package for package in packages if importlib.util.find_spec(package) is None]


#: ``compress-gate run`` with the default (SparseML) backend, and SparseML itself.
needs_sparseml = pytest.mark.skipif(bool(_missing("torch", "sparseml")),
                                    reason="needs the [sparseml] extra (torch, SparseML): `make install`")

#: torch itself (teacher checkpoints, models), in both backend worlds.
needs_torch = pytest.mark.skipif(bool(_missing("torch")),
                                 reason="needs torch, in the [sparseml] or [torch] extra: `make install`")

#: DeepSparse's worker process (the crash and fallback tests fake the engine but not its install check).
needs_deepsparse = pytest.mark.skipif(bool(_missing("deepsparse")),
                                      reason="needs DeepSparse, in the [sparseml] extra: `make install`")

#: Ray (the [ray] extra): ``--backend ray`` and the local or two-node clusters of the Ray tests.
needs_ray = pytest.mark.skipif(bool(_missing("ray")), reason="needs Ray, the [ray] extra: `make install-ray`")
