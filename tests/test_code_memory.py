"""The code's and the samples' distances as factors of the score (``code_distance``): what
they compute, when ``auto`` uses them, how they are saved, scored through ONNX and refused
when malformed, and a memory of the codes alone (format 7) still read."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from anomaly.exceptions import EXIT_BAD_MODEL, InputError, ModelError
from anomaly.model import AutoencoderDetector
from anomaly.choices import CODE_DISTANCE_MIN_BEATS as MIN_BEATS
from anomaly.model import code_memory
from anomaly.model.code_memory import CODE_NEIGHBOURS, SAMPLE_MEMORY_SIZE, CodeMemory
from anomaly.model.directory import METADATA_FILE, ONNX_FILE
from anomaly.synthetic import synthetic_beats
from conftest import FAST, run_cli


@pytest.fixture(scope="module")
def coded(normal_traces):
    """With the code's factor, ``error_metric="auto"`` scores the squared error."""
    return AutoencoderDetector(**{**FAST, "code_distance": "on"}, error_metric="auto").fit(
        normal_traces)


@pytest.fixture(scope="module")
def coded_dir(coded, tmp_path_factory):
    return coded.save(tmp_path_factory.mktemp("coded") / "model")


def _nearest(points, centroids):
    return np.sort(cdist(points, centroids), axis=1)[:, :CODE_NEIGHBOURS].mean(axis=1)


def test_the_score_is_the_error_times_the_distances_each_over_its_median(coded,
                                                                         normal_traces):
    """The error, the code's distance from the training codes' centroids and the scaled
    samples' distance from the training samples' centroids."""
    beats, _ = synthetic_beats(20, 20, length=96, seed=5)
    memory = coded.memory_
    assert memory.sample_centroids.shape == (SAMPLE_MEMORY_SIZE, 96)

    def mse(traces):
        return ((coded.scale(traces) - coded.scale(coded.reconstruct(traces))) ** 2).mean(axis=1)

    expected = (mse(beats) / memory.error_median
                * _nearest(coded.encode(beats), memory.centroids) / memory.distance_median
                * _nearest(coded.scale(beats), memory.sample_centroids)
                / memory.sample_distance_median)
    np.testing.assert_allclose(coded.score(beats), expected, rtol=1e-5)
    # Each factor is 1 for the median training beat.
    assert np.median(mse(normal_traces)) == pytest.approx(memory.error_median, rel=1e-5)
    assert np.median(_nearest(coded.scale(normal_traces), memory.sample_centroids)) == (
        pytest.approx(memory.sample_distance_median, rel=1e-5))
    assert coded.score_name == "mse x code distance x sample distance"


def test_auto_scores_the_absolute_error_without_the_codes_factor(normal_traces):
    detector = AutoencoderDetector(**{**FAST, "epochs": 2, "code_distance": "off"},
                                   error_metric="auto").fit(normal_traces)
    beats, _ = synthetic_beats(20, 20, length=96, seed=5)
    mae = np.abs(detector.scale(beats) - detector.scale(detector.reconstruct(beats))).mean(axis=1)
    np.testing.assert_allclose(detector.score(beats), mae, rtol=1e-6)


def test_the_codes_distance_separates_anomalies(coded):
    from sklearn.metrics import roc_auc_score

    beats, labels = synthetic_beats(200, 200, length=96, seed=6)
    scores = coded.score(beats)
    assert roc_auc_score(labels == 0, scores) > 0.95
    flagged = scores > coded.threshold_
    assert flagged[labels == 0].mean() > 0.8 and flagged[labels == 1].mean() < 0.3


def test_the_distances_are_those_of_a_brute_force_search():
    rng = np.random.default_rng(0)
    memory = CodeMemory(rng.normal(size=(40, 16)) * 30, 5, 1.0, 1.0)
    codes = rng.normal(size=(10_000, 16)) * 30  # More rows than one search takes.
    brute = np.sort(cdist(codes, memory.centroids), axis=1)[:, :5].mean(axis=1)
    np.testing.assert_allclose(memory.distances(codes), brute, rtol=1e-9)


def test_the_search_runs_on_one_blas_thread_and_finds_the_libraries_once(monkeypatch):
    """The search limits BLAS to one thread while it runs and gives the count back; the
    libraries are found once, not on every search (0.4 ms each in the service)."""
    import threadpoolctl

    found = []
    find = threadpoolctl.ThreadpoolController.__init__

    def counted(self, *args, **kwargs):
        found.append(1)
        find(self, *args, **kwargs)

    libraries = threadpoolctl.ThreadpoolController()  # Made before the count starts.

    def blas_threads() -> list[int]:
        return [library["num_threads"] for library in libraries.info()
                if library["user_api"] == "blas"]

    memory = CodeMemory(np.random.default_rng(0).normal(size=(40, 16)), 5, 1.0, 1.0)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        monkeypatch.setattr(threadpoolctl.ThreadpoolController, "__init__", counted)
        monkeypatch.setattr(code_memory, "_nearest", lambda *args: (
            seen.append(blas_threads()), np.zeros(len(args[0])))[1])
        seen: list[list[int]] = []
        for _ in range(3):
            memory.distances(np.ones((4, 16)))
        monkeypatch.undo()
        assert blas_threads() == before == [2] * len(before) and before
    assert seen == [[1] * len(before)] * 3
    assert len(found) <= 1


