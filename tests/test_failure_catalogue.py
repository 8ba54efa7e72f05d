"""The failure catalogue (issue 5), end to end through the command line.

One case per way an input, a destination or a model directory can be bad: what is given,
the exit code, and the one ``Error:`` line, which names the file (and the line and column
where they apply). Every failing case also checks that nothing was written: no output, no
rejects file, no report, no temporary or lock file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from anomaly.exceptions import EXIT_BAD_INPUT, EXIT_BAD_MODEL
from anomaly.synthetic import synthetic_beats, write_beats_csv

from conftest import assert_one_line_error, read_rows, run_cli, write_text

ANOMALY = [sys.executable, "-m", "anomaly"]
#: Samples per beat of the session's model (see conftest).
N_SAMPLES = 96
SAMPLES = [f"{math.sin(i / 8):.4f}" for i in range(N_SAMPLES)]
BOM = b"\xef\xbb\xbf"

root_ignores_permissions = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads and writes whatever the permission bits say")


def beat(*, n_samples: int = N_SAMPLES, delimiter: str = ",", label: str | None = None,
         cells: dict[int, str] | None = None) -> str:
    """One line of a beats file; ``cells`` replaces samples by 0-based index."""
    fields = (SAMPLES * 2)[:n_samples]
    for index, text in (cells or {}).items():
        fields[index] = text
    return delimiter.join(fields + ([] if label is None else [label]))


def lines(*rows: str) -> bytes:
    return "".join(row + "\n" for row in rows).encode()


def tree(directory: Path) -> set[str]:
    """Every path under ``directory``, to show that a failed run wrote nothing."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def assert_fails_writing_nothing(capsys, directory: Path, args: list, exit_code: int,
                                 error: str) -> str:
    """Run the CLI: it exits with ``exit_code``, says ``error`` in one ``Error:`` line, and
    leaves ``directory`` as it was. Returns stdout."""
    before = tree(directory)
    code, out, err = run_cli(capsys, *args)
    assert code == exit_code
    assert_one_line_error(err, error)
    assert tree(directory) == before
    return out


# -- bad input files ------------------------------------------------------------------------

class Case(NamedTuple):
    data: bytes
    #: The error line after the file's name: where (line, column) and what.
    error: str
    options: tuple[str, ...] = ()
    #: The one bad row, which --on-bad-row skip rejects; None: the whole file is bad.
    bad_line: int | None = None
    #: Whether 'anomaly fit' reads the file (and fails) the same way.
    fit: bool = True
    name: str = "batch.csv"


LABELLED = ("--label-column", "last")
TRUNCATED_GZIP = gzip.compress(lines(*[beat()] * 500))[:2000]

