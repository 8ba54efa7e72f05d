"""``anomaly demo``: the whole path, offline, on ECG5000 if present or on generated beats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .readers import Beats, CsvLayout

#: The TensorFlow tutorial's split of ECG5000, also used by scripts/benchmark_ecg5000.py.
TEST_SIZE = 0.2
SPLIT_SEED = 21


def demo_data(force_synthetic: bool = False) -> tuple[str, np.ndarray, np.ndarray]:
    """(description, values, labels): ECG5000 when available, else synthetic beats."""
    from .datasets import find_ecg5000
    from .readers import read_beats

    path = None if force_synthetic else find_ecg5000()
    if path is not None:
        beats = read_beats(path, label_column="last")
        labels = np.array([int(float(label)) for label in beats.labels])
        return f"ECG5000 from {path}", beats.values, labels
    from .synthetic import synthetic_beats

    values, labels = synthetic_beats(1500, 1000, seed=0)
    reason = "as asked" if force_synthetic else "ECG5000 not found; set ANOMALY_DATA_DIR to use it"
    return f"synthetic ECG beats generated in-process ({reason})", values, labels


def run_demo(workdir: str | os.PathLike, *, force_synthetic: bool = False, epochs: int = 200,
             echo: Callable[[str], None] = print) -> dict:
    """Fit on the normal beats of an 80/20 split, score the held-out part, write everything.

    Writes ``model/``, ``scores.csv``, ``report.json`` and ``plots/`` under ``workdir`` and
    returns the report.
    """
    from sklearn.model_selection import train_test_split

    from .detector import AutoencoderDetector
    from .metrics import format_report
    from .plots import save_batch_plots
    from .scoring import score_beats
    from .batch import write_scores
    from .writers import write_json

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    description, values, labels = demo_data(force_synthetic)
    echo(f"Data: {description}, {len(values)} beats of {values.shape[1]} samples.")
    train_x, test_x, train_y, test_y = train_test_split(
        values, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED)
    normal = train_x[train_y == 1]
    echo(f"Training on the {len(normal)} normal beats of the {len(train_x)}-beat training part...")
    detector = AutoencoderDetector(epochs=epochs).fit(normal)
    model_dir = detector.save(workdir / "model", extra={"data": description})
    echo(f"Trained {detector.epochs_trained_} epochs in {detector.fit_seconds_:.1f} s; "
         f"threshold {detector.threshold_:.6g}; model saved to {model_dir}/")

    layout = CsvLayout(",", False, tuple(str(i) for i in range(values.shape[1] + 1)), values.shape[1])
    test = Beats(f"{description} (held-out 20%)", test_x, test_y.astype(str).astype(object), layout)
    batch = score_beats(detector, test)
    write_scores(workdir / "scores.csv", batch.beats, batch.scores, batch.is_anomaly)
    plots = save_batch_plots(detector, batch.run_summary(), workdir / "plots")
    report = batch.summary() | {"data": description, "plots": [str(p) for p in plots]}
    write_json(workdir / "report.json", report)
    echo(f"Scored {len(test)} held-out beats: {batch.n_anomalies} flagged as anomalies.")
    echo(format_report(batch.metrics))
    echo(f"Wrote {workdir / 'scores.csv'}, {workdir / 'report.json'} and {len(plots)} plots "
         f"in {workdir / 'plots'}/")
    return report
