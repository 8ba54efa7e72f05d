"""Issue 5's catalogue of bad input and faults, each through the real command line.

Every case checks the three promises: the exit code (2 bad input or destination, 3 bad
model directory), exactly one ``Error:`` line naming the file (and the line and column
where they apply), and nothing at the destination (no output, no rejects file, no report,
no temporary or lock file). Cases covered in full elsewhere are not repeated here:

- a non-numeric cell late in the file: test_cli.py::test_bad_row_late_in_file_leaves_no_output
- a trace length other than the model's: test_cli.py::test_wrong_trace_length_fails_cleanly
- several bad rows under ``--on-bad-row skip``, with the JSON report's counts:
  test_batch_scoring.py::test_skip_bad_rows_writes_rejects_and_counts_every_row
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from anomaly.exceptions import EXIT_BAD_INPUT, EXIT_BAD_MODEL
from anomaly.synthetic import synthetic_beats, write_beats_csv

from conftest import (assert_one_line_error, give_to_unprivileged_user, read_rows, run_cli,
                      run_cli_unprivileged)

ANOMALY = [sys.executable, "-m", "anomaly"]
#: The input length of the ``model_dir`` fixture's model.
N_SAMPLES = 96
#: Rows in a generated input file; the bad row, when there is one, is on line BAD_LINE.
N_ROWS, BAD_LINE = 5, 4
HEADER = ",".join([f"t{i}" for i in range(N_SAMPLES)] + ["label"])


def beat_rows(label: bool = False) -> list[list[str]]:
    """N_ROWS well-formed beats as text fields, with a last column of label 1 if asked."""
    samples = np.sin(np.linspace(0, 6, N_SAMPLES)) + np.arange(N_ROWS)[:, None] / 10
    return [[f"{value:.4f}" for value in row] + (["1"] if label else []) for row in samples]


def csv_bytes(rows: list[list[str]], header: str | None = None) -> bytes:
    lines = ([header] if header else []) + [",".join(row) for row in rows]
    # Undecodable bytes are written as the surrogates they are read back as.
    return "".join(line + "\n" for line in lines).encode("utf-8", errors="surrogateescape")


def bad_cell(column: int, text: str, *, label: bool = False) -> bytes:
    """A good file whose cell at line BAD_LINE, ``column`` (1-based) holds ``text``."""
    rows = beat_rows(label)
    rows[BAD_LINE - 1][column - 1] = text
    return csv_bytes(rows)


def bad_row_length(n_fields: int) -> bytes:
    rows = beat_rows()
    row = rows[BAD_LINE - 1]
    rows[BAD_LINE - 1] = (row + ["0.5"] * n_fields)[:n_fields]
    return csv_bytes(rows)


def truncated_gzip() -> bytes:
    data = gzip.compress(csv_bytes(beat_rows()))
    return data[: len(data) // 2]


def gzip_with_bad_checksum() -> bytes:
    data = bytearray(gzip.compress(csv_bytes(beat_rows())))
    data[-8] ^= 0xFF  # the trailer's CRC-32 of the uncompressed data
    return bytes(data)


def semicolon_file_with(bad_row: str) -> bytes:
    """A semicolon-separated file whose line BAD_LINE is ``bad_row``."""
    lines = [";".join(row) for row in beat_rows()]
    lines[BAD_LINE - 1] = bad_row
    return "".join(line + "\n" for line in lines).encode()


@dataclass(frozen=True)
class Case:
    """A bad input file: what ``score`` and ``fit`` must say about it.

    ``message`` is a fragment of the error line, from the file's name on. A case with a
    ``bad_line`` is a bad row: ``--on-bad-row skip`` rejects it and scores the others.
    Otherwise the whole file is bad, whatever the policy.
    """

    content: bytes | None
    message: str
    args: tuple[str, ...] = ()
    bad_line: int | None = None
    name: str = "in.csv"


BAD_INPUTS = [
    pytest.param(Case(b"", "in.csv: the file is empty"), id="empty file"),
    pytest.param(Case(b"\n \n\n", "in.csv: the file is empty (only blank lines)"),
                 id="blank lines only"),
    pytest.param(Case((HEADER.rsplit(",", 1)[0] + "\n").encode(),
                      "in.csv: no heartbeats in the file (only a header row)"), id="header only"),
    pytest.param(Case(bad_row_length(N_SAMPLES - 1),
                      f"in.csv line 4: expected {N_SAMPLES} fields, got {N_SAMPLES - 1}",
                      bad_line=BAD_LINE), id="too few fields"),
    pytest.param(Case(bad_row_length(N_SAMPLES + 1),
                      f"in.csv line 4: expected {N_SAMPLES} fields, got {N_SAMPLES + 1}",
                      bad_line=BAD_LINE), id="too many fields"),
    pytest.param(Case(bad_cell(6, "1.2.3"), "in.csv line 4 column 6: expected a number, "
                      "got '1.2.3'", bad_line=BAD_LINE), id="non-numeric cell"),
    pytest.param(Case(bad_cell(6, "NaN"), "in.csv line 4 column 6: 'NaN' is not a finite number",
                      bad_line=BAD_LINE), id="NaN"),
    pytest.param(Case(bad_cell(7, "-inf"), "in.csv line 4 column 7: '-inf' is not a finite "
                      "number", bad_line=BAD_LINE), id="inf"),
    pytest.param(Case(bad_cell(8, ""), "in.csv line 4 column 8: empty cell (expected a number)",
                      bad_line=BAD_LINE), id="empty cell"),
    pytest.param(Case(bad_cell(6, "\udcff"), "in.csv line 4 column 6: byte 0xff at character 1 "
                      "is not UTF-8 text", bad_line=BAD_LINE), id="non-UTF-8 byte in a row"),
    pytest.param(Case(csv_bytes(beat_rows(label=True), HEADER),
                      "in.csv: label column 'diagnosis' not found in the header",
                      ("--label-column", "diagnosis")), id="label column not in the header"),
    pytest.param(Case(csv_bytes(beat_rows()), "in.csv: label column 'label' not found: the "
                      "file has no header row", ("--label-column", "label")),
                 id="label column named in a file without header"),
    pytest.param(Case(csv_bytes(beat_rows()), f"in.csv: label column index 200 is out of range "
                      f"(the file has {N_SAMPLES} columns", ("--label-column", "200")),
                 id="label column out of range"),
    pytest.param(Case(bad_cell(N_SAMPLES + 1, "abnormal", label=True),
                      f"in.csv line 4 column {N_SAMPLES + 1}: expected a numeric label",
                      ("--label-column", "last"), bad_line=BAD_LINE),
                 id="text label where numbers are expected"),
    pytest.param(Case(bad_cell(N_SAMPLES + 1, " ", label=True),
                      f"in.csv line 4 column {N_SAMPLES + 1}: empty label",
                      ("--label-column", "last"), bad_line=BAD_LINE), id="empty label"),
    pytest.param(Case(semicolon_file_with(",".join(beat_rows()[BAD_LINE - 1])),
                      f"in.csv line 4: expected {N_SAMPLES} fields, got 1 (read as "
                      "semicolon-separated, from the first line, but this holds a comma)",
                      bad_line=BAD_LINE), id="a comma row in a semicolon file"),
    pytest.param(Case(semicolon_file_with(";".join(["0,5"] + beat_rows()[0][1:])),
                      "in.csv line 4 column 1: expected a number, got '0,5' (a decimal comma: "
                      "numbers must use a decimal point)", bad_line=BAD_LINE),
                 id="decimal commas in a semicolon file"),
    pytest.param(Case(bytes(range(256)) * 8, "in.csv: not a text CSV file (binary data: a NUL "
                      "byte on line 1)"), id="binary garbage"),
    pytest.param(Case(b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 8,
                      "in.csv: not a text CSV file (line 1: byte 0x89 at offset 0 is not UTF-8)"),
                 id="binary garbage without NUL bytes"),
    pytest.param(Case(csv_bytes(beat_rows()).decode().encode("utf-16"),
                      "in.csv: looks like UTF-16 text (it starts with a UTF-16 byte-order "
                      "mark); save it as UTF-8"), id="UTF-16"),
    pytest.param(Case(csv_bytes(beat_rows()).decode().encode("utf-16-le"),
                      "in.csv: looks like UTF-16 text (every other byte of line 1 is zero); "
                      "save it as UTF-8"), id="UTF-16 without a byte-order mark"),
    pytest.param(Case(truncated_gzip(), "in.csv.gz: the gzip data is corrupt or truncated",
                      name="in.csv.gz"), id="gzip truncated part way"),
    pytest.param(Case(b"\x1f\x8b\x08", "in.csv.gz: the gzip data is corrupt "
                      "or truncated", name="in.csv.gz"), id="gzip truncated in its header"),
    pytest.param(Case(gzip_with_bad_checksum(), "in.csv.gz: the gzip data is corrupt or "
                      "truncated", name="in.csv.gz"), id="gzip with a bad checksum"),
    pytest.param(Case(None, "does not exist", name="absent.csv"), id="file does not exist"),
]


def _run_on_bad_input(case: Case, command: str, capsys, *extra: str):
    """Write the case's file into the working directory, run, return (code, stdout, stderr)."""
    if case.content is not None:
        Path(case.name).write_bytes(case.content)
    Path("out").mkdir()
    return run_cli(capsys, command, case.name, *case.args, *extra)