@pytest.mark.parametrize("params, n, uses", [
    ({"code_distance": "auto"}, MIN_BEATS, True),
    ({"code_distance": "auto"}, MIN_BEATS - 1, False),
    ({"code_distance": "auto", "model": "conv"}, MIN_BEATS, False),
    ({"code_distance": "on"}, 20, True),
    ({"code_distance": "off"}, MIN_BEATS, False),
])
def test_auto_uses_the_codes_for_a_dense_network_on_enough_beats(normal_traces, params, n,
                                                                  uses):
    assert len(normal_traces) >= n
    detector = AutoencoderDetector(**{**FAST, "epochs": 2, **params}).fit(normal_traces[:n])
    assert (detector.memory_ is not None) == uses


def test_auto_leaves_out_the_codes_of_beats_all_the_same(capsys):
    """Their codes are all one: no distance ranks them ('on' says so, 'auto' does without)."""
    same = np.tile(np.sin(np.linspace(0, 6, 32)), (MIN_BEATS, 1))
    assert AutoencoderDetector(**{**FAST, "epochs": 1, "code_distance": "auto"}).fit(
        same).memory_ is None
    with pytest.raises(InputError, match="the training beats all have the same code"):
        AutoencoderDetector(**{**FAST, "epochs": 1, "code_distance": "on"}).fit(same)


def test_code_distance_on_needs_the_dense_family():
    with pytest.raises(ValueError, match="code_distance 'on' needs the dense family .*"
                                         "got model='vae', code_distance='on'"):
        AutoencoderDetector(model="vae", code_distance="on").fit(np.ones((20, 8)))


def test_onnx_scores_as_keras_and_the_threshold_is_on_the_same_score(coded, coded_dir):
    beats, _ = synthetic_beats(50, 50, length=96, seed=7)
    onnx = AutoencoderDetector.load(coded_dir)
    keras = AutoencoderDetector.load(coded_dir, runtime="keras")
    assert onnx.runtime_.name == "onnx"
    np.testing.assert_allclose(onnx.score(beats), coded.score(beats), rtol=1e-5)
    np.testing.assert_array_equal(keras.score(beats), coded.score(beats))
    assert onnx.threshold_ == coded.threshold_
    metadata = json.loads((coded_dir / METADATA_FILE).read_text())
    assert metadata["format_version"] == 9 and metadata["params"]["code_distance"] == "on"
    assert len(metadata["code_memory"]["centroids"][0]) == 16
    assert len(metadata["code_memory"]["sample_centroids"][0]) == 96


def test_anomaly_export_keeps_the_code_output(coded_dir, tmp_path, capsys):
    model = shutil.copytree(coded_dir, tmp_path / "model")
    (model / ONNX_FILE).unlink()
    code, _, err = run_cli(capsys, "export", "-m", model)
    assert code == 0, err
    beats, _ = synthetic_beats(10, 10, length=96, seed=8)
    np.testing.assert_allclose(AutoencoderDetector.load(model).score(beats),
                               AutoencoderDetector.load(coded_dir).score(beats), rtol=1e-6)


def test_fit_by_default_scores_by_the_codes_distance(data_dir, tmp_path, capsys):
    """`anomaly fit` on 200 or more beats: the squared error times the code's distance,
    which `anomaly score` writes."""
    from anomaly.io.readers import read_beats

    from conftest import read_rows

    code, out, err = run_cli(capsys, "fit", data_dir / "normal.csv", "-m", tmp_path / "m",
                             "--epochs", "5")
    assert code == 0, err
    metadata = json.loads((tmp_path / "m" / METADATA_FILE).read_text())
    assert (metadata["params"]["error_metric"], metadata["params"]["code_distance"]) == (
        "auto", "auto")
    assert metadata["training"]["rows"] >= MIN_BEATS and "code_memory" in metadata
    assert "of the scores of the" in out
    assert ("Score: the mean squared error of the reconstruction times the code's distance "
            "from the training beats' codes and the samples' distance from the training "
            "beats' samples") in out
    code, _, err = run_cli(capsys, "score", data_dir / "batch.csv", "-m", tmp_path / "m",
                           "--label-column", "label", "-o", tmp_path / "s.csv")
    assert code in (0, 1), err
    loaded = AutoencoderDetector.load(tmp_path / "m")
    values = read_beats(data_dir / "batch.csv", label_column="label").values
    squared = ((loaded.scale(values) - loaded.scale(loaded.reconstruct(values))) ** 2).mean(axis=1)
    codes = AutoencoderDetector.load(tmp_path / "m", runtime="keras").encode(values)
    expected = loaded.memory_.scores(squared, codes, loaded.scale(values))
    np.testing.assert_allclose([float(row["score"]) for row in read_rows(tmp_path / "s.csv")],
                               expected, rtol=1e-5)


