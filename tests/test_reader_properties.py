"""Property-based tests of the CSV reader: exactly the numbers written, or InputError.

Hypothesis writes CSV files of random shapes (header or not, a label column anywhere, the
three delimiters, LF or CRLF, a byte-order mark, blank lines, gzip) with numbers in many
notations, reads them back with ``read_beats`` and with the streaming reader cut into tiny
blocks (so blocks split the file everywhere), and checks that every sample is bit for bit
the float Python makes of the text written. Corrupted files must give the same numbers
for the lines that are still good, or the project's InputError: never another exception,
never a wrong number, never a row silently dropped. In ``--on-bad-row skip`` mode, scored
plus rejected is every data line, and each rejected line is kept verbatim.

Examples are derandomized (the same on every run and in CI) and there is no example
database, so a failure reproduces from the test alone.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from anomaly.exceptions import InputError
from anomaly.io.beats import Beats
from anomaly.io.readers import iter_beats, read_beats
from anomaly.model import Provenance
from anomaly.scoring.engines import LocalEngine
from anomaly.scoring.plan import Job, ScoreOptions, rejects_file_for

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BOM = b"\xef\xbb\xbf"

# Decimal text of every shape a CSV holds: 7, -0.5, +12., .25, 1e-7, 6.02E+23, and digits
# beyond float precision (which must round exactly as Python's float rounds them).
DECIMAL_TEXT = st.from_regex(
    r"\A[+-]?(?:[0-9]{1,22}(?:\.[0-9]{0,22})?|\.[0-9]{1,22})(?:[eE][+-]?[0-9]{1,3})?\Z")
FORMATS = ("{!r}", "{:.0e}", "{:.3e}", "{:.12E}", "{:.17g}", "{:.8g}", "{:.2f}", "{:.9f}")


@st.composite
def number_text(draw) -> str:
    """The text of one finite number, in one of many notations."""
    if draw(st.booleans()):
        text = draw(DECIMAL_TEXT)
    else:
        value = draw(st.floats(allow_nan=False, allow_infinity=False)
                     | st.floats(-1e6, 1e6, allow_nan=False)
                     | st.integers(-10**12, 10**12).map(float))
        text = draw(st.sampled_from(FORMATS)).format(value)
        if draw(st.booleans()) and not text.startswith("-"):
            text = "+" + text
    if not math.isfinite(float(text)):
        text = "0.5"  # Overflowing text is a bad row: the corruption test covers it.
    return text


LABELS = ("0", "1", "1.0", "N", "V", "abnormal", "x y")


@dataclass
class Written:
    """A CSV file as written, and what reading it must give."""

    data: bytes  # The bytes of the file, before any gzip.
    delimiter: str
    header: bool
    label_index: int | None
    values: np.ndarray  # float64, (rows, samples)
    labels: list[str] | None
    lines: list[int]  # The physical line of each data row.
    gzip: bool

    def file_bytes(self, data: bytes | None = None) -> bytes:
        data = self.data if data is None else data
        return gzip.compress(data, mtime=0) if self.gzip else data


@st.composite
def csv_files(draw, *, numeric_labels: bool = False, max_rows: int = 10) -> Written:
    n_samples = draw(st.integers(1, 6))
    label_index = draw(st.none() | st.integers(0, n_samples))
    n_columns = n_samples + (label_index is not None)
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.booleans())
    # A tab around a number would be taken for the delimiter of a file whose first line
    # holds no comma (the documented sniffing rule), so tabs pad only comma files.
    paddings = ["", "", " ", "  "] + (["\t", " \t"] if delimiter == "," and n_columns > 1 else [])
    n_rows = draw(st.integers(1, max_rows))
    rows, values, labels = [], [], []
    for _ in range(n_rows):
        cells, numbers = [], []
        for _ in range(n_samples):
            text = draw(number_text())
            numbers.append(float(text))
            if draw(st.integers(0, 5)) == 0:
                cells.append(f'"{text}"')
            else:
                cells.append(draw(st.sampled_from(paddings)) + text + draw(st.sampled_from(paddings)))
        if label_index is not None:
            label = draw(st.sampled_from(LABELS[:3] if numeric_labels else LABELS))
            labels.append(label)
            cells.insert(label_index, draw(st.sampled_from(paddings)) + label
                         + draw(st.sampled_from(paddings)))
        rows.append(delimiter.join(cells))
        values.append(numbers)
    lines = []
    if header:
        names = [f"t{i}" for i in range(n_samples)]
        if label_index is not None:
            names.insert(label_index, "label")
        lines.append(delimiter.join(names))
    lines += rows
    # Blank lines (empty, or only spaces) anywhere, even before the header: not beats.
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "  "])))
    row_lines = _data_line_numbers(lines, header)
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    data = (BOM if draw(st.booleans()) else b"") + text.encode()
    return Written(data, delimiter, header, label_index,
                   np.array(values, dtype=np.float64).reshape(n_rows, n_samples),
                   labels if label_index is not None else None, row_lines,
                   draw(st.booleans()))


def _data_line_numbers(lines: list[str], header: bool) -> list[int]:
    numbers = [number + 1 for number, line in enumerate(lines) if line.strip(" \t")]
    return numbers[1:] if header else numbers


def _bits(values: np.ndarray) -> np.ndarray:
    """Bit patterns, so that -0.0 and 0.0 differ and equality is exact."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def _read_both(path: Path, block_size: int, **options) -> tuple[Beats, Beats]:
    """``read_beats`` and the streaming reader in tiny blocks, both checked to agree."""
    whole = read_beats(path, **options)
    chunks = list(iter_beats(path, block_size=block_size, **options))
    streamed = Beats(np.concatenate([c.values for c in chunks]),
                     np.concatenate([c.lines for c in chunks]),
                     labels=None if chunks[0].labels is None else np.concatenate(
                         [c.labels for c in chunks]),
                     truth=None if chunks[0].truth is None else np.concatenate(
                         [c.truth for c in chunks]),
                     layout=chunks[0].layout)
    return whole, streamed