INPUT_CASES = {
    "empty file": Case(b"", ": the file is empty"),
    "only blank lines": Case(b"\n \n", ": the file is empty (only blank lines)"),
    "header only": Case(lines(",".join(f"t{i}" for i in range(N_SAMPLES))),
                        ": no heartbeats in the file (only a header row)"),
    "too few fields": Case(lines(beat(), beat(n_samples=95)),
                           " line 2: expected 96 fields, got 95", bad_line=2),
    "too many fields": Case(lines(beat(), beat(), beat(n_samples=97)),
                            " line 3: expected 96 fields, got 97", bad_line=3),
    "non-numeric cell": Case(lines(beat(), beat(cells={4: "abc"}), beat()),
                             " line 2 column 5: expected a number, got 'abc'", bad_line=2),
    "NaN cell": Case(lines(beat(), beat(cells={4: "nan"})),
                     " line 2 column 5: 'nan' is not a finite number", bad_line=2),
    "infinite cell": Case(lines(beat(), beat(cells={95: "-inf"})),
                          " line 2 column 96: '-inf' is not a finite number", bad_line=2),
    "empty cell": Case(lines(beat(), beat(cells={4: ""})),
                       " line 2 column 5: empty cell (expected a number)", bad_line=2),
    "trace length not the model's": Case(
        lines(beat(n_samples=3), beat(n_samples=3)),
        " line 1: expected 96 samples per beat (the model's input length), got 3", fit=False),
    "label column not in a headerless file": Case(
        lines(beat(), beat()), ": label column 'label' not found: the file has no header row",
        options=("--label-column", "label")),
    "label column not in the header": Case(
        lines(",".join(f"t{i}" for i in range(N_SAMPLES)), beat()),
        ": label column 'label' not found in the header", options=("--label-column", "label")),
    "label column index out of range": Case(
        lines(beat(), beat()), ": label column index 200 is out of range (the file has 96 "
        "columns, indices 0 to 95)", options=("--label-column", "200")),
    "text label where numbers are expected": Case(
        lines(beat(label="1"), beat(label="abnormal"), beat(label="0")),
        " line 2 column 97: expected a numeric label", options=LABELLED, bad_line=2),
    "empty label": Case(lines(beat(label="1"), beat(label=" ")),
                        " line 2 column 97: empty label", options=LABELLED, bad_line=2),
    "comma row in a semicolon file": Case(
        lines(beat(delimiter=";"), beat()),
        " line 2: expected 96 fields, got 1 (read as semicolon-separated, from the first "
        "line, but this holds a comma)", bad_line=2),
    "decimal commas": Case(
        lines(beat(delimiter=";"), beat(delimiter=";", cells={0: "0,5"})),
        " line 2 column 1: expected a number, got '0,5' (a decimal comma: numbers must use "
        "a decimal point)", bad_line=2),
    "binary garbage": Case(bytes(range(256)) * 4,
                           ": not a text CSV file (binary data: a NUL byte on line 1)"),
    "an image, not text": Case(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
                               ": not a text CSV file (line 1: byte 0x89 at offset 0 is not "
                               "UTF-8)"),
    "UTF-16 text": Case(lines(beat()).decode().encode("utf-16"),
                        ": looks like UTF-16 text (it starts with a UTF-16 byte-order mark); "
                        "save it as UTF-8"),
    "truncated gzip": Case(TRUNCATED_GZIP, ": the gzip data is corrupt or truncated",
                           name="batch.csv.gz"),
}
ROW_CASES = {key: case for key, case in INPUT_CASES.items() if case.bad_line is not None}
FILE_CASES = {key: case for key, case in INPUT_CASES.items() if case.bad_line is None}
FIT_CASES = {key: case for key, case in INPUT_CASES.items() if case.fit}


def score_args(case: Case, model_dir: Path, *more: str) -> list:
    return ["score", case.name, "-m", model_dir, "-o", "out/scores.csv",
            "--report", "out/run.json", *case.options, *more]


@pytest.fixture
def out(in_tmp) -> Path:
    """An empty output directory in the test's working directory."""
    (in_tmp / "out").mkdir()
    return in_tmp / "out"


@pytest.mark.parametrize("case", INPUT_CASES.values(), ids=INPUT_CASES.keys())
def test_score_fails_the_file_and_writes_nothing(case, model_dir, in_tmp, out, capsys):
    write_text(in_tmp / case.name, case.data)
    assert_fails_writing_nothing(capsys, in_tmp, score_args(case, model_dir), EXIT_BAD_INPUT,
                                 f"Error: {case.name}{case.error}")


@pytest.mark.parametrize("case", FIT_CASES.values(), ids=FIT_CASES.keys())
def test_fit_fails_the_file_and_writes_nothing(case, in_tmp, out, capsys):
    write_text(in_tmp / case.name, case.data)
    args = ["fit", case.name, "-m", "out/model", "--epochs", "1", *case.options]
    assert_fails_writing_nothing(capsys, in_tmp, args, EXIT_BAD_INPUT,
                                 f"Error: {case.name}{case.error}")