def assert_nothing_written() -> None:
    """The destination directory is as it was: empty (no output, rejects, temporary or lock file)."""
    assert sorted(path.name for path in Path("out").iterdir()) == []


def _cases(*, bad_row: bool) -> list:
    """The BAD_INPUTS params whose case is (or is not) a bad row."""
    return [param for param in BAD_INPUTS if (param.values[0].bad_line is not None) == bad_row]


# A bad file fails under either policy; a bad row fails the file under the default one.
@pytest.mark.parametrize("case, policy", [
    pytest.param(*param.values, policy, id=f"{param.id}, {policy}")
    for policy, params in (("fail", BAD_INPUTS), ("skip", _cases(bad_row=False)))
    for param in params])
def test_score_refuses_bad_input(case, policy, model_dir, in_tmp, capsys):
    code, _, err = _run_on_bad_input(case, "score", capsys, "-m", model_dir, "-o",
                                     "out/scores.csv", "--report", "out/report.json",
                                     "--on-bad-row", policy)
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(err, case.name, case.message)
    assert_nothing_written()


@pytest.mark.parametrize("case", _cases(bad_row=True))
def test_skip_rejects_the_bad_row_verbatim_and_counts_every_row(case, model_dir, in_tmp, capsys):
    code, _, err = _run_on_bad_input(case, "score", capsys, "-m", model_dir, "-o",
                                     "out/scores.csv", "--report", "out/report.json",
                                     "--on-bad-row", "skip")
    assert code == 0, err
    with open("out/scores.rejects.csv", newline="", encoding="utf-8",
              errors="surrogateescape") as file:
        [reject] = list(csv.DictReader(file))
    assert int(reject["line"]) == case.bad_line
    assert case.message.split(": ", 1)[1] in reject["reason"]
    # The row exactly as read, undecodable bytes and all.
    line = case.content.split(b"\n")[case.bad_line - 1]
    assert reject["text"] == line.decode("utf-8", errors="surrogateescape")
    scored = [int(row["row"]) for row in read_rows(Path("out/scores.csv"))]
    assert scored == [number for number in range(1, N_ROWS + 1) if number != case.bad_line]
    report = json.loads(Path("out/report.json").read_text())
    assert (report["rows_scored"], report["rows_rejected"], report["rows_read"]) == (
        N_ROWS - 1, 1, N_ROWS)
    assert f"Scored {N_ROWS - 1} rows" in err and "1 rejected (see out/scores.rejects.csv)" in err


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_fit_refuses_bad_input_before_training(case, in_tmp, capsys):
    code, out, err = _run_on_bad_input(case, "fit", capsys, "-m", "out/model", "--epochs", "1")
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(err, case.name, case.message)
    assert "Training" not in out
    assert_nothing_written()


