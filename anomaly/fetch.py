"""Download the public data sets into the cache, each file checked against a pinned SHA-256.

A file is streamed (by `pooch <https://www.fatiando.org/pooch/>`_'s HTTP downloader) to a
temporary file beside its destination, created exclusively and with the umask's mode
(0644 under 022, so a service user can read what root fetched); its SHA-256 is compared
with the sum pinned in ``anomaly/registry/sha256sums.txt``, and only a file that matches
is renamed into place. So the cache holds verified files only, and a file already there
that matches is not downloaded again.

Every step goes through :class:`anomaly.datasets.CacheDirectory`: the data set's
directory and its files are reached relative to directory descriptors without following
a link, and a link, FIFO, device or directory where a file belongs is refused (exit 6)
rather than followed, read, replaced or removed. So nothing outside the cache is ever
created, changed or removed, whatever was planted in it. A connection or a read waits at
most :data:`DOWNLOAD_TIMEOUT`, a server sending more than any pinned file holds is cut
off at :data:`anomaly.datasets.MAX_CACHED_BYTES`, and a file's whole download is cut off
past :data:`DOWNLOAD_DEADLINE` when its next chunk (64 KiB) arrives: a server that sends
a byte just within each timeout is not yet cut off at the deadline (a known gap).

The cache (:func:`anomaly.datasets.cache_dir`) is laid out like ``../shared/data``:
``ecg5000/ecg5000.csv``, ``mitdb/100.hea``, ``mitdb/100.dat``, ``mitdb/100.atr``, ...
and ``mitdb/RECORDS`` once all 48 records are there. That is why
:func:`anomaly.datasets.find_ecg5000` finds what was fetched, and why any such directory
served over HTTP (another machine's cache, or ``../shared/data``) can stand in for the
public servers as a mirror (``mirror=``, ``$ANOMALY_DATA_URL``).

Like the command line above it, this module imports nothing heavy at module level: pooch
and requests are imported when a download starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Sequence
from urllib.parse import urlsplit

from .datasets import (
    MAX_CACHED_BYTES,
    CacheDirectory,
    CachedState,
    DatasetName,
    dataset_files,
    open_cache_directory,
    read_registry,
)
from .exceptions import DownloadError, InputError

#: Environment variable naming a mirror, used when no ``mirror`` is given.
MIRROR_VARIABLE = "ANOMALY_DATA_URL"

#: Seconds to wait for a server to accept the connection, or to send more bytes.
DOWNLOAD_TIMEOUT = 30


@dataclass(frozen=True)
class Upstream:
    """Where a data set is published: the directory URL (ending in ``/``) and the names
    there of the files the cache stores under another name (cache name, public name)."""

    base_url: str
    renamed: tuple[tuple[str, str], ...] = ()


UPSTREAMS = {
    # The TensorFlow autoencoder tutorial's copy of ECG5000 (its ecg.csv), cached as
    # ecg5000/ecg5000.csv. The SHA-256 pinned for it in registry/sha256sums.txt is the one
    # of the copy in ../shared/data/ecg5000: it could not be checked against this URL
    # from the offline machine it was pinned on. Should the public file differ, every
    # download of it is refused with a checksum error.
    DatasetName.ecg5000: Upstream(
        "https://storage.googleapis.com/download.tensorflow.org/data/",
        renamed=(("ecg5000.csv", "ecg.csv"),)),
    # The MIT-BIH Arrhythmia Database 1.0.0 on PhysioNet; sums from PhysioNet's own
    # SHA256SUMS.txt of that release.
    DatasetName.mitdb: Upstream("https://physionet.org/files/mitdb/1.0.0/"),
}

#: Seconds a file's whole download may take: a server sending a byte now and then, each
#: within DOWNLOAD_TIMEOUT, would otherwise hold a scheduled fetch for ever. ECG5000 in
#: this time needs 9 kB/s.
DOWNLOAD_DEADLINE = 15 * 60


@dataclass(frozen=True)
class FetchedFile:
    """One file of a data set, now in the cache and matching its pinned SHA-256."""

    path: Path
    url: str
    downloaded: bool  # False: it was in the cache already.


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_dataset` did: the cache directory of the data set and its files."""

    dataset: DatasetName
    directory: Path
    files: tuple[FetchedFile, ...]

    @property
    def downloaded(self) -> int:
        """How many of the files were downloaded (the others were in the cache already)."""
        return sum(file.downloaded for file in self.files)


