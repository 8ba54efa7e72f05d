"""The inputs a command is given: files, globs, directories and ``-``, expanded in order.

A directory or a glob is expanded to the inputs it holds, leaving out the files the tool
writes beside its outputs, so that a scheduled run over a drop directory does not score
its own scores the next night; a file named on its own is taken as it is. The same file
named twice (by two spellings, or a WFDB record by its header and its name) is refused.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Sequence

from .exceptions import InputError
from .io.readers import STDIO
from .recordings.signals import locate_recording, wfdb_base

#: Input file names picked up from a directory given as input: beats CSVs, WFDB records'
#: headers and EDF recordings.
INPUT_SUFFIXES = (".csv", ".csv.gz", ".hea", ".edf")
#: Endings of the files a run writes beside its outputs, never taken as inputs by a glob
#: or a directory.
OWN_SUFFIXES = tuple(f".{kind}{suffix}" for kind in ("scores", "rejects")
                     for suffix in (".csv", ".csv.gz", ".parquet"))


def expand_inputs(specs: Sequence[str]) -> list[str]:
    """Files, globs, directories (their ``*.csv`` and ``*.csv.gz``) and ``-``, in order;
    a bare MIT-BIH record name (``208``) that names nothing here is the record in the
    MIT-BIH data on this machine (see :func:`~anomaly.recordings.signals.locate_recording`).

    What a directory or a glob matches leaves out the tool's own files (see
    :func:`is_own_file`), so that outputs written beside the inputs are not scored by the
    next run; a file named on its own is taken as it is.

    Raises InputError for a path that does not exist, a glob or directory that matches no
    file, or the same file named twice.
    """
    inputs: list[str] = []
    for spec in specs:
        if spec == STDIO:
            inputs.append(spec)
        elif Path(spec).is_dir():
            found = sorted(str(path) for path in Path(spec).iterdir()
                           if path.is_file() and path.name.endswith(INPUT_SUFFIXES)
                           and not is_own_file(path.name))
            if not found:
                raise InputError(f"{spec}: directory holds no {', '.join(INPUT_SUFFIXES[:-1])} "
                                 f"or {INPUT_SUFFIXES[-1]} files")
            inputs += found
        # A pattern, unless a file or record of that very name exists (brackets and all).
        elif glob.has_magic(spec) and not (os.path.exists(spec)
                                           or os.path.exists(f"{spec}.hea")):
            found = sorted(path for path in glob.glob(spec)
                           if Path(path).is_file() and not is_own_file(Path(path).name))
            if not found:
                raise InputError(f"{spec}: no file matches this pattern")
            inputs += found
        else:
            found = locate_recording(spec)  # A bare MIT-BIH name (208) not here: its data.
            if not (Path(found).exists() or wfdb_base(found) is not None):
                raise InputError(f"{spec}: no such file (it does not exist)")
            inputs.append(found)
    seen: dict[str, str] = {}
    for name in inputs:
        base = wfdb_base(name)
        key = name if name == STDIO else os.path.realpath(name if base is None else base + ".hea")
        if key in seen:
            raise InputError(f"{name}: given twice (also as {seen[key]})")
        seen[key] = name
    return inputs


def is_own_file(name: str) -> bool:
    """Whether a file name is one this tool writes beside its outputs: a scores or rejects
    file, or a hidden temporary file or lock."""
    return name.startswith(".") or name.endswith(OWN_SUFFIXES)