def test_every_row_rejected_is_an_error_even_when_skipping(model_dir, in_tmp, capsys):
    rows = beat_rows()[:2]
    rows[0][2], rows[1][2] = "x", "y"
    Path("in.csv").write_bytes(csv_bytes(rows))
    Path("out").mkdir()
    code, _, err = run_cli(capsys, "score", "in.csv", "-m", model_dir, "-o", "out/scores.csv",
                           "--on-bad-row", "skip")
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(err, "in.csv: all 2 rows were rejected (the first, line 1: column 3: "
                               "expected a number, got 'x')")
    assert_nothing_written()


def into_out(command: str, model_dir: Path) -> list:
    """The options that send ``command``'s output into the directory ``out``."""
    if command == "score":
        return ["-m", model_dir, "-o", "out/scores.csv"]
    return ["-m", "out/model", "--epochs", "1"]


@pytest.mark.parametrize("command, message", [("score", "in.csv: permission denied"),
                                              ("fit", "'in.csv' is not readable")])
def test_unreadable_input(command, message, model_dir, unprivileged_dir):
    """Run as an unprivileged user (root reads any file whatever its permissions): the
    file is the user's own, only its mode stops them."""
    Path("in.csv").write_bytes(csv_bytes(beat_rows()))
    give_to_unprivileged_user(Path("in.csv")).chmod(0)
    Path("out").mkdir()
    give_to_unprivileged_user(Path("out"))
    code, _, err = run_cli_unprivileged(command, "in.csv", *into_out(command, model_dir))
    assert code == EXIT_BAD_INPUT, err
    assert_one_line_error(err, message)
    assert_nothing_written()


