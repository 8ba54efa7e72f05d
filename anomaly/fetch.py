"""Download the public data sets into the cache, each file checked against a pinned SHA-256.

`pooch <https://www.fatiando.org/pooch/>`_ does the downloading: a file is streamed to a
temporary file beside its destination, its SHA-256 is compared with the sum pinned in
``anomaly/registry/sha256sums.txt``, and only a file that matches is moved into place. So
the cache holds verified files only, and a file already there is not downloaded again.

The cache (:func:`anomaly.datasets.cache_dir`) is laid out like ``../shared/data``:
``ecg5000/ecg5000.csv``, ``mitdb/100.hea``, ``mitdb/100.dat``, ``mitdb/100.atr``, ...
and ``mitdb/RECORDS`` once all 48 records are there. That is why :func:`anomaly.datasets.find_ecg5000` finds what was
fetched, and why any such directory served over HTTP (another machine's cache, or
``../shared/data``) can stand in for the public servers as a mirror (``mirror=``,
``$ANOMALY_DATA_URL``).

Like the command line above it, this module imports nothing heavy at module level: pooch
and requests are imported when a download starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

from .datasets import cache_dir
from .exceptions import DownloadError, InputError
from .io.writers import file_sha256

#: Environment variable naming a mirror, used when no ``mirror`` is given.
MIRROR_VARIABLE = "ANOMALY_DATA_URL"

#: Seconds to wait for a server to accept the connection, or to send more bytes.
DOWNLOAD_TIMEOUT = 30


class DatasetName(str, Enum):
    """The data sets ``anomaly data fetch`` downloads."""

    ecg5000 = "ecg5000"
    mitdb = "mitdb"


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

#: The files of one MIT-BIH record: header, signals, reference annotations.
RECORD_EXTENSIONS = (".hea", ".dat", ".atr")
#: The list of a database's record names, in PhysioNet's layout. Fetched only with the
#: whole database, and last: in the cache, it says that every record is there.
RECORDS_FILE = "RECORDS"


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


#: The pinned sums of every downloadable file, in the package's ``registry`` folder.
REGISTRY_FILE = "sha256sums.txt"


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


def files_to_fetch(dataset: DatasetName | str, records: Sequence[str] = (),
                   registry: dict[str, str] | None = None) -> list[str]:
    """The cache names of the files to download for ``records`` of ``dataset``.

    ECG5000 is one file and has no records. For MIT-BIH: the ``.hea``, ``.dat`` and
    ``.atr`` files of each record named, or of all 48 when none is, then ``RECORDS`` when
    all 48 are fetched. Names that are no record are refused, all of them in one error,
    before anything is fetched.
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


def download_location(dataset: DatasetName | str,
                      mirror: str | None = None) -> tuple[str, dict[str, str]]:
    """Where to download a data set from, as pooch takes it: (the base URL, ending in
    ``/``, of its files; the full URLs of those not found there under their cache name).

    The public servers, or ``MIRROR/<data set>/``, a mirror laid out like the cache.
    ``mirror`` defaults to ``$ANOMALY_DATA_URL``.
    """
    dataset = DatasetName(dataset)
    mirror = mirror or os.environ.get(MIRROR_VARIABLE) or None
    if mirror is None:
        upstream = UPSTREAMS[dataset]
        return upstream.base_url, {name: upstream.base_url + public_name
                                   for name, public_name in upstream.renamed}
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"expected an http:// or https:// URL for the mirror (--mirror or "
                         f"${MIRROR_VARIABLE}), got {mirror!r}")
    return f"{mirror.rstrip('/')}/{dataset.value}/", {}


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
        A file could not be downloaded, or did not match its SHA-256. Files fetched before
        it stay; nothing of it is left in the cache (a damaged copy there is removed).
    """
    dataset = DatasetName(dataset)
    registry = read_registry(dataset)
    names = files_to_fetch(dataset, records, registry)
    base_url, urls = download_location(dataset, mirror)
    directory = cache_dir() / dataset.value
    # Created by the first download: removed again if no file makes it into them.
    new_directories = [path for path in (directory.parent, directory) if not path.exists()]

    import pooch  # Here, not at the top: importing it takes a tenth of a second.

    store = pooch.create(path=directory, base_url=base_url, urls=urls,
                         registry={name: registry[name] for name in names})
    downloader = pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT)
    files = []
    try:
        with _pooch_silenced():
            for name in names:
                files.append(_fetch_file(store, name, downloader))
                if files[-1].downloaded and echo is not None:
                    echo(f"Downloaded {name} from {files[-1].url}")
    except DownloadError as error:
        cached = sum((directory / name).is_file() for name in names)
        state = (f"{cached} of {len(names)} files cached" if cached else "nothing cached")
        for path in reversed(new_directories):
            with contextlib.suppress(OSError):  # Not empty: something else is in there.
                path.rmdir()
        raise DownloadError(f"{error}; {state} in {directory}") from None
    return FetchResult(dataset, directory, tuple(files))


def _fetch_file(store, name: str, downloader) -> FetchedFile:
    """Fetch one file through pooch; its failures become one-line :class:`DownloadError`s."""
    import requests

    url, path, expected = store.get_url(name), store.abspath / name, store.registry[name]
    try:
        # pooch hands the processor its action: "download" or "update" (a copy whose sum
        # did not match was downloaded again), or "fetch" (the cached copy matched).
        action = store.fetch(name, downloader=downloader,
                             processor=lambda _path, action, _store: action)
    except requests.RequestException as error:
        _remove_if_damaged(path, expected)
        remote_name = url.rsplit("/", 1)[-1]
        raise DownloadError(f"cannot download {remote_name} from {url}: "
                            f"{_network_reason(error)}") from None
    except ValueError as error:  # The only one pooch raises here: the sum did not match.
        _remove_if_damaged(path, expected)
        got = re.search(r"\bgot ([0-9a-f]{64})", str(error))
        got = f", got {got.group(1)}" if got else ""
        raise DownloadError(f"{name} from {url} does not match its pinned SHA-256 (expected "
                            f"{expected}{got}): refused and not kept (a damaged download, "
                            "or the file changed upstream)") from None
    return FetchedFile(path, url, downloaded=action != "fetch")


def _remove_if_damaged(path: Path, expected: str) -> None:
    """Remove a cached copy that does not match its sum (pooch tried to replace it and
    failed), so that nothing unverified is left for :func:`find_ecg5000` and others."""
    if path.is_file() and file_sha256(path) != expected:
        path.unlink()


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


@contextlib.contextmanager
def _pooch_silenced():
    """Keep pooch's own "Downloading file ..." lines off stderr: the caller reports."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
