"""The model directory: save and load round-trip every fact, older formats still load (one
test per format), provenance is what the caller gives, and malformed metadata is refused
with one line naming the file and the problem."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from anomaly.exceptions import InputError, ModelError
from anomaly.model import AutoencoderDetector, Provenance, RecordingOrigin
from anomaly.model.directory import FORMAT_VERSION, read_model
from anomaly.recordings.segment import BeatWindow
from anomaly.synthetic import synthetic_beats

from conftest import FAST, NON_DEFAULT, WITH_CONTEXT


@pytest.fixture(scope="module")
def held_out():
    values, _ = synthetic_beats(120, 80, length=96, seed=3)
    return values


@pytest.fixture
def model_copy(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def read_metadata(directory) -> dict:
    return json.loads((directory / "metadata.json").read_text())


def edit_metadata(directory, change) -> None:
    """Change a model's metadata in place (``change`` edits the dict it is given)."""
    metadata = read_metadata(directory)
    change(metadata)
    (directory / "metadata.json").write_text(json.dumps(metadata))


def convert_metadata(directory, convert) -> None:
    """Replace a model's metadata by ``convert(metadata)`` (an older format's)."""
    (directory / "metadata.json").write_text(json.dumps(convert(read_metadata(directory))))


# -- the round trip ------------------------------------------------------------------------

def test_every_parameter_is_named_by_the_round_trip_cases():
    defaults = AutoencoderDetector().get_params()
    assert set(NON_DEFAULT) == set(WITH_CONTEXT) == set(defaults), "name every parameter"
    assert all(NON_DEFAULT[name] != value or WITH_CONTEXT[name] != value
               for name, value in defaults.items())


@pytest.mark.parametrize("params", [NON_DEFAULT, WITH_CONTEXT], ids=["conv", "context"])
def test_every_parameter_and_fitted_value_round_trips(normal_traces, tmp_path, params):
    traces = normal_traces[:64]
    if params["context"]:
        traces = np.hstack([traces, np.random.default_rng(0).normal(1.0, 0.1, (64, 2))])
    detector = AutoencoderDetector(**params).fit(traces)
    loaded = AutoencoderDetector.load(detector.save(tmp_path / "m"), runtime="keras")
    assert loaded.get_params() == params
    assert loaded.scaling_ == detector.scaling_ and loaded.calibration_ == detector.calibration_
    assert loaded.training_ == detector.training_
    assert (loaded.memory_ is None) == (params["code_distance"] != "on")
    if loaded.memory_ is not None:
        assert loaded.memory_.to_json() == detector.memory_.to_json()
    np.testing.assert_array_equal(loaded.score(traces[:8]), detector.score(traces[:8]))


def test_save_load_round_trip_gives_identical_scores(fitted, model_dir, held_out):
    # The Keras runtime: the same network, so the same scores to the bit (the ONNX
    # runtime's agree within 1e-6, tests/test_runtimes.py).
    loaded = AutoencoderDetector.load(model_dir, runtime="keras")
    np.testing.assert_array_equal(loaded.score(held_out), fitted.score(held_out))
    assert loaded.threshold_ == fitted.threshold_
    metadata = read_metadata(model_dir)
    assert metadata["format_version"] == 9 and metadata["scaling"]["input_shape"] == [96]
    assert metadata["params"] == json.loads(json.dumps(fitted.get_params()))
    assert metadata["calibration"]["threshold"] == fitted.threshold_
    assert metadata["model_sha256"] == hashlib.sha256(
        (model_dir / "model.keras").read_bytes()).hexdigest() == loaded.model_sha256_
    assert {"tensorflow", "keras", "anomaly"} <= set(metadata["versions"])
    assert sorted(p.name for p in model_dir.iterdir()) == ["metadata.json", "model.keras",
                                                           "model.onnx"]


def test_save_records_the_parameters_the_model_was_fitted_with(fitted, tmp_path, held_out):
    """set_params takes effect at the next fit: what is saved, and scored, is the fit's."""
    from sklearn.base import clone

    changed = clone(fitted).set_params(threshold_k=9.0)
    changed.__dict__.update({key: value for key, value in fitted.__dict__.items()
                             if key.endswith("_")})
    loaded = AutoencoderDetector.load(changed.save(tmp_path / "m"), runtime="keras")
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.score(held_out), fitted.score(held_out))