@pytest.mark.parametrize("command, message", [
    ("score", "in: directory holds no .csv, .csv.gz, .hea or .edf files"),
    ("fit", "'in' is a directory"),
])
def test_a_directory_without_csv_files_as_input(command, message, model_dir, in_tmp, capsys):
    Path("in").mkdir()
    Path("out").mkdir()
    code, _, err = run_cli(capsys, command, "in", *into_out(command, model_dir))
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(err, message)
    assert_nothing_written()


# -- other delimiters, byte-order mark and CRLF: accepted, and scored the same -------------

def semicolons(text: bytes) -> bytes:
    return text.replace(b",", b";")


def tabs(text: bytes) -> bytes:
    return text.replace(b",", b"\t")


def bom_and_crlf(text: bytes) -> bytes:
    return b"\xef\xbb\xbf" + text.replace(b"\n", b"\r\n")


def bom_crlf_and_semicolons(text: bytes) -> bytes:
    return bom_and_crlf(semicolons(text))


@pytest.mark.parametrize("convert", [semicolons, tabs, bom_and_crlf, bom_crlf_and_semicolons])
@pytest.mark.parametrize("source, args", [("batch.csv", ("--label-column", "label")),
                                          ("batch_nolabel.csv", ())])
def test_other_layouts_score_like_the_comma_file(convert, source, args, model_dir, data_dir,
                                                 in_tmp, capsys):
    Path("converted.csv").write_bytes(convert((data_dir / source).read_bytes()))
    for name, output in ((data_dir / source, "comma.csv"), ("converted.csv", "converted.csv.out")):
        code, _, err = run_cli(capsys, "score", name, "-m", model_dir, "-o", output, *args)
        assert code == 0, err
    scores = Path("converted.csv.out").read_bytes()
    assert scores == Path("comma.csv").read_bytes() and len(scores.splitlines()) == 251


