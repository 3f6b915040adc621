"""The release bundle (DESIGN.md, "Release bundle") and the runtime that applies it."""

from compress_gate.bundle._files import predict_npz
from compress_gate.bundle._manifest import dependency_versions, sha256_file, verify_bundle
from compress_gate.bundle._runtime import BundlePrediction, GatedModel
from compress_gate.bundle._writer import RELEASE_FILES, REPORT_FILES, write_refusal, write_release

__all__ = [
    "BundlePrediction",
    "GatedModel",
    "RELEASE_FILES",
    "REPORT_FILES",
    "dependency_versions",
    "predict_npz",
    "sha256_file",
    "verify_bundle",
    "write_refusal",
    "write_release",
]
