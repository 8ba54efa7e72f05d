"""File utilities for everything the tool writes.

Outputs are written atomically (a temporary file beside the target, fsync, then rename),
so a run that fails or is killed part way leaves the destination as it was; directories
are replaced whole. Also here: destination checks, output locks, removal of what killed
runs left behind, and file hashes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from ..exceptions import InputError

#: Errors of a write that name no file: disk full, quota, file size limit, I/O error.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    The temporary file is created exclusively (never through a symbolic link). What
    stands at ``path`` when the file is complete must be a regular file or nothing: a
    device, FIFO, directory or link put there meanwhile is not replaced. A write that
    fails for want of space names ``path``.
    """
    target = Path(path)
    check_writable(target)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(descriptor, mode, encoding=encoding, newline=newline) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        _require_replaceable(target)
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if error.filename is None and error.errno in _WRITE_ERRORS:  # Say which file.
            raise OSError(error.errno, error.strerror, str(target)) from error
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _require_replaceable(target: Path) -> None:
    """Raise unless ``target`` is absent or a regular file (see :func:`atomic_write`)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise InputError(f"{target}: not a regular file any more; nothing was written")


def make_staging_directory(target: Path) -> Path:
    """A new hidden directory beside ``target`` (``.NAME.xxxxxxxx``), to write a directory
    that will replace it, with the mode a directory made there would have (umask applied:
    ``mkdtemp``'s own 0700 would keep a model fitted by root from the service user who
    scores with it)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    return staging


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StandardOutput:
    """Standard output's bytes, for ``-o -``: a write or flush that fails (a full disk or
    a file size limit under a redirection, a reader that stopped: a broken pipe) is an
    InputError naming it (exit 2), not a success with a cut file, nor Click's exit 1 for
    a broken pipe (exit 1 means anomalies found)."""

    def __init__(self) -> None:
        # Checked open and no input's before the run (destinations.check_stdout).
        self._stream = sys.stdout.buffer

    def write(self, data) -> int:
        # A large write cut short (a file size limit reached) returns what was written,
        # without an error: the rest is written again, which then fails.
        left = memoryview(data).cast("B")
        with self._failing():
            while len(left):
                written = self._stream.write(left)
                if not written:
                    raise InputError("standard output: it takes no more bytes")
                left = left[written:]
        return len(data)

    def flush(self) -> None:
        with self._failing():
            self._stream.flush()

    @staticmethod
    @contextlib.contextmanager
    def _failing() -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise InputError(f"standard output: {error.strerror or error}") from None


def check_writable(path: str | os.PathLike) -> None:
    """Fail before any work if ``path``'s directory is missing or read-only."""
    _require_writable_directory(Path(path).parent, path)


def check_can_create_directory(directory: str | os.PathLike) -> None:
    """Fail unless ``directory`` exists writable, or its nearest existing parent is. A
    symbolic link is refused: the files written into it would land wherever whoever
    planted it chose (plots over another directory's files, say)."""
    # normpath: 'plots/' names the link 'plots' too (islink would follow it).
    if os.path.islink(os.path.normpath(directory)):
        raise InputError(f"{directory}: the output directory is a symbolic link (to "
                         f"{os.readlink(os.path.normpath(directory))}); give the directory "
                         "itself")
    _require_writable_directory(_nearest_existing(Path(directory)), directory)


def check_can_create(path: str | os.PathLike) -> None:
    """Fail unless ``path`` can be created, or replaced by renaming a new one over it: the
    nearest existing directory above it must be writable."""
    _require_writable_directory(_nearest_existing(Path(path).parent), path)


def _foreign_link(directory: Path) -> Path | None:
    """The first part of ``directory``'s path (as given, from the working directory, its
    ``..`` kept: the system resolves ``link/..`` through the link) that is a symbolic link
    owned by neither this user, nor root, nor the owner of the directory it is in, or
    None. Such a link, planted in a shared directory, would have outputs written wherever
    its owner chose: the rule Linux's ``fs.protected_symlinks`` applies in sticky
    directories, here in any."""
    return _foreign_link_on(Path(os.path.join(os.getcwd(), os.fspath(directory))), 0)


