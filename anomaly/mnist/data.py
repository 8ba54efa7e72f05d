"""Load MNIST from local files only: Keras's ``mnist.npz`` or the original IDX files.

Nothing here downloads: with no local copy the error says what to supply.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import data_dirs
from ..exceptions import InputError

NPZ_NAME = "mnist.npz"
#: The original file names, without the optional ``.gz``.
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: Share of a lone test set used for training when the training set is absent.
TEST_ONLY_TRAIN_SHARE = 0.8
_IDX_UBYTE = 0x08


@dataclass(frozen=True)
class MnistSplit:
    """Training and held-out digits as float32 images in [0, 1] with their labels.

    Attributes
    ----------
    train_images, test_images : ndarray of shape (n, 28, 28), float32 in [0, 1]
    train_labels, test_labels : ndarray of shape (n,), int
    source : str
        Where the digits came from.
    note : str
        How the split was made (says so when only the test set was present).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    note: str


def keras_cache_npz() -> Path:
    """Where Keras caches ``mnist.npz`` (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home) / "datasets" / NPZ_NAME


def default_locations() -> list[Path]:
    """Where :func:`load_mnist` looks without ``data``: the Keras cache, then data dirs."""
    return [keras_cache_npz()] + [directory / "mnist" for directory in data_dirs()]


def load_mnist(data: str | os.PathLike | None = None, *,
               search: list[Path] | None = None) -> MnistSplit:
    """Load MNIST and split it into training and held-out digits.

    Parameters
    ----------
    data : path, optional
        A Keras ``mnist.npz``, or a directory holding ``mnist.npz`` or the IDX files
        (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``).
    search : list of paths, optional
        Where to look without ``data`` (default :func:`default_locations`).

    Returns
    -------
    MnistSplit
        With training and test sets, train on train and hold out test. With only the
        test set, train on its first 80% (8,000 of 10,000) and hold out the rest.

    Raises
    ------
    InputError
        Nothing found (saying what to supply), or a file is malformed (naming it).
    """
    if data is not None:
        path = Path(data)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        found = _read_location(path)
        if found is None:
            raise InputError(f"{path}: no MNIST here; expected {NPZ_NAME} or the IDX files "
                             f"({IDX_NAMES['test_images']}[.gz] and its labels at least)")
        return _split(*found)
    locations = default_locations() if search is None else list(search)
    for location in locations:
        if location.exists():
            found = _read_location(location)
            if found is not None:
                return _split(*found)
    looked = ", ".join(str(location) for location in locations) or "nowhere"
    raise InputError(
        f"no MNIST data on this machine (looked in {looked}) and nothing is downloaded: "
        f"pass --data with a Keras {NPZ_NAME} or a directory of the IDX files "
        f"(train-/t10k-images-idx3-ubyte[.gz] and their labels)")


def _read_location(path: Path):
    """``(sets, source)`` from a file or directory, or None when it holds no MNIST."""
    if path.is_file():
        if path.suffix != ".npz":
            raise InputError(f"{path}: expected a Keras {NPZ_NAME} (or pass the directory "
                             "holding the IDX files)")
        return read_npz(path), str(path)
    if (path / NPZ_NAME).is_file():
        return read_npz(path / NPZ_NAME), str(path / NPZ_NAME)
    files = {key: _find_idx(path, name) for key, name in IDX_NAMES.items()}
    sets = {}
    for part in ("train", "test"):
        images, labels = files[f"{part}_images"], files[f"{part}_labels"]
        if (images is None) != (labels is None):
            missing = IDX_NAMES[f"{part}_labels" if images else f"{part}_images"]
            raise InputError(f"{images or labels}: found without its partner {missing}[.gz]")
        if images is not None:
            sets[part] = _checked_pair(read_idx(images), read_idx(labels), images, labels)
    if "test" not in sets:
        if "train" in sets:
            raise InputError(f"{path}: the training IDX files are here but not the test set "
                             f"({IDX_NAMES['test_images']}[.gz] and its labels)")
        return None
    return sets, f"IDX files in {path}"


def _find_idx(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file of unsigned bytes (gzip-compressed or raw) as a uint8 array.

    Raises
    ------
    InputError
        Naming the file: not IDX, not unsigned bytes, or truncated.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as error:
        raise InputError(f"{path}: cannot be read ({error})") from error
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != _IDX_UBYTE or not 1 <= ndim <= 3:
        raise InputError(f"{path}: expected IDX unsigned bytes of 1 to 3 dimensions, got type "
                         f"0x{dtype_code:02x} with {ndim} dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise InputError(f"{path}: expected {expected} data bytes for shape {shape}, "
                         f"got {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_npz(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Keras's ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path}: not a readable .npz archive ({error})") from error
    missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in arrays]
    if missing:
        raise InputError(f"{path}: missing array(s) {', '.join(missing)}; expected Keras's "
                         "mnist.npz with x_train, y_train, x_test, y_test")
    return {part: _checked_pair(arrays[f"x_{part}"], arrays[f"y_{part}"], path, path)
            for part in ("train", "test")}


def _checked_pair(images: np.ndarray, labels: np.ndarray, images_from, labels_from):
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{images_from}: expected images of 28 x 28 pixels, got an array "
                         f"of shape {images.shape}")
    if labels.shape != (len(images),):
        raise InputError(f"{labels_from}: expected {len(images)} labels (one per image), "
                         f"got an array of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise InputError(f"{labels_from}: labels must be digits 0-9, got {labels.min()} to "
                         f"{labels.max()}")
    return images, labels.astype(np.int64)


def _split(sets, source: str) -> MnistSplit:
    def scaled(images):
        return (np.asarray(images, dtype=np.float32) / 255.0).clip(0.0, 1.0)

    test_images, test_labels = sets["test"]
    if "train" in sets:
        train_images, train_labels = sets["train"]
        note = (f"trained on the {len(train_images):,} training images, held out the "
                f"{len(test_images):,} test images")
    else:
        n_train = int(round(len(test_images) * TEST_ONLY_TRAIN_SHARE))
        train_images, train_labels = test_images[:n_train], test_labels[:n_train]
        test_images, test_labels = test_images[n_train:], test_labels[n_train:]
        note = (f"only the {n_train + len(test_images):,}-image test set is present: trained "
                f"on its first {n_train:,} images, held out the last {len(test_images):,}")
    if len(train_images) < 2 or len(test_images) < 1:
        raise InputError(f"{source}: too few images to split ({len(train_images)} to train, "
                         f"{len(test_images)} to hold out)")
    return MnistSplit(scaled(train_images), train_labels, scaled(test_images), test_labels,
                      source, note)