# -- provenance ------------------------------------------------------------------------------

def test_save_records_the_provenance_it_is_given_and_no_other(fitted, data_dir, tmp_path):
    training_file = data_dir / "normal.csv"
    given = Provenance.of_file(training_file, rows_read=400, rows_skipped=200)
    first = fitted.save(tmp_path / "first", provenance=given)
    recorded = read_metadata(first)["provenance"]
    assert recorded["file_sha256"] == hashlib.sha256(training_file.read_bytes()).hexdigest()
    assert (recorded["file"], recorded["rows_read"], recorded["rows_skipped"]) == (
        str(training_file), 400, 200)
    # A second save without one does not record the first file (the fit read no file).
    second = fitted.save(tmp_path / "second")
    assert read_metadata(second)["provenance"] == {}
    # A loaded model keeps its own when saved again.
    loaded = AutoencoderDetector.load(first, runtime="keras")
    assert loaded.provenance_ == given
    assert read_metadata(loaded.save(tmp_path / "third"))["provenance"] == recorded


def test_a_recordings_provenance_round_trips_and_must_fit_the_model(fitted, tmp_path):
    template = tuple(np.sin(np.linspace(0, 3, 96)).tolist())
    window = BeatWindow(0.2, 0.4, 96, False, template)
    origin = RecordingOrigin(window, "MLII", 0.0, 300.0, 2, fs=360.0, analysable_s=296.5,
                             in_af_s=240.0)
    directory = fitted.save(tmp_path / "m", provenance=Provenance("208", recording=origin))
    assert read_model(directory).provenance.recording == origin
    assert read_metadata(directory)["provenance"]["recording"]["fs"] == 360.0
    assert read_metadata(directory)["provenance"]["recording"]["in_af_s"] == 240.0
    good = read_metadata(directory)
    window_json = good["provenance"]["recording"]["beat_window"]
    assert window_json["template"] == list(template)
    for key, value, message in (("beat_window", {"before_s": 0.2, "after_s": 0.4, "samples": 140,
                                                 "keep_amplitude": False},
                                 "a beat window of 140 samples for a model of 96"),
                                ("beat_window", window_json | {"template": list(template[1:])},
                                 "a beat template must be a list of 96 numbers (the window's "
                                 "samples), got 95"),
                                ("beat_window", window_json | {"template": None},
                                 "a beat template must be a list of 96 numbers (the window's "
                                 "samples), got no list"),
                                ("beat_window", window_json | {"template": ["0.5"] * 96},
                                 "a beat template must hold finite numbers"),
                                ("beat_window", window_json | {"template": [float("inf")] * 96},
                                 "a beat template must hold finite numbers"),
                                ("beat_window", window_json | {"template": [10 ** 400] * 96},
                                 "a beat template must hold finite numbers"),
                                ("beat_window", window_json | {"template": [1e307] * 96},
                                 "a beat template must hold finite numbers of at most 1e+12"),
                                ("beat_window", window_json | {"shape": []},
                                 "beat_window must hold before_s"),
                                ("fs", 0, "'provenance.recording.fs' must be an ECG's sampling "
                                          "rate (50 to 20,000 Hz)"),
                                ("fs", 1e-300, "'provenance.recording.fs' must be an ECG's"),
                                ("lead", "V5\nError: forged", "bad recording lead (a name of 1 "
                                                              "to 64 printable characters)"),
                                ("lead", "x" * 65, "bad recording lead"),
                                # The training span's rhythm: seconds, AF within what was read.
                                ("in_af_s", 300.0, "in_af_s at most analysable_s"),
                                ("in_af_s", -1.0, "analysable_s and in_af_s must be seconds"),
                                ("in_af_s", "240", "analysable_s and in_af_s must be seconds"),
                                ("in_af_s", None, "both or neither"),
                                ("analysable_s", float("nan"), "must be seconds"),
                                ("analysable_s", 1e308, "must be seconds of a recording"),
                                ("in_af_s", True, "must be seconds of a recording")):
        wrong = json.loads(json.dumps(good))
        wrong["provenance"]["recording"][key] = value
        (directory / "metadata.json").write_text(json.dumps(wrong))
        with pytest.raises(ModelError, match=re.escape(message)):
            read_model(directory)


