"""Shared fixtures: small synthetic beat files and one quickly trained detector."""

from __future__ import annotations

import csv
import io
import json
import os
import select
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from anomaly.datasets import find_ecg5000
from anomaly.synthetic import synthetic_beats, write_beats_csv

#: Few epochs keep the suite fast; the synthetic classes separate well even so. One fit,
#: not the default's two (the held-out threshold has its own tests). The score is the
#: error alone, whose model.onnx has one output, as the crafted graphs of the hostile
#: model tests have (the code's factor has its own tests, tests/test_code_memory.py).
FAST = dict(epochs=40, batch_size=64, validation_fraction=0.0, threshold_source="training",
            code_distance="off", seed=0)


#: Every constructor parameter set to a value other than its default.
NON_DEFAULT = dict(model="conv", model_options={"filters": (8, 16), "latent_dim": 4},
                   hidden_units=(32, 8), loss="mse", error_metric="mse", code_distance="off",
                   noise_factor=0.05,
                   epochs=2, batch_size=16, max_inputs_seen=1000,
                   learning_rate=3e-3, validation_fraction=0.25, patience=3, threshold_k=1.5,
                   threshold_winsorise=2, threshold_source="heldout", heldout_fraction=0.3,
                   context=(),
                   context_weight=0.4, seed=7)
