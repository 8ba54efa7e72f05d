"""Where the real data sets live on this machine. Nothing here downloads anything
(:mod:`anomaly.fetch` does, into :func:`cache_dir`)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming a data directory laid out like ``../shared/data``.
DATA_DIR_VARIABLE = "ANOMALY_DATA_DIR"
#: Environment variable naming the download cache, instead of the per-user one.
CACHE_DIR_VARIABLE = "ANOMALY_CACHE_DIR"
ECG5000_RELATIVE = Path("ecg5000") / "ecg5000.csv"


def cache_dir() -> Path:
    """The directory ``anomaly data fetch`` downloads into, laid out like ``../shared/data``
    (``ecg5000/ecg5000.csv``, ``mitdb/100.dat``, ...).

    ``$ANOMALY_CACHE_DIR`` when set, else the per-user cache ``pooch.os_cache("anomaly")``:
    ``~/.cache/anomaly`` on Linux (or ``$XDG_CACHE_HOME/anomaly``),
    ``~/Library/Caches/anomaly`` on macOS, ``%LOCALAPPDATA%\\anomaly\\Cache`` on Windows.
    """
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE]).expanduser()
    import pooch  # Here, not above: importing it takes a tenth of a second.

    return Path(pooch.os_cache("anomaly"))


def data_dirs() -> list[Path]:
    """Candidate data directories, most specific first.

    ``$ANOMALY_DATA_DIR``, the user's explicit choice; then the download cache
    (:func:`cache_dir`), which holds only what ``anomaly data fetch`` stored after checking
    its pinned SHA-256 sum; then ``../shared/data`` beside the project checkout (for a
    source checkout or an editable install), then ``../shared/data`` from the current
    directory.
    """
    candidates = []
    if os.environ.get(DATA_DIR_VARIABLE):
        candidates.append(Path(os.environ[DATA_DIR_VARIABLE]))
    candidates.append(cache_dir())
    project_root = Path(__file__).resolve().parent.parent
    candidates.append(project_root.parent / "shared" / "data")
    candidates.append(Path.cwd().parent / "shared" / "data")
    unique = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def find_ecg5000() -> Path | None:
    """The local ECG5000 CSV, or None when it is not on this machine.

    The first found in :func:`data_dirs`, in their order: ``$ANOMALY_DATA_DIR``, the
    download cache, then ``../shared/data``.
    """
    for directory in data_dirs():
        for path in (directory / ECG5000_RELATIVE, directory / "ecg5000.csv"):
            if path.is_file():
                return path
    return None