# -- older formats: one test each ------------------------------------------------------------

def as_format_3(metadata: dict) -> dict:
    """The metadata anomaly wrote in format 3 (before the model package) for the same model:
    the threshold's statistics, the network's size and the provenance as loose keys."""
    scaling, calibration = metadata["scaling"], metadata["calibration"]
    training, provenance = metadata["training"], metadata["provenance"]
    old_training = {key: training[key] for key in
                    ("rows", "epochs", "epochs_planned", "batch_size", "fit_seconds")}
    old_training.update({key: value for key, value in provenance.items() if key != "recording"})
    if "recording" in provenance:
        recording = dict(provenance["recording"])
        old_training["beat_window"] = recording.pop("beat_window")
        old_training["recording"] = recording
    old = {
        "format_version": 3, "detector": "AutoencoderDetector", "params": metadata["params"],
        "input_shape": scaling["input_shape"],
        "scaling": {"method": "minmax", "min": scaling["min"], "range": scaling["range"],
                    **{key: scaling[key] for key in ("context_min", "context_range")
                       if key in scaling}},
        "threshold": calibration["threshold"], "train_error_mean": calibration["mean"],
        "train_error_std": calibration["std"],
        "threshold_source": {"beats": calibration["source"], "n": calibration["n"]},
        "network": {"parameters": training["network_parameters"]},
        "training": old_training, "versions": metadata["versions"],
        "created": metadata["created"], "model_sha256": metadata["model_sha256"],
    }
    if "onnx" in metadata:
        old["onnx"] = metadata["onnx"]
    return old


def as_format_2(metadata: dict) -> dict:
    """Format 3 before the context parameters."""
    old = as_format_3(metadata)
    old["format_version"] = 2
    del old["params"]["context"], old["params"]["context_weight"]
    return old


def as_format_1(metadata: dict, detector: AutoencoderDetector) -> dict:
    """The metadata anomaly wrote before format 2, for the same model."""
    params, old = metadata["params"], as_format_3(metadata)
    return {
        "format_version": 1, "detector": "AutoencoderDetector",
        "architecture": {"model": params["model"], "hidden_units": params["hidden_units"],
                         "options": json.loads(json.dumps(detector.builder_options()))},
        "input_length": int(np.prod(old["input_shape"])),
        "input_shape": old["input_shape"], "scaling": old["scaling"],
        "threshold": old["threshold"], "threshold_k": params["threshold_k"],
        "train_error_mean": old["train_error_mean"],
        "train_error_std": old["train_error_std"],
        "training": {"rows": old["training"]["rows"],
                     "epochs": old["training"]["epochs"], "max_epochs": params["epochs"],
                     "batch_size": params["batch_size"], "learning_rate": params["learning_rate"],
                     "validation_fraction": params["validation_fraction"],
                     "seed": params["seed"], "loss": params["loss"],
                     "noise_factor": params["noise_factor"], "fit_seconds": 1.0},
        "versions": old["versions"], "model_sha256": old["model_sha256"],
        "created": old["created"],
    }


def test_format_3_model_directories_still_load(tmp_path, normal_traces, held_out):
    """Format 3, a recording's model with the RR context: every value comes back."""
    traces = np.hstack([normal_traces[:64], np.random.default_rng(0).normal(1.0, 0.1, (64, 2))])
    detector = AutoencoderDetector(**(FAST | dict(context=("rr_prev_ratio", "rr_next_ratio"),
                                                  threshold_source="heldout"))).fit(traces)
    origin = RecordingOrigin(BeatWindow(0.25, 0.45, 96, False), "MLII", 0.0, None, 1)
    given = Provenance("208", "ab" * 32, rows_read=70, rows_skipped=6, recording=origin)
    directory = detector.save(tmp_path / "m", provenance=given)
    convert_metadata(directory, as_format_3)
    loaded = AutoencoderDetector.load(directory, runtime="keras")
    assert read_metadata(directory)["format_version"] == 3
    assert loaded.get_params() == detector.get_params()
    assert (loaded.scaling_, loaded.calibration_, loaded.provenance_) == (
        detector.scaling_, detector.calibration_, given)
    assert loaded.training_ == detector.training_
    np.testing.assert_array_equal(loaded.score(traces[:16]), detector.score(traces[:16]))