#: A context needs the dense family without noise: every parameter is off its default in
#: NON_DEFAULT or here.
WITH_CONTEXT = {**NON_DEFAULT, "model": "dense", "model_options": None, "noise_factor": 0.0,
                "context": ("rr_prev_ratio", "rr_next_ratio"), "code_distance": "on"}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A directory with a training file (labels last) and a labelled batch with a header."""
    directory = tmp_path_factory.mktemp("beats")
    values, labels = synthetic_beats(400, 200, length=96, seed=1)
    write_beats_csv(directory / "train.csv", values, labels)
    write_beats_csv(directory / "normal.csv", values[labels == 1])
    values, labels = synthetic_beats(150, 100, length=96, seed=2)
    write_beats_csv(directory / "batch.csv", values, labels, header=True)
    write_beats_csv(directory / "batch_nolabel.csv", values)
    return directory


@pytest.fixture(scope="session")
def normal_traces(data_dir) -> np.ndarray:
    values, labels = synthetic_beats(400, 200, length=96, seed=1)
    return values[labels == 1]


@pytest.fixture(scope="session")
def fitted(normal_traces):
    from anomaly.model import AutoencoderDetector

    return AutoencoderDetector(**FAST).fit(normal_traces)


@pytest.fixture(scope="session")
def model_dir(fitted, tmp_path_factory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("models") / "model")


@pytest.fixture(scope="session")
def ecg5000() -> Path:
    path = find_ecg5000()
    if path is None:
        pytest.skip("ECG5000 not found (looked in $ANOMALY_DATA_DIR, the download cache and "
                    "../shared/data); see data/README.md")
    return path


@pytest.fixture
def work(tmp_path, model_dir, data_dir) -> Path:
    """A working directory with the model (``model``) and an input (``in.csv``)."""
    shutil.copytree(model_dir, tmp_path / "model")
    shutil.copy(data_dir / "batch_nolabel.csv", tmp_path / "in.csv")
    return tmp_path


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from anomaly.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


#: The user permission tests run as when the suite runs as root, as CI does: nobody.
UNPRIVILEGED_UID = UNPRIVILEGED_GID = 65534


@pytest.fixture
def unprivileged_dir(monkeypatch) -> Path:
    """An empty working directory an unprivileged user can enter, made the current one.

    (pytest's own temporary directories are private to the user running the suite.)
    """
    directory = Path(tempfile.mkdtemp(prefix="anomaly-unprivileged-"))
    directory.chmod(0o755)
    monkeypatch.chdir(directory)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def give_to_unprivileged_user(path: Path) -> Path:
    """Make ``path`` belong to the user :func:`run_cli_unprivileged` runs as, so that only
    its mode bits can stop that user."""
    if os.geteuid() == 0:
        os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
    return path


def run_cli_unprivileged(*args, timeout: float = 60.0) -> tuple[int, str, str]:
    """Run the CLI as an unprivileged user: (exit code, stdout, stderr).

    Not root: in this process. Root: in a forked child that gives up root for nobody
    before it runs, so that permission checks meet a user they apply to (root reads and
    writes anything). Not ``subprocess.run(..., user=...)``: the interpreter and the
    virtual environment live under directories only root may enter (pyenv's Python under
    /root, CI's checkout in a private temporary directory), so a process started as
    nobody could not even start Python; a forked child has it in memory already. The
    commands run this way fail before any model loads, so the child never needs the
    TensorFlow threads it does not inherit; it is killed if it hangs all the same.
    """
    from anomaly.cli import main

    def run() -> tuple[int, str, str]:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        try:
            code = main([str(arg) for arg in args])
            return code, sys.stdout.getvalue(), sys.stderr.getvalue()
        finally:
            sys.stdout, sys.stderr = saved

    if os.geteuid() != 0:
        return run()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # The child: never returns into pytest.
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(UNPRIVILEGED_GID)
            os.setuid(UNPRIVILEGED_UID)
            payload = json.dumps(run())
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            payload = json.dumps([-1, "", f"child failed: {error!r}"])
        os.write(writer, payload.encode())
        os._exit(0)
    os.close(writer)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([reader], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"anomaly {' '.join(map(str, args))} hung as nobody")
            chunk = os.read(reader, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
        os.waitpid(pid, 0)
    return tuple(json.loads(b"".join(chunks)))


def assert_one_line_error(err: str, *fragments: str) -> None:
    """stderr is one ``Error:`` line, no traceback, holding every fragment."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file with a header, as dicts of text."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def write_text(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like 28 x 28 uint8 images: digit k is a stroke at angle k * 18 degrees.

    Strokes are jittered in angle, position, length and thickness, so an autoencoder has
    something to learn and the ten classes can be told apart.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    rows, columns = np.mgrid[0:28, 0:28].astype(np.float64)
    images = np.empty((n, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        angle = np.deg2rad(label * 18.0 + rng.normal(0, 3))
        centre = 13.5 + rng.normal(0, 1.0, 2)
        half_length = rng.uniform(7, 10)
        direction = np.array([np.sin(angle), np.cos(angle)])
        offset = np.stack([rows - centre[0], columns - centre[1]], axis=-1)
        along = np.clip(offset @ direction, -half_length, half_length)
        distance = np.linalg.norm(offset - along[..., None] * direction, axis=-1)
        image = np.clip(rng.uniform(1.6, 2.4) - distance, 0.0, 1.0)
        images[index] = np.round(image * 255).astype(np.uint8)
    return images, labels


def assert_images_render_in_browser(page_path: Path) -> None:
    """Open an HTML page in headless Chromium and check that every image decodes to a
    real size (skips when no Chromium is installed; .ci/run installs Debian's)."""
    import subprocess

    browser = next((shutil.which(name) for name in
                    ("chromium", "chromium-browser", "google-chrome", "chrome")
                    if shutil.which(name)), None)
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    page = page_path.read_text()
    # Load a copy with a probe that records, once the page has loaded, how many images
    # decoded to a real size; the browser's DOM dump then shows it.
    probe = ("<script>window.addEventListener('load', () => { const ok = [...document.images]"
             ".filter(i => i.complete && i.naturalWidth > 100).length; "
             "document.body.setAttribute('data-images-ok', ok + '/' + document.images.length);"
             "});</script></body>")
    probe_path = page_path.resolve().with_name(f"probe-{page_path.name}")
    probe_path.write_text(page.replace("</body>", probe))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", "--dump-dom", probe_path.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n_images = page.count("<img")
    assert f'data-images-ok="{n_images}/{n_images}"' in dom, dom[-500:]


def recording_model(model_dir: Path, destination: Path, *, lead: str = "MLII",
                    fs: float = 360.0, template: list[float] | None = None) -> Path:
    """The session's model (96 samples) as if fitted on a recording's beats: its
    provenance records the lead, the rate and a beat window of its length (with the
    dominant beat ``template`` when given). Only metadata.json changes, which the model
    files' SHA-256 sums do not cover."""
    import json
    import shutil

    shutil.copytree(model_dir, destination)
    metadata = json.loads((destination / "metadata.json").read_text())
    metadata["provenance"]["recording"] = {
        "lead": lead, "fs": fs,
        "beat_window": {"before_s": 0.25, "after_s": 0.45, "samples": 96,
                        "keep_amplitude": False}}
    if template is not None:
        metadata["provenance"]["recording"]["beat_window"]["template"] = template
    (destination / "metadata.json").write_text(json.dumps(metadata))
    return destination