# -- destinations: missing or not writable, checked before any work ------------------------

@pytest.mark.parametrize("args, message", [
    (["-o", "afile/scores.csv"], "afile/scores.csv: output directory 'afile' is not a directory"),
    (["--output-dir", "afile/scores"], "afile/scores: output directory 'afile' is not a directory"),
    (["-o", "out/scores.csv", "--report", "missing/report.json"],
     "missing/report.json: output directory 'missing' does not exist"),
    (["-o", "out/scores.csv", "--html", "afile/report.html"],
     "afile/report.html: output directory 'afile' is not a directory"),
], ids=["output under a file", "output dir under a file", "report dir missing",
        "html dir under a file"])
def test_score_refuses_a_bad_destination_before_scoring(args, message, model_dir, data_dir,
                                                        in_tmp, capsys):
    Path("afile").write_text("a regular file\n")
    Path("out").mkdir()
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_dir, *args)
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(err, message)
    assert_nothing_written()


def test_fit_refuses_a_bad_model_destination_before_training(data_dir, in_tmp, capsys):
    Path("afile").write_text("a regular file\n")
    code, out, err = run_cli(capsys, "fit", data_dir / "normal.csv", "-m", "afile/model")
    assert code == EXIT_BAD_INPUT and out == ""
    assert_one_line_error(err, "afile/model: output directory 'afile' is not a directory")
    assert Path("afile").read_text() == "a regular file\n"


@pytest.mark.parametrize("destination, prepare, message", [
    ("precious", lambda: Path("precious").mkdir() or Path("precious/notes.txt").write_text("mine"),
     "precious: exists and is not a model directory; refusing to overwrite it"),
    (".", lambda: None, ".: is the working directory; a model directory is replaced whole"),
    ("afile", lambda: Path("afile").write_text("a regular file"), "dir 'afile' is a file"),
], ids=["a directory of other files", "the working directory", "a file"])
def test_fit_refuses_a_model_destination_it_must_not_replace_before_training(
        destination, prepare, message, data_dir, in_tmp, capsys):
    prepare()
    before = sorted(str(path) for path in in_tmp.rglob("*"))
    code, out, err = run_cli(capsys, "fit", data_dir / "normal.csv", "-m", destination)
    assert code == EXIT_BAD_INPUT and "Training" not in out
    assert_one_line_error(err, message)
    assert sorted(str(path) for path in in_tmp.rglob("*")) == before  # no '..old.*' left


def test_fit_into_the_working_directory_refused_even_when_it_holds_a_model(
        model_dir, data_dir, in_tmp, capsys):
    for path in model_dir.iterdir():
        shutil.copy(path, in_tmp)
    code, _, err = run_cli(capsys, "fit", data_dir / "normal.csv", "-m", in_tmp)
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(err, "is the working directory")
    assert sorted(path.name for path in in_tmp.iterdir()) == ["metadata.json", "model.keras",
                                                              "model.onnx"]


def test_score_creates_no_output_directory_when_the_model_does_not_load(data_dir, in_tmp, capsys):
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", "nomodel",
                           "--output-dir", "out/scores")
    assert code == EXIT_BAD_MODEL
    assert_one_line_error(err, "nomodel: no model directory here")
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("command", ["score", "fit"])
def test_read_only_destination(command, model_dir, data_dir, unprivileged_dir):
    """Run as an unprivileged user (root writes into read-only directories): the output
    directory is the user's own, only its mode stops them."""
    shutil.copy(data_dir / "batch_nolabel.csv", "in.csv")
    Path("out").mkdir()
    give_to_unprivileged_user(Path("out")).chmod(0o555)
    code, _, err = run_cli_unprivileged(command, "in.csv", *into_out(command, model_dir))
    assert code == EXIT_BAD_INPUT, err
    assert_one_line_error(err, "output directory 'out' is not writable")
    assert_nothing_written()