def test_format_2_model_directories_still_load(fitted, model_copy, held_out):
    """Format 2 (before the context parameters) loads as a model without context."""
    convert_metadata(model_copy, as_format_2)
    loaded = AutoencoderDetector.load(model_copy)
    assert loaded.context == () and read_model(model_copy).format_version == 2
    assert loaded.calibration_ == fitted.calibration_
    np.testing.assert_allclose(loaded.score(held_out), fitted.score(held_out), atol=1e-6)


def test_format_1_model_directories_still_load(fitted, model_copy, held_out):
    """Format 1 gives what its architecture and training sections say (model_options: the
    builder's options as recorded, the same network); the rest take their defaults."""
    convert_metadata(model_copy, lambda metadata: as_format_1(metadata, fitted))
    loaded = AutoencoderDetector.load(model_copy, runtime="keras")
    # Parameters format 1 did not record come back as such models were fitted.
    assert loaded.get_params() | {"model_options": None} == fitted.get_params() | {
        "max_inputs_seen": None, "threshold_source": "training", "error_metric": "mae",
        "threshold_winsorise": 0}
    assert loaded.builder_options() == fitted.builder_options()
    assert loaded.calibration_.source == "training" and loaded.threshold_ == fitted.threshold_
    np.testing.assert_array_equal(loaded.score(held_out), fitted.score(held_out))


GOLDEN = Path(__file__).parent / "model_formats"


def with_golden_metadata(model_copy: Path, name: str, drop: tuple[str, ...] = ()) -> dict:
    """``model_copy`` with the metadata an earlier release wrote (``name``), its model
    files' hashes made this network's; returns that metadata, as written."""
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    ours = read_metadata(model_copy)
    golden["model_sha256"] = ours["model_sha256"]
    if "onnx" in golden:
        golden["onnx"] = ours["onnx"]
    for key in drop:
        del golden[key]
    (model_copy / "metadata.json").write_text(json.dumps(golden))
    return golden


@pytest.mark.parametrize("name", ["format_1", "format_2", "format_3", "format_3_recording"])
def test_metadata_written_by_earlier_releases_loads_with_every_value(model_copy, name):
    """The files in tests/model_formats, as earlier releases wrote them: each value read
    back where that release put it."""
    old = with_golden_metadata(model_copy, name)
    loaded = AutoencoderDetector.load(model_copy, runtime="keras")
    training = old["training"]
    assert loaded.threshold_ == old["threshold"]
    assert (loaded.calibration_.mean, loaded.calibration_.std) == (
        old["train_error_mean"], old["train_error_std"])
    source = old.get("threshold_source", {"beats": "training", "n": training["rows"]})
    assert (loaded.calibration_.source, loaded.calibration_.n) == (source["beats"], source["n"])
    assert (loaded.scaling_.min, loaded.scaling_.range) == (old["scaling"]["min"],
                                                            old["scaling"]["range"])
    assert loaded.scaling_.input_shape == tuple(old["input_shape"])
    assert (loaded.training_.rows, loaded.training_.epochs, loaded.training_.fit_seconds) == (
        training["rows"], training["epochs"], training["fit_seconds"])
    provenance = loaded.provenance_
    assert (provenance.file, provenance.file_sha256, provenance.rows_read,
            provenance.rows_skipped) == tuple(training.get(key) for key in
                                              ("file", "file_sha256", "rows_read",
                                               "rows_skipped"))
    if old["format_version"] == 1:
        assert (loaded.epochs, loaded.threshold_k, loaded.seed) == (
            training["max_epochs"], old["threshold_k"], training["seed"])
        assert (loaded.threshold_source, loaded.max_inputs_seen) == ("training", None)
        assert loaded.error_metric == "mae"
    else:
        assert loaded.get_params() == {**old["params"], "hidden_units": (128, 64, 16),
                                       "error_metric": "mae", "code_distance": "off",
                                       "threshold_winsorise": 0,
                                       "context": tuple(old["params"].get("context", ())),
                                       "context_weight": old["params"].get("context_weight",
                                                                           0.25)}
        assert loaded.training_.network_parameters == old["network"]["parameters"]
    if "beat_window" in training:
        window, recording = training["beat_window"], training["recording"]
        origin = provenance.recording
        assert (origin.window.before, origin.window.after, origin.window.samples,
                origin.window.keep_amplitude) == (window["before_s"], window["after_s"],
                                                  window["samples"], window["keep_amplitude"])
        assert (origin.lead, origin.from_s, origin.to_s) == (
            recording["lead"], recording["from_s"], recording["to_s"])
        assert loaded.scaling_.context == ("rr_prev_ratio", "rr_next_ratio")
        assert loaded.scaling_.context_range == tuple(old["scaling"]["context_range"])
        assert loaded.scaling_.n_samples == window["samples"] == 94
    else:
        assert provenance.recording is None and loaded.scaling_.context == ()
    assert np.isfinite(loaded.score(np.zeros((2, 96)))).all()


