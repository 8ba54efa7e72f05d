"""RR context: the network predicts a beat's timing from its shape without seeing it, so a
premature beat of normal shape scores high; the context's scaling survives save and load,
and a model directory with a bad one is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly.exceptions import InputError, ModelError
from anomaly.model import AutoencoderDetector
from anomaly.model.context import beat_context
from anomaly.recordings.rhythm import RR_COLUMNS, RR_CONTEXT, rr_ratios
from anomaly.synthetic import synthetic_beats

from conftest import FAST


def with_timing(shapes: np.ndarray, prev: float, next_: float, seed: int) -> np.ndarray:
    """Beats followed by RR ratios drawn around ``prev`` and ``next_`` (sd 0.04)."""
    rng = np.random.default_rng(seed)
    ratios = rng.normal([prev, next_], 0.04, size=(len(shapes), 2))
    return np.hstack([shapes, ratios])


@pytest.fixture(scope="module")
def beats():
    """Normal shapes on time to train; to test, normal shapes on time and normal shapes
    early (0.6 of the local RR interval, a pause of 1.4 after): S beats."""
    shapes = synthetic_beats(600, 0, length=96, seed=5)[0]
    train = with_timing(shapes[:400], 1.0, 1.0, seed=1)
    on_time = with_timing(shapes[400:500], 1.0, 1.0, seed=2)
    premature = with_timing(shapes[500:], 0.6, 1.4, seed=3)
    test = np.vstack([on_time, premature])
    truth = np.r_[np.zeros(len(on_time)), np.ones(len(premature))]
    return train, test, truth


@pytest.fixture(scope="module")
def with_context(beats):
    train, _, _ = beats
    return AutoencoderDetector(**FAST, context=RR_CONTEXT).fit(train)


def test_premature_beats_of_normal_shape_score_high_only_with_the_context(beats, with_context):
    train, test, truth = beats
    scores = with_context.score(test)
    assert roc_auc_score(truth, scores) > 0.95
    flagged = scores > with_context.threshold_
    assert flagged[truth == 1].mean() > 0.9
    assert flagged[truth == 0].mean() < 0.35
    # The shapes alone cannot tell them apart: the context is what finds them.
    shape_only = AutoencoderDetector(**FAST).fit(train[:, :-2])
    assert roc_auc_score(truth, shape_only.score(test[:, :-2])) < 0.7


def test_the_network_does_not_see_the_context(beats, with_context):
    _, test, _ = beats
    moved = test.copy()
    moved[:, -2:] = [[0.5, 2.0]]
    np.testing.assert_array_equal(with_context.reconstruct(test), with_context.reconstruct(moved))
    # But the score compares the prediction with the context given.
    assert (with_context.score(moved) > with_context.score(test)).all()


def test_the_score_weighs_the_context_by_context_weight(beats, with_context):
    """0.75 x the MAE of the beat (scaled by the training values' range) plus 0.25 x that
    of its context (each column scaled by its own range), by default."""
    _, test, _ = beats
    assert with_context.context_weight == 0.25
    difference = np.abs(test - with_context.reconstruct(test))
    beat = difference[:, :-2] / with_context.scaling_.range
    context = difference[:, -2:] / np.array(with_context.scaling_.context_range)
    expected = 0.75 * beat.mean(axis=1) + 0.25 * context.mean(axis=1)
    np.testing.assert_allclose(with_context.score(test), expected, rtol=1e-4, atol=1e-6)


def test_the_squared_error_weighs_the_context_the_same_way(beats, with_context):
    from anomaly.model.errors import input_errors

    _, test, _ = beats
    scaled = with_context.scale(test)
    reconstructed = with_context.scale(with_context.reconstruct(test))
    squared = (scaled - reconstructed) ** 2
    expected = 0.75 * squared[:, :-2].mean(axis=1) + 0.25 * squared[:, -2:].mean(axis=1)
    np.testing.assert_allclose(
        input_errors(scaled, reconstructed, metric="mse", context_columns=2,
                     context_weight=0.25), expected, rtol=1e-9)


@pytest.mark.parametrize("runtime", ["keras", "onnx"])
def test_the_context_round_trips_through_save_and_load(beats, with_context, tmp_path, runtime):
    train, test, _ = beats
    directory = with_context.save(tmp_path / "model")
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["params"]["context"] == list(RR_CONTEXT)
    np.testing.assert_array_equal(metadata["scaling"]["context_min"], train[:, -2:].min(axis=0))
    loaded = AutoencoderDetector.load(directory, runtime=runtime)
    assert loaded.context == RR_CONTEXT and loaded.runtime_.name == runtime
    assert loaded.scaling_ == with_context.scaling_
    np.testing.assert_allclose(loaded.score(test), with_context.score(test), atol=1e-6)


@pytest.fixture(scope="module")
def context_model(with_context, tmp_path_factory):
    return with_context.save(tmp_path_factory.mktemp("context") / "model")


@pytest.mark.parametrize("change, message", [
    (lambda m: m["scaling"].update(context_min=[0.5]), "'scaling.context_min' must be 2"),
    (lambda m: m["scaling"].update(context_range=[1.0, 0.0]), "'scaling.context_range' must be positive"),
    (lambda m: m["scaling"].update(context_range=[1.0, "2"]),
     r"'scaling.context_range' has the wrong type \(str\)"),
    (lambda m: m["scaling"].pop("context_min"), "'scaling.context_min' must be 2"),
    (lambda m: m["scaling"].update(context_range=[1e-300, 1.0]),
     "'scaling.context_range' is degenerate"),
    (lambda m: m["params"].update(context=[]), "the parameters' context .* is not the scaling's"),
    (lambda m: m["scaling"].update(context="rr"), "'scaling.context' must be a list"),
    (lambda m: m["scaling"].update(input_shape=[2]), "more values than context columns"),
    (lambda m: m["scaling"].update(input_shape=[12, 12]), "needs 1-D inputs"),
])
def test_load_refuses_a_bad_context(context_model, tmp_path, change, message):
    copy = tmp_path / "model"
    shutil.copytree(context_model, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    change(metadata)
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match=message):
        AutoencoderDetector.load(copy)


@pytest.mark.parametrize("bad, message", [
    (dict(context=("rr", "rr")), "distinct column names"),
    (dict(context="rr"), "tuple of distinct column names"),
    (dict(context=RR_CONTEXT, model="conv"), "dense family"),
    (dict(context=RR_CONTEXT, noise_factor=0.1), "cannot be combined"),
    (dict(context=RR_CONTEXT, context_weight=1.0), r"context_weight must be in \(0, 1\)"),
])
def test_bad_context_parameters_are_refused_in_fit(beats, bad, message):
    train, _, _ = beats
    with pytest.raises(ValueError, match=message):
        AutoencoderDetector(**{**FAST, **bad}).fit(train)


def test_rr_ratios_are_intervals_over_the_local_mean_and_1_without_a_neighbour():
    ratios = rr_ratios(np.array([np.nan, 0.5, 0.8, -0.5, 1e300]),
                       np.array([0.8, 1.2, np.nan, 0.8, 0.8]),
                       np.array([np.nan, 0.8, 0.8, -0.8, 1e-300]))
    np.testing.assert_allclose(ratios, [[1.0, 1.0], [0.625, 1.5], [1.0, 1.0], [1.0, 1.0],
                                        [1.0, 8e299]])


def test_scoring_appends_the_rr_context_from_a_beats_ids_and_names_what_is_missing():
    context = beat_context(RR_CONTEXT)
    values = np.arange(6.0).reshape(3, 2)
    ids = dict(zip(RR_COLUMNS, ([0.4, 0.8, 0.8], [0.8, 0.8, 1.6], [0.8, 0.8, 0.8])))
    joined = context.appended(values, ids, "in.csv")
    np.testing.assert_allclose(joined, [[0, 1, 0.5, 1], [2, 3, 1, 1], [4, 5, 1, 2]])
    with pytest.raises(InputError, match=r"in.csv: the model predicts each beat's RR context "
                                         r"\(rr_prev_ratio, rr_next_ratio\); .* rr_prev_s"):
        context.appended(values, {"row": np.arange(3)}, "in.csv")
    assert beat_context(()) is None
    with pytest.raises(ModelError, match="a context anomaly does not know"):
        beat_context(("heart_rate",))