def _edit(model, change) -> None:
    path = model / METADATA_FILE
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


def _memory(change):
    return lambda metadata: change(metadata["code_memory"])


@pytest.mark.parametrize("change, message", [
    (_memory(lambda m: m["centroids"][3].append(1.0)),
     "rows must all be of one length: the first has 16 numbers, another 17"),
    (_memory(lambda m: m.update(centroids=[[1.0] * 16])),
     "a list of 2 to 256 lists of numbers, got a list of 1"),
    (_memory(lambda m: m.update(centroids=[[1.0] * 16] * 257)), "a list of 2 to 256 lists"),
    (_memory(lambda m: m.update(centroids={"a": 1})), "got a JSON dict"),
    (_memory(lambda m: m.update(centroids=[[1.0] * 16, []])), "rows must be non-empty lists"),
    (_memory(lambda m: m["centroids"][0].__setitem__(0, 1e300)), "at most 1e\\+12"),
    (_memory(lambda m: m["centroids"][0].__setitem__(0, "1")), "finite numbers"),
    (_memory(lambda m: m.update(neighbours=10**6)),
     "'code_memory.neighbours' must be an integer from 1 to 32 .*, got 1000000"),
    (_memory(lambda m: m.update(neighbours=True)), "'code_memory.neighbours' must be"),
    (_memory(lambda m: m.update(distance_median=0.0)),
     "'code_memory.distance_median' must be at least 1e-12, got 0"),
    (_memory(lambda m: m.update(error_median=1e-300)),
     "'code_memory.error_median' must be at least 1e-12, got 1e-300"),
    (_memory(lambda m: m.update(centroids=[[1.0] * 8193, [2.0] * 8193])),
     "hold 16,386 numbers; at most 8,192"),
    (_memory(lambda m: m.pop("error_median")), "code_memory.error_median"),
    (lambda m: m.update(code_memory=[]), "'code_memory' must be an object"),
    (lambda m: m.pop("code_memory"), "no code memory for a detector whose code_distance is 'on'"),
    (lambda m: m["params"].update(code_distance="off"),
     "a code memory for a detector whose code_distance is 'off'"),
    (lambda m: m["params"].update(code_distance="auto") or m["training"].update(rows=199),
     "a code memory for a detector fitted on 199 beats; code_distance 'auto' keeps one from "
     "200"),
    (lambda m: m["params"].update(model="conv"), "a code memory for the 'conv' family"),
    (_memory(lambda m: m.update(sample_centroids=[row[:50] for row in m["sample_centroids"]])),
     "a code memory of beats of 50 samples for a model of 96"),
    (_memory(lambda m: m.update(sample_centroids=m["sample_centroids"] * 2)),
     "'code_memory.sample_centroids' must be a list of 2 to 32 lists"),
    (_memory(lambda m: m.update(sample_centroids=m["sample_centroids"][:3])),
     "'code_memory.neighbours' must be an integer from 1 to 3 "),
    (_memory(lambda m: m["sample_centroids"][0].__setitem__(0, float("nan"))),
     "'code_memory.sample_centroids' must hold finite numbers"),
    (_memory(lambda m: m.update(sample_distance_median=-1.0)),
     "'code_memory.sample_distance_median' must be at least 1e-12, got -1"),
    (_memory(lambda m: m["sample_centroids"][0].__setitem__(0, 1e300)),
     "'code_memory.sample_centroids' must hold finite numbers of at most 1e\\+12"),
    # A memory (from format 8) stripped of its third factor would score without it against
    # a threshold set with it.
    (_memory(lambda m: m.pop("sample_centroids")),
     "'code_memory.sample_centroids' missing in a directory of format 9"),
    (_memory(lambda m: m.update(sample_centroids=None)),
     "'code_memory.sample_distance_median' given without 'code_memory.sample_centroids'"),
    (_memory(lambda m: m.pop("sample_distance_median")), "code_memory.sample_distance_median"),
    (lambda m: m.update(format_version=7),
     "'code_memory.sample_centroids' given in a directory of format 7 \\(recorded, null "
     "for none, from format 8\\)"),
    (lambda m: m.update(format_version=6) or m["code_memory"].pop("sample_centroids"),
     "'code_memory' in a directory of format 6 \\(from format 7\\)"),
])
def test_a_malformed_code_memory_is_refused(coded_dir, tmp_path, change, message):
    model = shutil.copytree(coded_dir, tmp_path / "model")
    _edit(model, change)
    with pytest.raises(ModelError, match=f"metadata.json: .*{message}"):
        AutoencoderDetector.load(model)


