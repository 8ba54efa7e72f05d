"""Issue 12's classes of failure, each through the command line in a real process.

Scheduled scoring runs unattended, often as root, on files others drop into a directory.
Every case checks the exit code, the single ``Error:`` line, and that every file that was
there before is unchanged byte for byte (hashed before and after); the memory cases also
check the peak RSS of the process. The suite runs as root in CI, so the device cases run
there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from anomaly.exceptions import EXIT_BAD_MODEL, EXIT_OK, EXIT_TERMINATED
from anomaly.synthetic import synthetic_beats, write_beats_csv

from conftest import read_rows, run_cli
from hostile import MEMORY_BUDGET_MB, anomaly, refused, snapshot, started_writing


# -- 1. an output that resolves to an input, the model or another output -----------------

@pytest.mark.parametrize("prepare, args, fragments", [
    (None, ["in.csv", "-o", "in.csv"], ["in.csv: the scores file of in.csv would overwrite "
                                        "the input in.csv"]),
    (None, ["in.csv", "-o", "s.csv", "--report", "in.csv"],
     ["in.csv: the run report (--report) would overwrite the input in.csv"]),
    (None, ["in.csv", "-o", "s.csv", "--html", "in.csv"], ["--html", "the input in.csv"]),
    (None, ["in.csv", "-o", "s.csv", "--report", "s.csv"],
     ["s.csv: the run report (--report) and the scores file of in.csv are the same file"]),
    (lambda: shutil.copy("in.csv", "s3.rejects.csv"),
     ["s3.rejects.csv", "-o", "s3.csv", "--on-bad-row", "skip"],
     ["s3.rejects.csv: the rejects file of s3.rejects.csv would overwrite the input"]),
    (None, ["in.csv", "-o", "model/model.keras"],
     ["model/model.keras", "would write into the model directory model"]),
    (None, ["in.csv", "--plot-dir", "model"], ["would write into the model directory model"]),
    (lambda: os.link("in.csv", "hard.csv"), ["in.csv", "-o", "hard.csv"],
     ["hard.csv: the scores file of in.csv would overwrite the input in.csv"]),
    (lambda: os.link("model/metadata.json", "meta.json"), ["in.csv", "--report", "meta.json"],
     ["meta.json", "would write into the model directory model"]),
], ids=["scores over the input", "report over the input", "html over the input",
        "report over the scores", "rejects over an input", "a model file",
        "plots into the model", "a hard link to the input", "a hard link to a model file"])
def test_an_output_never_overwrites_an_input_the_model_or_another_output(
        work, prepare, args, fragments, monkeypatch):
    monkeypatch.chdir(work)
    if prepare is not None:
        prepare()
    before = snapshot(work)
    refused(anomaly("score", *args, "-m", "model", cwd=work), *fragments)
    assert snapshot(work) == before


# -- 2. an output that is not a regular file ------------------------------------------------

@pytest.mark.parametrize("destination, fragment", [
    ("/dev/null", "/dev/null: the scores file of in.csv is a character device, not a regular "
                  "file; standard output is -o -"),
    ("/dev/stdout", "/dev/stdout: the scores file of in.csv is a symbolic link"),
    ("fifo", "fifo: the scores file of in.csv is a FIFO (named pipe), not a regular file"),
    ("link.csv", "link.csv: the scores file of in.csv is a symbolic link (to elsewhere.csv)"),
])
def test_an_output_that_is_not_a_regular_file_is_refused(work, destination, fragment):
    os.mkfifo(work / "fifo")
    os.symlink("elsewhere.csv", work / "link.csv")
    device = os.stat("/dev/null")
    before = snapshot(work)
    refused(anomaly("score", "in.csv", "-m", "model", "-o", destination, cwd=work), fragment)
    assert snapshot(work) == before
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == device.st_rdev
    assert os.path.islink("/dev/stdout")


def test_report_and_html_dash_are_refused_rather_than_made_files(work):
    for option in ("--report", "--html"):
        refused(anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", option, "-",
                        cwd=work), f"'{option}'", "'-' is not a file here")
        assert not (work / "-").exists() and not (work / "s.csv").exists()


@pytest.mark.parametrize("option", ["--plot-dir", "--output-dir"])
def test_an_output_directory_that_is_a_planted_link_is_refused(work, option):
    """A link planted where the plots go would have them written over another directory's
    files (an attacker's summary overwrote elsewhere/score_histogram.png so)."""
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "score_histogram.png").write_text("precious\n")
    os.symlink(elsewhere, work / "planted")
    before = snapshot(work)
    refused(anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", option, "planted",
                    cwd=work) if option == "--plot-dir" else
            anomaly("score", "in.csv", "-m", "model", option, "planted", cwd=work),
            "planted: the output directory is a symbolic link")
    assert snapshot(work) == before
    assert (elsewhere / "score_histogram.png").read_text() == "precious\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's link needs root")