@pytest.mark.parametrize("case", FILE_CASES.values(), ids=FILE_CASES.keys())
def test_skip_mode_still_fails_a_bad_file(case, model_dir, in_tmp, out, capsys):
    write_text(in_tmp / case.name, case.data)
    assert_fails_writing_nothing(capsys, in_tmp,
                                 score_args(case, model_dir, "--on-bad-row", "skip"),
                                 EXIT_BAD_INPUT, f"Error: {case.name}{case.error}")


@pytest.mark.parametrize("case", ROW_CASES.values(), ids=ROW_CASES.keys())
def test_skip_mode_scores_the_good_rows_and_rejects_the_bad_one(case, model_dir, in_tmp, out,
                                                                 capsys):
    write_text(in_tmp / case.name, case.data)
    code, _, err = run_cli(capsys, *score_args(case, model_dir, "--on-bad-row", "skip"))
    assert code == 0, err
    text_lines = case.data.decode().splitlines()
    [reject] = read_rows(out / "scores.rejects.csv")
    assert int(reject["line"]) == case.bad_line
    assert reject["text"] == text_lines[case.bad_line - 1]
    # The reason is the fail-mode error without the file and the line (its own column).
    where_and_what = case.error.partition(f"line {case.bad_line}")[2]
    assert reject["reason"].startswith(where_and_what.lstrip(": "))
    scored = read_rows(out / "scores.csv")
    assert [int(row["row"]) for row in scored] == [
        number for number in range(1, len(text_lines) + 1) if number != case.bad_line]
    report = json.loads((out / "run.json").read_text())
    assert (report["rows_scored"], report["rows_rejected"], report["rows_read"]) == (
        len(scored), 1, len(text_lines))
    assert f"Scored {len(scored)} rows" in err and "1 rejected (see out/scores.rejects.csv)" in err


def test_skip_mode_with_every_row_bad_fails_and_writes_nothing(model_dir, in_tmp, out, capsys):
    write_text(in_tmp / "batch.csv", lines(beat(cells={2: "x"}), beat(n_samples=3)))
    args = ["score", "batch.csv", "-m", model_dir, "-o", "out/scores.csv", "--on-bad-row", "skip"]
    assert_fails_writing_nothing(capsys, in_tmp, args, EXIT_BAD_INPUT,
                                 "Error: batch.csv: all 2 rows were rejected (the first, line 1: "
                                 "column 3: expected a number, got 'x')")


# -- other delimiters, a byte-order mark and CRLF are accepted ----------------------------------

COMMA_FILE = "".join(beat(label=str(i % 2)) + "\n" for i in range(20))
VARIANTS = {
    "semicolons": COMMA_FILE.replace(",", ";").encode(),
    "tabs": COMMA_FILE.replace(",", "\t").encode(),
    "BOM and CRLF": BOM + COMMA_FILE.replace("\n", "\r\n").encode(),
    "BOM, CRLF and semicolons": BOM + COMMA_FILE.replace(",", ";").replace("\n", "\r\n").encode(),
}


@pytest.mark.parametrize("data", VARIANTS.values(), ids=VARIANTS.keys())
def test_other_layouts_score_exactly_like_the_comma_file(data, model_dir, in_tmp, capsys):
    write_text(in_tmp / "comma.csv", COMMA_FILE)
    write_text(in_tmp / "variant.csv", data)
    for name in ("comma", "variant"):
        code, _, err = run_cli(capsys, "score", f"{name}.csv", "-m", model_dir, *LABELLED,
                               "-o", f"{name}.scores.csv")
        assert code == 0, err
    assert len(read_rows(in_tmp / "comma.scores.csv")) == 20
    scores = (in_tmp / "comma.scores.csv").read_bytes()
    assert (in_tmp / "variant.scores.csv").read_bytes() == scores


# -- inputs that cannot be read -----------------------------------------------------------------

