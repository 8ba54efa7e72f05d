"""The detector: quality floor, threshold rule, determinism, save/load and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly.exceptions import InputError, NotFittedError
from anomaly.model import AutoencoderDetector
from anomaly.model.threshold import (THRESHOLD_SOURCES, Calibration, calibrate,
                                     mean_plus_std_threshold, winsorise_largest)
from anomaly.synthetic import synthetic_beats

from conftest import FAST, NON_DEFAULT, WITH_CONTEXT


@pytest.fixture(scope="module")
def held_out():
    values, labels = synthetic_beats(200, 150, length=96, seed=3)
    return values, (labels != 1).astype(int)


def test_separates_synthetic_anomalies(fitted, held_out):
    values, truth = held_out
    scores = fitted.score(values)
    assert roc_auc_score(truth, scores) > 0.95
    flags = fitted.predict(values)
    assert flags[truth == 1].mean() > 0.9  # recall at the mean + std threshold


def test_threshold_is_mean_plus_k_std_of_training_errors(fitted, normal_traces):
    errors = fitted.score(normal_traces)
    np.testing.assert_allclose(errors, fitted.train_errors_, rtol=1e-6)
    assert fitted.calibration_.winsorised == 0  # Every error as it is, by default.
    assert fitted.threshold_ == pytest.approx(errors.mean() + errors.std(), rel=1e-6)
    assert mean_plus_std_threshold(np.array([1.0, 3.0]), k=2) == pytest.approx(4.0)
    assert fitted.n_features_in_ == 96 and fitted.training_.epochs == FAST["epochs"]


def test_same_seed_same_threshold(normal_traces):
    first = AutoencoderDetector(**(FAST | {"epochs": 5})).fit(normal_traces[:200])
    second = AutoencoderDetector(**(FAST | {"epochs": 5})).fit(normal_traces[:200])
    other = AutoencoderDetector(**(FAST | {"epochs": 5, "seed": 1})).fit(normal_traces[:200])
    assert first.threshold_ == second.threshold_
    assert first.threshold_ != other.threshold_


def test_threshold_k_moves_the_threshold(normal_traces):
    detector = AutoencoderDetector(**(FAST | {"epochs": 3, "threshold_k": 2.5})).fit(normal_traces)
    errors = detector.score(normal_traces)  # The training beats' errors, computed again.
    assert detector.threshold_ == pytest.approx(errors.mean() + 2.5 * errors.std(), rel=1e-6)


def test_no_one_beat_moves_the_threshold():
    """However high one score, the threshold is that of the others with it counted as
    the next largest; without winsorising, it follows that one score."""
    scores = np.linspace(1.0, 2.0, 50)
    moved = [Calibration.of("heldout-folds", np.append(scores, outlier), 1.0, winsorise)
             for winsorise in (1, 0) for outlier in (10.0, 1e6)]
    assert moved[0].threshold == moved[1].threshold == mean_plus_std_threshold(
        np.append(scores, 2.0))
    assert moved[2].threshold < 10 < 1e5 < moved[3].threshold
    assert [calibration.winsorised for calibration in moved] == [1, 1, 0, 0]
    # Two high scores: with a count of 1 the second of them still lifts it (the largest
    # counts as that one), with a count of 2 neither does; how high the largest is, never.
    two = {count: [Calibration.of("training", np.append(scores, [5e3, outlier]), 1.0,
                                  count).threshold for outlier in (1e4, 1e8)]
           for count in (1, 2)}
    assert two[1][0] == two[1][1] and two[2][0] == two[2][1]
    assert two[1][0] > 1e3 > two[2][0]
    # All but one at most: the threshold of 3 scores, 2 counted as the smallest.
    every = Calibration.of("training", np.array([1.0, 2.0, 9.0]), 1.0, 2)
    assert (every.winsorised, every.threshold, every.std) == (2, 1.0, 0.0)
    with pytest.raises(ValueError, match="can winsorise 0 to 2 of 3 scores, not 3"):
        Calibration.of("training", np.array([1.0, 2.0, 9.0]), 1.0, 3)
    assert moved[0].describe().endswith("; the largest score counted as the next largest")
    assert Calibration.of("training", scores, 1.0, 3).describe().endswith(
        "; the largest 3 scores counted as the largest of the others")
    assert moved[2].describe() == "the 51 beats, each scored by the first model that did " \
        "not train on it, the model kept then trained on every beat"
    # A score that is not finite is a diverged training, not the largest of the scores.
    for bad in (np.nan, np.inf):
        with pytest.raises(InputError, match="reconstruction errors that are not finite"):
            Calibration.of("training", np.append(scores, bad), 1.0, 1)


def test_a_count_that_leaves_no_score_as_it_is_is_refused_before_training():
    trained = []

    def train(rows, stage):
        trained.append(stage)
        return len(trained)

    # 50 beats: every fold's 50 scores, one fifth's 10, or the 50 training beats' set it.
    for source, scored in (("heldout-folds", 50), ("heldout-refit", 10), ("training", 50)):
        with pytest.raises(InputError, match=f"threshold_winsorise {scored} would count "
                           f"every one of the {scored} scores that set the threshold"):
            calibrate(train, lambda network, rows: rows + 1.0, 50, source=source,
                      fraction=0.2, seed=0, k=1.0, winsorise=scored)
    assert trained == []
    kept = calibrate(train, lambda network, rows: rows + 1.0, 50, source="heldout-refit",
                     fraction=0.2, seed=0, k=1.0, winsorise=9)
    assert kept.calibration.winsorised == 9 and kept.calibration.std == 0


def test_threshold_winsorise_sets_how_many_scores_count_as_the_next_largest(normal_traces):
    """The same fit (seed, beats) but for the count: the same networks and scores, and the
    threshold each count's rule gives on them."""
    fits = {count: AutoencoderDetector(**{**FAST, "epochs": 5, "threshold_winsorise": count})
            .fit(normal_traces[:200]) for count in (0, 3)}
    assert AutoencoderDetector().threshold_winsorise == 0  # The default: the tutorial's.
    errors = fits[0].calibration_.errors
    np.testing.assert_array_equal(fits[3].calibration_.errors, errors)
    assert fits[0].threshold_ == pytest.approx(mean_plus_std_threshold(errors), rel=1e-12)
    assert fits[3].threshold_ == pytest.approx(
        mean_plus_std_threshold(winsorise_largest(errors, 3)), rel=1e-12)
    assert fits[3].threshold_ < fits[0].threshold_
    assert (fits[0].calibration_.winsorised, fits[3].calibration_.winsorised) == (0, 3)