def _outcome(path: Path, block_size: int, **options):
    """(whole, streamed) Beats, or the InputError message of each: they must agree."""
    try:
        whole = read_beats(path, **options)
    except InputError as error:
        whole = str(error)
    try:
        chunks = list(iter_beats(path, block_size=block_size, **options))
    except InputError as error:
        assert isinstance(whole, str), f"only the streaming reader failed: {error}"
        assert str(error) == whole
        return whole
    assert not isinstance(whole, str), f"only read_beats failed: {whole}"
    np.testing.assert_array_equal(_bits(np.concatenate([c.values for c in chunks])),
                                  _bits(whole.values))
    np.testing.assert_array_equal(np.concatenate([c.lines for c in chunks]), whole.lines)
    if whole.labels is not None:
        assert np.concatenate([c.labels for c in chunks]).tolist() == whole.labels.tolist()
    return whole


def _write(directory: Path, written: Written, data: bytes | None = None) -> Path:
    path = directory / ("in.csv.gz" if written.gzip else "in.csv")
    path.write_bytes(written.file_bytes(data))
    return path


# -- 1. well-formed files come back exactly ----------------------------------------------

@PROPERTY
@given(written=csv_files(), block_size=st.integers(1, 96), detect_header=st.booleans())
def test_well_formed_files_give_back_exactly_the_numbers_written(written, block_size,
                                                                 detect_header):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), written)
        header = None if detect_header else written.header
        if header is None and not written.header and written.label_index is None:
            # A first row of exactly 0, 1, ... reads as pandas' column names: say so.
            first = [field.strip(' \t"') for field in written.data.decode("utf-8-sig")
                     .strip().splitlines()[0].split(written.delimiter)]
            if first == [str(i) for i in range(len(first))]:
                header = False
        result = _outcome(path, block_size, header=header, label_column=written.label_index)
        assert not isinstance(result, str), result
        assert result.layout.has_header == written.header
        assert result.layout.delimiter == written.delimiter or result.n_samples == 1
        np.testing.assert_array_equal(_bits(result.values), _bits(written.values))
        assert result.lines.tolist() == written.lines
        if written.labels is None:
            assert result.labels is None
        else:
            assert result.labels.tolist() == written.labels


# -- 2. corrupted files: the good lines' numbers, or InputError ---------------------------

