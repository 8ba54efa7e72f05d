"""`anomaly summary`: the reports of recordings already scored, from the run report and
the scores files, without scoring again; and the run report's schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_images_render_in_browser, assert_one_line_error, recording_model, \
    run_cli

FS = 250
AF = (120.0, 240.0)
SECONDS = 360.0


def write_holter(directory: Path, name: str = "holter", seed: int = 0) -> Path:
    """A 6-minute synthetic recording (PVCs, two minutes of AF, a run of ventricular
    tachycardia and a pause) as a WFDB record in millivolts."""
    import wfdb

    from anomaly.synthetic import synthetic_holter

    signal, _ = synthetic_holter(SECONDS, FS, seed=seed, af=AF, runs=(60.0,), pauses=(300.0,))
    wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(directory))
    return directory / name


@pytest.fixture
def scored(model_dir, in_tmp, capsys):
    """Two recordings scored into a directory with a run report, no HTML: as a night job
    scores them."""
    model = recording_model(model_dir, in_tmp / "model", fs=FS)
    records = [write_holter(in_tmp, "one", seed=0), write_holter(in_tmp, "two", seed=1)]
    code, _, err = run_cli(capsys, "score", *records, "-m", model, "--output-dir", "scores",
                           "--report", "scores/run.json")
    assert code == 0, err
    return in_tmp, model, records


def schema_errors(report: dict) -> list[str]:
    import jsonschema

    from anomaly.scoring.scored import SCHEMA

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(report)]


def test_the_most_anomalous_beats_kept_are_the_earliest_of_equal_scores_in_any_blocks():
    """Ten identical beats scoring highest (a file's duplicated rows), read in one block or
    in blocks of three: the beats kept are the first TOP_BEATS of them either way, as a
    summary of the run's scores ranks them; the normal beats sampled are the first ones."""
    from anomaly.io.beats import Beats
    from anomaly.scoring.summary import TOP_BEATS, ScoreSummary, normal_sample_rows, top_rows

    scores = np.r_[np.full(10, 0.9), np.linspace(0.1, 0.5, 10)]
    readable = np.ones(len(scores), dtype=bool)
    readable[1] = False
    lines = np.arange(2, len(scores) + 2)
    expected = [int(line) for line in lines[readable][:TOP_BEATS]]
    for size in (len(scores), 3):
        summary = ScoreSummary(0.3)
        for start in range(0, len(scores), size):
            part = slice(start, start + size)
            summary.add("beats.csv", Beats(np.zeros((len(lines[part]), 4)), lines[part]),
                        scores[part], readable[part])
        assert sorted(beat.line for *_, beat in summary.top) == expected, size
        assert [beat.line for beat in summary.normals] == [12, 13, 14, 15, 16]
    np.testing.assert_array_equal(top_rows(scores, readable, TOP_BEATS),
                                  np.flatnonzero(readable)[:TOP_BEATS])
    np.testing.assert_array_equal(normal_sample_rows(scores, readable, 0.3, 2), [10, 11])


def test_summary_writes_the_report_the_run_would_have_from_its_scores(scored, capsys):
    """Scored at night without a report, summarised later: the JSON has the rhythm a run
    with --report gives (the same figures), follows the schema, and the HTML has every
    recording's strips and families, rendered in a real browser. The scores come from
    the scores files, not from scoring again: a score changed in a file is the one
    reported."""
    work, model, records = scored
    one_scores = work / "scores" / "one.scores.csv"
    lines = one_scores.read_text().splitlines()
    header = lines[0].split(",")
    # Beat 40's score made the highest: the summary must report it as it is in the file.
    cells = lines[40].split(",")
    was_flagged = cells[header.index("is_anomaly")] == "1"
    cells[header.index("score")], cells[header.index("is_anomaly")] = "9.5", "1"
    lines[40] = ",".join(cells)
    one_scores.write_text("\n".join(lines) + "\n")
    before = {path: path.stat().st_mtime_ns for path in (work / "scores").iterdir()}

    code, out, err = run_cli(capsys, "summary", "scores/run.json", "--html", "summary.html",
                             "--report", "summary.json", "--plot-dir", "plots")
    assert code == 0, err
    assert "Scored" not in err and err.count("Rhythm of ") == 2, err
    assert {path: path.stat().st_mtime_ns for path in (work / "scores").iterdir()} == before
    summary = json.loads(Path("summary.json").read_text())
    assert schema_errors(summary) == []
    assert schema_errors(json.loads(Path("scores/run.json").read_text())) == []
    assert summary["summarised"] and summary["created"] == json.loads(
        Path("scores/run.json").read_text())["created"]
    assert summary["anomalies"] == json.loads(Path("scores/run.json").read_text())[
        "anomalies"] + (not was_flagged)

    # The same rhythm as a scoring run with --report.
    code, _, err = run_cli(capsys, "score", records[0], "-m", model, "-o", "again.csv",
                           "--report", "again.json")
    assert code == 0, err
    again = json.loads(Path("again.json").read_text())["inputs"][0]["rhythm"]
    rhythm = summary["inputs"][0]["rhythm"]
    for key in ("heart_rate", "atrial_fibrillation", "beats", "event_counts", "events",
                "hourly", "normal_beats"):
        assert rhythm[key] == again[key], key
    assert [family["beats"] for family in rhythm["families"]] == \
        [family["beats"] for family in again["families"]]
    assert rhythm["atrial_fibrillation"]["episodes"], rhythm["atrial_fibrillation"]
    # The known gap and run, with their times.
    [pause] = [event for event in rhythm["events"] if event["kind"] == "pause"]
    assert 299 <= pause["start_s"] <= 304 and 2.4 <= pause["duration_s"] <= 2.8, pause
    [run] = [event for event in rhythm["events"] if event["kind"] == "ventricular tachycardia"]
    # Its rate is of the intervals between its beats, 0.4 s: over 100 bpm.
    assert 58 <= run["start_s"] <= 62 and run["beats"] >= 5 and run["rate_bpm"] >= 100, run
    assert run["duration_s"] == pytest.approx(0.4 * (run["beats"] - 1), abs=0.05), run

    page = Path("summary.html").read_text()
    for name in ("one", "two"):
        assert f'alt="timeline of {name}"' in page and f'alt="the families of {name}"' in page
        assert f'alt="ECG strip of {name}: ' in page
    # The changed score is the most anomalous beat, as the file says.
    assert "score 9.5000" in page
    # normal_beat.png only when a beat was called normal (the session's model, fitted on
    # other beats, may flag them all).
    assert {"one.timeline.png", "one.strips.png", "two.timeline.png", "two.strips.png",
            "anomalous_beat.png", "score_histogram.png"} <= \
        {path.name for path in Path("plots").iterdir()} <= {
        "one.timeline.png", "one.strips.png", "two.timeline.png", "two.strips.png",
        "anomalous_beat.png", "score_histogram.png", "normal_beat.png"}
    assert_images_render_in_browser(Path("summary.html"))


def test_summary_of_inputs_the_run_skipped_as_up_to_date(scored, capsys):
    """A night job with --skip-existing skips what it scored before; its run report
    still names their scores, which are summarised (no SHA-256 in that report: the
    scores must be newer than the recording)."""
    work, model, records = scored
    code, _, err = run_cli(capsys, "score", *records, "-m", model, "--output-dir", "scores",
                           "--skip-existing", "--report", "skipped.json")
    assert code == 0, err
    assert all("skipped" in item for item in json.loads(Path("skipped.json").read_text())[
        "inputs"])
    code, _, err = run_cli(capsys, "summary", "skipped.json", "--report", "summary.json")
    assert code == 0, err
    summary = json.loads(Path("summary.json").read_text())
    assert [item["rows_scored"] for item in summary["inputs"]] == \
        [item["rows_scored"] for item in json.loads(Path("scores/run.json").read_text())[
            "inputs"]]
    assert all("rhythm" in item for item in summary["inputs"])
    # What was analysable, read again with the rhythm, as the run that scored them says.
    scored_run = json.loads(Path("scores/run.json").read_text())
    assert [item["recording"]["analysable_minutes"] for item in summary["inputs"]] == \
        [item["recording"]["analysable_minutes"] for item in scored_run["inputs"]]
    # A recording changed after it was scored: its scores are not its own any more.
    os.utime(f"{records[1]}.dat")
    code, _, err = run_cli(capsys, "summary", "skipped.json", "--report", "summary2.json")
    assert code == 2 and not Path("summary2.json").exists()
    assert_one_line_error(err, f"{records[1]}: its scores file ",
                          "scores/two.scores.csv is not newer than it")


def test_summary_refuses_what_is_not_the_run_scored(scored, capsys):
    """Each refusal is one line naming the file, exit 2 (3 for the model), and nothing
    written: a recording changed since it was scored, another model, a scores file that
    is not the run's, a report that is not a run report, a destination that would
    overwrite what it reads."""
    work, model, records = scored
    run_report = json.loads(Path("scores/run.json").read_text())

    def refused(expected_code, *message, report="scores/run.json", extra=()):
        code, _, err = run_cli(capsys, "summary", report, "--html", "out.html", *extra)
        assert code == expected_code, err
        assert_one_line_error(err, *message)
        assert not Path("out.html").exists()

    # Another model than the one that scored (the run report says another SHA-256).
    swapped = json.loads(json.dumps(run_report))
    swapped["model"]["sha256"] = "0" * 64
    Path("swapped.json").write_text(json.dumps(swapped))
    refused(3, "model: not the model that scored swapped.json", report="swapped.json")

    # A scores file cut short.
    scores = Path("scores/two.scores.csv")
    kept = scores.read_text()
    scores.write_text("\n".join(kept.splitlines()[:-3]) + "\n")
    refused(2, f"{scores}: {run_report['inputs'][1]['rows_scored'] - 3:,} rows, the run "
               f"report says {run_report['inputs'][1]['rows_scored']:,} were scored")
    scores.write_text(kept)

    # A recording rewritten since it was scored.
    data = Path(f"{records[0]}.dat")
    original = data.read_bytes()
    data.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    refused(2, f"{records[0]}: changed since it was scored")
    data.write_bytes(original)

    # Not a run report: JSON of another shape, not JSON, NaN.
    Path("other.json").write_text(json.dumps({"created": "now"}))
    refused(2, "other.json: not a run report of this version", report="other.json")
    # A recording's start the schema's pattern lets through, but no time or no date.
    for number, started in enumerate(({"time": "29:00:00", "date": None},
                                      {"time": "12:00:00", "date": "2026-02-30"})):
        timed = json.loads(json.dumps(run_report))
        timed["inputs"][0]["recording"]["started"] = started
        Path(f"timed{number}.json").write_text(json.dumps(timed))
        refused(2, f"timed{number}.json: not a run report of this version (inputs/0/recording/"
                   "started: ", report=f"timed{number}.json")
    Path("bad.json").write_text("{not json")
    refused(2, "bad.json: not a run report (not JSON", report="bad.json")
    Path("nan.json").write_text(json.dumps(run_report).replace('"threshold": ',
                                                               '"threshold": NaN, "x": ', 1))
    refused(2, "nan.json: not a run report (not JSON: NaN is not a number JSON allows)",
            report="nan.json")

    # Destinations that would overwrite what the summary reads.
    for destination, what in (("scores/run.json", "the run report"),
                              ("scores/one.scores.csv", "the scores file of"),
                              (f"{records[0]}.dat", "the input")):
        before = Path(destination).read_bytes()
        code, _, err = run_cli(capsys, "summary", "scores/run.json", "--html", destination)
        assert code == 2 and what in err and "would overwrite" in err, err
        assert Path(destination).read_bytes() == before
    code, _, err = run_cli(capsys, "summary", "scores/run.json", "--html", "model/x.html")
    assert code == 2 and "would write into the model directory" in err, err
    # A copy of the model given with --model-dir: the run's own model is protected still
    # (an attacker overwrote its metadata.json this way, and the model was lost).
    shutil.copytree("model", "model_copy")
    before = Path("model/metadata.json").read_bytes()
    code, _, err = run_cli(capsys, "summary", "scores/run.json", "--model-dir", "model_copy",
                           "--report", "model/metadata.json")
    assert code == 2 and "would write into the model directory" in err, err
    assert Path("model/metadata.json").read_bytes() == before
    code, _, err = run_cli(capsys, "summary", "scores/run.json")
    assert code == 2 and "nothing to write" in err


def test_summary_imports_no_tensorflow(scored):
    """Summarising is a scoring-only path: the ONNX runtime reconstructs the beats drawn."""
    work, _, _ = scored
    code = ("import sys; from anomaly.cli import main; "
            "code = main(['summary', 'scores/run.json', '--html', 'summary.html', '-q']); "
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "print(code, heavy); sys.exit(bool(heavy) or code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=work, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Path(work / "summary.html").is_file()


def test_every_run_report_follows_the_schema(model_dir, data_dir, in_tmp, capsys):
    """The schema describes what scoring writes: a beats file with labels (metrics), a
    skipped input; a recording (with its rhythm) is checked above."""
    shutil.copy(data_dir / "batch.csv", "a.csv")
    code, _, err = run_cli(capsys, "score", "a.csv", "-m", model_dir, "-o", "a.scores.csv",
                           "--label-column", "label", "--report", "a.json")
    assert code == 0, err
    code, _, err = run_cli(capsys, "score", "a.csv", "-m", model_dir, "-o", "a.scores.csv",
                           "--report", "skipped.json", "--skip-existing")
    assert code == 0, err
    for name in ("a.json", "skipped.json"):
        report = json.loads(Path(name).read_text())
        assert schema_errors(report) == [], name
    assert "metrics" in json.loads(Path("a.json").read_text())
    broken = json.loads(Path("a.json").read_text())
    broken["inputs"][0]["anomalies"] = -1
    broken["inputs"][0]["anomalys"] = 3
    broken["totl"] = 1
    assert {error.split(":")[0] for error in schema_errors(broken)} == {
        "inputs/0/anomalies", "inputs/0", ""}


def test_a_labelled_run_in_parquet_is_summarised_from_another_directory(
        model_dir, in_tmp, capsys, monkeypatch):
    """Scored in one directory with reference labels into Parquet (relative paths in the
    run report), summarised from another: the paths are the scoring run's, the metrics
    are the run's, and the strips carry the reference labels."""
    import wfdb

    from anomaly.synthetic import synthetic_holter

    night = in_tmp / "night"
    night.mkdir()
    signal, beats = synthetic_holter(SECONDS, FS, seed=2, af=AF, runs=(60.0,))
    wfdb.wrsamp("rec", fs=FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(night))
    wfdb.wrann("rec", "atr", np.array([int(round(time * FS)) for time, _ in beats]),
               np.array(["V" if kind == "v" else "N" for _, kind in beats]),
               write_dir=str(night))
    recording_model(model_dir, night / "model", fs=FS)
    monkeypatch.chdir(night)
    code, _, err = run_cli(capsys, "score", "rec", "-m", "model", "--output-dir", "scores",
                           "--output-format", "parquet", "--annotations", "atr",
                           "--label-column", "label", "--normal-label", "N",
                           "--report", "scores/run.json")
    assert code == 0, err
    assert (night / "scores" / "rec.scores.parquet").is_file()
    run_report = json.loads((night / "scores" / "run.json").read_text())
    assert run_report["inputs"][0]["input"] == "rec"  # As given: relative.
    monkeypatch.chdir(in_tmp)
    code, _, err = run_cli(capsys, "summary", "night/scores/run.json", "--html", "page.html",
                           "--report", "summary.json")
    assert code == 0, err
    summary = json.loads(Path("summary.json").read_text())
    assert schema_errors(summary) == []
    for key in ("precision", "recall", "roc_auc", "confusion_matrix"):
        assert summary["metrics"][key] == run_report["metrics"][key], key
    assert summary["inputs"][0]["rhythm"] == run_report["inputs"][0]["rhythm"]
    page = Path("page.html").read_text()
    assert "reference V" in page and "reference N" in page


def test_summary_refuses_hostile_scores_and_reports_in_one_line(scored, capsys):
    """What an attacker tried: numbers JSON reads as infinite, a NUL byte in a path, a
    threshold not the model's, flags that are not the scores', a Parquet file that
    unpacks to millions of rows, a label of megabytes, a beat number that is not whole:
    each one `Error:` line, nothing written (the Parquet bomb refused from its metadata,
    before it is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    work, _, _ = scored
    run_report = json.loads(Path("scores/run.json").read_text())

    def refused(code, report, *message):
        Path("hostile.json").write_text(report if isinstance(report, str) else
                                        json.dumps(report))
        got, _, err = run_cli(capsys, "summary", "hostile.json", "--html", "out.html")
        assert got == code, err
        assert_one_line_error(err, *message)
        assert not Path("out.html").exists()

    text = Path("scores/run.json").read_text()
    import re

    assert re.search(r'"threshold_k": [0-9.]+', text)
    refused(2, re.sub(r'"threshold_k": [0-9.]+', '"threshold_k": 1e999', text, count=1),
            "hostile.json: not a run report (not JSON: 1e999 is too large a number)")
    nul = json.loads(text)
    nul["inputs"][0]["input"] += "\x00"
    refused(2, nul, "hostile.json: a path in it holds a NUL byte")
    other = json.loads(text)
    other["model"]["threshold"] *= 2
    refused(3, other, "its threshold", "is not the one that scored hostile.json")
    # One scores file named for many inputs, each read again (1,000 took 1.1 GB).
    twice = json.loads(text)
    twice["inputs"] = twice["inputs"] * 1000
    refused(2, twice, "hostile.json: names the input", "twice", "not a run report anomaly wrote")
    # The same scores file by other names (hard links), for inputs given once each.
    linked = json.loads(text)
    os.link(linked["inputs"][0]["output"], "scores/linked.scores.csv")
    linked["inputs"][1]["output"] = "scores/linked.scores.csv"
    refused(2, linked, "hostile.json: names the scores file", "twice")

    scores = Path("scores/one.scores.csv")
    kept = scores.read_text()
    lines = kept.splitlines()
    header = lines[0].split(",")
    for column, value, message in (("is_anomaly", None, "its is_anomaly flags are not its "
                                    "scores above the threshold"),
                                   ("beat", "2.5", "column beat holds a value that is not "
                                    "a whole number"),
                                   # Scores no model gives: the pictures' arithmetic
                                   # overflowed on them (an internal error, exit 4).
                                   ("score", "1.7e308", "column score holds a value that is "
                                    "not a model's score (from 0 to 1e+100)"),
                                   ("score", "-1", "not a model's score")):
        cells = lines[5].split(",")
        index = header.index(column)
        cells[index] = value if value is not None else str(1 - int(cells[index]))
        scores.write_text("\n".join(lines[:5] + [",".join(cells)] + lines[6:]) + "\n")
        refused(2, run_report, f"{scores}", message)
    scores.write_text("\n".join([lines[0] + ",label"] + [line + ",N" for line in lines[1:2]]
                                + [line + "," + "x" * 100 for line in lines[2:]]) + "\n")
    refused(2, run_report, f"{scores}: a label of more than 64 characters")
    scores.write_text(kept)

    rows = 40_000_000
    bomb = Path("scores/bomb.scores.parquet")
    pq.write_table(pa.table({"score": np.zeros(rows), "is_anomaly": np.zeros(rows, np.int8)}),
                   bomb, compression="zstd")
    assert bomb.stat().st_size < 3_000_000
    bombed = json.loads(text)
    bombed["inputs"][0]["output"] = str(bomb.resolve())
    bombed["inputs"][0].pop("sha256")
    bombed["inputs"][0]["skipped"] = "output is newer than input and model"
    refused(2, bombed, f"{bomb.resolve()}:", "more than a scores file of")
    # The scores file's own rows, its unreadable column one text of 2.4 MB, dictionary-
    # encoded: 11 KB on disk, and its row groups declare that text once; decoded, once a
    # row (an attacker's summary took 2.6 GB, and a longer record an internal error).
    import pandas as pd

    frame = pd.read_csv(scores, keep_default_na=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    huge = pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(frame), np.int32)),
                                          pa.array(["noisy" * 480_000]))
    table = table.set_column(table.schema.get_field_index("unreadable"), "unreadable", huge)
    dictionary = Path("scores/dictionary.scores.parquet")
    pq.write_table(table, dictionary, compression="zstd")
    assert dictionary.stat().st_size < 100_000
    bombed["inputs"][0]["output"] = str(dictionary.resolve())
    refused(2, bombed, f"{dictionary.resolve()}:", "bytes decoded, more than a scores file of")
    # Another recording's scores in place of an input the run skipped (an attacker's was
    # another record renamed): flags, record name and span all pass; its beats' R peaks
    # are not where this recording's beats are.
    frame["sample"] += 37
    frame["time_s"] = (frame["sample"] / FS).round(4)
    elsewhere = Path("scores/elsewhere.scores.csv")
    frame.to_csv(elsewhere, index=False)
    bombed["inputs"][0]["output"] = str(elsewhere.resolve())
    refused(2, bombed, f"{elsewhere.resolve()}: only ", "not the scores of this recording")


def test_a_run_of_beats_files_is_summarised_with_its_histogram_and_metrics(
        model_dir, data_dir, in_tmp, capsys):
    """Beats files (not recordings) summarised: their scores in the histogram and the
    metrics, nothing drawn of their beats, said in the log; a beats file changed since
    it was scored is refused."""
    shutil.copy(data_dir / "batch.csv", "a.csv")
    code, _, err = run_cli(capsys, "score", "a.csv", "-m", model_dir, "--output-dir", "out",
                           "--label-column", "label", "--report", "run.json")
    assert code == 0, err
    code, _, err = run_cli(capsys, "summary", "run.json", "--html", "page.html", "--report",
                           "summary.json", "--plot-dir", "plots")
    assert code == 0, err
    assert "a.csv is a beats file: its scores are in the histogram and the metrics" in err
    summary = json.loads(Path("summary.json").read_text())
    assert summary["metrics"] == json.loads(Path("run.json").read_text())["metrics"]
    assert {path.name for path in Path("plots").iterdir()} == {"score_histogram.png"}
    assert_images_render_in_browser(Path("page.html"))
    Path("a.csv").write_text(Path("a.csv").read_text().replace("\n", "\r\n", 1))
    code, _, err = run_cli(capsys, "summary", "run.json", "--html", "again.html")
    assert code == 2 and not Path("again.html").exists()
    assert_one_line_error(err, "a.csv: changed since it was scored")


def test_a_parquet_scores_file_is_counted_as_it_is_decoded(tmp_path):
    """The footer's rows and sizes are the file's word (a forged footer said 1,000 rows of
    300 million, and the summary took 4.4 GB): the rows are counted batch by batch as
    they are decoded, and the file refused once past the limit, whatever it said."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from anomaly.exceptions import InputError
    from anomaly.scoring.scored import _PARQUET_BATCH_ROWS, _parquet_columns

    rows = 5 * _PARQUET_BATCH_ROWS
    path = tmp_path / "s.scores.parquet"
    pq.write_table(pa.table({"score": np.zeros(rows), "is_anomaly": np.zeros(rows, np.int8)}),
                   path, row_group_size=rows)
    frame = _parquet_columns(path, ["score", "is_anomaly"], rows, 10 * rows * 9)
    assert len(frame) == rows
    with pytest.raises(InputError, match=r"s.scores.parquet: 8,192 rows of .* bytes decoded, "
                                         r"more than a scores file of 5,000 rows"):
        _parquet_columns(path, ["score", "is_anomaly"], 5000, 10 * rows * 9)
