"""Where a run may write: every destination checked against the inputs, the model and
each other before anything is read or written.

Scheduled runs often work as root on files other people drop into a directory, so a
destination is compared by what it is on disk, not by its spelling: its real path (after
symbolic links) and its inode (hard links). A destination is refused when it

- is the same file as an input, or as another destination of the run (two inputs whose
  outputs take the same name, a report named like a scores file);
- lies in the model directory, or is a hard link to one of its files;
- exists and is not a regular file: a device, a FIFO, a socket, a directory, or a
  symbolic link. Outputs are written by renaming a finished temporary file over the
  destination, which would replace the device or the link (``/dev/stdout``) itself.
  Standard output is ``-o -``.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..exceptions import UsageError

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
          stat.S_IFDIR: "a directory"}


@dataclass(frozen=True)
class Place:
    """A file a run reads or writes, and what it is to the run (``the input``,
    ``--report``, ``the rejects file of in.csv``)."""

    path: Path
    role: str


def check_destinations(destinations: Iterable[Place], inputs: Iterable[Place],
                       model_dir: Path | None) -> None:
    """Refuse the first destination that would destroy or shadow something (the model
    directory's files among them, unless ``model_dir`` is None).

    Raises
    ------
    UsageError
        One line naming the destination and what it would overwrite (exit 2).
    """
    inputs = list(inputs)
    seen: list[tuple[Place, tuple]] = [(place, _identity(place.path)) for place in inputs]
    model = None if model_dir is None else Path(os.path.realpath(model_dir))
    model_files = [] if model is None else [_identity(path) for path in _files_of(model)]
    for place in destinations:
        _check_kind(place)
        identity = _identity(place.path)
        real = Path(identity[0])
        if model is not None and (real == model or model in real.parents
                                  or _same(identity, model_files)):
            raise UsageError(f"{place.path}: {place.role} would write into the model "
                             f"directory {model_dir}")
        for other, other_identity in seen:
            if not _same(identity, [other_identity]):
                continue
            if other in inputs:
                what = (f"the input {other.path}" if other.role == "the input" else
                        f"{other.role} ({other.path})")
                raise UsageError(f"{place.path}: {place.role} would overwrite {what}")
            spelled = "" if other.path == place.path else f" ({other.path})"
            raise UsageError(f"{place.path}: {place.role} and {other.role}{spelled} are "
                             "the same file")
        seen.append((place, identity))


def check_stdout(places: Iterable[Place], model_dir: Path | None, *,
                 reads_stdin: bool = False) -> None:
    """Refuse to write to standard output (``-o -``) when it is closed, or is one of
    ``places`` (the inputs, the run's other outputs), a file of the model directory, or
    standard input when the run reads it: a shell's ``>>`` or ``1<>`` left that file open
    for the run to write into (``>`` emptied it before the run began, out of its reach).

    Raises
    ------
    UsageError
        One line naming what standard output is (exit 2).
    """
    if sys.stdout is None:
        raise UsageError("standard output is closed (>&-): give --output FILE")
    identity = _descriptor_identity(sys.stdout)
    if identity is None:
        return
    if reads_stdin and identity == _descriptor_identity(sys.stdin):
        raise UsageError("standard output is standard input's file: writing there would "
                         "overwrite the input")
    identity = ("<stdout>", identity)
    for place in places:
        if _same(identity, [_identity(place.path)]):
            raise UsageError(f"standard output is {place.role} {place.path}: writing there "
                             "would overwrite it")
    if model_dir is not None and _same(identity, [_identity(path)
                                                  for path in _files_of(Path(model_dir))]):
        raise UsageError(f"standard output is a file of the model directory {model_dir}: "
                         "writing there would overwrite it")


def _descriptor_identity(stream) -> tuple[int, int] | None:
    """The device and inode of the regular file a standard stream is open on (None: not
    a regular file, closed, or not a descriptor at all, as a test's capture is)."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def _check_kind(place: Place) -> None:
    """A destination that exists must be a regular file."""
    try:
        mode = os.lstat(place.path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # Absent: whether it can be created is checked next.
    except OSError as error:
        raise UsageError(f"{place.path}: {place.role} cannot be checked "
                         f"({error.strerror or error})") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        # Renaming over it would replace the link (/dev/stdout, say), not write where it
        # points.
        kind = f"a symbolic link (to {os.readlink(place.path)})"
    else:
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    hint = "; standard output is -o -" if place.path.parts[:2] == ("/", "dev") else ""
    raise UsageError(f"{place.path}: {place.role} is {kind}, not a regular file{hint}")


def file_identity(path: str | os.PathLike) -> tuple[str, tuple[int, int] | None]:
    """What tells one file from another however it is named: its real path and, when it
    exists, its device and inode (a hard link has another path, the same inode)."""
    return _identity(Path(path))


def same_file(identity: tuple, others: list[tuple]) -> bool:
    """Whether ``identity`` (:func:`file_identity`) is that of one of ``others``."""
    return _same(identity, others)


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """The real path and, for an existing file, its device and inode."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return real, None
    return real, (info.st_dev, info.st_ino)


def _same(identity: tuple, others: list[tuple]) -> bool:
    real, inode = identity
    return any(real == other_real or (inode is not None and inode == other_inode)
               for other_real, other_inode in others)


def _files_of(directory: Path) -> list[Path]:
    try:
        return [entry for entry in directory.iterdir() if entry.is_file()]
    except OSError:
        return []