@pytest.mark.parametrize("option, value", [("--plot-dir", "shared/plots"),
                                           ("--html", "shared/report.html"),
                                           ("-o", "shared/s.csv"),
                                           # Through it and back: the system follows it.
                                           ("-o", "shared/../s.csv"),
                                           # Through a link of one's own that leads there.
                                           ("-o", "mine/s.csv")])
def test_an_output_reached_through_another_users_link_is_refused(work, option, value):
    """A link another user planted on the way to an output (not its last part) would have
    it written wherever they chose; a link of one's own is one's own choice."""
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, work / "shared")
    os.lchown(work / "shared", 65534, 65534)
    os.symlink(work / "shared", work / "mine")
    before = snapshot(work)
    arguments = ["score", "in.csv", "-m", "model", option, value]
    refused(anomaly(*arguments, *([] if option == "-o" else ["-o", "s.csv"]), cwd=work),
            "its directory", "shared' is a symbolic link of another user's (uid 65534)")
    assert snapshot(work) == before and list(elsewhere.iterdir()) == []
    os.lchown(work / "shared", 0, 0)
    finished = anomaly(*arguments, *([] if option == "-o" else ["-o", "s.csv"]), cwd=work)
    assert finished.code == 0, finished.stderr


# -- 3. planted lock files ---------------------------------------------------------------------

@pytest.mark.parametrize("plant, fragment", [
    (lambda lock, victim: os.symlink(victim, lock), "is a symbolic link"),
    (lambda lock, victim: os.link(victim, lock), "a hard link to another file"),
    (lambda lock, victim: os.mkfifo(lock), "(a device, a FIFO"),
], ids=["symbolic link", "hard link", "FIFO"])
def test_a_planted_lock_is_refused_and_its_target_untouched(work, plant, fragment):
    victim = work / "victim.txt"
    victim.write_text("precious\n")
    plant(work / ".s.csv.lock", victim)
    before = snapshot(work)
    refused(anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", cwd=work),
            ".s.csv.lock: the lock of s.csv", fragment)
    assert snapshot(work) == before and victim.read_text() == "precious\n"


# -- 4. names that collide -----------------------------------------------------------------------

