"""``anomaly demo``: the whole path, offline, on ECG5000 if present or on generated beats.

The held-out beats are written to a CSV file and scored through the same run as
``anomaly score``, so the demo's outputs are the ones a user gets from the two commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

#: The TensorFlow tutorial's split of ECG5000, also used by scripts/benchmark_ecg5000.py.
TEST_SIZE = 0.2
SPLIT_SEED = 21


def demo_data(force_synthetic: bool = False) -> tuple[str, np.ndarray, np.ndarray]:
    """(description, values, labels): ECG5000 when available, else synthetic beats.
    Labels are ECG5000's: 1 normal, 0 abnormal. ECG5000 is looked for in
    ``$ANOMALY_DATA_DIR``, the download cache, then ``../shared/data`` (``find_ecg5000``).

    A cached ECG5000 is parsed from a copy of the very bytes whose SHA-256 was checked
    (``verified_copy``). One that is damaged, altered or planted (a link, a FIFO) is an
    InputError saying to run ``anomaly data fetch ecg5000``, not a reason to fall back to
    other data: a scheduled demo would go on, on other beats, under exit code 0.
    """
    from .datasets import find_ecg5000, verified_copy
    from .io.readers import read_beats

    path = None if force_synthetic else find_ecg5000()
    if path is not None:
        with verified_copy(path) as readable:
            beats = read_beats(readable, label_column="last", normal_label="1")
        return f"ECG5000 from {path}", beats.values, 1 - beats.truth.astype(int)
    from .synthetic import synthetic_beats

    values, labels = synthetic_beats(1500, 1000, seed=0)
    reason = "as asked" if force_synthetic else ("ECG5000 not found; 'anomaly data fetch ecg5000' "
                                                 "downloads it, or set ANOMALY_DATA_DIR")
    return f"synthetic ECG beats generated in-process ({reason})", values, labels


def run_demo(workdir: str | os.PathLike, *, force_synthetic: bool = False, epochs: int = 200,
             echo: Callable[[str], None] = print) -> dict:
    """Fit on the normal beats of an 80/20 split, score the held-out part, write everything.

    Writes under ``workdir``: ``model/``, ``heldout.csv`` (the held-out beats, the label
    last, 1 = normal), and what ``anomaly score heldout.csv --label-column last`` writes:
    ``scores.csv``, ``report.json`` and ``plots/``. Returns the run report.
    """
    from sklearn.model_selection import train_test_split

    from .io.writers import check_can_create_directory
    from .model import AutoencoderDetector, Provenance
    from .model.directory import check_destination
    from .model.threshold import fits_said
    from .report.metrics import format_report
    from .scoring.plan import ScoreOptions, plan_run
    from .scoring.run import execute
    from .synthetic import write_beats_csv

    workdir = Path(workdir)
    check_can_create_directory(workdir)
    check_destination(workdir / "model")
    description, values, labels = demo_data(force_synthetic)
    echo(f"Data: {description}, {len(values)} beats of {values.shape[1]} samples.")
    train_x, test_x, train_y, test_y = train_test_split(
        values, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED)
    normal = train_x[train_y == 1]
    echo(f"Training on the {len(normal)} normal beats of the {len(train_x)}-beat training part...")
    detector = AutoencoderDetector(epochs=epochs).fit(normal)
    model_dir = detector.save(workdir / "model", provenance=Provenance(
        data=description, rows_read=len(normal)))
    training = detector.training_
    echo(f"Trained {training.epochs} epochs in {training.fit_seconds:.1f} s"
         f"{fits_said(detector.calibration_, detector.heldout_fraction)}; "
         f"threshold {detector.threshold_:.6g}; model saved to {model_dir}/")

    heldout, scores, report = workdir / "heldout.csv", workdir / "scores.csv", workdir / "report.json"
    # Exact digits, so that the file holds the very numbers split from the data.
    write_beats_csv(heldout, test_x, test_y, significant_digits=None)
    plan = plan_run([str(heldout)], model_dir, output=scores, report=report,
                    plot_dir=workdir / "plots", options=ScoreOptions(label_column="last"),
                    expand=False)
    result = execute(plan)
    echo(f"Scored {result.total('rows_scored')} held-out beats: {result.anomalies} flagged "
         "as anomalies.")
    echo(format_report(result.metrics))
    echo(f"Wrote {heldout}, {scores}, {report} and {len(result.plots)} plots in "
         f"{workdir / 'plots'}/")
    return result.report()
