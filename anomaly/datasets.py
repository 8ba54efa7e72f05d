"""Where the real data sets live on this machine. Nothing here downloads anything."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming a data directory laid out like ``../shared/data``.
DATA_DIR_VARIABLE = "ANOMALY_DATA_DIR"
ECG5000_RELATIVE = Path("ecg5000") / "ecg5000.csv"


def data_dirs() -> list[Path]:
    """Candidate data directories, most specific first.

    ``$ANOMALY_DATA_DIR``, then ``../shared/data`` beside the project checkout (for a
    source checkout or an editable install), then ``../shared/data`` from the current
    directory.
    """
    candidates = []
    if os.environ.get(DATA_DIR_VARIABLE):
        candidates.append(Path(os.environ[DATA_DIR_VARIABLE]))
    project_root = Path(__file__).resolve().parent.parent
    candidates.append(project_root.parent / "shared" / "data")
    candidates.append(Path.cwd().parent / "shared" / "data")
    unique = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def find_ecg5000() -> Path | None:
    """The local ECG5000 CSV, or None when it is not on this machine."""
    for directory in data_dirs():
        for path in (directory / ECG5000_RELATIVE, directory / "ecg5000.csv"):
            if path.is_file():
                return path
    return None
