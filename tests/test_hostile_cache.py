"""The download cache under attack, each case through a real ``anomaly`` process.

The tool may run as root, from cron, on a cache other users can write. Whatever they
plant inside it (a symbolic link for a data set's directory or for a file, a FIFO, a link
to a device, a directory where a file belongs, a damaged or hard-linked copy, a RECORDS
list), ``anomaly data fetch`` and ``anomaly demo`` must refuse it in one ``Error:`` line
naming the file, within a bounded time (every process runs under a timeout), and leave
every file that was there before, in the cache and behind the planted links, byte for
byte as it was (hashed before and after with ``snapshot``).

No test touches the internet: the mirror is an HTTP server on 127.0.0.1 serving copies
of the real files from ../shared/data (tests needing it skip when those are absent), and
"offline" is a port nothing listens on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from anomaly.datasets import (
    CACHE_DIR_VARIABLE,
    DATA_DIR_VARIABLE,
    MAX_CACHED_BYTES,
    find_ecg5000,
    find_mitdb,
    read_registry,
    verified_copy,
)
from anomaly.exceptions import EXIT_BAD_INPUT, EXIT_DOWNLOAD_FAILED, EXIT_OK, InputError
from anomaly.fetch import MIRROR_VARIABLE

from hostile import anomaly, refused, snapshot
from test_fetch import Mirror, closed_port, shared_file

#: The files the mirror serves, laid out as in the cache.
SERVED = ("ecg5000/ecg5000.csv", "mitdb/100.hea", "mitdb/100.dat", "mitdb/100.atr")
#: Seconds any one command may take before the test fails as a hang.
TIMEOUT = 60
VICTIM_TEXT = b"root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Mirror:
    root = tmp_path_factory.mktemp("mirror")
    for relative in SERVED:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_file(relative), root / relative)
    server = Mirror(root)
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """``tmp_path/cache`` as the cache (not created), no data directory, no server."""
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{closed_port()}")
    return tmp_path / "cache"


@pytest.fixture(params=["offline", "mirror"])
def source(request, cache, monkeypatch) -> str:
    """The cache, then either no server at all or the mirror of the real files."""
    if request.param == "mirror":
        monkeypatch.setenv(MIRROR_VARIABLE, request.getfixturevalue("mirror").url)
    return request.param


@pytest.fixture
def victim(tmp_path) -> Path:
    """A directory outside the cache, with files an attacker would like changed."""
    directory = tmp_path / "victim"
    directory.mkdir()
    (directory / "passwd").write_bytes(VICTIM_TEXT)
    for extension in (".hea", ".dat", ".atr"):
        (directory / f"100{extension}").write_bytes(b"precious " + extension.encode())
    return directory


def make_fifo(path: Path, victim: Path) -> None:
    os.mkfifo(path)


def make_directory(path: Path, victim: Path) -> None:
    path.mkdir()
    (path / "keep.txt").write_bytes(VICTIM_TEXT)


#: What can stand where a cached file belongs: (how to plant it, what the error says).
PLANTED_FILES = {
    "a link to a file elsewhere": (lambda path, victim: path.symlink_to(victim / "passwd"),
                                   "a symbolic link (to {victim}/passwd)"),
    "a link to /dev/zero": (lambda path, victim: path.symlink_to("/dev/zero"),
                            "a symbolic link (to /dev/zero)"),
    "a FIFO": (make_fifo, "a FIFO (named pipe)"),
    "a directory": (make_directory, "a directory"),
}


def plant(cache: Path, relative: str, kind: str, victim: Path) -> str:
    """Plant ``kind`` at ``cache/relative``; the fragment of the error naming it."""
    path = cache / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    make, what = PLANTED_FILES[kind]
    make(path, victim)
    return (f"{path}: {what.format(victim=victim)} in the download cache, where a regular "
            "file belongs")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- data fetch ---------------------------------------------------------------------------

def test_a_linked_data_set_directory_is_refused_and_its_target_untouched(
        source, cache, victim, tmp_path):
    """The attack as found: ``mitdb`` a link, and 100.hea deleted (offline) or 100.*
    written (from a mirror) in the directory it points to."""
    cache.mkdir()
    (cache / "mitdb").symlink_to(victim)
    before = snapshot(tmp_path)

    finished = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT)

    refused(finished, f"{cache / 'mitdb'}: a symbolic link (to {victim}) in the download "
            "cache, where the mitdb directory belongs", "anomaly data fetch mitdb",
            code=EXIT_DOWNLOAD_FAILED)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", PLANTED_FILES)
def test_anything_but_a_regular_file_is_refused_as_it_stands(source, cache, victim, tmp_path,
                                                             kind):
    """Not followed (the link), not waited on (the FIFO), not read for ever (/dev/zero),
    not replaced nor removed (the directory and what it holds)."""
    fragment = plant(cache, "ecg5000/ecg5000.csv", kind, victim)
    before = snapshot(tmp_path)
    zero = os.stat("/dev/zero")

    finished = anomaly("data", "fetch", "ecg5000", cwd=tmp_path, timeout=TIMEOUT)

    refused(finished, fragment, f"nothing cached in {cache / 'ecg5000'}",
            code=EXIT_DOWNLOAD_FAILED)
    assert snapshot(tmp_path) == before
    after = os.stat("/dev/zero")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == zero.st_rdev


def test_a_linked_record_file_is_refused_after_the_files_before_it(mirror, cache, victim,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.url)
    fragment = plant(cache, "mitdb/100.dat", "a link to a file elsewhere", victim)
    before = snapshot(tmp_path)

    finished = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT)

    refused(finished, fragment, f"1 of 3 files cached in {cache / 'mitdb'}",
            code=EXIT_DOWNLOAD_FAILED)
    after = snapshot(tmp_path)
    assert after.pop("cache/mitdb/100.hea") == read_registry("mitdb")["100.hea"]
    assert after == before


@pytest.mark.parametrize("relative", ["", "mitdb"], ids=["the cache", "its mitdb"])
def test_a_regular_file_for_a_cache_directory_is_refused(source, cache, tmp_path, relative):
    (cache / relative).parent.mkdir(parents=True, exist_ok=True)
    (cache / relative).write_bytes(VICTIM_TEXT)
    before = snapshot(tmp_path)

    finished = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT)

    expected = (f"{cache}: the download cache is a regular file, not a directory" if not relative
                else f"{cache / 'mitdb'}: a regular file in the download cache, where the "
                     "mitdb directory belongs")
    refused(finished, expected, code=EXIT_DOWNLOAD_FAILED)
    assert snapshot(tmp_path) == before


def test_a_hard_link_is_never_written_through(mirror, cache, victim, tmp_path, monkeypatch):
    """A cached file with another name elsewhere: a sound one is used as it is; a damaged
    one is replaced in the cache, and the other name keeps its bytes."""
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.url)
    (cache / "ecg5000").mkdir(parents=True)
    sound = victim / "ecg5000-copy.csv"
    shutil.copyfile(mirror.root / "ecg5000" / "ecg5000.csv", sound)
    os.link(sound, cache / "ecg5000" / "ecg5000.csv")
    (cache / "mitdb").mkdir()
    os.link(victim / "100.hea", cache / "mitdb" / "100.hea")  # Damaged: "precious .hea".
    victims = {path: sha256(path) for path in (sound, victim / "100.hea")}

    kept = anomaly("data", "fetch", "ecg5000", cwd=tmp_path, timeout=TIMEOUT)
    replaced = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT)

    assert kept.code == EXIT_OK and "(0 downloaded, 1 already cached)" in kept.stdout, kept.stderr
    assert replaced.code == EXIT_OK and "(3 downloaded, 0 already cached)" in replaced.stdout
    assert {path: sha256(path) for path in victims} == victims
    assert sha256(cache / "mitdb" / "100.hea") == read_registry("mitdb")["100.hea"]
    assert os.stat(cache / "mitdb" / "100.hea").st_ino != os.stat(victim / "100.hea").st_ino


def test_a_damaged_hard_link_offline_loses_its_cache_name_only(cache, victim, tmp_path):
    (cache / "mitdb").mkdir(parents=True)
    os.link(victim / "100.hea", cache / "mitdb" / "100.hea")
    before = snapshot(victim)

    finished = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT)

    refused(finished, "cannot download 100.hea", f"nothing cached in {cache / 'mitdb'}",
            code=EXIT_DOWNLOAD_FAILED)
    assert not (cache / "mitdb" / "100.hea").exists()  # Nothing unverified left cached.
    assert snapshot(victim) == before and os.stat(victim / "100.hea").st_nlink == 1


def test_a_planted_records_list_is_left_alone_and_proves_nothing(mirror, cache, victim,
                                                                 tmp_path, monkeypatch):
    """RECORDS says the whole database is cached; fetched only with all 48 records, a
    planted one is not read by a fetch of some, and does not make find_mitdb take the
    cache for the whole database."""
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.url)
    (cache / "mitdb").mkdir(parents=True)
    (cache / "mitdb" / "RECORDS").symlink_to(victim / "passwd")
    before = snapshot(tmp_path)

    finished = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT)

    assert finished.code == EXIT_OK, finished.stderr
    after, pinned = snapshot(tmp_path), read_registry("mitdb")
    for name in ("100.hea", "100.dat", "100.atr"):
        assert after.pop(f"cache/mitdb/{name}") == pinned[name]
    assert after == before
    assert find_mitdb(["100"]) == cache / "mitdb"
    assert find_mitdb() != cache / "mitdb"


def test_an_endless_server_is_cut_off(cache, tmp_path, monkeypatch):
    """A mirror that never stops sending: stopped past MAX_CACHED_BYTES, nothing kept."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EndlessHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{server.server_address[1]}")
    try:
        started = time.monotonic()
        finished = anomaly("data", "fetch", "ecg5000", cwd=tmp_path, timeout=TIMEOUT)
        seconds = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()

    refused(finished, "cannot download ecg5000.csv from", f"more than {MAX_CACHED_BYTES >> 20} "
            "MiB", code=EXIT_DOWNLOAD_FAILED)
    assert not cache.exists() and seconds < 30


class EndlessHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the server's name for it
        self.send_response(200)
        self.end_headers()
        chunk = b"1," * (1 << 15)
        try:
            while True:
                self.wfile.write(chunk)
        except OSError:  # The client hung up.
            pass

    def log_message(self, *args) -> None:
        pass


# -- where the cache is and how it is written ----------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask 022", "umask 027"])
def test_fetched_files_and_directories_take_the_umask(mirror, cache, tmp_path, monkeypatch,
                                                      umask):
    """Not pooch's private 0600: a service user may read what root fetched."""
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.url)

    finished = anomaly("data", "fetch", "mitdb", "100", cwd=tmp_path, timeout=TIMEOUT,
                       preexec_fn=lambda: os.umask(umask))

    assert finished.code == EXIT_OK, finished.stderr
    modes = {str(path.relative_to(cache)): stat.S_IMODE(path.stat().st_mode)
             for path in [cache, *cache.rglob("*")]}
    assert modes == {".": 0o777 & ~umask, "mitdb": 0o777 & ~umask,
                     **{f"mitdb/100{ext}": 0o666 & ~umask for ext in (".hea", ".dat", ".atr")}}


def test_the_cache_path_itself_may_be_a_link(mirror, cache, tmp_path, monkeypatch):
    """$ANOMALY_CACHE_DIR (or ~/.cache/anomaly) is the user's choice and followed: only
    links inside the cache are refused."""
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.url)
    (tmp_path / "elsewhere").mkdir()
    cache.symlink_to(tmp_path / "elsewhere")

    finished = anomaly("data", "fetch", "ecg5000", cwd=tmp_path, timeout=TIMEOUT)

    assert finished.code == EXIT_OK, finished.stderr
    assert cache.is_symlink()
    assert sha256(tmp_path / "elsewhere" / "ecg5000" / "ecg5000.csv") == \
        read_registry("ecg5000")["ecg5000.csv"]


