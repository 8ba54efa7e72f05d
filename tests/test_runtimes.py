"""Scoring without TensorFlow: ``model.onnx`` beside ``model.keras``, run by onnxruntime.

The two runtimes must give the same scores (within 1e-6) and the same flags for every
family, on real ECG5000 beats and MNIST digits; a bad ``model.onnx`` is a model error
(exit 3) like a bad ``model.keras``; ``anomaly export`` adds the file to an older model
directory; and a scoring run through ONNX imports neither TensorFlow nor pandas, in this
environment and in one installed without the training extra.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

from anomaly.model import AutoencoderDetector
from anomaly.exceptions import EXIT_BAD_INPUT, EXIT_BAD_MODEL
from anomaly.io.readers import read_beats
from anomaly.model.directory import METADATA_FILE, ONNX_FILE

from conftest import FAST, run_cli
from test_hostile import _nan_weights, _narrow_output, _two_outputs
from test_mnist import _real_mnist_dirs

PROJECT = Path(__file__).resolve().parents[1]
#: Families and the few epochs that make them a real, trained model quickly.
FAMILIES = ("dense", "conv", "vae")
#: The issue's bound on the difference between the runtimes' scores of the error.
SCORE_TOLERANCE = 1e-6
#: A score with the code's factor (``memory_``) is compared relatively: its squared error
#: over the training median (about 1e-4 on ECG5000) magnifies float32's rounding of the
#: reconstructions, and its scores run to 100 (measured: at most 2.5e-6 relative).
RELATIVE_TOLERANCE = 1e-5


def assert_scores_agree(actual: np.ndarray, desired: np.ndarray, detector) -> None:
    if detector.memory_ is None:
        np.testing.assert_allclose(actual, desired, rtol=0, atol=SCORE_TOLERANCE)
    else:
        np.testing.assert_allclose(actual, desired, rtol=RELATIVE_TOLERANCE, atol=0)


def runtimes_agree(detector: AutoencoderDetector, directory: Path, data: np.ndarray) -> None:
    """Save ``detector``, load it with each runtime and compare their scores and flags."""
    detector.save(directory)
    keras_scored = AutoencoderDetector.load(directory, runtime="keras")
    onnx_scored = AutoencoderDetector.load(directory)
    assert (keras_scored.runtime_.name, onnx_scored.runtime_.name) == ("keras", "onnx")
    by_keras, by_onnx = keras_scored.score(data), onnx_scored.score(data)
    assert_scores_agree(by_onnx, by_keras, detector)
    np.testing.assert_array_equal(onnx_scored.predict(data), keras_scored.predict(data))
    # The scores are the fitted detector's too (the comparison is not of two copies of
    # one mistake), and both runtimes flag some inputs and pass others.
    assert_scores_agree(by_keras, detector.score(data), detector)
    assert 0 < keras_scored.predict(data).sum() < len(data)


@pytest.fixture(scope="module")
def ecg5000_split(ecg5000):
    beats = read_beats(ecg5000, label_column="last", normal_label="1")
    normal = beats.values[beats.truth == 0]
    return normal[:600], beats.values[::10]


@pytest.mark.parametrize("family", FAMILIES)
def test_both_runtimes_score_ecg5000_the_same(family, ecg5000_split, tmp_path):
    train, batch = ecg5000_split
    detector = AutoencoderDetector(model=family, epochs=5, seed=0).fit(train)
    runtimes_agree(detector, tmp_path / "model", batch)


@pytest.fixture(scope="module")
def mnist_digits():
    from anomaly.mnist.data import load_mnist

    try:
        split = load_mnist(search=_real_mnist_dirs())
    except Exception:
        pytest.skip("real MNIST not found ($ANOMALY_DATA_DIR/mnist or ../shared/data/mnist)")
    return split.train_images[:1000], split.test_images[:500]


@pytest.mark.parametrize("family", FAMILIES)
def test_both_runtimes_score_mnist_the_same(family, mnist_digits, tmp_path):
    """The 2-D families (convolutional and variational over images), and the dense one
    over flattened images."""
    train, test = mnist_digits
    detector = AutoencoderDetector(model=family, epochs=3, seed=0).fit(train)
    runtimes_agree(detector, tmp_path / "model", test)


def test_both_runtimes_score_synthetic_beats_the_same(fitted, data_dir, tmp_path):
    """Without the shared data sets too (a fresh clone)."""
    beats = read_beats(data_dir / "batch.csv", label_column="last", normal_label="1")
    runtimes_agree(fitted, tmp_path / "model", beats.values)


def test_fit_records_model_onnx_and_its_sha256(model_dir):
    from anomaly.io.writers import file_sha256

    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert metadata["onnx"]["sha256"] == file_sha256(model_dir / ONNX_FILE)
    assert metadata["onnx"]["max_difference"] <= 1e-5


# -- bad model.onnx ----------------------------------------------------------------------

@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def _rewrite_metadata(model: Path, change) -> None:
    path = model / METADATA_FILE
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


def _replace_onnx(model: Path, data: bytes, *, record_sha: bool) -> None:
    import hashlib

    (model / ONNX_FILE).write_bytes(data)
    if record_sha:
        _rewrite_metadata(model, lambda m: m["onnx"].update(sha256=hashlib.sha256(data).hexdigest()))


@pytest.mark.parametrize("damage, message", [
    (lambda m: _replace_onnx(m, (m / ONNX_FILE).read_bytes()[:-10], record_sha=False),
     "model.onnx: does not match the SHA-256 recorded in metadata.json"),
    (lambda m: _replace_onnx(m, b"not an onnx model at all", record_sha=True),
     "model.onnx: cannot be loaded"),
    (lambda m: (m / ONNX_FILE).unlink(), "incomplete model directory, model.onnx is missing"),
    (lambda m: _rewrite_metadata(m, lambda d: d["onnx"].update(sha256="00")),
     "'onnx.sha256' is not a SHA-256 hex digest"),
])
def test_a_bad_model_onnx_is_a_model_error(model_copy, data_dir, in_tmp, capsys, damage, message):
    damage(model_copy)
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_copy)
    assert code == EXIT_BAD_MODEL
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (in_tmp / "scores.csv").exists()


def test_an_onnx_model_with_the_wrong_input_shape_is_refused(model_copy, tmp_path, data_dir,
                                                            in_tmp, capsys):
    """A valid ONNX model of another shape, with its SHA-256 recorded: refused on loading."""
    other = AutoencoderDetector(**{**FAST, "epochs": 1}).fit(np.random.default_rng(0).normal(size=(50, 40)))
    other.save(tmp_path / "other")
    _replace_onnx(model_copy, (tmp_path / "other" / ONNX_FILE).read_bytes(), record_sha=True)
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_copy)
    assert code == EXIT_BAD_MODEL and "does not take inputs of shape (96,)" in err, err


def _crafted_onnx(model: Path, tmp_path: Path, build) -> None:
    """Replace ``model.onnx`` by the export of ``build(keras)``, its hash recorded."""
    from anomaly.model.networks import keras

    network = build(keras)
    network(np.zeros((1, 96), dtype=np.float32))  # Keras exports only a called model.
    network.export(str(tmp_path / "crafted.onnx"), format="onnx", verbose=False)
    _replace_onnx(model, (tmp_path / "crafted.onnx").read_bytes(), record_sha=True)


@pytest.mark.parametrize("build, message", [
    (_narrow_output, "model.onnx: maps inputs of shape (96,) to (1,)"),
    (_two_outputs, "model.onnx: has 1 inputs and 2 outputs; an autoencoder has one of each"),
    (_nan_weights, "model.onnx: reconstructions are not finite numbers"),
], ids=["output narrower than the input", "two outputs", "NaN weights"])
def test_a_crafted_model_onnx_is_refused_on_loading(build, message, model_copy, tmp_path,
                                                    data_dir, in_tmp, capsys):
    _crafted_onnx(model_copy, tmp_path, build)
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_copy)
    assert code == EXIT_BAD_MODEL
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (in_tmp / "scores.csv").exists()


def test_the_keras_runtime_does_not_read_model_onnx(model_copy, data_dir, in_tmp, capsys):
    (model_copy / ONNX_FILE).write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "score", data_dir / "batch_nolabel.csv", "-m", model_copy,
                           "--runtime", "keras", "--report", "run.json")
    assert code == 0, err
    assert json.loads(Path("run.json").read_text())["model"]["runtime"] == "keras"


# -- a model directory from before ONNX export; anomaly export ----------------------------

def _strip_onnx(model: Path) -> None:
    """Make ``model`` what anomaly wrote before it exported ONNX."""
    (model / ONNX_FILE).unlink()
    _rewrite_metadata(model, lambda metadata: metadata.pop("onnx"))


def test_export_adds_model_onnx_to_an_older_model_directory(model_copy, data_dir, in_tmp, capsys):
    _strip_onnx(model_copy)
    (model_copy / "notes.png").write_bytes(b"a companion picture")
    batch = data_dir / "batch_nolabel.csv"
    code, _, err = run_cli(capsys, "score", batch, "-m", model_copy, "--runtime", "onnx")
    assert code == EXIT_BAD_MODEL and "anomaly export" in err

    assert run_cli(capsys, "score", batch, "-m", model_copy, "-o", "before.csv",
                   "--report", "before.json")[0] == 0
    assert json.loads(Path("before.json").read_text())["model"]["runtime"] == "keras"

    keras_bytes = (model_copy / "model.keras").read_bytes()
    code, out, err = run_cli(capsys, "export", "-m", model_copy)
    assert code == 0 and "model.onnx" in out, err
    assert (model_copy / "model.keras").read_bytes() == keras_bytes
    assert (model_copy / "notes.png").read_bytes() == b"a companion picture"
    assert "onnx" in json.loads((model_copy / METADATA_FILE).read_text())

    code, _, err = run_cli(capsys, "score", batch, "-m", model_copy, "-o", "after.csv",
                           "--report", "after.json")
    assert code == 0, err
    assert "(onnx runtime)" in err
    assert json.loads(Path("after.json").read_text())["model"]["runtime"] == "onnx"
    before = np.loadtxt("before.csv", delimiter=",", skiprows=1)
    after = np.loadtxt("after.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(after[:, 1], before[:, 1], rtol=0, atol=SCORE_TOLERANCE)
    np.testing.assert_array_equal(after[:, 2], before[:, 2])


def test_export_carries_every_file_over_or_refuses(model_copy, capsys):
    """A directory inside the model directory would not be copied: refused, untouched."""
    (model_copy / "extra").mkdir()
    before = sorted(path.name for path in model_copy.iterdir())
    code, _, err = run_cli(capsys, "export", "-m", model_copy)
    assert code == EXIT_BAD_MODEL and "extra: not a regular file" in err
    assert sorted(path.name for path in model_copy.iterdir()) == before


@pytest.mark.parametrize("change, message", [
    (lambda metadata: metadata["params"].update(model="lstm"),
     "bad detector parameters (model must be one of"),
    (lambda metadata: metadata["calibration"].update(threshold=1e6),
     "'calibration.threshold' 1e+06 is not mean "),
])
def test_export_writes_nothing_for_a_directory_scoring_refuses(model_copy, change, message,
                                                               capsys):
    _rewrite_metadata(model_copy, change)
    before = {path.name: path.read_bytes() for path in model_copy.iterdir()}
    beside = sorted(model_copy.parent.iterdir())
    code, _, err = run_cli(capsys, "export", "-m", model_copy)
    assert code == EXIT_BAD_MODEL and message in err, err
    assert {path.name: path.read_bytes() for path in model_copy.iterdir()} == before
    assert sorted(model_copy.parent.iterdir()) == beside  # No staging copy left.


def test_export_refuses_what_is_not_a_model_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a model")
    code, _, err = run_cli(capsys, "export", "-m", tmp_path)
    assert code == EXIT_BAD_MODEL and "incomplete model directory" in err


def test_a_pass_runs_in_a_helper_thread_only_where_a_signal_handler_needs_it():
    """In the main thread (the command line's), onnxruntime runs in a helper thread so
    that SIGTERM is handled at once; in a pool thread (the service's, Dask's) or where the
    caller says its signal handlers raise nothing (the service's event loop), with no time
    limit, in the calling thread: a helper would cost a thread's start for nothing."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from anomaly.model.runtimes.onnx_runtime import in_calling_thread, interruptibly

    def ran_in() -> threading.Thread:
        return threading.current_thread()

    assert interruptibly(ran_in) is not threading.main_thread()

    async def on_an_event_loop() -> threading.Thread:
        return interruptibly(ran_in)

    # A notebook's loop: Ctrl-C must stop the pass. The service's loop: its signal
    # handler (uvicorn's) raises nothing, so the helper would be a cost without a use.
    assert asyncio.run(on_an_event_loop()) is not threading.main_thread()
    with in_calling_thread():
        assert asyncio.run(on_an_event_loop()) is threading.main_thread()
    assert interruptibly(ran_in) is not threading.main_thread()
    with ThreadPoolExecutor(1) as pool:
        caller, ran = pool.submit(lambda: (threading.current_thread(),
                                           interruptibly(ran_in))).result()
        assert ran is caller
        caller, ran = pool.submit(lambda: (threading.current_thread(),
                                           interruptibly(ran_in, 5.0))).result()
        assert ran is not caller  # A time limit needs the helper to wait on.


# -- what a scoring process imports ------------------------------------------------------

IMPORTS_AFTER_SCORING = """
import sys
from anomaly.cli.commands import main
code = main(sys.argv[1:])
print(code, *(name for name in ("tensorflow", "keras", "pandas") if name in sys.modules))
"""


def test_scoring_through_onnx_imports_neither_tensorflow_nor_pandas(model_dir, data_dir, in_tmp):
    def imported(*runtime):
        run = subprocess.run(
            [sys.executable, "-c", IMPORTS_AFTER_SCORING, "score",
             str(data_dir / "batch_nolabel.csv"), "-m", str(model_dir), "-q", *runtime],
            capture_output=True, text=True, timeout=300)
        return run.stdout.split()

    assert imported() == ["0"]
    # The check can fail: the Keras runtime does import TensorFlow.
    assert "tensorflow" in imported("--runtime", "keras")


def test_dask_workers_score_through_onnx_without_tensorflow(model_dir, data_dir, tmp_path):
    import distributed

    from anomaly.scoring.dask_engine import DaskEngine
    from anomaly.scoring.plan import plan_run
    from anomaly.scoring.run import execute

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        plan = plan_run([str(data_dir / "batch_nolabel.csv")], model_dir,
                        output=tmp_path / "dask.csv")
        result = execute(plan, DaskEngine(cluster.scheduler_address))
        with distributed.Client(cluster.scheduler_address) as client:
            worker_imports = client.run(lambda: "tensorflow" in sys.modules)
    assert result.report()["model"]["runtime"] == "onnx"
    assert list(worker_imports.values()) == [False]


# -- an installation without the training extra ------------------------------------------

@pytest.fixture(scope="module")
def scoring_only_python(tmp_path_factory) -> Path:
    """A virtual environment with anomaly installed as the README's scoring-only install
    says (no extra): no TensorFlow, no Keras, no tf2onnx; at the versions CI locks."""
    directory = tmp_path_factory.mktemp("scoring-only") / "venv"
    venv.create(directory, with_pip=True)
    python = directory / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
         "-c", str(PROJECT / ".ci" / "constraints.txt"), str(PROJECT)],
        capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    return python


@pytest.mark.slow
def test_a_scoring_only_install_scores_a_model_made_by_a_full_one(
        scoring_only_python, model_dir, data_dir, in_tmp, capsys):
    missing = subprocess.run(
        [str(scoring_only_python), "-c",
         "import importlib.util as u; print([m for m in ('tensorflow', 'keras', 'tf2onnx') "
         "if u.find_spec(m)])"], capture_output=True, text=True, timeout=60)
    assert missing.stdout.strip() == "[]", missing.stderr
    anomaly = [str(scoring_only_python), "-m", "anomaly"]
    batch = str(data_dir / "batch.csv")
    scored = subprocess.run(anomaly + ["score", batch, "-m", str(model_dir), "-o", "light.csv",
                                       "--label-column", "last", "--report", "light.json"],
                            capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr
    assert run_cli(capsys, "score", batch, "-m", model_dir, "-o", "full.csv",
                   "--label-column", "last")[0] == 0
    assert Path("light.csv").read_bytes() == Path("full.csv").read_bytes()
    assert json.loads(Path("light.json").read_text())["model"]["runtime"] == "onnx"

    for command in (["score", batch, "-m", str(model_dir), "-o", "k.csv", "--runtime", "keras"],
                    ["fit", str(data_dir / "normal.csv"), "-m", "new-model"],
                    ["demo", "--workdir", "demo-out"]):
        refused = subprocess.run(anomaly + command, capture_output=True, text=True, timeout=300)
        assert refused.returncode == EXIT_BAD_INPUT, refused.stderr
        # The README installs from the checkout; the index's name is given too.
        assert "pip install '.[train]' from the checkout, or 'anomaly[train]'" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        if command[0] != "score":  # Refused before reading a row ('Read 292 rows' came first).
            assert refused.stdout == "", refused.stdout
    assert not any(Path(name).exists() for name in ("k.csv", "new-model", "demo-out"))