# -- bad model directories: exit 3 ---------------------------------------------------------

def edit_metadata(model: Path, **values: str) -> None:
    """Set metadata keys to raw JSON text (which may be NaN or Infinity); a key of a
    section is ``section__key`` (``calibration__threshold``)."""
    path = model / "metadata.json"
    metadata = json.loads(path.read_text())
    for name in values:
        *sections, key = name.split("__")
        place = metadata
        for section in sections:
            place = place[section]
        place[key] = f"@{name}@"
    text = json.dumps(metadata, indent=2)
    for name, raw in values.items():
        text = text.replace(f'"@{name}@"', raw)
    path.write_text(text)


def tamper_with_model_file(model: Path) -> None:
    with open(model / "model.keras", "ab") as file:
        file.write(b"\0")


def replace_model_file(model: Path) -> None:
    """A model.keras that is not a Keras archive, with its hash recorded to match."""
    (model / "model.keras").write_bytes(b"PK\x03\x04 not really a zip archive")
    digest = hashlib.sha256((model / "model.keras").read_bytes()).hexdigest()
    edit_metadata(model, model_sha256=json.dumps(digest))


MODEL_FAULTS = [
    pytest.param(lambda model: shutil.rmtree(model),
                 "model: no model directory here (run 'anomaly fit' first)", id="missing"),
    pytest.param(lambda model: shutil.rmtree(model) or model.write_text("not a directory"),
                 "model: a file, not a model directory (model.keras + metadata.json)",
                 id="a file"),
    pytest.param(lambda model: (model / "model.keras").unlink(),
                 "model: incomplete model directory, model.keras is missing",
                 id="model.keras missing"),
    pytest.param(lambda model: (model / "metadata.json").unlink(),
                 "model: incomplete model directory, metadata.json is missing",
                 id="metadata.json missing"),
    pytest.param(lambda model: edit_metadata(model, format_version="10"),
                 "model/metadata.json: model format version 10 is newer than this anomaly "
                 "supports (9); upgrade anomaly", id="newer format version"),
    pytest.param(lambda model: (model / "metadata.json").write_text('{"format_version": 1,'),
                 "model/metadata.json: unreadable metadata", id="malformed JSON"),
    pytest.param(lambda model: (model / "metadata.json").write_text("[" * 10**5 + "]" * 10**5),
                 "model/metadata.json: unreadable metadata", id="JSON nested too deep"),
    pytest.param(lambda model: (model / "metadata.json").write_text("[1, 2]"),
                 "model/metadata.json: the metadata should be a JSON object", id="not an object"),
    pytest.param(lambda model: edit_metadata(model, calibration__threshold="NaN"),
                 "model/metadata.json: 'calibration.threshold' is not a finite number", id="NaN threshold"),
    pytest.param(lambda model: edit_metadata(model, calibration__threshold="Infinity"),
                 "model/metadata.json: 'calibration.threshold' is not a finite number", id="inf threshold"),
    pytest.param(lambda model: edit_metadata(model, calibration__threshold="1e999"),
                 "model/metadata.json: 'calibration.threshold' is not a finite number",
                 id="threshold overflowing to inf"),
    pytest.param(lambda model: edit_metadata(model, calibration__threshold="1" + "0" * 400),
                 "model/metadata.json: 'calibration.threshold' is not a finite number",
                 id="threshold an integer too large for a float"),
    pytest.param(lambda model: edit_metadata(model, calibration__winsorised="3"),
                 "model/metadata.json: 'calibration.winsorised' 3 is not the parameters' "
                 "threshold_winsorise 0", id="winsorised not asked for"),
    pytest.param(lambda model: edit_metadata(model, calibration__threshold="1000000"),
                 "model/metadata.json: 'calibration.threshold' 1e+06 is not mean ",
                 id="threshold edited alone"),
    pytest.param(lambda model: edit_metadata(model, calibration__threshold='"0.1"'),
                 "model/metadata.json: 'calibration.threshold' has the wrong type (str)",
                 id="threshold not a number"),
    pytest.param(tamper_with_model_file,
                 "model/model.keras: does not match the SHA-256 recorded in metadata.json",
                 id="model.keras tampered with"),
    pytest.param(replace_model_file, "model/model.keras: cannot be loaded",
                 id="model.keras not a Keras archive"),
]