def test_early_stopping_with_validation(normal_traces):
    detector = AutoencoderDetector(epochs=500, patience=2, validation_fraction=0.2,
                                   learning_rate=0.05, seed=0).fit(normal_traces[:200])
    assert detector.training_.epochs < 500
    assert "val_loss" in detector.training_.history


def test_use_before_fit_says_so():
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        AutoencoderDetector().score(np.zeros((2, 10)))


def test_wrong_length_is_explained(fitted):
    with pytest.raises(ValueError, match="expected 96 samples per beat .* got 50"):
        fitted.score(np.zeros((3, 50)))


@pytest.mark.parametrize("bad, message", [
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
    (dict(validation_fraction=1.0), r"validation_fraction must be in \[0, 1\), got 1.0"),
    (dict(hidden_units=()), "hidden_units must be positive widths"),
    (dict(threshold_k=float("nan")), "threshold_k must be a finite number, got nan"),
    (dict(learning_rate=0.0), "learning_rate must be a finite number > 0"),
    (dict(batch_size="big"), "batch_size must be 'auto' or an integer >= 1, got 'big'"),
    (dict(seed=-1), "seed must be an integer from 0 to 4294967295, got -1"),
    (dict(model="conv", context=("a",)), "context needs the dense family"),
    (dict(noise_factor=0.1, context=("a",)), "context and noise_factor cannot be combined"),
])
def test_bad_parameters_rejected_in_fit(bad, message, normal_traces):
    detector = AutoencoderDetector(**bad)  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        detector.fit(normal_traces)


