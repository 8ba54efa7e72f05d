"""Batch scoring for scheduled jobs: streaming, several inputs, the run contract, faults."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from anomaly.exceptions import EXIT_ANOMALIES_FOUND, EXIT_BAD_INPUT, EXIT_LOCKED
from anomaly.io.blocks import block_start, iter_blocks
from anomaly.io.readers import read_beats
from anomaly.scoring.pipeline import score_source
from anomaly.scoring.plan import ScoreOptions
from anomaly.scoring.sinks import ScoresToStdout
from anomaly.scoring.sources import CsvSource

from conftest import assert_images_render_in_browser, read_rows, run_cli, write_text

ANOMALY = [sys.executable, "-m", "anomaly"]


# -- blocks ------------------------------------------------------------------------------

@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1000, 1 << 20])
def test_blocks_cover_the_file_and_seeking_cuts_the_same_blocks(block_bytes):
    rng = np.random.default_rng(block_bytes)
    lines = [b"x" * int(n) + b"\n" for n in rng.integers(0, 150, size=80)]
    data = b"".join(lines) + b"tail-without-newline"
    sequential = list(iter_blocks(io.BytesIO(data), block_bytes))
    assert b"".join(block.data for block in sequential) == data
    for block in sequential:
        assert block.first_line == data[: block.offset].count(b"\n") + 1
        assert block.offset == 0 or data[block.offset - 1: block.offset] == b"\n"
    # A worker given the byte range of nominal blocks [4, 9) cuts exactly those blocks.
    stream = io.BytesIO(data)
    start, stop = block_start(stream, 4 * block_bytes), block_start(stream, 9 * block_bytes)
    stream.seek(start)
    first_line = data[:start].count(b"\n") + 1
    seeked = list(iter_blocks(stream, block_bytes, first_line=first_line, start=start, stop=stop))
    expected = [block for block in sequential if start <= block.offset < stop]
    assert seeked == expected


def test_streaming_in_small_blocks_gives_the_in_memory_scores(fitted, data_dir):
    beats = read_beats(data_dir / "batch.csv", label_column="label")
    stream = io.BytesIO()
    options = ScoreOptions(label_column="label", block_bytes=4096)
    with CsvSource(str(data_dir / "batch.csv"), options) as source, ScoresToStdout(stream) as sink:
        outcome = score_source(fitted, source, sink)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue().decode())))
    assert outcome.counts.rows_scored == len(rows) == len(beats) == 250
    assert len(outcome.summary.scores) > 10
    # Blocks of other sizes are other batches for the network: a float32 forward pass may
    # round in the last bits differently with the batch's rows (the matrix product's
    # blocking), so scores agree to float32 rounding, not bit for bit. Reruns of the same
    # input, which cut the same blocks, are byte-identical (tested below).
    np.testing.assert_allclose([float(r["score"]) for r in rows], fitted.score(beats.values),
                               rtol=1e-5, atol=0)
    assert [int(r["row"]) for r in rows] == list(range(1, 251))
    assert [r["label"] for r in rows] == list(beats.labels)


# -- the run contract ------------------------------------------------------------------------

@pytest.fixture
def batches(data_dir, in_tmp) -> Path:
    """Three inputs in a directory: plain, gzip, and a copy under another name."""
    import gzip

    directory = in_tmp / "in"
    directory.mkdir()
    source = (data_dir / "batch.csv").read_bytes()
    (directory / "day1.csv").write_bytes(source)
    (directory / "day2.csv.gz").write_bytes(gzip.compress(source))
    (directory / "notes.txt").write_text("not an input")
    return directory


def test_several_inputs_one_output_each_and_reruns_are_byte_identical(
        model_dir, batches, in_tmp, capsys):
    args = ["score", str(batches), str(in_tmp / "in" / "day1.csv"), "-m", model_dir]
    code, _, err = run_cli(capsys, *args[:2], "-m", model_dir, "--output-dir", "out",
                           "--label-column", "label", "--report", "run.json")
    assert code == 0, err
    outputs = sorted(p.name for p in (in_tmp / "out").iterdir())
    assert outputs == ["day1.scores.csv", "day2.scores.csv"]
    first = {name: (in_tmp / "out" / name).read_bytes() for name in outputs}
    assert first["day1.scores.csv"] == first["day2.scores.csv"]
    report = json.loads((in_tmp / "run.json").read_text())
    assert [Path(i["input"]).name for i in report["inputs"]] == ["day1.csv", "day2.csv.gz"]
    assert report["rows_scored"] == 500 and report["rows_read"] == 500
    assert report["metrics"]["rows"] == 500 and report["model"]["sha256"]
    # Naming the same file twice is refused rather than scored twice.
    code, _, err = run_cli(capsys, *args, "--output-dir", "out")
    assert code == EXIT_BAD_INPUT and "given twice" in err
    # Re-running produces the very same bytes.
    assert run_cli(capsys, "score", batches, "-m", model_dir, "--output-dir", "out",
                   "--label-column", "label")[0] == 0
    assert {name: (in_tmp / "out" / name).read_bytes() for name in outputs} == first


def test_parquet_output_holds_the_csv_rows(model_dir, data_dir, in_tmp, capsys):
    import pyarrow.parquet as pq

    for output in ("s.csv", "s.parquet"):
        assert run_cli(capsys, "score", data_dir / "batch.csv", "-m", model_dir,
                       "--label-column", "label", "-o", output)[0] == 0
    table = pq.read_table(in_tmp / "s.parquet")
    rows = read_rows(in_tmp / "s.csv")
    assert table.column_names == ["row", "score", "is_anomaly", "label"]
    assert table.column("score").to_pylist() == [float(r["score"]) for r in rows]
    assert table.column("label").to_pylist() == [r["label"] for r in rows]
    first = (in_tmp / "s.parquet").read_bytes()
    assert run_cli(capsys, "score", data_dir / "batch.csv", "-m", model_dir,
                   "--label-column", "label", "-o", "s.parquet")[0] == 0
    assert (in_tmp / "s.parquet").read_bytes() == first


def test_several_inputs_without_output_dir_is_a_usage_error(model_dir, batches, capsys):
    code, _, err = run_cli(capsys, "score", batches, "-m", model_dir)
    assert code == EXIT_BAD_INPUT and "--output-dir" in err


def test_skip_existing_skips_complete_up_to_date_outputs(model_dir, batches, in_tmp, capsys):
    """Up-to-date outputs are not written again; the run's HTML report is, every run,
    and says what was skipped (a night with nothing new left the night before's report
    in place, and the run report named it as this run's)."""
    args = ["score", batches, "-m", model_dir, "--output-dir", "out", "--skip-existing",
            "--label-column", "label", "--report", "run.json", "--html", "report.html"]
    assert run_cli(capsys, *args)[0] == 0
    day1 = in_tmp / "out" / "day1.scores.csv"
    written = day1.stat().st_mtime_ns
    assert "Nothing was scored" not in (in_tmp / "report.html").read_text()
    assert run_cli(capsys, *args)[0] == 0
    report = json.loads((in_tmp / "run.json").read_text())
    assert report["inputs_skipped"] == 2 and day1.stat().st_mtime_ns == written
    page = (in_tmp / "report.html").read_text()
    assert report["html"] == "report.html" and "Nothing was scored in this run" in page
    assert re.search(r"Not scored again, .*: [^<]*day1\.csv, [^<]*day2\.csv\.gz\.</p>", page)
    assert re.search(r"Run of \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    # A newer input is scored again; the other stays skipped.
    later = time.time() + 5
    os.utime(batches / "day1.csv", (later, later))
    assert run_cli(capsys, *args)[0] == 0
    report = json.loads((in_tmp / "run.json").read_text())
    assert [bool(i.get("skipped")) for i in report["inputs"]] == [False, True]
    page = (in_tmp / "report.html").read_text()
    assert "Nothing was scored" not in page and "score histogram" in page
    assert re.search(r"Not scored again, .*: [^<]*day2\.csv\.gz\.</p>", page)


def test_fail_on_anomaly_exit_code(model_dir, data_dir, in_tmp, capsys):
    batch = data_dir / "batch_nolabel.csv"
    assert run_cli(capsys, "score", batch, "-m", model_dir, "--fail-on-anomaly")[0] == EXIT_ANOMALIES_FOUND
    assert (in_tmp / "scores.csv").exists()  # Outputs are written all the same.
    # The same model with a threshold nothing reaches: no anomaly, exit 0.
    calm = in_tmp / "calm"
    shutil.copytree(model_dir, calm)
    metadata = json.loads((calm / "metadata.json").read_text())
    metadata["calibration"].update(mean=1e9, std=0.0, threshold=1e9)  # mean + k x std
    (calm / "metadata.json").write_text(json.dumps(metadata))
    assert run_cli(capsys, "score", batch, "-m", calm, "--fail-on-anomaly", "-o", "calm.csv")[0] == 0


def test_a_file_of_beats_the_model_does_not_know_is_said_so(model_dir, in_tmp, capsys):
    """Nearly every row flagged (beats of another make than the model's): one warning, the
    scores written all the same; a batch with most rows normal gets none."""
    from anomaly.synthetic import synthetic_beats

    unknown = np.random.default_rng(3).normal(0, 3, size=(40, 96))
    np.savetxt("unknown.csv", unknown, delimiter=",")
    code, _, err = run_cli(capsys, "score", "unknown.csv", "-m", model_dir, "-o", "u.csv")
    assert code == 0 and len(read_rows(Path("u.csv"))) == 40
    assert err.count("Warning: unknown.csv: 40 of the 40 readable rows scored are flagged, "
                     "nearly all: unless they are all abnormal beats, the model does not know "
                     "these beats") == 1
    values, _ = synthetic_beats(60, 6, length=96, seed=8)
    np.savetxt("known.csv", values, delimiter=",")
    code, _, err = run_cli(capsys, "score", "known.csv", "-m", model_dir, "-o", "k.csv")
    assert code == 0 and "nearly all" not in err


@pytest.mark.parametrize("flagged, scored, unreadable, said", [
    (29, 29, 0, False),   # Too few rows to say.
    (30, 30, 0, True),
    (27, 30, 0, False),   # 90%, not more.
    (28, 30, 0, True),
    (30, 40, 10, True),   # Every readable row; unreadable ones are never flagged.
    (27, 35, 5, False),
])
def test_nearly_all_of_a_beats_file_flagged_is_over_nine_in_ten_of_30_readable_rows(
        flagged, scored, unreadable, said):
    from anomaly.recordings import too_many_flagged_note

    note = too_many_flagged_note(flagged, scored, unreadable, recording=False)
    assert (note is not None) == said
    if said:
        assert note.startswith(f"{flagged} of the {scored - unreadable} readable rows scored")


def test_a_second_run_on_a_locked_output_exits_with_its_own_code(model_dir, data_dir, in_tmp):
    from anomaly.io.writers import output_lock

    with output_lock(in_tmp / "scores.csv"):
        second = subprocess.run(ANOMALY + ["score", str(data_dir / "batch_nolabel.csv"), "-m",
                                           str(model_dir)], capture_output=True, text=True)
    assert second.returncode == EXIT_LOCKED
    assert second.stderr.startswith("Error: scores.csv: another anomaly run is writing")
    assert len(second.stderr.splitlines()) == 1 and not (in_tmp / "scores.csv").exists()
    assert subprocess.run(ANOMALY + ["score", str(data_dir / "batch_nolabel.csv"), "-m",
                                     str(model_dir)], capture_output=True).returncode == 0


def test_stdin_input_scores_like_the_file(model_dir, data_dir, in_tmp, capsys):
    assert run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_dir, "-o", "a.csv")[0] == 0
    with open(data_dir / "batch_nolabel.csv", "rb") as stdin:
        piped = subprocess.run(ANOMALY + ["score", "-", "-m", str(model_dir), "-o", "b.csv"],
                               stdin=stdin, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert (in_tmp / "a.csv").read_bytes() == (in_tmp / "b.csv").read_bytes()


# -- bad rows ------------------------------------------------------------------------------

def test_skip_bad_rows_writes_rejects_and_counts_every_row(model_dir, data_dir, in_tmp, capsys):
    lines = (data_dir / "batch_nolabel.csv").read_text().splitlines()
    bad = {3: "oops", 10: "", 20: "nan"}
    for line, cell in bad.items():
        fields = lines[line - 1].split(",")
        fields[4] = cell
        lines[line - 1] = ",".join(fields)
    lines[30 - 1] += ",1.0"  # one field too many
    write_text(in_tmp / "mixed.csv", "\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "score", "mixed.csv", "-m", model_dir, "--on-bad-row", "skip",
                           "--report", "run.json")
    assert code == 0, err
    rows = read_rows(in_tmp / "scores.csv")
    rejects = read_rows(in_tmp / "scores.rejects.csv")
    assert [int(r["line"]) for r in rejects] == [3, 10, 20, 30]
    assert [r["text"] for r in rejects] == [lines[n - 1] for n in (3, 10, 20, 30)]
    assert "'oops'" in rejects[0]["reason"] and "empty cell" in rejects[1]["reason"]
    assert "not a finite number" in rejects[2]["reason"] and "fields" in rejects[3]["reason"]
    assert len(rows) + len(rejects) == 250
    assert {int(r["row"]) for r in rows} == set(range(1, 251)) - {3, 10, 20, 30}
    report = json.loads((in_tmp / "run.json").read_text())
    assert (report["rows_scored"], report["rows_rejected"], report["rows_read"]) == (246, 4, 250)
    # The default policy fails the whole file and writes nothing.
    code, _, err = run_cli(capsys, "score", "mixed.csv", "-m", model_dir, "-o", "strict.csv")
    assert code == EXIT_BAD_INPUT and "mixed.csv line 3 column 5" in err
    assert not (in_tmp / "strict.csv").exists()


def test_json_logs_are_one_object_per_line(model_dir, data_dir, in_tmp, capsys):
    code, _, err = run_cli(capsys, "score", data_dir / "batch.csv", "-m", model_dir,
                           "--label-column", "label", "--log-format", "json")
    records = [json.loads(line) for line in err.splitlines()]
    assert code == 0 and {r["event"] for r in records} >= {"scored", "metrics"}
    scored = next(r for r in records if r["event"] == "scored")
    assert scored["level"] == "info" and scored["rows_scored"] == 250
    code, _, err = run_cli(capsys, "score", "absent.csv", "-m", model_dir, "--log-format", "json")
    [record] = [json.loads(line) for line in err.splitlines()]
    assert code == EXIT_BAD_INPUT and record["level"] == "error" and "absent.csv" in record["message"]


# -- HTML report in a real browser --------------------------------------------------------------

def test_html_report_renders_with_its_images_in_a_headless_browser(model_dir, data_dir, in_tmp, capsys):
    code, _, err = run_cli(capsys, "score", data_dir / "batch.csv", "-m", model_dir,
                           "--label-column", "label", "--html", "report.html")
    assert code == 0, err
    page = (in_tmp / "report.html").read_text()
    assert "<img" in page and "http" not in page.replace("http-equiv", "")  # self-contained
    assert "Confusion matrix" in page and "ROC" in page
    # A beats file's beats are its rows in the scores and its lines in the file.
    assert re.search(r'alt="the row \d+ \(line \d+\)', page)
    assert_images_render_in_browser(in_tmp / "report.html")