@pytest.mark.parametrize("damage, message", MODEL_FAULTS)
def test_score_refuses_a_bad_model_directory(damage, message, model_dir, data_dir, in_tmp,
                                             capsys):
    shutil.copytree(model_dir, "model")
    damage(Path("model"))
    Path("out").mkdir()
    # The Keras runtime, which reads model.keras (tests/test_runtimes.py damages model.onnx).
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", "model",
                           "-o", "out/scores.csv", "--report", "out/report.json",
                           "--runtime", "keras")
    assert code == EXIT_BAD_MODEL
    assert_one_line_error(err, message)
    assert_nothing_written()


# -- kill safety -------------------------------------------------------------------------------

def test_sigkill_part_way_leaves_nothing_at_the_destination_and_a_rerun_completes(
        model_dir, in_tmp):
    values, _ = synthetic_beats(40_000, 0, length=N_SAMPLES, seed=5)
    write_beats_csv(in_tmp / "big.csv", values)
    with open("big.csv", "a") as file:
        file.write("1,2,oops\n")  # one bad row, last: skip mode writes a rejects file
    command = ANOMALY + ["score", "big.csv", "-m", str(model_dir), "-o", "out/scores.csv",
                         "--on-bad-row", "skip", "--report", "out/report.json"]
    Path("out").mkdir()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(path.name.endswith(".tmp") and path.stat().st_size > 0
                  for path in Path("out").iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed part way, not finished
    # Only hidden leftovers (the temporary file and the released lock), no output.
    leftovers = sorted(path.name for path in Path("out").iterdir())
    assert leftovers and all(name.startswith(".") for name in leftovers), leftovers
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    # The re-run removed what the killed run left (it holds the output's lock).
    assert sorted(path.name for path in Path("out").iterdir()) == [
        "report.json", "scores.csv", "scores.rejects.csv"]
    assert "temporary file(s) left beside out/scores.csv" in rerun.stderr
    assert len(read_rows(Path("out/scores.csv"))) == 40_000
    assert [row["line"] for row in read_rows(Path("out/scores.rejects.csv"))] == ["40001"]
    report = json.loads(Path("out/report.json").read_text())
    assert (report["rows_scored"], report["rows_rejected"], report["rows_read"]) == (
        40_000, 1, 40_001)


def test_stale_temporaries_are_removed_only_for_the_outputs_being_written(model_dir, in_tmp,
                                                                          data_dir, capsys):
    """Under its lock a run clears a killed run's temporaries of its own outputs only."""
    out = Path("out")
    out.mkdir()
    stale = [out / ".scores.csv.k1ll3d_x.tmp", out / ".scores.rejects.csv.abcdefgh.tmp"]
    for path in stale:
        path.write_text("half a file")
    (out / ".scores.csv.parts-0123456789ab").mkdir()
    (out / ".scores.csv.parts-0123456789ab" / "part-000.arrow").write_bytes(b"x")
    kept = [out / ".scores.csv.gz.abcdefgh.tmp", out / ".other.csv.abcdefgh.tmp",
            out / ".scores.csv.notmine.tmp"]
    for path in kept:
        path.write_text("someone else's")
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_dir,
                           "-o", out / "scores.csv")
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == sorted(
        [path.name for path in kept] + ["scores.csv"])

