"""Fits that never lose the model: one fit of a model directory at a time, a swap that
leaves the old model or the new one whatever the moment of a SIGKILL, and what killed
fits left behind removed by the next fit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

from anomaly.exceptions import EXIT_LOCKED
from anomaly.model import AutoencoderDetector

from conftest import assert_one_line_error

ANOMALY = [sys.executable, "-m", "anomaly"]


def test_a_second_fit_of_the_same_model_fails_at_once_and_the_first_completes(
        data_dir, tmp_path):
    first = subprocess.Popen([*ANOMALY, "fit", data_dir / "normal.csv", "-m", "model",
                              "--epochs", "60", "-q"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / ".model.lock").exists():
        assert first.poll() is None and time.monotonic() < deadline, "the first fit took no lock"
        time.sleep(0.05)
    started = time.monotonic()
    second = subprocess.run([*ANOMALY, "fit", data_dir / "normal.csv", "-m", "model",
                             "--epochs", "1", "-q"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert first.poll() is None, "the first fit ended before the second was refused"
    assert second.returncode == EXIT_LOCKED, second.stderr
    assert_one_line_error(second.stderr, "model: another anomaly run is writing")
    # Refused before loading TensorFlow's training, not after its own training.
    assert time.monotonic() - started < 30
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert AutoencoderDetector.load(tmp_path / "model").training_.epochs >= 1
    assert sorted(os.listdir(tmp_path)) == ["model"]


SWAPPER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from anomaly.io.writers import replace_directory

    target = Path(sys.argv[1])
    for number in range(10**9):
        staging = target.with_name(f".{target.name}.{number % 10**8:08d}")
        staging.mkdir()
        for name in ("model.keras", "metadata.json"):
            (staging / name).write_text(str(number))
        replace_directory(staging, target)
""")


def test_a_swap_killed_at_any_moment_leaves_a_whole_model_at_the_path(tmp_path):
    """While a process swaps model directories in a loop, a reader always finds a whole
    one at the path (the old model or the new, never none); SIGKILLed at random moments,
    it leaves a whole one too."""
    target = tmp_path / "model"
    target.mkdir()
    for name in ("model.keras", "metadata.json"):
        (target / name).write_text("first")
    rng = random.Random(0)
    reads = missing = 0
    for _ in range(10):
        swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(target)])
        stop = time.monotonic() + rng.uniform(0.5, 1.0)
        while time.monotonic() < stop:
            try:
                contents = {(target / name).read_text() for name in ("model.keras",
                                                                     "metadata.json")}
                reads += 1
            except FileNotFoundError:
                missing += 1
        swapper.send_signal(signal.SIGKILL)
        swapper.wait()
        contents = {name: (target / name).read_text() for name in ("model.keras",
                                                                    "metadata.json")}
        assert len(set(contents.values())) == 1, contents
    assert reads > 1000 and missing == 0, (reads, missing)


def test_the_next_fit_removes_what_killed_fits_left_and_nothing_else(data_dir, tmp_path):
    leftovers = [".model.abcd_123", ".model.old.x1y2z3w4"]
    for name in leftovers:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.keras").write_text("half")
    kept = [".model.notes", ".models.abcd_123", "model.abcd_123"]
    for name in kept:
        (tmp_path / name).mkdir()
    done = subprocess.run([*ANOMALY, "fit", data_dir / "normal.csv", "-m", "model",
                           "--epochs", "1", "--threshold-source", "training", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["model"])


def test_a_failed_fit_leaves_no_directory_it_made(data_dir, tmp_path):
    """``fit -m new/models/ecg`` makes ``new/models`` for the model; when the fit fails
    (here: a training file whose every row is text), ``new`` is gone again."""
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\nx,y,z\n")
    done = subprocess.run([*ANOMALY, "fit", bad, "-m", "new/models/ecg", "--epochs", "1", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.csv"]
    done = subprocess.run([*ANOMALY, "fit", data_dir / "normal.csv", "-m", "new/models/ecg",
                           "--epochs", "1", "--threshold-source", "training", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "models" / "ecg" / "metadata.json").is_file()
