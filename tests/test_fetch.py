"""``anomaly data fetch``: downloads checked against pinned SHA-256 sums, into a cache.

Nothing here touches the internet: an HTTP server on 127.0.0.1 serves copies of the real
files from ../shared/data (or $ANOMALY_DATA_DIR), laid out like the cache, and the
command is pointed at it with $ANOMALY_DATA_URL. Tests skip when those files are absent.
The exit codes are checked on real ``anomaly`` processes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from anomaly.datasets import (
    CACHE_DIR_VARIABLE,
    DATA_DIR_VARIABLE,
    data_dirs,
    dataset_files,
    find_ecg5000,
    mitdb_records,
    read_registry,
)
from anomaly.exceptions import EXIT_BAD_INPUT, EXIT_DOWNLOAD_FAILED, EXIT_OK
from anomaly.fetch import MIRROR_VARIABLE, fetch_dataset

from conftest import assert_one_line_error

ANOMALY = [sys.executable, "-m", "anomaly"]
#: The files the mirror serves, as laid out in ../shared/data and in the cache.
SERVED = ("ecg5000/ecg5000.csv", "mitdb/100.hea", "mitdb/100.dat", "mitdb/100.atr",
          "mitdb/101.hea", "mitdb/101.dat", "mitdb/101.atr")
#: Files the damaged mirror serves with one byte changed.
DAMAGED = ("ecg5000/ecg5000.csv", "mitdb/100.dat")


def shared_file(relative: str) -> Path:
    """A real data file from $ANOMALY_DATA_DIR or ../shared/data, or a skip. Not from the
    download cache (data_dirs leaves it out): what is there went through the very checks
    tested here."""
    for directory in data_dirs():
        if (directory / relative).is_file():
            return directory / relative
    pytest.skip(f"{relative} not found (looked in $ANOMALY_DATA_DIR and ../shared/data); "
                "see ../shared/data/README.md")


class Mirror:
    """An HTTP server on 127.0.0.1, in a thread, serving a directory; it records the path of
    every request, so that a test can tell what was downloaded."""

    def __init__(self, root: Path):
        self.root = root
        requests = self.requests = []

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the server's name for it
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A server with two trees: ``good/`` holds copies of the real files, ``bad/`` the
    same with one byte of each of the DAMAGED files changed."""
    root = tmp_path_factory.mktemp("mirror")
    sources = {relative: shared_file(relative) for relative in SERVED}
    for tree in ("good", "bad"):
        for relative, source in sources.items():
            (root / tree / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / tree / relative)
    for relative in DAMAGED:
        damaged = bytearray((root / "bad" / relative).read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        (root / "bad" / relative).write_bytes(bytes(damaged))
    server = Mirror(root)
    yield server
    server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a server that cannot be reached."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def anomaly(*args: str, cache: Path, mirror_url: str) -> subprocess.CompletedProcess:
    """Run ``anomaly ARGS`` in a real process, with its cache and mirror."""
    env = {**os.environ, CACHE_DIR_VARIABLE: str(cache), MIRROR_VARIABLE: mirror_url}
    return subprocess.run(ANOMALY + list(args), capture_output=True, text=True, env=env,
                          timeout=120)


def files_in(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}


# -- downloads --------------------------------------------------------------------------

def test_fetch_ecg5000_and_two_records_then_nothing_is_downloaded_again(mirror, tmp_path):
    cache, url = tmp_path / "cache", f"{mirror.url}/good"
    mirror.requests.clear()

    ecg = anomaly("data", "fetch", "ecg5000", cache=cache, mirror_url=url)
    records = anomaly("data", "fetch", "mitdb", "100", "101", cache=cache, mirror_url=url)

    for finished in (ecg, records):
        assert finished.returncode == EXIT_OK and finished.stderr == "", finished.stderr
    assert f"ecg5000: 1 file in {cache / 'ecg5000'}" in ecg.stdout
    assert f"mitdb: 6 files in {cache / 'mitdb'}" in records.stdout
    assert "(6 downloaded, 0 already cached)" in records.stdout
    assert files_in(cache) == set(SERVED)
    for relative in SERVED:  # Byte for byte the files served, each requested once.
        assert (cache / relative).read_bytes() == (mirror.root / "good" / relative).read_bytes()
    assert sorted(mirror.requests) == sorted(f"/good/{relative}" for relative in SERVED)

    again = [anomaly("data", "fetch", "ecg5000", cache=cache, mirror_url=url),
             anomaly("data", "fetch", "mitdb", "101", "100", cache=cache, mirror_url=url)]
    assert [finished.returncode for finished in again] == [EXIT_OK, EXIT_OK]
    assert "(0 downloaded, 1 already cached)" in again[0].stdout
    assert "(0 downloaded, 6 already cached)" in again[1].stdout
    assert len(mirror.requests) == len(SERVED)  # No new request.


def test_a_damaged_cached_file_is_downloaded_again(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    url = f"{mirror.url}/good"
    fetch_dataset("mitdb", ["100"], mirror=url)
    (tmp_path / "mitdb" / "100.hea").write_text("100 2 360 650000\n")
    mirror.requests.clear()

    result = fetch_dataset("mitdb", ["100"], mirror=url)

    assert mirror.requests == ["/good/mitdb/100.hea"]
    assert [file.path.name for file in result.files if file.downloaded] == ["100.hea"]
    expected = (mirror.root / "good" / "mitdb" / "100.hea").read_bytes()
    assert (tmp_path / "mitdb" / "100.hea").read_bytes() == expected


# -- failures ---------------------------------------------------------------------------

def test_a_corrupted_download_is_refused_and_nothing_is_kept(mirror, tmp_path):
    cache, url = tmp_path / "cache", f"{mirror.url}/bad"
    got = hashlib.sha256((mirror.root / "bad" / "ecg5000" / "ecg5000.csv").read_bytes())

    finished = anomaly("data", "fetch", "ecg5000", cache=cache, mirror_url=url)

    assert finished.returncode == EXIT_DOWNLOAD_FAILED and finished.stdout == ""
    assert_one_line_error(finished.stderr, f"ecg5000.csv from {url}/ecg5000/ecg5000.csv",
                          "does not match its pinned SHA-256",
                          read_registry("ecg5000")["ecg5000.csv"], got.hexdigest(),
                          f"nothing cached in {cache / 'ecg5000'}")
    assert files_in(tmp_path) == set()


def test_a_corrupted_record_file_keeps_the_files_before_it_only(mirror, tmp_path):
    cache = tmp_path / "cache"
    finished = anomaly("data", "fetch", "mitdb", "100", cache=cache,
                       mirror_url=f"{mirror.url}/bad")

    assert finished.returncode == EXIT_DOWNLOAD_FAILED
    assert_one_line_error(finished.stderr, "100.dat from", "does not match its pinned SHA-256",
                          f"1 of 3 files cached in {cache / 'mitdb'}")
    # 100.hea came first and is sound; 100.atr was never asked for.
    assert files_in(cache) == {"mitdb/100.hea"}


def test_a_damaged_cached_copy_is_removed_when_no_good_one_comes(mirror, tmp_path):
    """find_ecg5000 must never find a file that does not match its sum."""
    cache = tmp_path / "cache"
    (cache / "ecg5000").mkdir(parents=True)
    (cache / "ecg5000" / "ecg5000.csv").write_text("1,2,3\n")

    finished = anomaly("data", "fetch", "ecg5000", cache=cache, mirror_url=f"{mirror.url}/bad")

    assert finished.returncode == EXIT_DOWNLOAD_FAILED, finished.stderr
    assert files_in(cache) == set()


def test_an_unreachable_server_with_nothing_cached(tmp_path):
    cache, url = tmp_path / "cache", f"http://127.0.0.1:{closed_port()}"

    finished = anomaly("data", "fetch", "ecg5000", cache=cache, mirror_url=url)

    assert finished.returncode == EXIT_DOWNLOAD_FAILED and finished.stdout == ""
    assert_one_line_error(finished.stderr,
                          f"cannot download ecg5000.csv from {url}/ecg5000/ecg5000.csv: ",
                          "Connection refused", f"; nothing cached in {cache / 'ecg5000'}")
    assert not cache.exists()  # Not even the directories the download would have made.


def test_a_file_the_server_does_not_have(mirror, tmp_path):
    cache, url = tmp_path / "cache", f"{mirror.url}/good"
    finished = anomaly("data", "fetch", "mitdb", "100", "102", cache=cache, mirror_url=url)

    assert finished.returncode == EXIT_DOWNLOAD_FAILED
    assert_one_line_error(finished.stderr, f"cannot download 102.hea from {url}/mitdb/102.hea: "
                          "HTTP 404", f"3 of 6 files cached in {cache / 'mitdb'}")
    assert files_in(cache) == {"mitdb/100.hea", "mitdb/100.dat", "mitdb/100.atr"}


@pytest.mark.parametrize("args, mirror_url, message", [
    (("mitdb", "100", "999", "1OO"), None, "unknown MIT-BIH records '999', '1OO'; expected "
     "some of the 48 records 100, 101, "),
    (("ecg5000", "100"), None, "ecg5000 is one file and has no records; got 100"),
    (("ecg5000",), "ftp://example.org/data", "expected an http:// or https:// URL for the "
     "mirror (--mirror or $ANOMALY_DATA_URL), got 'ftp://example.org/data'"),
])
def test_bad_usage_is_exit_2_before_any_download(mirror, tmp_path, args, mirror_url, message):
    mirror.requests.clear()
    finished = anomaly("data", "fetch", *args, cache=tmp_path / "cache",
                       mirror_url=mirror_url or f"{mirror.url}/good")

    assert finished.returncode == EXIT_BAD_INPUT
    assert_one_line_error(finished.stderr, message)
    assert mirror.requests == [] and not (tmp_path / "cache").exists()


# -- the cache as a data directory ------------------------------------------------------

def test_the_demo_uses_the_cached_ecg5000(mirror, tmp_path, monkeypatch):
    from anomaly.demo import demo_data

    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "ecg5000" / "ecg5000.csv"
    assert find_ecg5000() != cached

    fetch_dataset("ecg5000", mirror=f"{mirror.url}/good")

    assert find_ecg5000() == cached
    description, values, labels = demo_data()
    assert description == f"ECG5000 from {cached}" and values.shape == (5000, 140)
    # $ANOMALY_DATA_DIR, the user's explicit choice, still comes first.
    explicit = tmp_path / "explicit" / "ecg5000.csv"
    explicit.parent.mkdir()
    shutil.copyfile(cached, explicit)
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(explicit.parent))
    assert find_ecg5000() == explicit


def test_data_commands_load_no_tensorflow(mirror, tmp_path):
    """'anomaly data ...' starts quickly: a fetch that finds everything cached (the mirror
    is unreachable) imports neither TensorFlow nor the numerical stack."""
    cache = tmp_path / "cache"
    finished = anomaly("data", "fetch", "ecg5000", cache=cache, mirror_url=f"{mirror.url}/good")
    assert finished.returncode == EXIT_OK, finished.stderr
    code = ("import sys; from anomaly.cli import main; "
            "codes = [main(['data', '--help']), main(['data', 'fetch', '--help']), "
            "main(['data', 'fetch', 'ecg5000'])]; "
            "heavy = [m for m in ('tensorflow', 'keras', 'numpy', 'pandas', 'pyarrow', "
            "'matplotlib', 'sklearn') if m in sys.modules]; "
            "print(codes, heavy); sys.exit(bool(heavy) or any(codes))")
    env = {**os.environ, CACHE_DIR_VARIABLE: str(cache),
           MIRROR_VARIABLE: f"http://127.0.0.1:{closed_port()}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fetch" in result.stdout and "--mirror" in result.stdout


def test_every_data_command_and_option_has_help():
    from typer.main import get_command

    from anomaly.cli import app

    group = get_command(app).commands["data"]
    assert group.help
    for name, command in group.commands.items():
        assert command.help, name
        for parameter in command.params:
            assert getattr(parameter, "help", None), f"{name} {parameter.name}"


# -- the pinned sums --------------------------------------------------------------------

def test_the_mitdb_registry_holds_physionets_sums_of_every_record():
    sums_file = shared_file("mitdb/SHA256SUMS.txt")
    physionet = dict(reversed(line.split()) for line in sums_file.read_text().splitlines())
    records = shared_file("mitdb/RECORDS").read_text().split()
    expected = {name: physionet[name] for name in
                ["RECORDS"] + [f"{record}{ext}" for record in records
                               for ext in (".hea", ".dat", ".atr")]}

    assert len(records) == 48 and mitdb_records() == records
    assert read_registry("mitdb") == expected


def test_the_ecg5000_sum_is_the_one_of_the_shared_copy():
    copy = shared_file("ecg5000/ecg5000.csv")
    assert read_registry("ecg5000") == {
        "ecg5000.csv": hashlib.sha256(copy.read_bytes()).hexdigest()}


def test_records_are_fetched_once_each_in_the_order_given():
    assert dataset_files("mitdb", ["101", "100", "101"]) == [
        "101.hea", "101.dat", "101.atr", "100.hea", "100.dat", "100.atr"]


def test_records_comes_last_and_only_with_the_whole_database():
    """So that RECORDS in the cache means every record is there (scripts look for it)."""
    whole = dataset_files("mitdb")
    assert len(whole) == 48 * 3 + 1 and whole[-1] == "RECORDS"
    assert dataset_files("mitdb", mitdb_records()[::-1])[-1] == "RECORDS"


def test_shared_data_is_looked_for_beside_a_checkout_not_beside_an_installed_package(tmp_path):
    """An editable install or a source checkout finds ../shared/data beside the project;
    an installed package lies in a virtual environment's lib, and beside that is nothing
    of the project's (a newcomer's error message listed '.venv/lib/python3.11/shared')."""
    from anomaly.datasets import beside_checkout

    checkout = tmp_path / "repo"
    (checkout / "anomaly").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'anomaly'\n")
    assert beside_checkout(checkout / "anomaly") == tmp_path / "shared" / "data"
    installed = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages" / "anomaly"
    installed.mkdir(parents=True)
    assert beside_checkout(installed) is None
