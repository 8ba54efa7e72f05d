"""The CSV reader: layouts it accepts and the exact errors it gives."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from anomaly.exceptions import InputError
from anomaly.io.readers import read_beats

from conftest import write_text


@pytest.mark.parametrize(
    "text, header",
    [
        ("1,2,3\n4,5,6\n", False),
        ("a,b,c\n1,2,3\n4,5,6\n", True),
        ("0,1,2\n1,2,3\n4,5,6\n", True),  # pandas' default column names
        ("\ufeff1,2,3\r\n4,5,6\r\n", False),  # byte-order mark and CRLF
        ("1;2;3\n4;5;6\n", False),
        ("1\t2\t3\n4\t5\t6\n", False),
        ("1,2,3\n\n4,5,6\n\n", False),  # blank lines are not beats
        ("1e0,2.0,+3\n4,5.,.6e1\n", False),
    ],
)
def test_reads_layouts(tmp_path, text, header):
    beats = read_beats(write_text(tmp_path / "in.csv", text))
    assert beats.layout.has_header is header
    np.testing.assert_array_equal(beats.values, [[1, 2, 3], [4, 5, 6]])
    assert beats.labels is None


def test_reads_gzip_by_content_not_name(tmp_path):
    path = tmp_path / "beats.dat"
    path.write_bytes(gzip.compress(b"t0,t1,label\n1,2,1\n3,4,0\n"))
    beats = read_beats(path, label_column="label")
    np.testing.assert_array_equal(beats.values, [[1, 2], [3, 4]])
    assert beats.labels.tolist() == ["1", "0"]


@pytest.mark.parametrize("spec, values, labels", [
    ("first", [[2, 3], [5, 6]], ["1", "4"]),
    ("last", [[1, 2], [4, 5]], ["3", "6"]),
    (1, [[1, 3], [4, 6]], ["2", "5"]),
    ("1", [[1, 3], [4, 6]], ["2", "5"]),
    ("b", [[1, 3], [4, 6]], ["2", "5"]),
])
def test_label_column_forms(tmp_path, spec, values, labels):
    beats = read_beats(write_text(tmp_path / "in.csv", "a,b,c\n1,2,3\n4,5,6\n"), label_column=spec)
    np.testing.assert_array_equal(beats.values, values)
    assert beats.labels.tolist() == labels


def test_explicit_header_overrides_detection(tmp_path):
    path = write_text(tmp_path / "in.csv", "1,2\n3,4\n")
    assert len(read_beats(path, header=True)) == 1
    assert len(read_beats(path, header=False)) == 2


def test_large_file_streams_in_several_chunks(tmp_path):
    from anomaly.io.readers import iter_beats

    rows = np.arange(30000 * 4, dtype=float).reshape(30000, 4)
    path = tmp_path / "big.csv"
    np.savetxt(path, rows, delimiter=",", fmt="%.1f")
    chunks = list(iter_beats(path, label_column="last", block_size=64 << 10))
    assert len(chunks) > 5
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), rows[:, :3])
    assert np.concatenate([c.labels for c in chunks]).tolist() == [f"{v:.1f}" for v in rows[:, 3]]


def test_bad_row_in_a_late_chunk_is_located(tmp_path):
    from anomaly.io.readers import iter_beats

    lines = ["1.5,2.5,3.5"] * 20000
    lines[15000] = "1.5,bad,3.5"
    path = write_text(tmp_path / "late.csv", "\n".join(lines) + "\n")
    with pytest.raises(InputError, match="late.csv line 15001 column 2: expected a number"):
        list(iter_beats(path, block_size=16 << 10))


@pytest.mark.parametrize("text, message", [
    ("1,,3\n4,5,6\n", "line 1 column 2: empty cell"),
    ("1.5,NA,3\n4,5,6\n", "line 1 column 2: expected a number, got 'NA'"),
])
def test_bad_first_row_is_an_error_not_a_header(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_beats(write_text(tmp_path / "in.csv", text))


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("a,b,c\n", "no heartbeats in the file (only a header row)"),
    ("1,2,3\n4,x,6\n", "line 2 column 2: expected a number, got 'x'"),
    ("1,2,3\n4,5\n", "line 2: expected 3 fields, got 2"),
    ("1,2,3\n4,5,6,7\n", "line 2: expected 3 fields, got 4"),
    ("1,2,3\n4,,6\n", "line 2 column 2: empty cell"),
    ("1,2,3\n4,nan,6\n", "line 2 column 2: 'nan' is not a finite number"),
    ("1,2,3\n4,5,-inf\n", "line 2 column 3: '-inf' is not a finite number"),
    ("t0,t1\n1,2\n3,abc\n", "line 3 column 2 ('t1'): expected a number, got 'abc'"),
])
def test_bad_files_name_the_file_and_place(tmp_path, text, message):
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(InputError) as caught:
        read_beats(path)
    error = str(caught.value)
    assert error.startswith(str(path)) and message in error
    assert "\n" not in error


def test_binary_garbage(tmp_path):
    path = write_text(tmp_path / "junk.csv", bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a text CSV file"):
        read_beats(path)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(("\n".join(",".join(["0.5"] * 50) for _ in range(5000)) + "\n").encode())
    path = write_text(tmp_path / "cut.csv.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match="gzip data is corrupt or truncated"):
        read_beats(path)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_beats(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_beats(tmp_path)


@pytest.mark.parametrize("spec, message", [
    (7, "label column index 7 is out of range (the file has 3 columns"),
    ("zzz", "label column 'zzz' not found in the header"),
])
def test_bad_label_column(tmp_path, spec, message):
    path = write_text(tmp_path / "in.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        read_beats(path, label_column=spec)


def test_label_name_without_header(tmp_path):
    path = write_text(tmp_path / "in.csv", "1,2,3\n")
    with pytest.raises(InputError, match="the file has no header row"):
        read_beats(path, label_column="label")


def test_labels_are_decided_as_they_are_read(tmp_path):
    path = write_text(tmp_path / "n.csv", "1,2,1\n1,2,1.0\n1,2,0\n1,2,4\n")
    assert read_beats(path, label_column="last", normal_label="1").truth.tolist() == [0, 0, 1, 1]
    assert read_beats(path, label_column="last", normal_label="0").truth.tolist() == [1, 1, 0, 1]
    assert read_beats(path, label_column="last").truth is None  # no normal label, no truth
    path = write_text(tmp_path / "t.csv", "1,2,N\n1,2,V\n1,2, N \n")
    assert read_beats(path, label_column="last", normal_label="N").truth.tolist() == [0, 1, 0]


def test_a_text_label_is_a_bad_row_when_the_normal_label_is_a_number(tmp_path):
    path = write_text(tmp_path / "t.csv", "1,2,1\n\n1,2,abnormal\n")
    with pytest.raises(InputError, match=r"t.csv line 3 column 3: expected a numeric label "
                                         r"\(the normal label is a number\), got 'abnormal'"):
        read_beats(path, label_column="last", normal_label="1")
    assert read_beats(path, label_column="last").labels.tolist() == ["1", "abnormal"]


@pytest.mark.parametrize("name", ["label", "Class", "target", "y"])
def test_a_header_naming_labels_is_never_read_as_a_sample(tmp_path, name):
    """A column named like labels, with no label column chosen, is refused in one line
    naming the file and the column and saying which option reads it as labels."""
    path = write_text(tmp_path / "in.csv", f"t0,t1,{name}\n1,2,1\n3,4,0\n")
    with pytest.raises(InputError) as error:
        read_beats(path)
    assert str(error.value) == (f"{path}: column {name!r} looks like labels, not samples; "
                                f"give --label-column {name} to read it as the labels (and "
                                "--normal-label for the normal one), or rename it")
    np.testing.assert_array_equal(read_beats(path, label_column=name).values, [[1, 2], [3, 4]])
    # A beats file (id columns) carries its label column as it is, as before.
    beats = read_beats(write_text(tmp_path / "beats.csv", "record,sample,label,x0,x1\n"
                                                          "r,7,N,1,2\n"))
    assert beats.labels.tolist() == ["N"] and beats.values.tolist() == [[1, 2]]


def test_fit_and_score_refuse_a_label_header_without_label_column(data_dir, model_dir,
                                                                  in_tmp, capsys):
    """batch.csv's header ends in 'label': without --label-column, neither command reads
    it as a 97th sample (fit used to train on it), and nothing is written."""
    from conftest import assert_one_line_error, run_cli

    batch = data_dir / "batch.csv"
    for command in (["fit", batch, "-m", "new", "--epochs", "1", "-q"],
                    ["score", batch, "-m", model_dir, "-o", "s.csv"]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2, (command[0], err)
        assert_one_line_error(err, str(batch), "column 'label' looks like labels",
                              "--label-column label")
    assert not any(in_tmp.iterdir())


def test_an_id_column_named_twice_is_refused(tmp_path):
    """Two ``rr_prev_s`` columns: which is the beat's interval is unclear, and the last one
    was read without a word."""
    path = write_text(tmp_path / "twice.csv", "record,rr_prev_s,rr_prev_s,x0,x1\n"
                                              "a,0.8,9.9,0.1,0.2\n")
    with pytest.raises(InputError, match=r"^.*twice\.csv line 1: the header names column "
                                         r"'rr_prev_s' 2 times; which is the beat's is "
                                         r"unclear: keep one$"):
        read_beats(path)