@pytest.mark.parametrize("inputs, fragment", [
    (["a/x.csv", "b/x.csv"], "od/x.scores.csv: the scores file of b/x.csv and the scores "
                             "file of a/x.csv are the same file"),
    (["in/day1.csv", "in/day1.csv.gz"], "od/day1.scores.csv: the scores file of "
                                        "in/day1.csv.gz and the scores file of in/day1.csv"),
])
def test_two_inputs_whose_outputs_collide_are_refused_before_scoring(work, inputs, fragment):
    for name in inputs:
        (work / name).parent.mkdir(exist_ok=True)
        data = (work / "in.csv").read_bytes()
        (work / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    before = snapshot(work)
    refused(anomaly("score", *inputs, "-m", "model", "--output-dir", "od", cwd=work), fragment)
    assert snapshot(work) == before  # not even the output directory


# -- 5. the tool's own outputs as inputs -----------------------------------------------------------

def test_a_week_of_nightly_runs_into_the_input_directory(work, capsys, monkeypatch):
    """Each night a new file arrives and the run writes beside the inputs: later nights
    never take the scores, rejects, report, temporaries or locks for inputs."""
    monkeypatch.chdir(work)
    drop = work / "drop"
    drop.mkdir()
    lines = (work / "in.csv").read_text().splitlines(keepends=True)
    for night in range(1, 8):
        (drop / f"day{night}.csv").write_text("".join(lines[night * 10:night * 10 + 30]))
        (drop / f".day{night}.scores.csv.k1ll3d_x.tmp").write_text("a killed run's leftover")
        code, _, err = run_cli(capsys, "score", "drop", "-m", "model", "--output-dir", "drop",
                               "--skip-existing", "--on-bad-row", "skip",
                               "--report", "drop/run.json", "--html", "drop/run.html")
        assert code == EXIT_OK, err
        report = json.loads((drop / "run.json").read_text())
        assert len(report["inputs"]) == night and report["inputs_scored"] == 1
        assert report["inputs"][-1]["input"] == f"drop/day{night}.csv"
    assert sorted(path.name for path in drop.glob("*.scores.csv")) == [
        f"day{night}.scores.csv" for night in range(1, 8)]
    assert len(read_rows(drop / "day7.scores.csv")) == 30


# -- 6 and 7. memory bounded whatever the bytes -------------------------------------------------

def one_long_gzip_line(path: Path) -> Path:
    """A few kilobytes of gzip that unpack to one 4 MB line of two million fields."""
    path.write_bytes(gzip.compress(b"0," * 2_000_000 + b"0\n", compresslevel=9))
    assert path.stat().st_size < 16_000
    return path


def no_newline(path: Path) -> Path:
    """20 MB without a line end."""
    with open(path, "wb") as file:
        for _ in range(20):
            file.write(b"1" * (1 << 20))
    return path


def wide_first_line(path: Path) -> Path:
    """A first line of 50,000 fields (100 KB), then normal-length rows."""
    path.write_text(",".join(["0"] * 50_000) + "\n" + ",".join(["0"] * 96) + "\n")
    return path


def too_many_fields(path: Path) -> Path:
    """A first line of 200,000 fields (400 KB, under the line length limit)."""
    path.write_text(",".join(["0"] * 200_000) + "\n")
    return path


@pytest.mark.parametrize("make, fragment", [
    (one_long_gzip_line, "line 1: longer than 1,048,576 bytes"),
    (no_newline, "line 1: longer than 1,048,576 bytes"),
    (wide_first_line, "line 1: expected 96 samples per beat (the model's input length), "
                      "got 50000"),
    (too_many_fields, "line 1: more than 65,536 fields"),
    (lambda path: Path("/dev/zero"), "/dev/zero: is a device, not a file"),
], ids=["gzip of one 4 MB line", "20 MB without a newline", "50,000 fields",
        "200,000 fields", "/dev/zero"])
def test_hostile_input_is_refused_within_the_memory_budget(work, make, fragment):
    hostile = make(work / "hostile.csv")
    before = snapshot(work)
    finished = anomaly("score", hostile, "-m", "model", "-o", "s.csv", cwd=work)
    refused(finished, fragment)
    assert finished.peak_mb < MEMORY_BUDGET_MB, finished.peak_mb
    assert snapshot(work) == before


def test_endless_standard_input_is_refused_within_the_memory_budget(work):
    with open("/dev/zero", "rb") as zeros:
        finished = anomaly("score", "-", "-m", "model", "-o", "s.csv", cwd=work, stdin=zeros)
    refused(finished, "<stdin> line 1: longer than 1,048,576 bytes")
    assert finished.peak_mb < MEMORY_BUDGET_MB, finished.peak_mb


def test_fit_refuses_a_gzip_bomb_line_within_the_memory_budget(work):
    one_long_gzip_line(work / "train.csv.gz")
    before = snapshot(work)
    finished = anomaly("fit", "train.csv.gz", "-m", "model", cwd=work)
    refused(finished, "train.csv.gz line 1: longer than 1,048,576 bytes")
    assert finished.peak_mb < MEMORY_BUDGET_MB
    assert snapshot(work) == before


def test_rejected_rows_take_no_more_memory_however_many(work):
    """Skip mode streams its rejects: a million bad rows cost what a hundred thousand do
    (before, each took about 220 bytes: 200 MB more)."""
    good = (work / "in.csv").read_text().splitlines()[0]
    peaks = {}
    for bad_rows in (100_000, 1_000_000):
        (work / "bad.csv").write_text(good + "\n" + "1,2,x\n" * bad_rows)
        finished = anomaly("score", "bad.csv", "-m", "model", "-o", "s.csv", "--on-bad-row",
                           "skip", "-q", cwd=work)
        assert finished.code == EXIT_OK, finished.stderr
        rejects = (work / "s.rejects.csv").read_bytes()
        assert rejects.count(b"\n") == bad_rows + 1
        peaks[bad_rows] = finished.peak_mb
    assert peaks[1_000_000] - peaks[100_000] < 100, peaks
    assert peaks[1_000_000] < MEMORY_BUDGET_MB, peaks


# -- 7b. a file reads the same wherever its bad rows and block edges fall ------------------

def _beats_with_ids(work: Path, samples: list[str], bad_row: int | None = None) -> Path:
    """The input's beats under a header with ``record,beat,sample`` ids; row ``bad_row``
    (0-based) has a text cell."""
    rows = (work / "in.csv").read_text().splitlines()
    width = len(rows[0].split(","))
    lines = ["record,beat,sample," + ",".join(f"x{i}" for i in range(width))]
    for number, (row, sample) in enumerate(zip(rows, samples)):
        cells = row.split(",")
        if number == bad_row:
            cells[-1] = "abc"
        lines.append(f"r,{number + 1},{sample}," + ",".join(cells))
    path = work / f"ids_{bad_row}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_integer_cell_reads_the_same_whether_or_not_another_row_is_bad(work):
    """The largest 64-bit integer is a sample number in a file whose rows are all good
    (pyarrow's typed read) and in one with a bad row (the row-by-row read); one past it,
    hexadecimal (which pyarrow alone reads) and 26 digits are bad rows in both."""
    samples = [str((1 << 63) - 1), str(1 << 63), "0x1F", "0" * 25 + "7"] + [
        str(i) for i in range(4, 250)]
    scored = {}
    for bad_row in (None, 5):
        path = _beats_with_ids(work, samples, bad_row)
        finished = anomaly("score", path.name, "-m", "model", "-o", "s.csv", "--on-bad-row",
                           "skip", "-q", cwd=work)
        assert finished.code == EXIT_OK, finished.stderr
        scored[bad_row] = {row["beat"]: row["sample"] for row in read_rows(work / "s.csv")}
        rejects = read_rows(work / "s.rejects.csv")
        assert [row["line"] for row in rejects] == ["3", "4", "5"] + (["7"] if bad_row else [])
        assert "expected a 64-bit integer" in rejects[0]["reason"]
    assert scored[None]["1"] == scored[5]["1"] == str((1 << 63) - 1)
    del scored[None]["6"]
    assert scored[None] == scored[5]


def test_a_line_over_the_limit_inside_a_block_is_refused(work):
    """The 1 MiB line limit holds wherever the line is, not only at a block's edge: a
    valid 2 MB row in the middle of an 8 MB block."""
    rows = (work / "in.csv").read_text().splitlines()
    cells = rows[0].split(",")
    cells[0] = "0." + "0" * (2 << 20) + "1"
    text = "\n".join(rows[:100] + [",".join(cells)] + rows[100:] * 30) + "\n"
    (work / "long.csv").write_text(text)
    assert len(text) < 8 << 20  # One block.
    before = snapshot(work)
    refused(anomaly("score", "long.csv", "-m", "model", "-o", "s.csv", cwd=work),
            "long.csv line 101: longer than 1,048,576 bytes")
    assert snapshot(work) == before


# -- 8. network waits with a timeout ----------------------------------------------------------------

class _SilentHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the server's name for it
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server():
    """A service that is not a Dask scheduler, on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_scheduler_that_does_not_answer_times_out(work, http_server):
    before = snapshot(work)
    started = time.monotonic()
    finished = anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", "--engine", "dask",
                       "--scheduler", http_server, "--connect-timeout", "3", cwd=work)
    refused(finished, f"--scheduler {http_server}: no Dask scheduler answered within 3 s")
    assert time.monotonic() - started < 60
    assert snapshot(work) == before


@pytest.mark.parametrize("address", ["garbage", "tcp://127.0.0.1:notaport"])
def test_a_bad_scheduler_address_is_bad_usage(work, address):
    refused(anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", "--engine", "dask",
                    "--scheduler", address, cwd=work),
            f"--scheduler {address}: not a scheduler address")


# -- 9 and 10. numbers that overflow -----------------------------------------------------------------

def with_cells(work: Path, cells: dict[tuple[int, int], str]) -> Path:
    lines = [line.split(",") for line in (work / "in.csv").read_text().splitlines()]
    for (line, column), text in cells.items():
        lines[line - 1][column - 1] = text
    (work / "huge.csv").write_text("".join(",".join(fields) + "\n" for fields in lines))
    return work / "huge.csv"


def test_values_beyond_what_the_model_can_score_are_bad_rows(work):
    with_cells(work, {(3, 5): "1e40", (7, 2): "1e300", (7, 3): "-1e300", (9, 96): "-3e38"})
    before = snapshot(work)
    refused(anomaly("score", "huge.csv", "-m", "model", "-o", "s.csv", cwd=work),
            "huge.csv line 3 column 5: '1e40' is outside what the model can score")
    assert snapshot(work) == before
    finished = anomaly("score", "huge.csv", "-m", "model", "-o", "s.csv", "--on-bad-row",
                       "skip", "--plot-dir", "plots", "--report", "r.json", "-q", cwd=work)
    assert finished.code == EXIT_OK and finished.stderr == "", finished.stderr  # no warnings
    rejects = read_rows(work / "s.rejects.csv")
    assert [row["line"] for row in rejects] == ["3", "7", "9"]
    scores = [float(row["score"]) for row in read_rows(work / "s.csv")]
    assert len(scores) == 247 and np.isfinite(scores).all()
    assert json.loads((work / "r.json").read_text())["rows_rejected"] == 3


def test_fit_refuses_values_no_scaling_can_hold_and_keeps_the_old_model(work, data_dir):
    lines = (data_dir / "normal.csv").read_text().splitlines()
    lines[0] = "1.7e308," + lines[0].split(",", 1)[1]
    lines[1] = "-1.7e308," + lines[1].split(",", 1)[1]
    (work / "train.csv").write_text("\n".join(lines) + "\n")
    before = snapshot(work)
    refused(anomaly("fit", "train.csv", "-m", "model", "--epochs", "2", cwd=work),
            "train.csv: the training values span -1.7e+308 to 1.7e+308, more than a 64-bit "
            "float can hold")
    assert snapshot(work) == before


def test_fit_warns_in_one_line_when_a_few_values_set_the_scaling(work, data_dir, tmp_path):
    lines = (data_dir / "normal.csv").read_text().splitlines()
    lines[0] = "5000," + lines[0].split(",", 1)[1]
    (work / "train.csv").write_text("\n".join(lines) + "\n")
    finished = anomaly("fit", "train.csv", "-m", tmp_path / "new", "--epochs", "2", "-q",
                       cwd=work)
    assert finished.code == EXIT_OK
    [warning] = finished.stderr.splitlines()
    assert warning.startswith("Warning: train.csv: the training values span ") and \
        "a few extreme values set the min-max scaling" in warning


# -- 11. crafted model directories ---------------------------------------------------------------------

def _save_crafted(work: Path, build) -> None:
    """Replace the model's network by ``build(keras)``, its hash recorded to match."""
    from anomaly.model.networks import keras

    model = build(keras)
    model.save(work / "model" / "model.keras")
    _rehash(work)


def _rehash(work: Path) -> None:
    metadata_path = work / "model" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["model_sha256"] = hashlib.sha256(
        (work / "model" / "model.keras").read_bytes()).hexdigest()
    metadata_path.write_text(json.dumps(metadata))


def _narrow_output(keras):
    inputs = keras.Input((96,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def _two_outputs(keras):
    inputs = keras.Input((96,))
    return keras.Model(inputs, [keras.layers.Dense(96)(inputs), keras.layers.Dense(96)(inputs)])


def _nan_weights(keras):
    inputs = keras.Input((96,))
    layer = keras.layers.Dense(96)
    model = keras.Model(inputs, layer(inputs))
    kernel, bias = layer.get_weights()
    kernel[0, 0] = np.nan
    layer.set_weights([kernel, bias])
    return model


def _config_bomb(work: Path) -> None:
    """A model.keras whose config.json unpacks to 100 MB (a zip of 100 KB)."""
    import zipfile

    path = work / "model" / "model.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", '{"a": "' + " " * (100 << 20) + '"}')
    _rehash(work)


def _huge_declared_input(work: Path) -> None:
    """A weightless model.keras whose config declares a 2e8-sample input."""
    import zipfile

    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 200_000_000]}}]}}
    with zipfile.ZipFile(work / "model" / "model.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", "{}")
    _rehash(work)