def download_urls(dataset: DatasetName | str, names: Sequence[str],
                  mirror: str | None = None) -> dict[str, str]:
    """The URL of each of ``names`` (cache names of ``dataset``'s files).

    The public servers, or ``MIRROR/<data set>/<name>``, a mirror laid out like the cache.
    ``mirror`` defaults to ``$ANOMALY_DATA_URL``.
    """
    dataset = DatasetName(dataset)
    mirror = mirror or os.environ.get(MIRROR_VARIABLE) or None
    if mirror is None:
        upstream = UPSTREAMS[dataset]
        public = dict(upstream.renamed)
        return {name: upstream.base_url + public.get(name, name) for name in names}
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"expected an http:// or https:// URL for the mirror (--mirror or "
                         f"${MIRROR_VARIABLE}), got {mirror!r}")
    return {name: f"{mirror.rstrip('/')}/{dataset.value}/{name}" for name in names}


def fetch_dataset(dataset: DatasetName | str, records: Sequence[str] = (), *,
                  mirror: str | None = None,
                  echo: Callable[[str], None] | None = None) -> FetchResult:
    """Download a data set (or some MIT-BIH records) into the cache, unless already there.

    Parameters
    ----------
    dataset : {"ecg5000", "mitdb"}
        The data set.
    records : sequence of str, default ()
        MIT-BIH record names (``"100"``, ``"208"``); empty: all 48. Empty for ECG5000.
    mirror : str, optional
        Base URL of a mirror laid out like the cache (``MIRROR/ecg5000/ecg5000.csv``,
        ``MIRROR/mitdb/100.dat``). Default: ``$ANOMALY_DATA_URL``, else the public servers.
    echo : callable, optional
        Called with one line per file downloaded, as it is done.

    Returns
    -------
    FetchResult
        The data set's directory in the cache and its files, each marked downloaded or
        already there. Every file matches its pinned SHA-256.

    Raises
    ------
    InputError
        A record name that is no MIT-BIH record, records for ECG5000, or a mirror that is
        no http(s) URL; nothing is downloaded.
    DownloadError
        A file could not be downloaded, or did not match its SHA-256: files fetched
        before it stay, nothing of it is left in the cache (a damaged copy there is
        removed). Or the cache is not what it should be: it is no directory, or a
        symbolic link, FIFO, device or directory stands where a data set's directory or
        file belongs; such an entry is left as it is, and nothing is read through it.
    """
    dataset = DatasetName(dataset)
    registry = read_registry(dataset)
    names = dataset_files(dataset, records, registry)
    urls = download_urls(dataset, names, mirror)
    try:
        directory = open_cache_directory(dataset, create=True)
    except InputError as error:  # A cache that is no directory, a link planted in it.
        raise DownloadError(str(error)) from None

    import pooch  # Here, not at the top: importing it takes a tenth of a second.

    downloader = pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT, progressbar=False,
                                      chunk_size=1 << 16)
    files = []
    with directory:
        try:
            for name in names:
                files.append(_fetch_file(directory, name, urls[name], downloader))
                if files[-1].downloaded and echo is not None:
                    echo(f"Downloaded {name} from {files[-1].url}")
        except DownloadError as error:
            cached = _count_verified(directory, names)
            state = (f"{cached} of {len(names)} files cached" if cached else "nothing cached")
            for path in reversed(directory.created):
                with contextlib.suppress(OSError):  # Not empty: something else is in there.
                    path.rmdir()
            raise DownloadError(f"{error}; {state} in {directory.path}") from None
    return FetchResult(dataset, directory.path, tuple(files))


def _fetch_file(directory: CacheDirectory, name: str, url: str, downloader) -> FetchedFile:
    """Fetch one file unless the cache holds it verified; failures are one-line
    :class:`DownloadError`s."""
    path = directory.path / name
    try:
        state = directory.state(name)
    except InputError as error:  # A link, FIFO, device or directory: left as it is.
        raise DownloadError(str(error)) from None
    if state is CachedState.verified:
        return FetchedFile(path, url, downloaded=False)
    try:
        _download(directory, name, url, downloader)
    except DownloadError:
        if state is CachedState.damaged:
            # Nothing unverified is left for find_ecg5000 and the other readers.
            directory.remove(name)
        raise
    return FetchedFile(path, url, downloaded=True)


