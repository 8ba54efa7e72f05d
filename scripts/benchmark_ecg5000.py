#!/usr/bin/env python
"""Benchmark the detector on ECG5000 against the TensorFlow tutorial and classic baselines.

Protocol (the TensorFlow autoencoder tutorial's): ``train_test_split(rows, test_size=0.2,
random_state=21)`` over all 5,000 rows; every method fits on the normal rows of the train
part only and scores the whole test part, anomaly = positive class. Each method is judged
at its own label-free threshold:

- anomaly (defaults) and the tutorial recipe: mean + std of the training errors (MAE);
- ``--models``: the detector with other autoencoder families of the package, each spec
  ``FAMILY`` or ``FAMILY:NOISE`` (denoising training at that noise factor), e.g.
  ``conv,vae,dense:0.05``; scoring and threshold are the same (MAE, mean + std);
- PCA reconstruction error: the same mean + std rule on its training errors;
- IsolationForest and LocalOutlierFactor (novelty): their own ``predict``.

Usage::

    python scripts/benchmark_ecg5000.py [--data PATH] [--seeds 0,1,2] [--models conv,vae]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor

from anomaly import AutoencoderDetector, read_beats
from anomaly.datasets import find_ecg5000
from anomaly.model.errors import reconstruction_error
from anomaly.model.threshold import mean_plus_std_threshold


def evaluate(name: str, rule: str, truth, scores, flags, fit_seconds: float) -> dict:
    return {
        "method": name,
        "threshold_rule": rule,
        "roc_auc": float(roc_auc_score(truth, scores)),
        "precision": float(precision_score(truth, flags, zero_division=0)),
        "recall": float(recall_score(truth, flags)),
        "f1": float(f1_score(truth, flags)),
        "fit_seconds": fit_seconds,
    }


def timed(fit):
    started = time.perf_counter()
    result = fit()
    return result, time.perf_counter() - started


def anomaly_detector(train_normal, test, seed: int, **settings):
    detector, seconds = timed(lambda: AutoencoderDetector(seed=seed, **settings).fit(train_normal))
    scores = detector.score(test)
    return scores, (scores > detector.threshold_).astype(int), seconds, detector


def model_spec(spec: str) -> tuple[str, dict]:
    """``"conv"`` -> ``("anomaly --model conv", {"model": "conv"})``; ``"dense:0.05"`` adds
    ``noise_factor=0.05`` (denoising training)."""
    family, _, noise = spec.partition(":")
    settings = {"model": family} | ({"noise_factor": float(noise)} if noise else {})
    return f"anomaly --model {family}" + (f" --denoise {noise}" if noise else ""), settings


def tutorial_recipe(train_all, train_normal, test, seed: int):
    """The TensorFlow tutorial, as published: min-max over all training rows, 32-16-8."""
    from anomaly.model.networks import keras

    layers = keras.layers
    low, high = train_all.min(), train_all.max()
    scale = lambda x: ((x - low) / (high - low)).astype("float32")  # noqa: E731
    normal, test_scaled = scale(train_normal), scale(test)

    def fit():
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([
            keras.Input((train_normal.shape[1],)),
            layers.Dense(32, activation="relu"), layers.Dense(16, activation="relu"),
            layers.Dense(8, activation="relu"),
            layers.Dense(16, activation="relu"), layers.Dense(32, activation="relu"),
            layers.Dense(train_normal.shape[1], activation="sigmoid"),
        ])
        model.compile(optimizer="adam", loss="mae")
        model.fit(normal, normal, epochs=20, batch_size=512, shuffle=True, verbose=0)
        return model

    model, seconds = timed(fit)
    train_errors = reconstruction_error(normal, model.predict(normal, verbose=0))
    threshold = mean_plus_std_threshold(train_errors)
    scores = reconstruction_error(test_scaled, model.predict(test_scaled, verbose=0))
    return scores, (scores > threshold).astype(int), seconds


def pca_baseline(train_normal, test, n_components: int = 8):
    pca, seconds = timed(lambda: PCA(n_components=n_components, random_state=0).fit(train_normal))
    errors = lambda x: reconstruction_error(x, pca.inverse_transform(pca.transform(x)))  # noqa: E731
    threshold = mean_plus_std_threshold(errors(train_normal))
    scores = errors(test)
    return scores, (scores > threshold).astype(int), seconds


def sklearn_detector(estimator, train_normal, test):
    fitted, seconds = timed(lambda: estimator.fit(train_normal))
    return -fitted.score_samples(test), (fitted.predict(test) == -1).astype(int), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="ECG5000 CSV (default: ../shared/data or $ANOMALY_DATA_DIR)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds for the two autoencoders (default 0)")
    parser.add_argument("--models", default="",
                        help="other families to compare, FAMILY[:NOISE] comma-separated, "
                             "e.g. conv,vae,dense:0.05 (default none)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    path = args.data or find_ecg5000()
    if path is None:
        print("ECG5000 not found: pass --data or set ANOMALY_DATA_DIR", file=sys.stderr)
        return 2
    beats = read_beats(path, label_column="last", normal_label="1")
    train_x, test_x, train_truth, truth = train_test_split(
        beats.values, beats.truth.astype(int), test_size=0.2, random_state=21)
    train_normal = train_x[train_truth == 0]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    others = [model_spec(spec) for spec in args.models.split(",") if spec]
    print(f"ECG5000: {len(beats)} rows; train on {len(train_normal)} normal rows of "
          f"{len(train_x)}; test {len(test_x)} rows ({truth.sum()} anomalies)", flush=True)

    rows, details = [], {}
    for seed in seeds:
        for name, settings in [("anomaly (defaults)", {}), *others]:
            scores, flags, seconds, detector = anomaly_detector(train_normal, test_x, seed,
                                                                **settings)
            rows.append(evaluate(name, "mean+std", truth, scores, flags, seconds)
                        | {"seed": seed, "epochs": detector.training_.epochs})
            print(f"  {name}, seed {seed}: done in {seconds:.1f} s", flush=True)
        scores, flags, seconds = tutorial_recipe(train_x, train_normal, test_x, seed)
        rows.append(evaluate("TF tutorial recipe", "mean+std", truth, scores, flags, seconds)
                    | {"seed": seed})
    rows.append(evaluate("PCA (8 components)", "mean+std", truth,
                         *pca_baseline(train_normal, test_x)))
    rows.append(evaluate("IsolationForest", "own predict", truth, *sklearn_detector(
        IsolationForest(n_estimators=200, random_state=0), train_normal, test_x)))
    rows.append(evaluate("LocalOutlierFactor (novelty)", "own predict", truth, *sklearn_detector(
        LocalOutlierFactor(novelty=True), train_normal, test_x)))
    details["split"] = {"train_normal": len(train_normal), "test": len(test_x),
                        "test_anomalies": int(truth.sum())}

    header = "| method | seed | threshold | ROC-AUC | precision | recall | F1 | fit s |"
    print("\n" + header + "\n|" + "---|" * 8)
    for row in rows:
        print(f"| {row['method']} | {row.get('seed', '-')} | {row['threshold_rule']} | "
              f"{row['roc_auc']:.4f} | {row['precision']:.4f} | {row['recall']:.4f} | "
              f"{row['f1']:.4f} | {row['fit_seconds']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, **details}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