def test_a_code_memory_of_another_width_than_the_code_is_refused(coded_dir, tmp_path):
    model = shutil.copytree(coded_dir, tmp_path / "model")
    _edit(model, _memory(lambda m: m.update(centroids=[row[:8] for row in m["centroids"]])))
    with pytest.raises(ModelError, match="second output is not a code of 8 float32 values"):
        AutoencoderDetector.load(model)
    with pytest.raises(ModelError, match="model.keras: has a code of 16 values; its code "
                                         "memory holds codes of 8 values"):
        AutoencoderDetector.load(model, runtime="keras")


def test_a_model_onnx_without_the_code_is_refused(coded_dir, model_dir, data_dir, tmp_path,
                                                  capsys):
    model = shutil.copytree(coded_dir, tmp_path / "model")
    data = (model_dir / ONNX_FILE).read_bytes()  # A model of the same shape, one output.
    (model / ONNX_FILE).write_bytes(data)
    _edit(model, lambda m: m["onnx"].update(sha256=hashlib.sha256(data).hexdigest()))
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model,
                           "-o", tmp_path / "scores.csv")
    assert code == EXIT_BAD_MODEL
    assert "has 1 inputs and 1 outputs; a model with a code memory has one input and two" in err
    assert not (tmp_path / "scores.csv").exists()


@pytest.mark.parametrize("change", [
    lambda m: (m.update(format_version=7), m["code_memory"].pop("sample_centroids")),
    lambda m: m["code_memory"].update(sample_centroids=None),
], ids=["format 7", "format 8 without samples' centroids"])
def test_a_memory_of_the_codes_alone_scores_by_the_error_and_the_codes_distance(
        coded, coded_dir, tmp_path, change):
    """A directory of format 7 (before the samples' distance), or of format 8 whose fit kept
    no samples' centroids (null), is read, and scores as it was calibrated: the error
    times the code's distance."""
    model = shutil.copytree(coded_dir, tmp_path / "model")
    _edit(model, lambda m: (change(m), m["code_memory"].pop("sample_distance_median")))
    loaded = AutoencoderDetector.load(model)
    beats, _ = synthetic_beats(20, 20, length=96, seed=9)
    memory = coded.memory_
    mse = ((coded.scale(beats) - coded.scale(coded.reconstruct(beats))) ** 2).mean(axis=1)
    expected = (mse / memory.error_median
                * _nearest(coded.encode(beats), memory.centroids) / memory.distance_median)
    np.testing.assert_allclose(loaded.score(beats), expected, rtol=1e-5)
    assert loaded.memory_.sample_centroids is None
    assert loaded.score_name == "mse x code distance"
    assert "samples" not in loaded.score_description


@pytest.mark.parametrize("width, centroids", [(96, 32), (784, 10), (1638, 5), (1639, None)])
def test_the_samples_memory_holds_at_most_8192_values(width, centroids):
    """Beats too wide for as many centroids as a distance averages (8,192 // 5 = 1,638
    samples) keep a memory of their codes alone, which still averages 5."""
    rng = np.random.default_rng(1)
    memory = CodeMemory.fit(rng.normal(size=(300, 16)), rng.random(300) + 0.1,
                            rng.random((300, width)))
    assert (None if memory.sample_centroids is None else memory.sample_centroids.shape) == (
        None if centroids is None else (centroids, width))
    assert memory.neighbours == CODE_NEIGHBOURS


def test_samples_all_alike_keep_a_memory_of_the_codes_alone():
    """Beats whose codes differ but whose samples are all the same (their RR context
    differs) keep no samples' centroids, written as null and read back as none."""
    rng = np.random.default_rng(2)
    memory = CodeMemory.fit(rng.normal(size=(300, 16)), rng.random(300) + 0.1,
                            np.ones((300, 96)))
    assert memory.sample_centroids is None and memory.neighbours == CODE_NEIGHBOURS
    written = json.loads(json.dumps(memory.to_json()))
    assert written["sample_centroids"] is None and "sample_distance_median" not in written
    read = CodeMemory.from_json(written, 8)
    assert read.sample_centroids is None
    np.testing.assert_array_equal(read.centroids, memory.centroids)