def test_a_threshold_below_zero_is_refused_by_fit(normal_traces):
    from anomaly.exceptions import InputError

    detector = AutoencoderDetector(**(FAST | {"epochs": 1, "threshold_k": -1000.0}))
    with pytest.raises(InputError, match="a threshold k of -1000 puts the threshold below "
                                         "zero .* flags every beat; nothing was saved"):
        detector.fit(normal_traces[:50])
    assert not hasattr(detector, "threshold_")


def test_values_equal_but_for_rounding_are_scaled_as_constant_ones():
    from anomaly.model.scaling import Scaling

    values = np.full((3, 4), 5.0) + np.array([[0.0], [1e-14], [0.0]])
    assert Scaling.fit(values).range == 1.0
    assert Scaling.fit(values * [[1], [1], [2]]).range == pytest.approx(5.0)


def test_parameters_of_numpy_types_are_taken():
    from anomaly.model.parameters import validate_params

    validate_params(AutoencoderDetector(epochs=np.int64(5), hidden_units=(np.int32(8),),
                                        learning_rate=np.float32(0.01)).get_params())


# -- scikit-learn's estimator contract ------------------------------------------------------

def test_parameters_follow_the_scikit_learn_contract():
    from sklearn.base import clone

    for params in (NON_DEFAULT, WITH_CONTEXT):
        detector = AutoencoderDetector(**params)
        assert detector.get_params() == params
        assert clone(detector).get_params() == params
    assert detector.set_params(patience=9, seed=1) is detector
    assert (detector.patience, detector.seed) == (9, 1)
    with pytest.raises(ValueError, match="invalid parameter 'depth'"):
        detector.set_params(depth=3)
    assert repr(AutoencoderDetector(epochs=5)) == "AutoencoderDetector(epochs=5)"


