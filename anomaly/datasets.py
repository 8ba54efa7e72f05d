"""Where the real data sets live on this machine, and the download cache, read safely.

Nothing here downloads anything: :mod:`anomaly.fetch` does, into :func:`cache_dir`.

The cache holds verified files only, and that is checked each time a file of it is used,
not only after its download. The cache directory itself (``$ANOMALY_CACHE_DIR`` or the
per-user cache) is the user's choice and is taken as given, a symbolic link included.
Nothing inside it is trusted: the tool may run as root, from cron, on a cache that other
users can write, and what they plant there must not make it read, change or remove a file
elsewhere, nor wait for ever. So :class:`CacheDirectory`:

- opens a data set's directory and its files relative to the descriptor of the directory
  above (``openat``) with ``O_NOFOLLOW``: a symbolic link there is refused, never followed;
- opens files with ``O_NONBLOCK`` (a FIFO is not waited on) and checks on the opened
  descriptor (``fstat``) that it is a regular file: a FIFO, device, socket or directory
  where a file belongs is refused;
- compares a file's SHA-256 with the one pinned in ``anomaly/registry/sha256sums.txt``
  every time the file is used (:func:`find_ecg5000`, :func:`find_mitdb`, and the private
  copy of it a reader parses, :func:`verified_copy`); a file larger than any pinned one
  is damaged without being read through.

A hard link (a cached file with other names elsewhere) is accepted: nothing here or in
:mod:`anomaly.fetch` writes into an existing file. A file is replaced by renaming a new
one over its name, and removed by unlinking its name, so the file's other names keep
their content; and that content is checked like any other file's.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from .exceptions import InputError

#: Environment variable naming a data directory laid out like ``../shared/data``.
DATA_DIR_VARIABLE = "ANOMALY_DATA_DIR"
#: Environment variable naming the download cache, instead of the per-user one.
CACHE_DIR_VARIABLE = "ANOMALY_CACHE_DIR"


class DatasetName(str, Enum):
    """The data sets ``anomaly data fetch`` downloads, each a directory of the cache."""

    ecg5000 = "ecg5000"
    mitdb = "mitdb"


ECG5000_NAME = "ecg5000.csv"
ECG5000_RELATIVE = Path(DatasetName.ecg5000.value) / ECG5000_NAME

#: The files of one MIT-BIH record: header, signals, reference annotations.
RECORD_EXTENSIONS = (".hea", ".dat", ".atr")
#: The list of a database's record names, in PhysioNet's layout. Fetched only with the
#: whole database, and last: in the cache, it says that every record is there.
RECORDS_FILE = "RECORDS"
#: The pinned sums of every downloadable file, in the package's ``registry`` folder.
REGISTRY_FILE = "sha256sums.txt"
#: No file the cache holds is larger (ECG5000, the largest, is 7.9 MB). A larger one
#: cannot match its sum: it is damaged without being read through, and a download is cut
#: off there, so that a planted sparse file or an endless server costs no time.
MAX_CACHED_BYTES = 64 << 20

# Inside the cache nothing is reached through a symbolic link (O_NOFOLLOW), and opening
# never waits: a FIFO opened for reading blocks until a writer comes, unless O_NONBLOCK.
# These are POSIX flags, like the dir_fd every cache operation takes: Windows has neither,
# so there the package still imports but the cache cannot be opened (dir_fd is refused).
_FILE_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))
_DIRECTORY_FLAGS = _FILE_FLAGS | getattr(os, "O_DIRECTORY", 0)
_READ_BYTES = 1 << 20


def read_registry(dataset: DatasetName | str) -> dict[str, str]:
    """The pinned SHA-256 sums of a data set's files, by file name in the cache.

    Read from the package's ``registry/sha256sums.txt``: a path in the cache (``data
    set/file name``) and its SHA-256 per line, ``#`` comments.
    """
    prefix = f"{DatasetName(dataset).value}/"
    registry = {}
    text = (resources.files("anomaly") / "registry" / REGISTRY_FILE).read_text()
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            path, sha256 = line.split()
            if path.startswith(prefix):
                registry[path.removeprefix(prefix)] = sha256.lower()
    return registry


def mitdb_records(registry: dict[str, str] | None = None) -> list[str]:
    """The names of the MIT-BIH records (``100`` ... ``234``), in order."""
    registry = read_registry(DatasetName.mitdb) if registry is None else registry
    return sorted({Path(name).stem for name in registry
                   if Path(name).suffix in RECORD_EXTENSIONS})


def dataset_files(dataset: DatasetName | str, records: Sequence[str] = (),
                  registry: dict[str, str] | None = None) -> list[str]:
    """The cache names of the files of ``records`` of ``dataset``, in download order.

    ECG5000 is one file and has no records. For MIT-BIH: the ``.hea``, ``.dat`` and
    ``.atr`` files of each record named, or of all 48 when none is, then ``RECORDS`` when
    all 48 are named. Names that are no record are refused, all of them in one error.
    """
    dataset = DatasetName(dataset)
    registry = read_registry(dataset) if registry is None else registry
    if dataset is DatasetName.ecg5000:
        if records:
            raise InputError(f"ecg5000 is one file and has no records; got {' '.join(records)}")
        return list(registry)
    known = mitdb_records(registry)
    unknown = [record for record in records if record not in known]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise InputError(f"unknown MIT-BIH record{plural} {', '.join(map(repr, unknown))}; "
                         f"expected some of the {len(known)} records {', '.join(known)}")
    chosen = list(dict.fromkeys(records)) or known  # Each record once, in the order given.
    files = [record + extension for record in chosen for extension in RECORD_EXTENSIONS]
    return files + [RECORDS_FILE] if set(chosen) == set(known) else files


def cache_dir() -> Path:
    """The directory ``anomaly data fetch`` downloads into, laid out like ``../shared/data``
    (``ecg5000/ecg5000.csv``, ``mitdb/100.dat``, ...).

    ``$ANOMALY_CACHE_DIR`` when set, else the per-user cache ``pooch.os_cache("anomaly")``:
    ``~/.cache/anomaly`` on Linux (or ``$XDG_CACHE_HOME/anomaly``),
    ``~/Library/Caches/anomaly`` on macOS. This path is followed as given, links included;
    what is inside it is not (see the module's description).
    """
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE]).expanduser()
    import pooch  # Here, not above: importing it takes a tenth of a second.

    return Path(pooch.os_cache("anomaly"))


def data_dirs() -> list[Path]:
    """Data directories laid out like ``../shared/data``, most specific first.

    ``$ANOMALY_DATA_DIR``, the user's explicit choice; then ``../shared/data`` beside the
    project checkout (for a source checkout or an editable install), then
    ``../shared/data`` from the current directory. Not the download cache: a file of it
    is used only once checked, through :func:`find_ecg5000` or :func:`find_mitdb`.
    """
    candidates = []
    if os.environ.get(DATA_DIR_VARIABLE):
        candidates.append(Path(os.environ[DATA_DIR_VARIABLE]))
    beside = beside_checkout(Path(__file__).resolve().parent)
    if beside is not None:
        candidates.append(beside)
    candidates.append(Path.cwd().parent / "shared" / "data")
    return list(dict.fromkeys(candidates))


def beside_checkout(package_dir: Path) -> Path | None:
    """``../shared/data`` beside the project checkout that holds ``package_dir`` (the
    ``anomaly`` package), or None when the package was installed rather than checked out
    (beside an installed package lies a virtual environment's ``lib``, not a checkout)."""
    project_root = package_dir.parent
    if not (project_root / "pyproject.toml").is_file():
        return None
    return project_root.parent / "shared" / "data"


def find_ecg5000() -> Path | None:
    """The local ECG5000 CSV, or None when it is not on this machine.

    The first found in ``$ANOMALY_DATA_DIR``, the download cache, then ``../shared/data``
    (``ecg5000/ecg5000.csv``, or ``ecg5000.csv`` outside the cache). The cache's copy is
    returned only once checked; a reader that must parse the very bytes checked opens
    the path through :func:`verified_copy`.

    Raises
    ------
    InputError
        The cache holds an ECG5000 that is not its verified copy: damaged or altered (not
        the pinned SHA-256), or planted (a link, a FIFO, a directory ...). The message
        names the file and says how to mend the cache.
    """
    for directory in _search_order():
        if directory is None:
            if _verified_in_cache(DatasetName.ecg5000, [ECG5000_NAME]) is not None:
                return cache_dir() / ECG5000_RELATIVE
            continue
        for path in (directory / ECG5000_RELATIVE, directory / ECG5000_NAME):
            if path.is_file():
                return path
    return None


def find_mitdb(records: Sequence[str] = ()) -> Path | None:
    """A local MIT-BIH directory holding ``records`` (default: the whole database with its
    ``RECORDS`` list), or None when there is none on this machine.

    Looked for as ``mitdb/`` in ``$ANOMALY_DATA_DIR``, the download cache, then
    ``../shared/data``. In the cache every file of the records is checked first (for the
    whole database, 100 MB of reading); elsewhere each must exist. A record is then read
    as ``find_mitdb(...) / "208"``.

    Raises
    ------
    InputError
        A name that is no MIT-BIH record; or the cache holds a file of the records that is
        not its verified copy (damaged, altered or planted), named in the message.
    """
    names = dataset_files(DatasetName.mitdb, records)
    for directory in _search_order():
        if directory is None:
            found = _verified_in_cache(DatasetName.mitdb, names)
            if found is not None:
                return found
        elif all((directory / DatasetName.mitdb.value / name).is_file() for name in names):
            return directory / DatasetName.mitdb.value
    return None


def dataset_places(dataset: DatasetName | str) -> list[Path]:
    """The directories the ``find_*`` functions look for a data set in, in order: its
    directory in ``$ANOMALY_DATA_DIR``, the download cache and ``../shared/data``. For
    messages that say where something was looked for."""
    dataset = DatasetName(dataset)
    return [(cache_dir() if directory is None else directory) / dataset.value
            for directory in _search_order()]


@contextlib.contextmanager
def verified_copy(path: str | os.PathLike) -> Iterator[Path]:
    """``path`` as a reader should open it: a file of the download cache becomes a private
    copy of the very bytes whose SHA-256 was checked; any other file is yielded as it is.

    A check of the cached file followed by a reader opening it by name would leave a
    moment in which someone able to write in the cache could swap it. The copy is taken
    from the descriptor the check read, into a temporary directory only this user can
    enter, and removed on leaving the ``with`` block.

    Raises
    ------
    InputError
        The cached file is missing, damaged, altered or planted (see :func:`find_ecg5000`).
    """
    path = Path(path)
    location = _cache_location(path)
    if location is None:
        yield path
        return
    dataset, name = location
    directory = open_cache_directory(dataset)
    if directory is None:
        raise _missing(path, dataset)
    with tempfile.TemporaryDirectory(prefix="anomaly-") as private:
        copy = Path(private) / name
        with directory, open(copy, "xb") as sink:
            directory.read_verified(name, sink)
        yield copy


def _cache_location(path: Path) -> tuple[DatasetName, str] | None:
    """(data set, file name) of a path to a file of the download cache, else None."""
    try:
        parts = path.relative_to(cache_dir()).parts
        return (DatasetName(parts[0]), parts[1]) if len(parts) == 2 else None
    except ValueError:  # Not below the cache, or no data set's directory.
        return None


class CachedState(Enum):
    """What the cache holds under a file's name."""

    absent = "absent"
    verified = "verified"  # A regular file whose SHA-256 is the pinned one.
    damaged = "damaged"  # A regular file whose SHA-256 is not.


class CacheDirectory:
    """One data set's directory in the cache (``CACHE/mitdb``), held open by a descriptor.

    Made by :func:`open_cache_directory`; use as a context manager. Every file is opened
    relative to the descriptor, without following a link, and must be a regular file:
    see the module's description.

    Attributes
    ----------
    dataset : DatasetName
    path : Path
        The directory's path, for messages and for what callers report.
    descriptor : int
        The open directory: ``dir_fd`` for every operation on its files.
    sums : dict of str to str
        The pinned SHA-256 of each file of the data set (:func:`read_registry`).
    created : tuple of Path
        The directories :func:`open_cache_directory` created (the cache, this one),
        outermost first, for a caller that removes them again if nothing comes of it.
    """

    def __init__(self, dataset: DatasetName, path: Path, descriptor: int,
                 created: tuple[Path, ...] = ()):
        self.dataset, self.path, self.descriptor = dataset, path, descriptor
        self.created = created
        self.sums = read_registry(dataset)

    def __enter__(self) -> "CacheDirectory":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1

    def open_file(self, name: str) -> int | None:
        """A read-only descriptor of the regular file ``name``, or None when absent.

        Raises
        ------
        InputError
            Something other than a regular file stands there (a symbolic link, FIFO,
            device, socket or directory), or it cannot be opened.
        """
        if name not in self.sums:  # Also keeps "../x" and "a/b" out of the walk.
            raise ValueError(f"{name!r} is no file of {self.dataset.value}")
        try:
            descriptor = os.open(name, _FILE_FLAGS, dir_fd=self.descriptor)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise InputError(f"{self.path / name}: {error.strerror}") from None
            raise _planted(self.path / name, _describe(self.descriptor, name),
                           "a regular file", self.dataset) from None
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            os.close(descriptor)
            raise _planted(self.path / name, _kind(mode), "a regular file", self.dataset)
        return descriptor

    def state(self, name: str, sink: BinaryIO | None = None) -> CachedState:
        """Whether ``name`` is absent, verified or damaged, read through to tell; its
        bytes are written to ``sink`` as they are read, if given.

        Raises InputError as :meth:`open_file` does."""
        descriptor = self.open_file(name)
        if descriptor is None:
            return CachedState.absent
        try:
            sha256 = _sha256(descriptor, sink)
        finally:
            os.close(descriptor)
        return CachedState.verified if sha256 == self.sums[name] else CachedState.damaged

    def read_verified(self, name: str, sink: BinaryIO | None = None) -> None:
        """Check ``name`` against its pinned SHA-256, writing its bytes to ``sink`` as they
        are read, if given.

        Raises
        ------
        InputError
            ``name`` is absent, not a regular file, or damaged; nothing written to ``sink``
            may then be used.
        """
        state = self.state(name, sink)
        if state is CachedState.absent:
            raise _missing(self.path / name, self.dataset)
        if state is CachedState.damaged:
            raise self.damaged(name)

    def damaged(self, name: str) -> InputError:
        """The error of a reader finding ``name`` damaged."""
        return InputError(f"{self.path / name}: does not match its pinned SHA-256 "
                          f"({self.sums[name]}): damaged or altered in the download cache, "
                          f"so not used; 'anomaly data fetch {self.dataset.value}' downloads "
                          "it again")

    def remove(self, name: str) -> None:
        """Remove ``name``'s entry from the directory (never what a link points to)."""
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(name, dir_fd=self.descriptor)


def open_cache_directory(dataset: DatasetName | str, *,
                         create: bool = False) -> CacheDirectory | None:
    """Open a data set's directory in the cache, without following a link inside the cache.

    Parameters
    ----------
    dataset : {"ecg5000", "mitdb"}
    create : bool, default False
        Create the cache and the directory when missing (with the umask's mode), as a
        download does. Without it, a missing one gives None.

    Raises
    ------
    InputError
        The cache is not a directory or cannot be created; or something other than a
        directory stands at the data set's name (a symbolic link, a file ...).
    """
    dataset = DatasetName(dataset)
    root = cache_dir()
    created = []
    if create and not root.exists():
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as error:
            raise InputError(f"{root}: cannot create the download cache "
                             f"({error.strerror})") from None
        created.append(root)
    try:
        # The cache's own path is followed as given (no O_NOFOLLOW): the user chose it.
        root_descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK
                                  | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise InputError(f"{root}: the download cache is {_kind(os.stat(root).st_mode)}, "
                         f"not a directory (${CACHE_DIR_VARIABLE} or the per-user "
                         "cache)") from None
    except OSError as error:
        raise InputError(f"{root}: cannot open the download cache ({error.strerror})") from None
    path = root / dataset.value
    try:
        opened = _open_directory(root_descriptor, path, dataset, create)
    finally:
        os.close(root_descriptor)
    if opened is None:
        return None
    descriptor, made = opened
    if made:
        created.append(path)
    return CacheDirectory(dataset, path, descriptor, tuple(created))


def _open_directory(parent: int, path: Path, dataset: DatasetName,
                    create: bool) -> tuple[int, bool] | None:
    """Open (or create, then open) the directory ``path.name`` of ``parent``, never
    through a link: (its descriptor, whether it was created), or None when missing."""
    created = False
    while True:
        try:
            return os.open(path.name, _DIRECTORY_FLAGS, dir_fd=parent), created
        except FileNotFoundError:
            if not create:
                return None
        except NotADirectoryError:  # Also what O_NOFOLLOW gives a link, with O_DIRECTORY.
            raise _planted(path, _describe(parent, path.name), f"the {path.name} directory",
                           dataset) from None
        except OSError as error:
            raise InputError(f"{path}: {error.strerror}") from None
        try:
            os.mkdir(path.name, 0o777, dir_fd=parent)
            created = True
        except FileExistsError:
            pass  # Made in between: open what is there now, with the same checks.


def _verified_in_cache(dataset: DatasetName, names: Sequence[str]) -> Path | None:
    """The data set's cache directory if it holds every one of ``names`` verified; None if
    one is missing. InputError if one is damaged or planted."""
    directory = open_cache_directory(dataset)
    if directory is None:
        return None
    with directory:
        for name in names:
            state = directory.state(name)
            if state is CachedState.absent:
                return None
            if state is CachedState.damaged:
                raise directory.damaged(name)
    return directory.path


def _search_order() -> list[Path | None]:
    """:func:`data_dirs` with the download cache (None) after ``$ANOMALY_DATA_DIR``: where
    the ``find_*`` functions look. A data directory that is the cache is the cache."""
    directories = data_dirs()
    at = 1 if os.environ.get(DATA_DIR_VARIABLE) else 0
    cache = cache_dir()
    order = [None if directory == cache else directory
             for directory in directories[:at] + [cache] + directories[at:]]
    return list(dict.fromkeys(order))


def _sha256(descriptor: int, sink: BinaryIO | None = None) -> str | None:
    """SHA-256 of an open file, read from its start; None when it is larger than
    :data:`MAX_CACHED_BYTES` (it cannot match, and is not read through)."""
    if os.fstat(descriptor).st_size > MAX_CACHED_BYTES:
        return None
    digest, size = hashlib.sha256(), 0
    # Read at most one byte past the limit: the file may grow while it is read.
    while chunk := os.read(descriptor, min(_READ_BYTES, MAX_CACHED_BYTES + 1 - size)):
        size += len(chunk)
        if size > MAX_CACHED_BYTES:
            return None
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest()


def _missing(path: Path, dataset: DatasetName) -> InputError:
    return InputError(f"{path}: no such file in the download cache any more; run 'anomaly "
                      f"data fetch {dataset.value}'")


def _planted(path: Path, kind: str, belongs: str, dataset: DatasetName) -> InputError:
    """The one wording of something other than what the cache holds, at ``path``."""
    return InputError(f"{path}: {kind} in the download cache, where {belongs} belongs; not "
                      f"followed or read: remove it, then run 'anomaly data fetch "
                      f"{dataset.value}'")


def _describe(parent: int, name: str) -> str:
    """What ``name`` in the directory ``parent`` is, not following a link: ``a FIFO (named
    pipe)``, ``a symbolic link (to /etc/passwd)``, ..."""
    try:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            return f"a symbolic link (to {os.readlink(name, dir_fd=parent)})"
    except OSError as error:
        return f"an entry that cannot be examined ({error.strerror})"
    return _kind(mode)


_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")