# -- readers of the cache: the demo -------------------------------------------------------

def damage(cache: Path, victim: Path) -> str:
    """A cached ECG5000 of the right layout but the wrong bytes (a truncated download,
    an edit): the sum is what tells."""
    path = cache / "ecg5000" / "ecg5000.csv"
    path.parent.mkdir(parents=True)
    path.write_text("1.0," * 140 + "1\n")
    return f"{path}: does not match its pinned SHA-256"


def link_directory(cache: Path, victim: Path) -> str:
    cache.mkdir()
    (victim / "ecg5000.csv").write_text("1.0," * 140 + "1\n")
    (cache / "ecg5000").symlink_to(victim)
    return (f"{cache / 'ecg5000'}: a symbolic link (to {victim}) in the download cache, "
            "where the ecg5000 directory belongs")


def file_planter(kind: str):
    return lambda cache, victim: plant(cache, "ecg5000/ecg5000.csv", kind, victim)


#: The plants the demo meets: each kind is met by data fetch above; these are those whose
#: reading would hang or mislead (every kind goes through the same opening).
DEMO_PLANTS = ("a link to /dev/zero", "a FIFO")


@pytest.mark.parametrize("prepare", [damage, link_directory] + [
    file_planter(kind) for kind in DEMO_PLANTS],
    ids=["a damaged copy", "a linked ecg5000 directory"] + list(DEMO_PLANTS))
