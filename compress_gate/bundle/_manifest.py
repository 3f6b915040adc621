"""The bundle manifest: SHA-256 of every file, dependency versions, and a self-checksum.

``manifest.json`` lists every other file of a bundle with its SHA-256 and size. It
cannot hold its own digest, so it carries ``manifest_sha256``: the SHA-256 of its own
canonical serialization (sorted keys, two-space indent, trailing newline) without that
key. Verification reads the file, requires its bytes to *be* that canonical form (so a
changed byte anywhere, even in whitespace, is caught), recomputes the self-checksum,
then re-hashes every listed file and refuses unlisted ones.

Checksums detect corruption and accidental edits; they are not signatures (whoever
can rewrite the files can rewrite the manifest too).
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from compress_gate.errors import InputError

__all__ = ["MANIFEST_NAME", "sha256_file", "dependency_versions", "manifest_bytes", "verify_bundle"]

MANIFEST_NAME = "manifest.json"
_SELF_KEY = "manifest_sha256"
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dependency_versions() -> dict[str, str]:
    """Python's version and the version of every distribution installed beside compress-gate.

    Every installed distribution is recorded (not only the direct dependencies), so the
    manifest pins the whole environment the model was judged in. Names are lower-cased.
    """
    versions = {"python": platform.python_version()}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            versions[name.lower()] = dist.version
    return dict(sorted(versions.items()))


def _canonical(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def manifest_bytes(bundle_dir: str | Path, fields: dict[str, Any]) -> bytes:
    """The manifest of ``bundle_dir``: ``fields`` plus ``files`` and the self-checksum.

    ``files`` maps every regular file in ``bundle_dir`` except the manifest itself to
    ``{"sha256": hex, "bytes": size}``. Sub-directories are refused (bundles are flat).
    """
    bundle_dir = Path(bundle_dir)
    files = {}
    for path in sorted(bundle_dir.iterdir()):
        if path.name == MANIFEST_NAME:
            continue
        if not path.is_file():
            raise ValueError(f"{path}: a release bundle holds plain files only")
        files[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    body = {**fields, "files": files}
    body.pop(_SELF_KEY, None)
    return _canonical({**body, _SELF_KEY: hashlib.sha256(_canonical(body)).hexdigest()})


def verify_bundle(bundle_dir: str | Path) -> dict[str, Any]:
    """Check every checksum of the bundle in ``bundle_dir`` and return its manifest.

    Raises
    ------
    InputError
        Naming the file: the directory or ``manifest.json`` is missing or not canonical,
        the self-checksum differs, a listed file is missing or its SHA-256/size differs,
        or a file is present that the manifest does not list.
    """
    bundle_dir = Path(bundle_dir)
    manifest_path = bundle_dir / MANIFEST_NAME
    if not bundle_dir.is_dir():
        raise InputError(f"{bundle_dir}: not a release bundle directory. Pass the `release/` "
                         "directory that `compress-gate run` wrote.")
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path}: missing. A release bundle without its manifest cannot be "
                         "verified; use the complete `release/` directory.")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{manifest_path}: not valid JSON ({err}); the bundle was modified. "
                         "Re-run `compress-gate run` or restore the bundle from its source.") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise InputError(f"{manifest_path}: not a compress-gate manifest (no `files` mapping).")
    body = {k: v for k, v in manifest.items() if k != _SELF_KEY}
    if raw != _canonical(manifest) or manifest.get(_SELF_KEY) != hashlib.sha256(_canonical(body)).hexdigest():
        raise InputError(f"{manifest_path}: checksum mismatch; the manifest was modified after the "
                         "bundle was written. Do not use this bundle; restore it from its source.")
    listed = manifest["files"]
    for name, entry in listed.items():
        path = bundle_dir / name
        if not path.is_file():
            raise InputError(f"{path}: listed in the manifest but missing from the bundle.")
        if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            raise InputError(f"{path}: SHA-256 checksum mismatch with {MANIFEST_NAME}; the file was "
                             "modified after the bundle was written. Do not use this bundle.")
    extra = sorted(p.name for p in bundle_dir.iterdir() if p.name != MANIFEST_NAME and p.name not in listed)
    if extra:
        raise InputError(f"{bundle_dir / extra[0]}: not listed in {MANIFEST_NAME}; a bundle holds exactly "
                         "the files its manifest lists. Remove the file or restore the bundle.")
    return manifest