@pytest.mark.parametrize("command, given, error", [
    pytest.param("score", "absent.csv", "absent.csv: no such file (it does not exist)",
                 id="score: no such file"),
    pytest.param("fit", "absent.csv", "file 'absent.csv' does not exist", id="fit: no such file"),
    pytest.param("score", "folder", "folder: directory holds no .csv or .csv.gz files",
                 id="score: a directory without CSV files"),
    pytest.param("fit", "folder", "file 'folder' is a directory", id="fit: a directory"),
    pytest.param("score", "locked.csv", "locked.csv: permission denied",
                 marks=root_ignores_permissions, id="score: not readable"),
    pytest.param("fit", "locked.csv", "file 'locked.csv' is not readable",
                 marks=root_ignores_permissions, id="fit: not readable"),
])
def test_input_that_cannot_be_read(command, given, error, model_dir, in_tmp, out, capsys):
    (in_tmp / "folder").mkdir()
    write_text(in_tmp / "locked.csv", lines(beat(), beat())).chmod(0)
    args = ["-m", model_dir, "-o", "out/scores.csv"] if command == "score" else ["-m", "out/model"]
    assert_fails_writing_nothing(capsys, in_tmp, [command, given, *args], EXIT_BAD_INPUT, error)


# -- destinations that cannot be written ------------------------------------------------------

@pytest.mark.parametrize("command, destination, error", [
    pytest.param("score", ["-o", "absent/scores.csv"],
                 "absent/scores.csv: output directory 'absent' does not exist",
                 id="score: output directory missing"),
    pytest.param("score", ["-o", "file.txt/scores.csv"],
                 "file.txt/scores.csv: output directory 'file.txt' is not a directory",
                 id="score: output directory is a file"),
    pytest.param("score", ["--output-dir", "file.txt/scores"],
                 "file.txt/scores: output directory 'file.txt' is not a directory",
                 id="score: --output-dir under a file"),
    pytest.param("score", ["-o", "scores.csv", "--report", "absent/run.json"],
                 "absent/run.json: output directory 'absent' does not exist",
                 id="score: report directory missing"),
    pytest.param("fit", ["-m", "file.txt/model"],
                 "file.txt/model: output directory 'file.txt' is not a directory",
                 id="fit: model directory under a file"),
    pytest.param("score", ["-o", "read-only/scores.csv"],
                 "read-only/scores.csv: output directory 'read-only' is not writable",
                 marks=root_ignores_permissions, id="score: output directory not writable"),
    pytest.param("fit", ["-m", "read-only/model"],
                 "read-only/model: output directory 'read-only' is not writable",
                 marks=root_ignores_permissions, id="fit: model directory not writable"),
])
def test_destination_that_cannot_be_written(command, destination, error, model_dir, in_tmp,
                                            capsys):
    write_text(in_tmp / "batch.csv", lines(beat(), beat(), beat()))
    write_text(in_tmp / "file.txt", "a file, not a directory\n")
    (in_tmp / "read-only").mkdir(mode=0o555)
    # fit must refuse before it trains: a single epoch would otherwise end in a model.
    args = ["-m", model_dir] if command == "score" else ["--epochs", "1"]
    out = assert_fails_writing_nothing(capsys, in_tmp, [command, "batch.csv", *args, *destination],
                                       EXIT_BAD_INPUT, f"Error: {error}")
    assert "Training" not in out


# -- bad model directories --------------------------------------------------------------------

def edit_metadata(change):
    def damage(model: Path) -> None:
        path = model / "metadata.json"
        metadata = json.loads(path.read_text())
        change(metadata)
        path.write_text(json.dumps(metadata))  # NaN and Infinity are written as such
    return damage


def remove(name: str):
    return lambda model: (model / name).unlink()


def overwrite(name: str, data: bytes):
    return lambda model: (model / name).write_bytes(data)


def replace_with_a_file(model: Path) -> None:
    shutil.rmtree(model)
    model.write_text("not a model\n")


def replace_model_file_and_its_hash(model: Path) -> None:
    overwrite("model.keras", b"not a Keras archive")(model)
    edit_metadata(lambda m: m.update(
        model_sha256=hashlib.sha256(b"not a Keras archive").hexdigest()))(model)