def _foreign_link_on(path: Path, depth: int) -> Path | None:
    """:func:`_foreign_link` of an absolute ``path``, following each trusted link's own
    target in turn (a link of one's own may lead through another user's), ``depth``
    links deep so far."""
    if depth > _MOST_LINKS:
        return path  # A loop, or links no person made: refused as foreign.
    trusted = {os.geteuid(), 0}
    parts = path.parts
    for count in range(2, len(parts) + 1):
        part = Path(*parts[:count])
        try:
            info = os.lstat(part)
        except OSError:
            return None  # Not there: nothing further down is either.
        if not stat.S_ISLNK(info.st_mode):
            continue
        if info.st_uid not in trusted and info.st_uid != os.lstat(part.parent).st_uid:
            return part
        return _foreign_link_on(Path(os.path.join(part.parent, os.readlink(part)),
                                     *parts[count:]), depth + 1)
    return None


#: The most links followed in one path (Linux's own limit).
_MOST_LINKS = 40


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _require_writable_directory(directory: Path, target: str | os.PathLike) -> None:
    """Raise an InputError about ``target`` unless ``directory`` is a writable directory,
    reached through no symbolic link of another user's (:func:`_foreign_link`)."""
    foreign = _foreign_link(directory)
    if foreign is not None:
        raise InputError(f"{target}: its directory {str(foreign)!r} is a symbolic link of "
                         f"another user's (uid {os.lstat(foreign).st_uid}); give a path "
                         "without it")
    where = f"{target}: output directory {str(directory)!r}"
    if not directory.exists():
        raise InputError(f"{where} does not exist")
    if not directory.is_dir():
        raise InputError(f"{where} is not a directory")
    if not os.access(directory, os.W_OK):
        raise InputError(f"{where} is not writable")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex."""
    return files_sha256([path])


def files_sha256(paths, sizes=None) -> str:
    """SHA-256 of the bytes of ``paths`` read one after the other (a WFDB record's files);
    with ``sizes``, of each file's first ``sizes[i]`` bytes (what a reader read of a file
    that has grown since)."""
    digest = hashlib.sha256()
    for path, size in zip(paths, sizes if sizes is not None else [None] * len(paths)):
        left = -1 if size is None else size
        with open(path, "rb") as file:
            while left:
                chunk = file.read(1 << 20 if left < 0 else min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk) if left > 0 else 0
    return digest.hexdigest()


def replace_directory(staging: Path, target: Path) -> None:
    """Move a fully written directory into place, replacing any old one at ``target``.

    Whatever the moment the process is killed, ``target`` holds the old directory or the
    new one: an existing directory is exchanged with the new one in one step
    (``renameat2(RENAME_EXCHANGE)``), and the old one, then at ``staging``'s name, is
    removed. Where the exchange is not available (not Linux, a file system without it),
    the old directory is renamed aside first, leaving a moment without one. Either way a
    killed swap leaves only hidden directories beside ``target``, which
    :func:`remove_stale_temporaries` removes under the next writer's lock.
    """
    if not os.path.lexists(target):
        os.replace(staging, target)
        return
    if _exchange(staging, target):
        _remove_swapped_out(staging)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_swapped_out(path: Path) -> None:
    """Remove what :func:`replace_directory` swapped out: a directory, or a link that
    stood at the target (the link alone: what it points to is someone else's)."""
    if os.path.islink(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux's ``renameat2`` with ``RENAME_EXCHANGE``);
    False where the system or the file system does not offer it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
                      rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically; NaN or infinity is an error."""
    with atomic_write(path) as file:
        json.dump(data, file, indent=2, sort_keys=True, allow_nan=False)
        file.write("\n")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, *,
                companions: Iterable[str | os.PathLike] = ()) -> Iterator[list[Path]]:
    """Hold an exclusive lock on ``path`` for a run: a second run writing it fails at once.

    The lock is ``.NAME.lock`` beside the output (an ``flock``, so it dies with the process,
    even on SIGKILL); it is removed on release. Once it is held, what killed runs left
    beside ``path`` and its ``companions`` (files written under the same lock, such as
    the rejects file) is removed, see :func:`remove_stale_temporaries`; the context
    manager yields the paths removed.
    """
    import fcntl

    from ..exceptions import OutputLockedError

    target = Path(path)
    lock_path = target.with_name(f".{target.name}.lock")
    held = os.path.abspath(lock_path)
    if held in _HELD_LOCKS:  # This process holds it already (a fit saving its model).
        yield []
        return
    while True:
        descriptor, created = _open_lock(lock_path, target)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            holder = _lock_holder(lock_path)
            raise OutputLockedError(
                f"{target}: another anomaly run is writing this output{holder} "
                f"(lock {lock_path})"
            ) from None
        # The previous holder may have removed the file between our open and our lock.
        try:
            if os.stat(lock_path, follow_symlinks=False).st_ino == os.fstat(descriptor).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    _HELD_LOCKS.add(held)
    try:
        if created:  # A lock a killed run left keeps its text: only our own file is written.
            os.write(descriptor, f"{os.getpid()}\n".encode())
        yield [stale for guarded in (target, *companions)
               for stale in remove_stale_temporaries(guarded)]
    finally:
        _HELD_LOCKS.discard(held)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(descriptor)


#: The locks this process holds (absolute paths): taking one again is a no-op.
_HELD_LOCKS: set[str] = set()


def _open_lock(lock_path: Path, target: Path) -> tuple[int, bool]:
    """The lock file, opened without following a link; and whether this call created it.

    A lock path that is a symbolic link, or not a regular file of its own (a device, a
    FIFO, a hard link to another file), is refused rather than opened or truncated.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    while True:
        try:
            return os.open(lock_path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
        try:
            descriptor = os.open(lock_path, flags)
        except FileNotFoundError:
            continue  # Removed by its holder in between: create it.
        except OSError as error:  # ELOOP: a symbolic link.
            raise InputError(f"{lock_path}: the lock of {target} is a symbolic link or "
                             f"cannot be opened ({error.strerror}); remove it") from None
        info = os.fstat(descriptor)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            return descriptor, False
        os.close(descriptor)
        raise InputError(f"{lock_path}: the lock of {target} is not a plain file of its own "
                         "(a device, a FIFO or a hard link to another file); remove it")


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``.NAME.xxxxxxxx.tmp``, from :func:`atomic_write`), Dask
    staging directories (``.NAME.parts-xxxxxxxxxxxx``) and the staging or swapped-out
    directories of :func:`replace_directory` (``.NAME.xxxxxxxx``, ``.NAME.old.xxxxxxxx``)
    beside ``path``.

    Only a run that was killed leaves these behind, so call this only while holding
    ``path``'s :func:`output_lock`: no live run is writing them then. Names are matched
    exactly, so another output's files (``scores.csv.gz`` beside ``scores.csv``) are kept.
    """
    target = Path(path)
    name = re.escape(target.name)
    files = re.compile(rf"\.{name}\.(?:[a-z0-9_]{{8}}\.tmp|parts-[0-9a-f]{{12}})")
    directories = re.compile(rf"\.{name}\.(?:old\.)?[a-z0-9_]{{8}}")
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(target.parent):
            # A swapped-out directory that is a link: a model directory given as a link,
            # replaced by the real directory, the link (never what it points to) removed.
            if files.fullmatch(entry.name) or (directories.fullmatch(entry.name) and (
                    entry.is_dir(follow_symlinks=False) or entry.is_symlink())):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _lock_holder(lock_path: Path) -> str:
    """`` (pid N)`` from the lock's text, read without following a link."""
    try:
        descriptor = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        pid = os.read(descriptor, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    finally:
        os.close(descriptor)
    return f" (pid {pid})" if pid.isdigit() else ""
