#!/usr/bin/env python
"""Exit, peak memory and time of ``anomaly`` on hostile inputs, each in a fresh process.

Five groups of inputs:

- **beats CSVs** scored with ``anomaly score`` (files that never end, lines without ends,
  gzip bombs, first lines of absurd width, a million bad rows), beside a good
  100,000-row file for reference;
- **recordings** read with ``anomaly beats`` (headers declaring more than their files
  hold, headers that are not files, annotation files that are not annotations, rates that
  are not rates, signal CSVs with gaps): the very cases ``tests/test_hostile_recordings.py``
  checks, built by ``tests/hostile.py``;
- **the download cache** with something planted in it (links, a FIFO, a damaged copy),
  met by ``anomaly data fetch`` (offline) and ``anomaly demo``;
- **model files**: the crafted ``model.onnx`` graphs of ``tests/test_hostile_models.py``
  (their SHA-256 re-recorded in ``metadata.json``), scored with ``anomaly score``;
- **concurrent fits**: a second ``fit`` of a model directory another fit is writing, and
  a fit after one was killed (SIGKILL) in the middle of its run.

Each row records the exit code, the last stderr line, the seconds and the process's peak
RSS (wait4, in a small launcher). The target: each refused with its documented exit code
(or, where the input is valid, read), within 1.5 GB and a minute, TensorFlow included.

Usage::

    python scripts/benchmark_hostile.py [--json PATH]
        [--groups beats,recordings,cache,models,fits]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MB = 1500
SECONDS_BUDGET = 60
ROOT = Path(__file__).resolve().parent.parent


# The cases and the launcher that measures a process's peak RSS are the tests' own.
sys.path.insert(0, str(ROOT / "tests"))
from hostile import MEASURE, hostile_recordings  # noqa: E402


def run(args: list[str], cwd: Path, stdin=None, env: dict | None = None) -> dict:
    """``anomaly ARGS`` in a new process: exit code, last stderr line, seconds, peak MB."""
    started = time.perf_counter()
    with open(cwd / ".stderr.txt", "wb") as stderr:
        completed = subprocess.run([sys.executable, "-c", MEASURE, str(cwd / ".rss.txt"),
                                    sys.executable, "-m", "anomaly", *args], cwd=cwd,
                                   stdin=stdin or subprocess.DEVNULL, env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr, timeout=600)
    message = (cwd / ".stderr.txt").read_text(errors="replace").strip().splitlines()
    peak_kb = int((cwd / ".rss.txt").read_text())
    for name in (".stderr.txt", ".rss.txt"):
        (cwd / name).unlink()
    return {"exit": completed.returncode, "message": message[-1] if message else "",
            "seconds": round(time.perf_counter() - started, 1), "peak_mb": round(peak_kb / 1024)}


def make_inputs(directory: Path) -> dict[str, tuple[list[str], object]]:
    """Case name -> (``anomaly score`` arguments before ``-m``, stdin or None)."""
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    values, _ = synthetic_beats(100_000, 0, length=140, seed=1)
    write_beats_csv(directory / "good.csv", values)
    good = (directory / "good.csv").read_text().splitlines()[0]
    (directory / "bomb.csv.gz").write_bytes(gzip.compress(b"0," * 2_000_000 + b"0\n", 9))
    with open(directory / "endless.csv", "wb") as file:
        for _ in range(20):
            file.write(b"1" * (1 << 20))
    (directory / "wide.csv").write_text(",".join(["0"] * 50_000) + "\n")
    (directory / "fields.csv").write_text(",".join(["0"] * 200_000) + "\n")
    (directory / "bad_rows.csv").write_text(good + "\n" + "1,2,x\n" * 1_000_000)
    return {
        "good file, 100,000 rows (reference)": (["good.csv"], None),
        "gzip bomb: 13 KB unpacking to one 4 MB line": (["bomb.csv.gz"], None),
        "20 MB without a line end": (["endless.csv"], None),
        "first line of 50,000 fields (model: 140)": (["wide.csv"], None),
        "first line of 200,000 fields": (["fields.csv"], None),
        "/dev/zero as a file": (["/dev/zero"], None),
        "/dev/zero as standard input": (["-"], "/dev/zero"),
        "1,000,000 bad rows, --on-bad-row skip": (["bad_rows.csv", "--on-bad-row", "skip"],
                                                  None),
    }


def beats_rows(work: Path) -> list[dict]:
    """The beats CSVs, scored by a small model fitted here."""
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    values, _ = synthetic_beats(1000, 0, length=140, seed=0)
    write_beats_csv(work / "train.csv", values)
    fitted = run(["fit", "train.csv", "-m", "model", "--epochs", "5", "-q"], work)
    if fitted["exit"]:
        raise SystemExit(f"fit failed: {fitted['message']}")
    rows = []
    for name, (score_args, stdin) in make_inputs(work).items():
        with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
            result = run(["score", *score_args, "-m", "model", "-o", "scores.csv", "-q"],
                         work, stdin=source)
        expected = 0 if "reference" in name or "skip" in name else 2
        rows.append(result | {"group": "beats CSV (score)", "case": name,
                              "expected": expected})
    return rows


def recording_rows(work: Path) -> list[dict]:
    """The hostile recordings of ``tests/hostile.py``, read by ``anomaly beats``."""
    rows = []
    for name, (arguments, _, code) in hostile_recordings(work).items():
        result = run(["beats", *arguments, "-o", "beats.csv", "-q"], work)
        (work / "beats.csv").unlink(missing_ok=True)
        rows.append(result | {"group": "recording (beats)", "case": name, "expected": code})
    return rows


def cache_rows(work: Path) -> list[dict]:
    """Plants in the download cache, met offline by ``data fetch`` and by ``demo``."""
    import shutil

    from anomaly.exceptions import EXIT_BAD_INPUT, EXIT_DOWNLOAD_FAILED

    victim = work / "victim"
    victim.mkdir()
    (victim / "100.hea").write_text("precious\n")
    (victim / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")

    def fifo(path: Path) -> None:
        os.mkfifo(path)

    plants = {
        "mitdb: a link to another directory": ("mitdb", lambda path: path.symlink_to(victim),
                                               ["data", "fetch", "mitdb", "100"]),
        "mitdb/100.hea: a link to a file elsewhere": (
            "mitdb/100.hea", lambda path: path.symlink_to(victim / "passwd"),
            ["data", "fetch", "mitdb", "100"]),
        "ecg5000.csv: a link to /dev/zero": (
            "ecg5000/ecg5000.csv", lambda path: path.symlink_to("/dev/zero"),
            ["data", "fetch", "ecg5000"]),
        "ecg5000.csv: a FIFO": ("ecg5000/ecg5000.csv", fifo, ["data", "fetch", "ecg5000"]),
        "ecg5000.csv: a FIFO, met by the demo": ("ecg5000/ecg5000.csv", fifo, ["demo"]),
        "ecg5000.csv: damaged, met by the demo": (
            "ecg5000/ecg5000.csv", lambda path: path.write_text("0,1,2\n"), ["demo"]),
    }
    rows = []
    for number, (name, (relative, make, arguments)) in enumerate(plants.items()):
        cache = work / f"cache{number}"
        (cache / relative).parent.mkdir(parents=True)
        make(cache / relative)
        env = dict(os.environ, ANOMALY_CACHE_DIR=str(cache),
                   ANOMALY_DATA_URL="http://127.0.0.1:9/")  # Nothing listens there.
        env.pop("ANOMALY_DATA_DIR", None)
        result = run(arguments, work, env=env)
        expected = EXIT_BAD_INPUT if arguments == ["demo"] else EXIT_DOWNLOAD_FAILED
        rows.append(result | {"group": "download cache", "case": name, "expected": expected})
        shutil.rmtree(cache)
    untouched = ((victim / "100.hea").read_text() == "precious\n"
                 and (victim / "passwd").read_text().startswith("root:"))
    if not untouched:
        raise SystemExit("a file behind a planted link changed")
    return rows


def model_rows(work: Path) -> list[dict]:
    """The crafted ``model.onnx`` graphs of ``tests/test_hostile_models.py``, each in a copy
    of a small model of 96 samples, scored with ``anomaly score``."""
    import shutil

    from anomaly.exceptions import EXIT_BAD_MODEL
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    from test_hostile_models import CRAFTED, N_SAMPLES, install  # The tests' own cases.

    values, _ = synthetic_beats(1000, 0, length=N_SAMPLES, seed=0)
    write_beats_csv(work / "train.csv", values)
    write_beats_csv(work / "in.csv", values[:250])
    fitted = run(["fit", "train.csv", "-m", "good", "--epochs", "5", "-q"], work)
    if fitted["exit"]:
        raise SystemExit(f"fit failed: {fitted['message']}")
    rows = [run(["score", "in.csv", "-m", "good", "-o", "s.csv", "-q"], work)
            | {"group": "model.onnx (score)", "case": "the fitted model (reference)",
               "expected": 0}]
    for name, (craft, _) in CRAFTED.items():
        shutil.rmtree(work / "model", ignore_errors=True)
        shutil.copytree(work / "good", work / "model")
        install(work, craft(work) if craft.__name__ == "_truncated" else craft())
        result = run(["score", "in.csv", "-m", "model", "-o", "s.csv", "-q"], work)
        rows.append(result | {"group": "model.onnx (score)", "case": name,
                              "expected": EXIT_BAD_MODEL})
    return rows


def fit_rows(work: Path) -> list[dict]:
    """A second fit of a model another fit is writing (exit 5, at once), and a fit after
    one was killed part way (exit 0; what the killed one left is removed)."""
    import signal

    from anomaly.exceptions import EXIT_LOCKED
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    values, _ = synthetic_beats(2000, 0, length=140, seed=0)
    write_beats_csv(work / "train.csv", values)
    fit = [sys.executable, "-m", "anomaly", "fit", "train.csv", "-m", "model", "-q"]
    rows = []
    first = subprocess.Popen([*fit, "--epochs", "200"], cwd=work, stderr=subprocess.DEVNULL)
    time.sleep(8)  # Training by now: the lock is held.
    rows.append(run(["fit", "train.csv", "-m", "model", "--epochs", "2", "-q"], work)
                | {"group": "concurrent fits", "case": "a second fit while one trains",
                   "expected": EXIT_LOCKED})
    first.send_signal(signal.SIGKILL)
    first.wait()
    result = run(["fit", "train.csv", "-m", "model", "--epochs", "2", "-q"], work)
    leftovers = sorted(name for name in os.listdir(work) if name.startswith(".model"))
    result["message"] = result["message"] or f"left beside the model: {leftovers or 'nothing'}"
    rows.append(result | {"group": "concurrent fits", "case": "a fit after one was SIGKILLed",
                          "expected": 0 if not leftovers else -1})
    return rows


GROUPS = {"beats": beats_rows, "recordings": recording_rows, "cache": cache_rows,
          "models": model_rows, "fits": fit_rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help=f"which groups of inputs (default: {','.join(GROUPS)})")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="anomaly-hostile-") as temporary:
        for group in args.groups.split(","):
            work = Path(temporary) / group
            work.mkdir()
            for row in GROUPS[group](work):
                row["pass"] = (row["exit"] == row["expected"] and row["peak_mb"] < BUDGET_MB
                               and row["seconds"] < SECONDS_BUDGET)
                rows.append(row)
                print(f"  {row['case']}: exit {row['exit']}, {row['peak_mb']} MB, "
                      f"{row['seconds']} s", flush=True)
    print("\n| group | input | exit | peak RSS MB | seconds | message |\n|---|---|---|---|---|---|")
    for row in rows:
        message = row["message"].replace(temporary, "...").replace("|", "\\|")
        print(f"| {row['group']} | {row['case']} | {row['exit']} | {row['peak_mb']:,} | "
              f"{row['seconds']} | `{message[:110]}` |")
    failures = [row["case"] for row in rows if not row["pass"]]
    verdict = "PASS" if not failures else f"FAIL ({', '.join(failures)})"
    print(f"\n{verdict}: every hostile input refused with its exit code (valid ones read), "
          f"each under {BUDGET_MB:,} MB and {SECONDS_BUDGET} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "budget_mb": BUDGET_MB}, indent=2) + "\n")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