def test_importing_the_detector_imports_neither_the_command_line_nor_tensorflow():
    code = ("import sys; import anomaly.model, anomaly.scoring.run, anomaly.io.readers; "
            "print(sorted(m for m in ('typer', 'click', 'anomaly.cli', 'tensorflow') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


# -- fit cost ------------------------------------------------------------------------------

def test_auto_batch_size_grows_with_the_training_set():
    from anomaly.model.training import auto_batch_size

    sizes = {n: auto_batch_size(n) for n in (50, 2_300, 6_400, 20_000, 100_000, 10**7)}
    assert sizes == {50: 64, 2_300: 64, 6_400: 64, 20_000: 256, 100_000: 1024, 10**7: 4096}


def test_the_inputs_seen_budget_bounds_the_epochs(normal_traces, tmp_path):
    detector = AutoencoderDetector(epochs=50, max_inputs_seen=5 * len(normal_traces),
                                   patience=100, seed=0).fit(normal_traces)
    assert (detector.training_.epochs_planned, detector.training_.epochs) == (5, 5)
    assert detector.training_.batch_size == 64
    training = json.loads((detector.save(tmp_path / "m") / "metadata.json").read_text())["training"]
    assert (training["epochs"], training["epochs_planned"], training["batch_size"]) == (5, 5, 64)
    unbounded = AutoencoderDetector(epochs=7, max_inputs_seen=None, patience=100,
                                    batch_size=32).fit(normal_traces)
    assert (unbounded.training_.epochs_planned, unbounded.training_.epochs, unbounded.training_.batch_size) == (7, 7, 32)


@pytest.mark.parametrize("settings, steps", [
    ({}, 32), ({"noise_factor": 0.05}, 32), ({"model": "conv"}, 32), ({"model": "vae"}, 32),
    ({"validation_fraction": 0.1}, 4)], ids=["dense", "denoising", "conv", "vae", "validation"])
def test_several_steps_per_call_from_python_train_the_same_network(normal_traces, monkeypatch,
                                                                    settings, steps):
    """Keras running up to STEPS_PER_EXECUTION training steps per call makes the same
    updates in the same order as one step a call, the same scores to the last bit, a
    contract (300 traces in batches of 8: 38 steps an epoch, calls of 32 then 6; with 30
    held back to watch, 4 batches of them cap it at 4)."""
    from anomaly.model import training

    fit = dict(FAST, epochs=3, batch_size=8, **settings)
    several = AutoencoderDetector(**fit).fit(normal_traces[:300])
    monkeypatch.setattr(training, "STEPS_PER_EXECUTION", 1)
    one = AutoencoderDetector(**fit).fit(normal_traces[:300])
    assert (several.model_.steps_per_execution, one.model_.steps_per_execution) == (steps, 1)
    np.testing.assert_array_equal(several.score(normal_traces), one.score(normal_traces))
    assert several.training_.epochs == one.training_.epochs == 3


# -- the threshold's source ----------------------------------------------------------------

def test_a_heldout_threshold_comes_from_beats_not_trained_on(normal_traces, tmp_path):
    detector = AutoencoderDetector(**{**FAST, "epochs": 20, "threshold_source": "heldout"}).fit(
        normal_traces)
    n_heldout = round(0.2 * len(normal_traces))
    assert detector.calibration_.source == "heldout"
    assert (len(detector.calibration_.errors), len(detector.train_errors_)) == (
        n_heldout, len(normal_traces) - n_heldout)
    # The held-out beats are beats the network did not fit: they sit higher than the
    # training beats, and the threshold is theirs.
    assert detector.calibration_.errors.mean() > detector.train_errors_.mean()
    assert detector.threshold_ == pytest.approx(
        detector.calibration_.errors.mean() + detector.calibration_.errors.std())
    # Which beats those were: exactly the ones the fit's seed held out.
    order = np.random.default_rng(detector.seed).permutation(len(normal_traces))
    np.testing.assert_allclose(detector.score(normal_traces[order[-n_heldout:]]),
                               detector.calibration_.errors, rtol=1e-6)

    loaded = AutoencoderDetector.load(detector.save(tmp_path / "m"))
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert (metadata["calibration"]["source"], metadata["calibration"]["n"]) == (
        "heldout", n_heldout)
    assert metadata["training"]["network_parameters"] == detector.model_.count_params() > 0
    assert (loaded.calibration_.source, loaded.training_.network_parameters, loaded.threshold_) == (
        "heldout", detector.training_.network_parameters, detector.threshold_)


def test_too_few_beats_to_hold_out_set_the_threshold_from_training(normal_traces):
    few = normal_traces[:30]  # 20% is 6 beats, under MIN_HELDOUT.
    detector = AutoencoderDetector(epochs=3, threshold_source="heldout").fit(few)
    assert detector.calibration_.source == "training"
    assert len(detector.calibration_.errors) == len(detector.train_errors_) == 30


def test_calibrate_carries_out_each_sources_steps():
    """Which rows each network trains on and in which order (the seed's: what makes two
    fits alike), whose errors set the threshold, and which network is kept, with a
    stand-in for training (network k's error of row r is r + 100 k)."""
    n, seed, fraction = 50, 3, 0.2
    order = np.random.default_rng(seed).permutation(n)
    kept, heldout = order[:-10].tolist(), order[-10:]
    folds = [order[start:start + 10] for start in range(0, n, 10)]
    without = [[row for row in order.tolist() if row not in fold] for fold in folds]
    for source in THRESHOLD_SOURCES:
        trained = []

        def train(rows, stage):
            trained.append((rows.tolist(), stage))
            return len(trained)

        result = calibrate(train, lambda network, rows: rows + 100.0 * network, n,
                           source=source, fraction=fraction, seed=seed, k=2.0)
        expected = {"training": [(order.tolist(), None)],
                    "heldout": [(kept, None)],
                    "heldout-refit": [(kept, "1/2"), (order.tolist(), "2/2")],
                    "heldout-folds": [*((rows, f"{fold}/6") for fold, rows in
                                        enumerate(without, start=1)),
                                      (order.tolist(), "6/6")]}[source]
        assert trained == expected, source
        assert result.network == len(expected)
        threshold_errors = {"training": np.arange(n) + 100.0,
                            "heldout-folds": np.concatenate([
                                fold + 100.0 * network
                                for network, fold in enumerate(folds, start=1)])
                            }.get(source, heldout + 100.0)
        np.testing.assert_array_equal(result.calibration.errors, threshold_errors)
        assert result.calibration.threshold == pytest.approx(
            threshold_errors.mean() + 2 * threshold_errors.std())
        trained_rows = np.sort(kept) if source == "heldout" else np.arange(n)
        np.testing.assert_array_equal(result.train_errors, trained_rows + 100.0 * result.network)


@pytest.mark.parametrize("n, fraction, folds", [(53, 0.2, 5), (53, 0.3, 3), (40, 0.5, 2)])
def test_heldout_folds_scores_every_beat_once_by_a_network_that_did_not_train_on_it(
        n, fraction, folds):
    """Folds of unequal sizes (53 in five: 11, 11, 11, 10, 10) and other fractions: each
    row's threshold error is that of the one first model that did not train on it, and
    the model kept trains on every row."""
    trained = []

    def train(rows, stage):
        trained.append(set(rows.tolist()))
        return len(trained) - 1

    scored = {}

    def errors(network, rows):
        for row in rows.tolist():
            assert row not in trained[network] or network == folds, (row, network)
            scored.setdefault(network, []).append(row)
        return np.asarray(rows, dtype=float)

    result = calibrate(train, errors, n, source="heldout-folds", fraction=fraction, seed=0,
                       k=1.0)
    assert len(trained) == folds + 1 and trained[-1] == set(range(n))
    threshold_rows = [row for network in range(folds) for row in scored[network]]
    assert sorted(threshold_rows) == list(range(n))  # Every row, once.
    assert all(len(trained[network]) == n - len(scored[network]) for network in range(folds))
    assert result.calibration.n == n


def test_heldout_folds_within_one_fits_budget_else_one_fold():
    """The five first models together train on 4 x 50 = 200 inputs: within a limit of 200
    they are fitted; under it, heldout-refit's one first model is, and says so."""
    def run(max_first_fit_rows):
        trained = []

        def train(rows, stage):
            trained.append(stage)
            return len(trained)

        result = calibrate(train, lambda network, rows: rows + 100.0 * network, 50,
                           source="heldout-folds", fraction=0.2, seed=3, k=1.0,
                           max_first_fit_rows=max_first_fit_rows)
        return trained, result.calibration.source

    assert run(200) == run(None) == ([f"{fit}/6" for fit in range(1, 7)], "heldout-folds")
    assert run(199) == (["1/2", "2/2"], "heldout-refit")


def test_the_detectors_fold_budget_is_max_inputs_seen(normal_traces):
    """100 traces in five folds: the first models see 4 x 100 x 2 epochs = 800 inputs."""
    settings = dict(FAST, epochs=2, threshold_source="heldout-folds")
    for budget, source in ((800, "heldout-folds"), (799, "heldout-refit"),
                           (None, "heldout-folds")):
        detector = AutoencoderDetector(**{**settings, "max_inputs_seen": budget}).fit(
            normal_traces[:100])
        assert detector.calibration_.source == source, budget


def test_heldout_refit_keeps_the_full_model_and_the_first_models_threshold(normal_traces):
    settings = dict(FAST, epochs=10)
    refit = AutoencoderDetector(**{**settings, "threshold_source": "heldout-refit"}).fit(
        normal_traces)
    first = AutoencoderDetector(**{**settings, "threshold_source": "heldout"}).fit(normal_traces)
    full = AutoencoderDetector(**settings).fit(normal_traces)
    assert refit.calibration_.source == "heldout-refit"
    np.testing.assert_array_equal(refit.calibration_.errors, first.calibration_.errors)
    assert refit.threshold_ == first.threshold_
    # The model kept is the one trained on every beat.
    np.testing.assert_array_equal(refit.score(normal_traces), full.score(normal_traces))
    assert len(refit.train_errors_) == len(normal_traces)


def test_heldout_folds_sets_the_threshold_from_every_beat_and_keeps_the_full_model(
        normal_traces):
    """Each fold's scores are those of a model trained without it: the last fold's are the
    heldout-refit first model's (400 beats, a multiple of five: the same rows, in the same
    order, held out)."""
    settings = dict(FAST, epochs=10, code_distance="on")
    folds = AutoencoderDetector(**{**settings, "threshold_source": "heldout-folds"}).fit(
        normal_traces)
    refit = AutoencoderDetector(**{**settings, "threshold_source": "heldout-refit"}).fit(
        normal_traces)
    full = AutoencoderDetector(**settings).fit(normal_traces)
    assert folds.calibration_.source == "heldout-folds"
    assert folds.calibration_.n == len(normal_traces)
    last = refit.calibration_.errors
    np.testing.assert_allclose(folds.calibration_.errors[-len(last):], last, rtol=1e-6)
    np.testing.assert_array_equal(folds.score(normal_traces), full.score(normal_traces))


def test_the_defaults_on_a_small_training_set_meet_a_floor():
    """50 normal beats (the small-training-set regime), the defaults as they ship: every
    fold's held-out threshold, the model refitted on all 50. Measured ROC-AUC 0.976 and F1
    0.894-0.908 over two draws (one fifth's threshold, the default before: 0.895 and
    0.797); PCA-8 on the same beats: F1 0.792-0.858."""
    from sklearn.metrics import f1_score, roc_auc_score

    train, _ = synthetic_beats(50, 0, length=96, seed=1)
    test, labels = synthetic_beats(300, 200, length=96, seed=2)
    detector = AutoencoderDetector().fit(train)
    assert detector.calibration_.source == "heldout-folds"
    scores, truth = detector.score(test), labels != 1
    assert roc_auc_score(truth, scores) > 0.95
    assert f1_score(truth, scores > detector.threshold_) > 0.85


ERRORS = {"mae": lambda difference: np.abs(difference),
          "mse": lambda difference: difference ** 2}


def test_the_command_line_offers_the_error_metrics_the_detector_computes():
    from anomaly.choices import ErrorMetric
    from anomaly.model.errors import ERROR_METRICS

    assert sorted(metric.value for metric in ErrorMetric) == sorted(("auto", *ERROR_METRICS))
    assert sorted(ERROR_METRICS) == sorted(ERRORS)


@pytest.mark.parametrize("metric, error", ERRORS.items())
def test_the_score_is_the_chosen_mean_error_of_the_scaled_reconstruction(
        normal_traces, held_out, metric, error):
    detector = AutoencoderDetector(**FAST, error_metric=metric).fit(normal_traces[:200])
    values, _ = held_out
    scaled = detector.scale(values)
    reconstructed = detector.scale(detector.reconstruct(values))
    np.testing.assert_allclose(detector.score(values),
                               error(scaled - reconstructed).mean(axis=1), rtol=1e-6)
    # The threshold is the rule's, on this score.
    errors = detector.score(normal_traces[:200])
    assert detector.threshold_ == pytest.approx(errors.mean() + errors.std(), rel=1e-5)


@pytest.mark.parametrize("source", THRESHOLD_SOURCES)
def test_whose_scores_set_the_threshold_reads_inside_the_reports_parentheses(source):
    """The HTML report says ``(mean + k x std of the scores of {describe()})``."""
    whose = Calibration.of(source, np.arange(20.0), 1.0, winsorise=1).describe()
    said = f"(mean + 1 x std of the scores of {whose})"
    assert said.count("(") == said.count(")") == 1 and "20 " in said, said