def test_the_demo_refuses_a_cache_that_is_not_verified(cache, victim, tmp_path, prepare):
    """Refused in one line saying how to mend it, before any training, rather than trained
    on other beats under exit code 0: the cache comes before ../shared/data."""
    fragment = prepare(cache, victim)
    before = snapshot(tmp_path)

    finished = anomaly("demo", cwd=tmp_path, timeout=TIMEOUT)

    refused(finished, fragment, "anomaly data fetch ecg5000", code=EXIT_BAD_INPUT)
    assert snapshot(tmp_path) == before  # Not even the demo's directory.


def test_a_huge_cached_file_is_refused_without_reading_it(cache, tmp_path):
    """A sparse file far larger than any pinned one: damaged at once, not hashed for
    minutes (and not hashed by this test either)."""
    path = cache / "ecg5000" / "ecg5000.csv"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as file:
        file.truncate(1 << 40)

    started = time.monotonic()
    finished = anomaly("demo", cwd=tmp_path, timeout=TIMEOUT)

    refused(finished, f"{path}: does not match its pinned SHA-256", code=EXIT_BAD_INPUT)
    assert time.monotonic() - started < 20 and path.stat().st_size == 1 << 40


# -- readers of the cache: the library ----------------------------------------------------

def test_a_reader_parses_the_bytes_that_were_checked(mirror, cache, monkeypatch):
    """verified_copy hands the reader a private copy: the cached file swapped once it was
    checked changes nothing of what is read."""
    from anomaly.fetch import fetch_dataset

    fetch_dataset("ecg5000", mirror=mirror.url)
    cached = find_ecg5000()
    assert cached == cache / "ecg5000" / "ecg5000.csv"

    with verified_copy(cached) as readable:
        cached.unlink()
        cached.write_text("1.0," * 140 + "1\n")
        assert sha256(readable) == read_registry("ecg5000")["ecg5000.csv"]
    assert not readable.exists()
    with pytest.raises(InputError, match="does not match its pinned SHA-256"):
        find_ecg5000()


def test_the_users_data_directory_comes_before_the_cache(cache, tmp_path, monkeypatch):
    """$ANOMALY_DATA_DIR is the user's explicit choice: a damaged cache behind it is never
    looked at, and a data directory that is the cache is checked as the cache."""
    damage(cache, tmp_path)
    explicit = tmp_path / "explicit" / "ecg5000.csv"
    explicit.parent.mkdir()
    explicit.write_text("1.0," * 140 + "1\n")

    monkeypatch.setenv(DATA_DIR_VARIABLE, str(explicit.parent))
    assert find_ecg5000() == explicit
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(cache))
    with pytest.raises(InputError, match="does not match its pinned SHA-256"):
        find_ecg5000()
