"""What sets the default detector's threshold across patients: its held-out scores' tail.

Fits the default detector with the RR context (as ``anomaly fit RECORDING`` with labels) on
MIT-BIH's DS1 normal beats, as the quality harness's ``mitdb-inter`` protocol does
(``scripts/benchmark_quality.py``), and prints the held-out scores that set its threshold
(percentiles, the largest, mean + std without the few largest), the test beats' scores by
truth, and F1 at a few thresholds. Research, not a benchmark: docs/benchmarks.md, "Across
patients, a regression found".

    python scripts/diagnose_threshold_tail.py
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

import benchmark_quality as quality


def main() -> None:
    repeat = next(quality.mitdb_inter([0], None))
    model = quality.Models(repeat).fit(rr="ratios", **quality.shipped(context_weight=0.25))
    calibration = model.calibration_
    heldout = np.sort(calibration.errors)
    print(f"threshold {calibration.threshold:.1f}: mean {calibration.mean:.2f} + std "
          f"{calibration.std:.2f} of {calibration.n:,} held-out beats ({calibration.source})")
    print("held-out scores, percentiles 50/90/99/99.9:",
          [round(float(np.percentile(heldout, q)), 2) for q in (50, 90, 99, 99.9)],
          f"largest {heldout[-1]:,.1f}")
    for dropped in (1, 10, 100):
        kept = heldout[:-dropped]
        print(f"mean + std without the {dropped} largest: {kept.mean() + kept.std():.1f}")
    test = np.hstack([repeat.test, quality.RR_FEATURES["ratios"][1](repeat.test_context)])
    scores, truth = model.score(test), repeat.truth
    print(f"test ROC-AUC {roc_auc_score(truth, scores):.4f}; normal beats' percentiles "
          "50/90/99:", [round(float(np.percentile(scores[~truth], q)), 1) for q in (50, 90, 99)],
          "abnormal beats' 10/50/90:",
          [round(float(np.percentile(scores[truth], q)), 1) for q in (10, 50, 90)])
    for threshold in (calibration.threshold, 10.0, 20.0, 50.0):
        flagged = scores > threshold
        print(f"threshold {threshold:.1f}: F1 {f1_score(truth, flagged):.4f}, recall "
              f"{flagged[truth].mean():.3f}, normal beats flagged {flagged[~truth].mean():.3f}")


if __name__ == "__main__":
    main()
