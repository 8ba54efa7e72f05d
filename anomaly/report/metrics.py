"""Detection quality as plain data, with the anomaly class as the positive class."""

from __future__ import annotations

from typing import Any

import numpy as np


def detection_report(is_anomaly_true: np.ndarray, scores: np.ndarray, is_anomaly_pred: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1, accuracy, ROC-AUC and the confusion matrix.

    Parameters
    ----------
    is_anomaly_true : array of shape (n,), 0/1
        1 where the label says anomaly.
    scores : array of shape (n,)
        Anomaly scores (higher = more anomalous), for ROC-AUC.
    is_anomaly_pred : array of shape (n,), 0/1
        The detector's flags.

    Returns
    -------
    dict
        ``positive_class`` is always ``"anomaly"``. ``roc_auc`` is None when only one class
        is present (it is undefined then), and ``note`` says so; ``precision`` is None
        when nothing was flagged, ``recall`` when no anomaly is labelled, ``f1`` when
        neither was (each undefined then, not 0).
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    truth = np.asarray(is_anomaly_true, dtype=int)
    predicted = np.asarray(is_anomaly_pred, dtype=int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(truth, predicted, labels=[0, 1]).ravel())
    # Undefined (None) where its denominator is empty: precision with nothing flagged,
    # recall with no anomaly labelled, F1 with neither (2TP / (2TP + FP + FN)).
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    report: dict[str, Any] = {
        "positive_class": "anomaly",
        "rows": int(len(truth)),
        "true_anomalies": int(truth.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(truth) if len(truth) else 0.0,
        "roc_auc": None,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }
    if 0 < truth.sum() < len(truth):
        report["roc_auc"] = float(roc_auc_score(truth, scores))
    else:
        report["note"] = "ROC-AUC is undefined: the labels hold only one class"
    return report


def format_report(report: dict[str, Any]) -> str:
    """A few aligned lines for the terminal."""
    matrix = report["confusion_matrix"]
    roc_auc = "n/a (one class only)" if report["roc_auc"] is None else f"{report['roc_auc']:.4f}"
    precision, recall, f1 = (_defined(report[key], why) for key, why in (
        ("precision", "nothing flagged"), ("recall", "no anomaly labelled"), ("f1", "")))
    return "\n".join(
        [
            "Metrics (positive class = anomaly):",
            f"  precision {precision}  recall {recall}  "
            f"F1 {f1}  accuracy {report['accuracy']:.4f}  ROC-AUC {roc_auc}",
            "  confusion matrix   predicted normal  predicted anomaly",
            f"    actual normal    {matrix['tn']:>16}  {matrix['fp']:>17}",
            f"    actual anomaly   {matrix['fn']:>16}  {matrix['tp']:>17}",
        ]
    )


def _defined(value: float | None, why: str) -> str:
    """A metric to 4 places, or ``n/a (why)`` where it is undefined."""
    if value is not None:
        return f"{value:.4f}"
    return f"n/a ({why})" if why else "n/a"