def test_format_1_of_traces_before_images_gives_its_shape_by_length(model_copy):
    with_golden_metadata(model_copy, "format_1", drop=("input_shape",))
    assert AutoencoderDetector.load(model_copy, runtime="keras").input_shape_ == (96,)


@pytest.mark.parametrize("name, change, message", [
    ("format_1", lambda m: m.update(threshold_source=5), "'threshold_source' should be a JSON"),
    ("format_1", lambda m: m.update(network="big"), "'network' should be a JSON object"),
    ("format_3", lambda m: m["training"].update(recording="MLII"),
     "'training.recording' should be a JSON object"),
    ("format_3", lambda m: m["params"].update(context=5), "'params.context' must be a list"),
    ("format_3_recording", lambda m: m["training"]["beat_window"].update(samples=True),
     "bad beat_window"),
])
def test_malformed_older_metadata_is_one_model_error(model_copy, name, change, message):
    golden = with_golden_metadata(model_copy, name)
    change(golden)
    (model_copy / "metadata.json").write_text(json.dumps(golden))
    with pytest.raises(ModelError, match=f"metadata.json: {message}"):
        AutoencoderDetector.load(model_copy)


def test_newer_format_says_upgrade_even_with_other_keys(model_copy):
    newer = FORMAT_VERSION + 1
    (model_copy / "metadata.json").write_text(f'{{"format_version": {newer}, "new": {{}}}}')
    with pytest.raises(ModelError, match=f"format version {newer} is newer .* upgrade anomaly"):
        AutoencoderDetector.load(model_copy)


