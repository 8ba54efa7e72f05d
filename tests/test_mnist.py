"""``anomaly mnist``: loading (npz, IDX .gz and raw), the train command, its pictures and report."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anomaly.model import AutoencoderDetector
from anomaly.exceptions import EXIT_BAD_INPUT, InputError
from anomaly.mnist.data import IDX_NAMES, load_mnist, read_idx

from conftest import run_cli, synthetic_digits
from test_cli import assert_png

QUICK = ["--epochs", "3", "--batch-size", "32"]


def write_idx(path: Path, array: np.ndarray, *, compress: bool) -> Path:
    """An IDX file of unsigned bytes, as the MNIST distribution has them."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_idx_set(directory: Path, images, labels, part: str, *, compress: bool) -> None:
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{IDX_NAMES[part + '_images']}{suffix}", images, compress=compress)
    write_idx(directory / f"{IDX_NAMES[part + '_labels']}{suffix}", labels, compress=compress)


@pytest.fixture(scope="module")
def mnist_npz(tmp_path_factory) -> Path:
    """A small Keras-style mnist.npz of synthetic digits: 600 to train, 200 to test."""
    train_x, train_y = synthetic_digits(600, seed=10)
    test_x, test_y = synthetic_digits(200, seed=11)
    path = tmp_path_factory.mktemp("npz") / "mnist.npz"
    np.savez_compressed(path, x_train=train_x, y_train=train_y.astype(np.uint8),
                        x_test=test_x, y_test=test_y.astype(np.uint8))
    return path


# -- loading ------------------------------------------------------------------------------

def test_npz_uses_train_and_holds_out_test(mnist_npz):
    split = load_mnist(mnist_npz)
    assert split.train_images.shape == (600, 28, 28) and split.test_images.shape == (200, 28, 28)
    assert split.train_images.dtype == np.float32 and 0 <= split.train_images.min()
    assert split.train_images.max() == pytest.approx(1.0)
    assert "held out the 200 test images" in split.note


@pytest.mark.parametrize("compress", [True, False])
def test_idx_test_set_only_is_split_80_20_and_says_so(tmp_path, compress):
    images, labels = synthetic_digits(50, seed=3)
    write_idx_set(tmp_path, images, labels, "test", compress=compress)
    split = load_mnist(tmp_path)
    assert len(split.train_images) == 40 and len(split.test_images) == 10
    np.testing.assert_array_equal(split.test_labels, labels[40:])
    np.testing.assert_allclose(split.train_images[0], images[0] / 255.0, atol=1e-6)
    assert "only the 50-image test set is present" in split.note and "first 40" in split.note


def test_idx_train_and_test_sets(tmp_path):
    for part, seed in (("train", 4), ("test", 5)):
        images, labels = synthetic_digits(30, seed=seed)
        write_idx_set(tmp_path, images, labels, part, compress=part == "train")
    split = load_mnist(tmp_path)
    assert len(split.train_images) == 30 and len(split.test_images) == 30
    assert "training images" in split.note


def test_nothing_local_says_what_to_supply(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(InputError, match="no MNIST data on this machine .* pass --data with a "
                                         "Keras mnist.npz or a directory of the IDX files"):
        load_mnist(search=[tmp_path / "keras" / "datasets" / "mnist.npz", tmp_path / "empty"])


def _images_without_labels(directory: Path) -> Path:
    write_idx(directory / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)), compress=True)
    return directory


def _truncated_images(directory: Path) -> Path:
    header = bytes([0, 0, 0x08, 3]) + (5).to_bytes(4, "big") * 3
    (directory / "t10k-images-idx3-ubyte").write_bytes(header)
    write_idx(directory / "t10k-labels-idx1-ubyte", np.zeros(5), compress=False)
    return directory


def _not_idx(directory: Path) -> Path:
    (directory / "t10k-images-idx3-ubyte").write_bytes(b"PK\3\4 not idx")
    write_idx(directory / "t10k-labels-idx1-ubyte", np.zeros(5), compress=False)
    return directory


def _npz_without_labels(directory: Path) -> Path:
    np.savez(directory / "mnist.npz", x_train=np.zeros((2, 28, 28)))
    return directory / "mnist.npz"