def _huge_integer(work: Path) -> None:
    path = work / "model" / "metadata.json"
    path.write_text(path.read_text().replace('"threshold": ', '"threshold": ' + "9" * 5001 + ", "
                                             '"was_threshold": ', 1))


@pytest.mark.parametrize("craft, fragment", [
    (lambda work: _save_crafted(work, _narrow_output), "maps inputs of shape (96,) to (1,)"),
    (lambda work: _save_crafted(work, _two_outputs), "maps inputs of shape (96,) to 2 outputs"),
    (lambda work: _save_crafted(work, _nan_weights), "some weights are not finite numbers"),
    (_config_bomb, "config.json unpacks to 104,857,6"),
    (_huge_declared_input, "a layer declares the shape [None, 200000000], over 1,000,000 values"),
    (_huge_integer, "metadata.json: unreadable metadata"),
], ids=["output narrower than the input", "two outputs", "NaN weights", "config bomb",
        "a 2e8-sample input", "a 5,001-digit integer"])
def test_a_crafted_model_directory_is_exit_3_before_the_heavy_work(work, craft, fragment):
    craft(work)
    before = snapshot(work)
    # The Keras runtime reads model.keras (the ONNX runtime's checks: tests/test_runtimes.py).
    finished = anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", "--runtime", "keras",
                       cwd=work)
    refused(finished, fragment, code=EXIT_BAD_MODEL)
    assert finished.peak_mb < MEMORY_BUDGET_MB
    assert snapshot(work) == before


# -- 12. process faults ----------------------------------------------------------------------------------

def test_sigterm_removes_the_temporary_files_and_the_lock(work):
    values, _ = synthetic_beats(60_000, 0, length=96, seed=5)
    write_beats_csv(work / "big.csv", values)
    (work / "out").mkdir()
    before = snapshot(work)
    process = started_writing(work, "score", "big.csv", "-m", "model", "-o", "out/s.csv",
                              "--report", "out/r.json")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_TERMINATED, err
    assert err.strip() == "Error: terminated (SIGTERM); nothing half-written was left"
    assert snapshot(work) == before  # no output, no temporary file, no lock


def test_a_full_disk_names_the_file_and_leaves_nothing(work):
    """A file size limit (RLIMIT_FSIZE) stands in for a full disk: the write fails."""
    import resource

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    (work / "out").mkdir()
    before = snapshot(work)
    finished = anomaly("score", "in.csv", "-m", "model", "-o", "out/s.csv", cwd=work,
                       preexec_fn=limit_file_size)
    refused(finished, "out/s.csv: File too large")
    assert snapshot(work) == before