# -- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format_version=99), "model format version 99 is newer"),
    (lambda m: m["calibration"].update(threshold=float("nan")),
     "'calibration.threshold' is not a finite number"),
    (lambda m: m["calibration"].update(threshold="0.1"),
     "'calibration.threshold' has the wrong type"),
    (lambda m: m["calibration"].update(source="median"), "'calibration.source' must be one of"),
    (lambda m: m.pop("scaling"), "missing key 'scaling'"),
    (lambda m: m["training"].pop("epochs"), "'training.epochs' must be a count"),
    (lambda m: m["scaling"].update(input_shape=True), "'scaling.input_shape' must be a list"),
    (lambda m: m["scaling"].update(input_shape=[96, 0]),
     "'scaling.input_shape' must be a list of 1 to 3 positive"),
    (lambda m: m["scaling"].update(input_shape=[1001, 1000]),
     r"the input shape \[1001, 1000\] holds over 1,000,000 values per input"),
    (lambda m: m["scaling"].update(range=0), "scaling must be 'minmax' with"),
    (lambda m: m["scaling"].update(range=1e-300), "'scaling.range' 1e-300 is degenerate"),
    (lambda m: m["calibration"].update(threshold=-1.0),
     r"'calibration.threshold' is negative \(-1\); scores are never negative"),
    (lambda m: m["calibration"].update(std=-0.5), "'calibration.std' is negative"),
    (lambda m: m["calibration"].update(n=10 ** 4000),
     "'calibration.n' must be a positive integer of at most 1,000,000,000,000"),
    (lambda m: m.update(params=[1]), "'params' has the wrong type"),
    (lambda m: m["params"].update(context=["rr_prev_ratio", "rr_next_ratio"]),
     "the parameters' context .* is not the scaling's"),
    (lambda m: m["params"].update(context=5), "'params.context' must be a list"),
    (lambda m: m["params"].pop("threshold_source"), "'params' lacks threshold_source"),
    (lambda m: m["params"].pop("error_metric"), "'params' lacks error_metric"),
    (lambda m: m["params"].pop("threshold_winsorise"), "'params' lacks threshold_winsorise"),
    (lambda m: m["calibration"].pop("winsorised"),
     r"'calibration.winsorised' must be an integer from 0 to 'calibration.n' - 1 \(\d+\), "
     "got None"),
    (lambda m: m["calibration"].update(winsorised=m["calibration"]["n"]),
     "'calibration.winsorised' must be an integer from 0 to"),
    (lambda m: m["calibration"].update(winsorised=True),
     "'calibration.winsorised' must be an integer from 0 to"),
    (lambda m: m["calibration"].update(winsorised=3),
     "'calibration.winsorised' 3 is not the parameters' threshold_winsorise 0"),
    (lambda m: m["params"].update(threshold_winsorise=-1),
     r"bad detector parameters \(threshold_winsorise must be an integer from 0 to 1e12, "
     r"got -1\)"),
    (lambda m: m["provenance"].update(file_sha256="x"),
     "'provenance.file_sha256' is not a SHA-256 hex digest"),
    (lambda m: m["onnx"].update(sha256="00"), "'onnx.sha256' is not a SHA-256 hex digest"),
])
def test_load_refuses_bad_metadata(model_copy, change, message):
    edit_metadata(model_copy, change)
    with pytest.raises(ModelError, match=f"metadata.json: {message}"):
        AutoencoderDetector.load(model_copy)


def test_a_format_4_model_scores_the_mean_absolute_error_it_was_calibrated_on(
        model_copy, held_out):
    # Format 4 did not record ``error_metric``; its thresholds are of mean absolute
    # errors, so its models must keep scoring those.
    def as_format_4(metadata):
        metadata["params"].pop("error_metric")
        metadata["format_version"] = 4

    edit_metadata(model_copy, as_format_4)
    loaded = AutoencoderDetector.load(model_copy, runtime="keras")
    assert loaded.error_metric == "mae"
    scaled = loaded.scale(held_out)
    mae = np.abs(scaled - loaded.scale(loaded.reconstruct(held_out))).mean(axis=1)
    np.testing.assert_allclose(loaded.score(held_out), mae, rtol=1e-6)


def test_a_format_8_model_was_calibrated_on_every_score(model_copy):
    # Format 8 did not winsorise: its calibration's mean and spread are of every score.
    # A stray count in its calibration is not read as one; a stray parameter that asks
    # for one is refused.
    def as_format_8(metadata):
        metadata["params"].pop("threshold_winsorise")
        metadata["calibration"]["winsorised"] = 5
        metadata["format_version"] = 8

    before = AutoencoderDetector.load(model_copy)
    edit_metadata(model_copy, as_format_8)
    loaded = AutoencoderDetector.load(model_copy)
    assert (loaded.threshold_winsorise, loaded.calibration_.winsorised) == (0, 0)
    assert loaded.calibration_ == before.calibration_
    edit_metadata(model_copy, lambda m: m["params"].update(threshold_winsorise=1))
    with pytest.raises(ModelError, match="metadata.json: 'calibration.winsorised' 0 is not "
                       "the parameters' threshold_winsorise 1"):
        AutoencoderDetector.load(model_copy)