def _download(directory: CacheDirectory, name: str, url: str, downloader) -> None:
    """Download ``url`` to a new temporary file in ``directory``, then rename it to
    ``name`` if it matches the pinned SHA-256; the temporary file is removed otherwise."""
    import requests

    temporary = f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        # A new file, never one already there (O_EXCL, which fails on a link too); its
        # mode 0o666 less the umask, as any file the user creates.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             0o666, dir_fd=directory.descriptor)
    except OSError as error:
        raise DownloadError(f"cannot store {name} in {directory.path}: "
                            f"{error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            received = _Received(file, url)
            try:
                downloader(url, received, None)
            except requests.RequestException as error:
                raise DownloadError(f"cannot download {_remote_name(url)} from {url}: "
                                    f"{_network_reason(error)}") from None
            os.fsync(file.fileno())
        expected, got = directory.sums[name], received.digest.hexdigest()
        if got != expected:
            raise DownloadError(f"{name} from {url} does not match its pinned SHA-256 "
                                f"(expected {expected}, got {got}): refused and not kept (a "
                                "damaged download, or the file changed upstream)")
        # Replaces the entry at ``name`` only, never what a link there would point to.
        os.rename(temporary, name, src_dir_fd=directory.descriptor,
                  dst_dir_fd=directory.descriptor)
    except OSError as error:  # Disk full; a directory put where the file goes.
        _remove_temporary(directory, temporary)
        raise DownloadError(f"cannot store {name} in {directory.path}: "
                            f"{error.strerror or error}") from None
    except BaseException:
        _remove_temporary(directory, temporary)
        raise


def _remove_temporary(directory: CacheDirectory, temporary: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=directory.descriptor)


class _Received:
    """The file a download is written to (pooch's downloader writes to any object with a
    ``write``): hashed as it comes, and cut off past :data:`MAX_CACHED_BYTES` or
    :data:`DOWNLOAD_DEADLINE`."""

    def __init__(self, file: BinaryIO, url: str):
        self.file, self.url = file, url
        self.digest, self.size = hashlib.sha256(), 0
        self.deadline = time.monotonic() + DOWNLOAD_DEADLINE

    def write(self, chunk: bytes) -> int:
        self.size += len(chunk)
        if self.size > MAX_CACHED_BYTES:
            raise DownloadError(f"cannot download {_remote_name(self.url)} from {self.url}: "
                                f"more than {MAX_CACHED_BYTES >> 20} MiB, larger than any "
                                "file of the data sets")
        if time.monotonic() > self.deadline:
            raise DownloadError(f"cannot download {_remote_name(self.url)} from {self.url}: "
                                f"not complete after {DOWNLOAD_DEADLINE} s")
        self.digest.update(chunk)
        return self.file.write(chunk)

    def flush(self) -> None:
        """Nothing: the downloader flushes after every chunk, the file is synced once."""


def _count_verified(directory: CacheDirectory, names: Sequence[str]) -> int:
    """How many of ``names`` the cache holds verified (what is planted there counts not)."""
    count = 0
    for name in names:
        with contextlib.suppress(InputError):
            count += directory.state(name) is CachedState.verified
    return count


def _remote_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _network_reason(error: Exception) -> str:
    """Why a request failed, in a few words: ``HTTP 404 Not Found``, ``Failed to establish
    a new connection: [Errno 111] Connection refused``, ..."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason or ''}".strip()
    if isinstance(error, requests.Timeout):
        return f"no answer within {DOWNLOAD_TIMEOUT} s"
    # requests wraps urllib3's error, which wraps the reason; its text starts with the
    # connection's host and port, which the URL in the message already gives.
    cause = error.args[0] if error.args else error
    text = str(getattr(cause, "reason", cause))
    return re.sub(r"^(<[^>]*>|\w+\(host=[^)]*\)): ", "", text) or type(error).__name__