JUNK_BYTES = (b'"', b",", b";", b"\t", b"\r", b"\n", b"\x00", b"\xff", b"\xe9", b"x", b" ",
              b".", b"e", b"-", b"+", b"5", b"\xef\xbb\xbf", b"\xd9\xa2")
BAD_CELLS = ("nan", "NaN", "inf", "-Infinity", "", "  ", "1e999", "abc", "1_0", "0x1f",
             "1,5", "\u0662", "--1", "1e", ".")


@st.composite
def corruptions(draw, original: bytes) -> bytes:
    """``original`` with one to three byte-level corruptions."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "insert", "replace"]))
        junk = draw(st.sampled_from(JUNK_BYTES))
        if kind == "delete" and position < len(data):
            del data[position]
        elif kind == "replace" and position < len(data):
            data[position:position + 1] = junk
        else:
            data[position:position] = junk
    return bytes(data)


def _check_against_the_text(beats: Beats, data: bytes) -> None:
    """Each row read is exactly what its line says, and no data line went missing."""
    layout = beats.layout
    physical = data.split(b"\n")
    text_lines = {}
    for number, raw in enumerate(physical, start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        raw = raw.removesuffix(b"\r")
        if raw.strip(b" \t\r"):
            text_lines[number] = raw
    data_lines = [n for n in text_lines if n > layout.header_line]
    assert beats.lines.tolist() == data_lines, "a data line was dropped or invented"
    for row, number in enumerate(beats.lines):
        fields = next(csv.reader([text_lines[number].decode("utf-8")],
                                 delimiter=layout.delimiter))
        expected = [float(fields[i].strip(" \t")) for i in layout.sample_indices]
        np.testing.assert_array_equal(_bits(beats.values[row]), _bits(np.array(expected)),
                                      err_msg=f"line {number}")
        if layout.label_index is not None:
            assert beats.labels[row] == fields[layout.label_index].strip(" \t")


@PROPERTY
@given(data=st.data(), block_size=st.integers(1, 96))
def test_corrupted_files_give_the_good_numbers_or_an_input_error(data, block_size):
    written = data.draw(csv_files())
    corrupted = data.draw(corruptions(written.data))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), written, corrupted)
        result = _outcome(path, block_size, header=written.header,
                          label_column=written.label_index)
    if isinstance(result, str):
        assert result.startswith(str(path)) and "\n" not in result
    else:
        _check_against_the_text(result, corrupted)


@PROPERTY
@given(data=st.data(), block_size=st.integers(1, 96))
def test_a_bad_cell_is_an_error_naming_its_line_and_column(data, block_size):
    written = data.draw(csv_files())
    layout_columns = written.values.shape[1] + (written.label_index is not None)
    samples = [i for i in range(layout_columns) if i != written.label_index]
    row = data.draw(st.integers(0, len(written.lines) - 1))
    column = data.draw(st.sampled_from(samples))
    cell = data.draw(st.sampled_from(BAD_CELLS))
    # In a file of one column, an empty cell makes a blank line, which is no row (blank
    # lines are skipped, as the README says), and a cell holding a delimiter ("1,5") makes
    # a line of two fields, read as such (the delimiter comes from the first line): neither
    # is a bad cell there.
    assume(layout_columns > 1 or (cell.strip() and not any(d in cell for d in ",;\t")))
    if written.delimiter == "," and "," in cell:
        cell = f'"{cell}"'
    lines = written.data.split(b"\n")
    line = written.lines[row]
    raw = lines[line - 1]
    prefix = BOM if line == 1 and raw.startswith(BOM) else b""
    ending = b"\r" if raw.endswith(b"\r") else b""
    fields = next(csv.reader([raw[len(prefix):len(raw) - len(ending)].decode()],
                             delimiter=written.delimiter))
    fields[column] = cell
    lines[line - 1] = prefix + written.delimiter.join(fields).encode() + ending
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), written, b"\n".join(lines))
        result = _outcome(path, block_size, header=written.header,
                          label_column=written.label_index)
    assert isinstance(result, str), f"{cell!r} on line {line} was read as a number"
    assert result.startswith(f"{path} line {line} column {column + 1}"), result


# -- 3. skip mode: scored + rejected = rows read, rejects verbatim -------------------------

class UnboundedScaling:
    """A scaling's layout for beats of ``n_samples`` values, any value in range."""

    context = ()

    def __init__(self, n_samples: int):
        self.n_samples = n_samples

    def value_range(self) -> tuple[float, float]:
        return -math.inf, math.inf