def test_a_format_6_model_scores_by_its_error_alone(model_copy, model_dir, held_out):
    # Format 6 did not record ``code_distance``: its models score by the error.
    def as_format_6(metadata):
        metadata["params"].pop("code_distance")
        metadata["format_version"] = 6

    edit_metadata(model_copy, as_format_6)
    loaded = AutoencoderDetector.load(model_copy)
    assert loaded.code_distance == "off" and loaded.memory_ is None
    np.testing.assert_array_equal(loaded.score(held_out),
                                  AutoencoderDetector.load(model_dir).score(held_out))


def test_a_threshold_is_the_rule_of_its_calibration(model_copy):
    """The rounding of the saved statistics passes; a threshold edited alone does not."""
    calibration = read_metadata(model_copy)["calibration"]
    rule = calibration["threshold"]
    edit_metadata(model_copy, lambda m: m["calibration"].update(threshold=rule * (1 + 1e-9)))
    assert AutoencoderDetector.load(model_copy).threshold_ == rule * (1 + 1e-9)
    edit_metadata(model_copy, lambda m: m["calibration"].update(threshold=rule * 1.01))
    with pytest.raises(ModelError, match=r"metadata.json: 'calibration.threshold' .* is not "
                       r"mean .* \+ 1 x std .*, the rule the model was calibrated by"):
        AutoencoderDetector.load(model_copy)
    edit_metadata(model_copy, lambda m: m["calibration"].update(threshold=rule))
    edit_metadata(model_copy, lambda m: m["params"].update(threshold_k=2.0))
    with pytest.raises(ModelError, match=r"'calibration.threshold' .* is not mean .* \+ 2 x "):
        read_model(model_copy)


@pytest.mark.parametrize("change", [
    lambda m: m["calibration"].update(winsorised=10 ** 4000),
    lambda m: m["params"].update(threshold_winsorise=10 ** 4000),
    lambda m: m["params"].update(patience="x" * 10_000),
    lambda m: m["params"].update({"y" * 10_000: 1}),
    lambda m: m["params"].update(context=["z" * 10_000]),
    lambda m: m["scaling"].update(context=["c" * 5_000, "c" * 5_000]),
    lambda m: m["scaling"].update(input_shape=[10 ** 4000]),
    lambda m: m.update(format_version=10 ** 4000),
    lambda m: m["params"].update(model=list(range(20_000))),
])
def test_a_huge_value_in_metadata_makes_a_short_error(model_copy, change):
    edit_metadata(model_copy, change)
    with pytest.raises(ModelError) as error:
        AutoencoderDetector.load(model_copy)
    assert len(str(error.value)) < 300 and "..." in str(error.value)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format_version=[9]), "'format_version' has the wrong type (list)"),
    (lambda m: m["params"].update(threshold_k="x"),
     "bad detector parameters (threshold_k must be a finite number, got 'x')"),
    (lambda m: m["params"].update(threshold_k=10 ** 400),
     "bad detector parameters (threshold_k must be a finite number"),
])
def test_a_value_of_the_wrong_kind_is_a_model_error(model_copy, change, message):
    """Not an internal error: the parameters' own check says what is wrong."""
    edit_metadata(model_copy, change)
    with pytest.raises(ModelError, match=re.escape(message)):
        AutoencoderDetector.load(model_copy)


def test_a_seed_numpy_and_keras_cannot_take_is_refused_before_training():
    values, _ = synthetic_beats(20, 0, length=24, seed=2)
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 4294967295"):
        AutoencoderDetector(**{**FAST, "seed": np.uint64(2**32)}).fit(values)


