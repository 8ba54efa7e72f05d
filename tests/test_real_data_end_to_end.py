"""End to end on the real ECG5000 data: fit then score through the CLI, above the floors.

Skipped when ECG5000 is not on this machine (see data/README.md). The split is the
TensorFlow tutorial's, as in scripts/benchmark_ecg5000.py; the split files are written to
a temporary directory and never kept.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from anomaly.cli import main
from anomaly.io.readers import read_beats
from anomaly.synthetic import write_beats_csv


#: The tutorial's split, which the score (the squared error times the code's and the
#: samples' distances, issue 25) was not chosen on, and one of scripts/benchmark_quality.py's
#: ten (100-109). Test rows and anomalies of each, and the F1 floor. Split 21: 0.9835
#: measured with the default score and threshold (every fold's held-out scores; one
#: session), 0.9837 with the code's distance alone, 0.9803 with one fifth's threshold
#: before it, 0.9583 with the mean absolute error before the score (with one fifth's; the
#: error alone was not measured with every fold's). The floor, issue 25's 0.97, leaves
#: 0.0135 for another CPU's training, whose thresholds every fold's scores keep steadier
#: than one fifth's did (ECG5000's ten splits: within a factor of 2.0, 24.7-49.9; with
#: two factors 9.0-14.4, with one fifth's 4.6-27.2, a factor of 5.9). Split 102: issue 14's 0.96 (0.9841 measured; the ten splits range
#: over 0.9691-0.9851 with the default, 0.9393-0.9819 with one fifth's threshold,
#: docs/benchmarks.md).
SPLITS = {21: (1000, 425, 0.97), 102: (1000, 438, 0.96)}
#: The ROC-AUC floor: below every fit of the defaults measured, above what a broken score
#: gives. One fit's ROC-AUC depends on the CPU's floating point, through training: with
#: the mean absolute error the ten splits ranged over 0.9875-0.9933, and split 21 gave
#: 0.992 on the CI's earlier hosts but 0.9842 on an AMD EPYC one (seed 1 there: 0.9918).
#: With the default score the ten range over 0.9921-0.9972 and split 21 gives 0.9951 to
#: 0.9981 from one session to another (0.9977 with the samples' distance).
ROC_AUC_FLOOR = 0.98


@pytest.fixture(scope="module", params=sorted(SPLITS), ids=lambda split: f"split {split}")
def ecg5000_run(request, ecg5000, tmp_path_factory):
    """Fit then score through the CLI once per split; return the split and the metrics."""
    tmp_path = tmp_path_factory.mktemp("ecg5000")
    beats = read_beats(ecg5000, label_column="last")
    labels = np.array([int(float(label)) for label in beats.labels])
    train_x, test_x, train_y, test_y = train_test_split(
        beats.values, labels, test_size=0.2, random_state=request.param)
    write_beats_csv(tmp_path / "train.csv", train_x, train_y)
    write_beats_csv(tmp_path / "test.csv", test_x, test_y, header=True)

    fit_code = main(["fit", str(tmp_path / "train.csv"), "-m", str(tmp_path / "model"),
                     "--label-column", "last"])
    score_code = main(["score", str(tmp_path / "test.csv"), "-m", str(tmp_path / "model"),
                       "--label-column", "label", "-o", str(tmp_path / "scores.csv"),
                       "--report", str(tmp_path / "report.json")])
    assert fit_code == score_code == 0
    metrics = json.loads((tmp_path / "report.json").read_text())["metrics"]
    return request.param, metrics


@pytest.mark.slow
def test_ecg5000_end_to_end_roc_auc_floor(ecg5000_run):
    split, metrics = ecg5000_run
    assert (metrics["rows"], metrics["true_anomalies"]) == SPLITS[split][:2]
    assert metrics["roc_auc"] >= ROC_AUC_FLOOR, metrics
    assert metrics["recall"] >= 0.95, metrics


@pytest.mark.slow
def test_ecg5000_end_to_end_f1_floor(ecg5000_run):
    split, metrics = ecg5000_run
    assert metrics["f1"] >= SPLITS[split][2], metrics