class ZeroDetector:
    """Just enough of a fitted detector for the batch path: every score is 0."""

    threshold_ = 0.5
    provenance_ = Provenance()

    def __init__(self, n_samples: int):
        self.scaling_ = UnboundedScaling(n_samples)

    def score(self, values: np.ndarray) -> np.ndarray:
        return np.zeros(len(values))


def score_file(path: Path, output: Path, options: ScoreOptions, n_samples: int):
    """Score one file into ``output`` (and its rejects file) as ``anomaly score`` does."""
    job = Job(str(path), options=options, output=output, rejects=rejects_file_for(output))
    return LocalEngine().score(job, ZeroDetector(n_samples), model_dir=None).counts


@PROPERTY
@given(data=st.data(), block_size=st.integers(1, 96))
def test_skip_mode_accounts_for_every_row_and_keeps_rejects_verbatim(data, block_size):
    written = data.draw(csv_files(numeric_labels=True))
    # Corrupt only after the first data row, so the layout and one good row survive.
    start = sum(len(line) + 1 for line in written.data.split(b"\n")[:written.lines[0]])
    corrupted = written.data[:start] + (data.draw(corruptions(written.data[start:]))
                                        if start < len(written.data) else b"")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = _write(directory, written, corrupted)
        options = ScoreOptions(label_column=written.label_index, header=written.header,
                               on_bad_row="skip", block_bytes=block_size)
        result = score_file(path, directory / "scores.csv", options, written.values.shape[1])
        scores = (directory / "scores.csv").read_text()
        rejects_bytes = (directory / "scores.rejects.csv").read_bytes()
        leftovers = sorted(p.name for p in directory.iterdir())
    assert leftovers == sorted([path.name, "scores.csv", "scores.rejects.csv"])
    physical = [raw[len(BOM):] if number == 0 and raw.startswith(BOM) else raw
                for number, raw in enumerate(corrupted.split(b"\n"))]
    text_lines = [number for number, raw in enumerate(physical, start=1) if raw.strip(b" \t\r")]
    header_line = text_lines[0] if written.header else 0
    data_lines = [number for number in text_lines if number > header_line]
    assert result.rows_scored + result.rows_rejected == result.rows_read == len(data_lines)
    rows = list(csv.DictReader(io.StringIO(scores)))
    rejects = list(csv.DictReader(io.StringIO(rejects_bytes.decode("utf-8", "surrogateescape"),
                                                newline="")))
    assert len(rows) == result.rows_scored and len(rejects) == result.rows_rejected
    scored_lines = [int(row["row"]) + header_line for row in rows]
    rejected_lines = [int(reject["line"]) for reject in rejects]
    assert sorted(scored_lines + rejected_lines) == data_lines
    for reject in rejects:
        raw = physical[int(reject["line"]) - 1]
        assert reject["text"].encode("utf-8", "surrogateescape") == raw.removesuffix(b"\r")
        assert reject["reason"] and "\n" not in reject["reason"]


@pytest.mark.parametrize("normal_label, rejected", [("1", [3]), ("N", [])])
def test_text_labels_are_bad_rows_only_when_the_normal_label_is_a_number(
        tmp_path, normal_label, rejected):
    path = tmp_path / "labels.csv"
    path.write_text("1,2,1\n3,4,0\n5,6,N\n7,8,1.0\n")
    options = ScoreOptions(label_column="last", normal_label=normal_label, on_bad_row="skip")
    result = score_file(path, tmp_path / "s.csv", options, n_samples=2)
    rejects = list(csv.DictReader(open(tmp_path / "s.rejects.csv")))
    assert [int(r["line"]) for r in rejects] == rejected
    assert result.rows_scored == 4 - len(rejected)
    if rejected:
        assert rejects[0]["reason"] == ("column 3: expected a numeric label (the normal label "
                                        "is a number), got 'N'")