def test_numpy_numbers_as_parameters_fit_and_save_as_python_numbers(tmp_path):
    """A grid of ``np.arange`` values, as a search over parameters gives them."""
    values, _ = synthetic_beats(60, 0, length=48, seed=2)
    numpy_valued = {**FAST, "epochs": np.int64(3), "seed": np.int64(4),
                    "threshold_winsorise": np.int64(1), "threshold_k": np.float32(1.5),
                    "hidden_units": (np.int64(16), np.int64(4))}
    detector = AutoencoderDetector(**numpy_valued).fit(values)
    python_valued = AutoencoderDetector(**{
        **numpy_valued, "epochs": 3, "seed": 4, "threshold_winsorise": 1, "threshold_k": 1.5,
        "hidden_units": (16, 4)}).fit(values)
    np.testing.assert_array_equal(detector.score(values), python_valued.score(values))
    detector.save(tmp_path / "model")
    params = read_metadata(tmp_path / "model")["params"]
    assert (params["seed"], params["threshold_winsorise"], params["hidden_units"]) == (
        4, 1, [16, 4])
    assert AutoencoderDetector.load(tmp_path / "model").calibration_.winsorised == 1


@pytest.mark.parametrize("params, message", [
    ({"patience": "x"}, "patience must be an integer >= 0, got 'x'"),
    ({"model": "lstm"}, "model must be one of"),
    ({"depth": 3}, "unknown parameter 'depth'"),
    ({"heldout_fractoin" + "n" * 10_000: 0.2}, "unknown parameter 'heldout_fractoinnnn"),
])
def test_load_refuses_bad_recorded_parameters(model_copy, params, message):
    edit_metadata(model_copy, lambda metadata: metadata["params"].update(params))
    with pytest.raises(ModelError, match=f"metadata.json: bad detector parameters .*{message}"):
        AutoencoderDetector.load(model_copy)


def test_load_refuses_malformed_json(model_copy):
    (model_copy / "metadata.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable metadata"):
        AutoencoderDetector.load(model_copy)


def test_load_refuses_a_modified_model_file(model_copy):
    with open(model_copy / "model.keras", "ab") as file:
        file.write(b"\0")
    with pytest.raises(ModelError, match="does not match the SHA-256"):
        AutoencoderDetector.load(model_copy)


def test_load_refuses_missing_and_incomplete(model_copy, tmp_path):
    with pytest.raises(ModelError, match="no model directory here"):
        AutoencoderDetector.load(tmp_path / "absent")
    (model_copy / "model.keras").unlink()
    with pytest.raises(ModelError, match="model.keras is missing"):
        AutoencoderDetector.load(model_copy)


# -- where a model may be saved --------------------------------------------------------------

def test_save_replaces_a_model_but_not_other_directories(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    fitted.save(tmp_path / "m")  # refit over an old model: fine
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a model directory; refusing"):
        fitted.save(tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_over_a_link_replaces_the_link_and_leaves_nothing_behind(fitted, tmp_path):
    """A model directory given as a link to an empty directory elsewhere: the link is
    replaced by the model's own directory, what it pointed to is untouched, and no
    hidden leftover stays beside it (the swapped-out link was left, and not cleaned by
    the next save either)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "m").symlink_to(elsewhere)
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m").is_dir() and not (tmp_path / "m").is_symlink()
    assert list(elsewhere.iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_replaces_its_declared_companions_only(fitted, tmp_path):
    """A folder of someone's pictures is not a model directory; the caller's own are."""
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "holiday.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="not a model directory; refusing"):
        fitted.save(tmp_path / "plots")
    assert (tmp_path / "plots" / "holiday.png").exists()
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "reconstructions.png").write_bytes(b"\x89PNG")
    fitted.save(tmp_path / "m", companions=("reconstructions.png",))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["metadata.json", "model.keras",
                                                                  "model.onnx"]


def test_a_saved_model_has_the_mode_the_umask_gives(fitted, tmp_path):
    """Not mkdtemp's 0700: a model fitted by root is read by the service user scoring."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        directory = fitted.save(tmp_path / "m")
        fitted.save(directory)  # Replaced by the exchange: the new one's mode too.
    finally:
        os.umask(previous)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert {stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()} == {0o644}


def test_save_refuses_a_file(fitted, tmp_path):
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(InputError, match="afile: exists and is a file, not a model directory"):
        fitted.save(tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "mine"


def test_save_refuses_a_directory_with_more_than_a_model(fitted, tmp_path):
    target = fitted.save(tmp_path / "m")
    (target / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a model directory"):
        fitted.save(target)
    assert (target / "notes.txt").read_text() == "mine"
