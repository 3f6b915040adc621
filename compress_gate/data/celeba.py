"""CelebA in its own folder layout -> :class:`EvalData` (multi-label).

The layout (as distributed, and as torchvision's download leaves it under ``celeba/``)::

    <root>/img_align_celeba/000001.jpg ...
    <root>/list_attr_celeba.txt       line 1: image count; line 2: the 40 attribute names;
                                      then "<file> v1 ... v40", values -1 (no) or 1 (yes)
    <root>/list_eval_partition.txt    "<file> p", p = 0 train, 1 valid, 2 test

Partition 1 (``valid``) becomes the ``calib`` split. Ids are the file names
(``000001.jpg``). Attribute values map -1 -> 0, 1 -> 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress_gate.config.data import CelebADataConfig
from compress_gate.data._build import build_eval_data
from compress_gate.data._images import Progress
from compress_gate.data.image_files import ImageTransform, open_image_files
from compress_gate.data.contract import SPLITS, EvalData
from compress_gate.errors import InputError

__all__ = ["load_celeba", "CELEBA_IMAGE_DIR", "CELEBA_ATTR_FILE", "CELEBA_PARTITION_FILE"]

CELEBA_IMAGE_DIR = "img_align_celeba"
CELEBA_ATTR_FILE = "list_attr_celeba.txt"
CELEBA_PARTITION_FILE = "list_eval_partition.txt"
_PARTITIONS = {"0": "train", "1": "calib", "2": "test"}


def load_celeba(config: CelebADataConfig, *, base_dir: Path = Path("."),
                progress: Progress | None = None) -> EvalData:
    """Read the attributes, partitions and images of a CelebA folder.

    Parameters
    ----------
    config : CelebADataConfig
        ``root`` (relative to ``base_dir``), ``targets``, ``groups``, ``image_size``,
        ``crop_size``, ``max_samples_per_split``, ``seed``.
    base_dir : Path
        Folder that a relative ``root`` is resolved against (the recipe's folder).
    progress : callable, default=None
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    EvalData
        ``task = "multilabel"``, ``labels`` (N, len(targets)) 0/1, one group per name
        in ``groups``, ``inputs`` an :class:`~compress_gate.data.ImageFiles` (N, 3, image_size,
        image_size) decoded on access to float32 in [-1, 1] (``on_bad_image: skip``: the
        rows of bad images left out, listed in ``skipped``).
        Rows in the order of ``list_attr_celeba.txt``. With ``max_samples_per_split``,
        each partition keeps a seeded random subset of that size (all rows if smaller).

    Raises
    ------
    InputError
        Missing folder or file, a malformed line, a value other than -1/1, an unknown
        attribute name, an image without a partition, a partition other than 0/1/2,
        or a missing, unreadable or wrong-mode image; the message names the file and line.
    """
    root = _find_root(config.root if config.root.is_absolute() else base_dir / config.root)
    names, files, values = _read_attributes(root / CELEBA_ATTR_FILE)
    split = _read_partitions(root / CELEBA_PARTITION_FILE, files)
    columns = {name: j for j, name in enumerate(names)}
    for key, wanted in (("targets", config.targets), ("groups", config.groups)):
        unknown = [name for name in wanted if name not in columns]
        if unknown:
            raise InputError(f"{root / CELEBA_ATTR_FILE}: `data.{key}` names {unknown}, which are not "
                             f"attributes of this file. Valid names (case-sensitive): {', '.join(names)}.")
    rows = _select_rows(split, config.max_samples_per_split, config.seed)
    inputs, keep, skipped = open_image_files(
        [root / CELEBA_IMAGE_DIR / files[i] for i in rows], files[rows],
        transform=ImageTransform(config.image_size, channels=3, crop_size=config.crop_size),
        workers=config.workers, on_bad_image=config.on_bad_image, progress=progress)
    rows = rows[keep]
    binary = (values[rows] > 0).astype(np.uint8)
    labels = binary[:, [columns[name] for name in config.targets]]
    groups = {name: binary[:, columns[name]] for name in config.groups}
    return build_eval_data(ids=files[rows], labels=labels, split=split[rows], groups=groups,
                           attribute_names=tuple(config.targets), task="multilabel", inputs=inputs,
                           source=str(root), skipped=skipped)


def _find_root(root: Path) -> Path:
    """``root``, or ``root/celeba`` (torchvision's layout) when only that holds the files."""
    for candidate in (root, root / "celeba"):
        if (candidate / CELEBA_ATTR_FILE).is_file():
            break
    else:
        raise InputError(f"{root}: no {CELEBA_ATTR_FILE} here (nor in {root / 'celeba'}). Set "
                         f"`data.root` to the folder holding {CELEBA_IMAGE_DIR}/, {CELEBA_ATTR_FILE} "
                         f"and {CELEBA_PARTITION_FILE} (relative paths start at the recipe's folder).")
    for name in (CELEBA_IMAGE_DIR, CELEBA_PARTITION_FILE):
        if not (candidate / name).exists():
            raise InputError(f"{candidate}: {name} is missing. A CelebA folder holds "
                             f"{CELEBA_IMAGE_DIR}/, {CELEBA_ATTR_FILE} and {CELEBA_PARTITION_FILE}; "
                             "unpack the missing part there.")
    return candidate


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the file ({err}).") from err


def _read_attributes(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(attribute names, (n,) file names, (n, K) int8 values in {-1, 1})."""
    lines = _read_lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise InputError(f"{path}: line 1 must be the number of images and line 2 the attribute "
                         f"names (CelebA's header), got {lines[:1]!r}. Use the original "
                         f"{CELEBA_ATTR_FILE}.")
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    bad = next((i for i, parts in enumerate(rows) if len(parts) != len(names) + 1), None)
    if bad is not None:
        raise InputError(f"{path}: line {_line_number(lines, bad)} has {len(rows[bad]) - 1} values "
                         f"but line 2 names {len(names)} attributes. Every line is "
                         "`<file> v1 ... vK`; fix or remove that line.")
    if int(lines[0]) != len(rows):
        raise InputError(f"{path}: line 1 says {int(lines[0])} images but {len(rows)} lines follow. "
                         "The file is truncated or edited; restore the original, or fix line 1.")
    if not rows:
        raise InputError(f"{path}: no image lines after the header; the data set is empty.")
    files = np.array([parts[0] for parts in rows])
    try:
        values = np.array([parts[1:] for parts in rows], dtype=np.int8)
        valid = bool(np.isin(values, (-1, 1)).all())
    except (ValueError, OverflowError):
        valid = False
    if not valid:
        i, j = next((i, j) for i, parts in enumerate(rows) for j, value in enumerate(parts[1:])
                    if value.lstrip("+") not in ("1", "-1"))
        raise InputError(f"{path}: attribute {names[j]} of {files[i]} (line "
                         f"{_line_number(lines, i)}) is {rows[i][j + 1]!r}; CelebA values are -1 or 1. "
                         "Fix that value.")
    uniq, counts = np.unique(files, return_counts=True)
    if uniq.size != files.size:
        raise InputError(f"{path}: {uniq[counts > 1][:5].tolist()} appear on more than one line. "
                         "List each image once.")
    return names, files, values


def _line_number(lines: list[str], row: int) -> int:
    """1-based line number of the ``row``-th non-blank data line (after the 2 header lines)."""
    seen = -1
    for number, line in enumerate(lines[2:], start=3):
        seen += bool(line.strip())
        if seen == row:
            return number
    return len(lines)


def _read_partitions(path: Path, files: np.ndarray) -> np.ndarray:
    """(n,) split names for ``files`` from ``list_eval_partition.txt``."""
    partition: dict[str, str] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in _PARTITIONS:
            raise InputError(f"{path}: line {number} is {line.strip()!r}; each line is `<file> p` with "
                             "p = 0 (train), 1 (valid, used as calib) or 2 (test). Fix that line.")
        partition[parts[0]] = _PARTITIONS[parts[1]]
    missing = [name for name in files.tolist() if name not in partition]
    if missing:
        raise InputError(f"{path}: {len(missing)} image(s) of {CELEBA_ATTR_FILE} have no partition, "
                         f"e.g. {missing[:5]}. Add a line `<file> 0|1|2` for each.")
    return np.array([partition[name] for name in files.tolist()], dtype="<U5")


def _select_rows(split: np.ndarray, max_per_split: int | None, seed: int) -> np.ndarray:
    """Row indices kept: all, or a seeded random ``max_per_split`` of each split, in file order."""
    if max_per_split is None:
        return np.arange(split.size)
    rng = np.random.default_rng(seed)
    kept = []
    for name in SPLITS:
        members = np.flatnonzero(split == name)
        if members.size > max_per_split:
            members = rng.choice(members, size=max_per_split, replace=False)
        kept.append(members)
    return np.sort(np.concatenate(kept))