@pytest.mark.parametrize("make, message", [
    (_images_without_labels, "t10k-images-idx3-ubyte.gz: found without its partner "
                             "t10k-labels-idx1-ubyte"),
    (_truncated_images, r"t10k-images-idx3-ubyte: expected 125 data bytes for shape "
                        r"\(5, 5, 5\), got 0"),
    (_not_idx, "t10k-images-idx3-ubyte: not an IDX file"),
    (_npz_without_labels, "mnist.npz: missing array.*y_train"),
    (lambda directory: directory, "no MNIST here"),
])
def test_bad_files_are_named(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        load_mnist(make(tmp_path))


def test_read_idx_round_trip(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", labels, compress=False)), labels)


def test_real_mnist_test_set_loads():
    try:
        split = load_mnist(search=_real_mnist_dirs())
    except InputError:
        pytest.skip("real MNIST not found ($ANOMALY_DATA_DIR/mnist or ../shared/data/mnist)")
    assert (len(split.train_images), len(split.test_images)) == (8000, 2000)
    assert sorted(set(split.test_labels.tolist())) == list(range(10))
    assert "first 8,000" in split.note


def _real_mnist_dirs() -> list[Path]:
    from anomaly.datasets import data_dirs

    return [directory / "mnist" for directory in data_dirs()]


# -- the train command ---------------------------------------------------------------------

def _train(capsys, tmp_path, mnist_npz, *options) -> tuple[int, str, str, dict, Path]:
    model_dir, report = tmp_path / "model", tmp_path / "report.json"
    code, out, err = run_cli(capsys, "mnist", "train", "--data", mnist_npz, "--model-dir",
                             model_dir, "--report", report, *QUICK, *options)
    figures = json.loads(report.read_text()) if report.exists() else {}
    return code, out, err, figures, model_dir


def test_dense_2d_code_separates_the_digits(capsys, tmp_path, mnist_npz):
    code, out, err, figures, model_dir = _train(capsys, tmp_path, mnist_npz, "--model", "dense",
                                                "--epochs", "15")
    assert code == 0, err
    assert {"held_out", "latent", "pictures", "split"} <= set(figures)
    assert {"binary_crossentropy", "mse", "psnr_db"} <= set(figures["held_out"])
    # Ten classes, chance is 0.1; 0.87-0.89 measured over seeds 0-2.
    assert figures["latent"]["knn5_accuracy"] > 0.7
    assert "5-nearest-neighbour" in out
    for name in ("reconstructions.png", "latent_scatter.png"):
        assert_png(model_dir / name)
    assert not (model_dir / "denoising.png").exists()
    # The model directory is the ECG one: it loads and scores images unchanged.
    detector = AutoencoderDetector.load(model_dir, runtime="keras")  # Keras has the encoder.
    assert detector.input_shape_ == (28, 28) and detector.encode(np.zeros((3, 28, 28))).shape == (3, 2)


def test_normal_digits_flags_the_other_digits(capsys, tmp_path, mnist_npz):
    from sklearn.metrics import roc_auc_score

    code, out, err, figures, model_dir = _train(capsys, tmp_path, mnist_npz, "--model", "dense",
                                                "--normal-digits", "1,7", "--epochs", "15")
    assert code == 0, err
    anomaly = figures["anomaly"]
    assert anomaly["normal_digits"] == [1, 7]
    assert anomaly["roc_auc"] > 0.85  # 0.93-0.98 measured over seeds 0-2
    assert "ROC-AUC" in out
    # The figures are the saved model's: recomputed from it, they agree.
    split = load_mnist(mnist_npz)
    scores = AutoencoderDetector.load(model_dir).score(split.test_images)
    truth = ~np.isin(split.test_labels, [1, 7])
    assert anomaly["roc_auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-9)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["provenance"]["data"].endswith("; trained on the digits 1,7")


def test_conv_denoising(capsys, tmp_path, mnist_npz):
    pictures = tmp_path / "pictures"
    code, out, err, figures, _ = _train(capsys, tmp_path, mnist_npz, "--model", "conv",
                                        "--denoise", "0.4", "--picture-dir", pictures)
    assert code == 0, err
    denoising = figures["denoising"]
    assert denoising["noise_factor"] == 0.4
    assert 9 < denoising["noisy_psnr_db"] < 14
    # 2.4-3.1 dB better than the noisy inputs measured over seeds 0-2, after 3 epochs.
    assert denoising["denoised_psnr_db"] > denoising["noisy_psnr_db"] + 1.5
    assert "latent" not in figures and "vae" not in figures
    assert_png(pictures / "denoising.png")
    assert_png(pictures / "reconstructions.png")


def test_vae_with_2d_latent(capsys, tmp_path, mnist_npz):
    from anomaly.mnist.metrics import negative_elbo

    code, out, err, figures, model_dir = _train(capsys, tmp_path, mnist_npz, "--model", "vae",
                                                "--epochs", "10")
    assert code == 0, err
    vae = figures["vae"]
    assert "negative ELBO" in out
    for name in ("vae_samples.png", "vae_manifold.png", "latent_scatter.png", "reconstructions.png"):
        assert_png(model_dir / name)
    split = load_mnist(mnist_npz)
    images = split.test_images
    # Better than coding each pixel by its mean intensity over the training digits
    # (140 nats here; 87-116 measured over seeds 0-1 after 10 epochs).
    mean = np.clip(split.train_images.mean(axis=0), 1e-7, 1 - 1e-7)
    per_pixel_mean = -(images * np.log(mean) + (1 - images) * np.log(1 - mean)).sum(axis=(1, 2))
    assert vae["negative_elbo"] < per_pixel_mean.mean()
    # The code carries information (2.9-4.6 nats measured); the KL term's closed form is
    # tested on the model itself (tests/test_models.py).
    assert vae["kl_loss"] > 1.0
    # The saved model is the fitted one: the same seeded figures.
    loaded = AutoencoderDetector.load(model_dir, runtime="keras")
    scaled = ((images - loaded.scaling_.min) / loaded.scaling_.range).astype(np.float32)
    again = negative_elbo(loaded.model_, scaled, seed=0)
    assert again["negative_elbo"] == pytest.approx(vae["negative_elbo"], rel=1e-6)


def test_rerun_replaces_a_model_directory_with_its_pictures(capsys, tmp_path, mnist_npz):
    written = {}
    for seed in ("1", "2"):
        code, _, err, _, model_dir = _train(capsys, tmp_path, mnist_npz, "--epochs", "1",
                                            "--train-size", "100", "--seed", seed)
        assert code == 0, err
        picture = model_dir / "reconstructions.png"
        written[seed] = (picture.stat().st_mtime_ns, picture.read_bytes(),
                         json.loads((model_dir / "metadata.json").read_text()))
    # The second run replaced the first's model and its picture, and left nothing else.
    assert written["2"][2]["params"]["seed"] == 2
    assert written["2"][2]["model_sha256"] != written["1"][2]["model_sha256"]
    assert written["2"][0] > written["1"][0] and written["2"][1] != written["1"][1]
    assert_png(model_dir / "reconstructions.png")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "report.json"]


@pytest.mark.parametrize("options, message", [
    (["--data", "{empty}"], "no MNIST here"),
    (["--normal-digits", "1,x"], "expected digits separated by commas"),
    (["--normal-digits", "0,1,2,3,4,5,6,7,8,9"], "some \\(not all\\) of the digits"),
    (["--denoise", "nan"], "finite number"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, options, message):
    (tmp_path / "empty").mkdir()
    options = [option.format(empty=tmp_path / "empty") for option in options]
    code, _, err = run_cli(capsys, "mnist", "train", "--model-dir", tmp_path / "m", *options)
    assert code == EXIT_BAD_INPUT
    assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err


def test_mnist_help_loads_no_tensorflow():
    code = ("import sys; from anomaly.cli import main; "
            "codes = [main(['mnist', '--help']), main(['mnist', 'train', '--help'])]; "
            "heavy = [m for m in ('tensorflow', 'keras', 'numpy', 'matplotlib', 'sklearn') "
            "if m in sys.modules]; print(codes, heavy); sys.exit(bool(heavy) or any(codes))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--normal-digits" in result.stdout and "--denoise" in result.stdout


def test_every_mnist_option_has_help():
    from typer.main import get_command

    from anomaly.cli.mnist import app

    command = get_command(app)
    for name, subcommand in getattr(command, "commands", {"train": command}).items():
        assert subcommand.help, name
        for parameter in subcommand.params:
            assert getattr(parameter, "help", None), f"{name} {parameter.name}"


def test_real_mnist_conv_quality_floor(capsys, tmp_path):
    """A short run on the real digits: a held-out cross-entropy floor, real pictures."""
    try:
        load_mnist(search=_real_mnist_dirs())
    except InputError:
        pytest.skip("real MNIST not found ($ANOMALY_DATA_DIR/mnist or ../shared/data/mnist)")
    code, out, err = run_cli(capsys, "mnist", "train", "--model", "conv", "--epochs", "2",
                             "--train-size", "2000", "--batch-size", "32",
                             "--model-dir", tmp_path / "m",
                             "--report", tmp_path / "r.json")
    assert code == 0, err
    assert "held out the last 2,000" in out
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["held_out"]["images"] == 2000
    assert figures["held_out"]["binary_crossentropy"] < 0.11  # 0.078 measured
    assert_png(tmp_path / "m" / "reconstructions.png")