MODEL_CASES = {
    "missing": (shutil.rmtree, "model: no model directory here (run 'anomaly fit' first)"),
    "a file, not a directory": (replace_with_a_file, "model: no model directory here"),
    "model.keras missing": (remove("model.keras"),
                            "model: incomplete model directory, model.keras is missing"),
    "metadata.json missing": (remove("metadata.json"),
                              "model: incomplete model directory, metadata.json is missing"),
    "newer format version": (edit_metadata(lambda m: m.update(format_version=2)),
                             "model/metadata.json: model format version 2 is newer than this "
                             "anomaly supports (1); upgrade anomaly"),
    "malformed JSON": (overwrite("metadata.json", b'{"format_version": 1,'),
                       "model/metadata.json: unreadable metadata (Expecting"),
    "metadata not an object": (overwrite("metadata.json", b"[1, 2]"),
                               "model/metadata.json: the metadata should be a JSON object"),
    "metadata missing a key": (edit_metadata(lambda m: m.pop("scaling")),
                               "model/metadata.json: missing key 'scaling'"),
    "threshold as text": (edit_metadata(lambda m: m.update(threshold="0.1")),
                          "model/metadata.json: 'threshold' has the wrong type (str)"),
    "NaN threshold": (edit_metadata(lambda m: m.update(threshold=math.nan)),
                      "model/metadata.json: 'threshold' is not a finite number"),
    "infinite threshold": (edit_metadata(lambda m: m.update(threshold=math.inf)),
                           "model/metadata.json: 'threshold' is not a finite number"),
    "model.keras tampered with": (overwrite("model.keras", b"PK\x03\x04 tampered"),
                                  "model/model.keras: does not match the SHA-256 recorded in "
                                  "metadata.json (modified or replaced since it was saved)"),
    "model.keras not a Keras archive": (replace_model_file_and_its_hash,
                                        "model/model.keras: cannot be loaded"),
}


@pytest.mark.parametrize("damage, error", MODEL_CASES.values(), ids=MODEL_CASES.keys())
def test_bad_model_directory(damage, error, model_dir, in_tmp, out, capsys):
    write_text(in_tmp / "batch.csv", lines(beat(), beat()))
    shutil.copytree(model_dir, in_tmp / "model")
    damage(in_tmp / "model")
    args = ["score", "batch.csv", "-m", "model", "-o", "out/scores.csv", "--report", "out/run.json"]
    assert_fails_writing_nothing(capsys, in_tmp, args, EXIT_BAD_MODEL, f"Error: {error}")


# -- killed part way --------------------------------------------------------------------------

def test_sigkill_part_way_leaves_nothing_at_the_destination_and_a_rerun_completes(
        model_dir, in_tmp, out):
    values, _ = synthetic_beats(40_000, 0, length=N_SAMPLES, seed=5)
    write_beats_csv(in_tmp / "big.csv", values)
    with open(in_tmp / "big.csv", "a") as file:  # Two bad rows: a rejects file is at stake too.
        file.write(beat(n_samples=3) + "\n" + beat(cells={7: "x"}) + "\n")
    command = ANOMALY + ["score", "big.csv", "-m", str(model_dir), "-o", "out/scores.csv",
                         "--on-bad-row", "skip", "--report", "out/run.json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(path.name.endswith(".tmp") and path.stat().st_size > 0
                  for path in out.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    for name in ("scores.csv", "scores.rejects.csv", "run.json"):
        assert not (out / name).exists(), name
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert len(read_rows(out / "scores.csv")) == 40_000
    assert [int(row["line"]) for row in read_rows(out / "scores.rejects.csv")] == [40_001, 40_002]
    report = json.loads((out / "run.json").read_text())
    assert (report["rows_scored"], report["rows_rejected"], report["rows_read"]) == (
        40_000, 2, 40_002)
