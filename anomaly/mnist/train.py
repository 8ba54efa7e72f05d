"""Fit an autoencoder on MNIST digits and measure it on the held-out digits.

The network is trained by the same :class:`anomaly.model.AutoencoderDetector` as the
ECG traces; images are its inputs, so the anomaly threshold and scores work unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .data import MnistSplit

#: Code size per family when --latent-dim is not given: the dense autoencoder draws a
#: 2-D code, the convolutional one keeps its feature map, the VAE a 2-D latent space.
DEFAULT_LATENT_DIM = {"dense": 2, "conv": None, "vae": 2}
#: Encoder widths of the dense family before its code.
DENSE_HIDDEN_UNITS = (512, 256)
PICTURE_COUNT = 10
VAE_SAMPLES = 100
MANIFOLD_SIZE = 15


def model_options(family: str, latent_dim: int | None) -> tuple[tuple[int, ...], dict[str, Any]]:
    """``(hidden_units, model_options)`` of the detector for a family and code size."""
    if latent_dim is None:
        latent_dim = DEFAULT_LATENT_DIM[family]
    if family == "dense":
        return (*DENSE_HIDDEN_UNITS, latent_dim), {}
    if family == "vae":
        return (), {"latent_dim": latent_dim, "dense_units": 128}
    return (), {"latent_dim": latent_dim}


def make_detector(family: str, *, latent_dim: int | None = None, epochs: int = 10,
                  noise_factor: float = 0.0, batch_size: int = 128, seed: int = 0):
    """An unfitted detector set up for 28 x 28 digits (cross-entropy loss, no early stop;
    the threshold from one held-out fifth, two fits, on which the digits' figures were
    measured: every fold's, six fits, was measured on ECG beats only)."""
    from ..model import AutoencoderDetector

    hidden_units, options = model_options(family, latent_dim)
    return AutoencoderDetector(
        model=family, model_options=options, hidden_units=hidden_units or (128, 64, 16),
        loss="binary_crossentropy", noise_factor=noise_factor, epochs=epochs,
        batch_size=batch_size, patience=epochs, seed=seed, threshold_source="heldout-refit")


@dataclass
class Evaluation:
    """Held-out figures (``report``) and the arrays the pictures are drawn from."""

    report: dict[str, Any]
    images: np.ndarray
    labels: np.ndarray
    reconstructions: np.ndarray
    noisy: np.ndarray | None = None
    denoised: np.ndarray | None = None
    codes: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def training_images(split: MnistSplit, *, normal_digits: Sequence[int] | None = None,
                    train_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training digits: the first ``train_size``, then only ``normal_digits``."""
    images, labels = split.train_images[:train_size], split.train_labels[:train_size]
    if normal_digits:
        keep = np.isin(labels, list(normal_digits))
        images, labels = images[keep], labels[keep]
    return images, labels


def evaluate(detector, split: MnistSplit, train: tuple[np.ndarray, np.ndarray], *,
             normal_digits: Sequence[int] | None = None, seed: int = 0) -> Evaluation:
    """Held-out figures of a fitted detector.

    Always: binary cross-entropy, MSE and PSNR of the reconstructions. With denoising:
    PSNR of the noisy inputs and of the outputs against the clean digits. With a 2-D
    code: 5-nearest-neighbour digit accuracy on the codes. For the VAE: negative ELBO and
    its two terms. With ``normal_digits``: the anomaly detection report, the other digits
    being the anomalies.
    """
    from ..model.denoising import add_noise
    from .metrics import binary_cross_entropy, knn_accuracy, mean_squared_error, negative_elbo, psnr

    images, labels = split.test_images, split.test_labels
    reconstructions = detector.reconstruct(images)
    report: dict[str, Any] = {
        "held_out": {"images": len(images),
                     "binary_crossentropy": binary_cross_entropy(images, reconstructions),
                     "mse": mean_squared_error(images, reconstructions),
                     "psnr_db": psnr(images, reconstructions)},
    }
    evaluation = Evaluation(report, images, labels, reconstructions)
    if detector.noise_factor > 0:
        noisy = add_noise(images, detector.noise_factor, np.random.default_rng(seed))
        denoised = detector.reconstruct(noisy)
        report["denoising"] = {"noise_factor": detector.noise_factor,
                               "noisy_psnr_db": psnr(images, noisy),
                               "denoised_psnr_db": psnr(images, denoised)}
        evaluation.noisy, evaluation.denoised = noisy, denoised
    if detector.code_size == 2:
        codes = detector.encode(images)
        train_images, train_labels = train
        report["latent"] = {"dim": 2, "knn5_accuracy": knn_accuracy(
            detector.encode(train_images), train_labels, codes, labels, n_neighbors=5)}
        evaluation.codes = codes
    if detector.model == "vae":
        report["vae"] = negative_elbo(detector.model_, detector.scale(images), seed=seed)
    if normal_digits:
        from ..report.metrics import detection_report

        truth = (~np.isin(labels, list(normal_digits))).astype(int)
        scores = detector.score(images)
        report["anomaly"] = {"normal_digits": sorted(normal_digits),
                             "threshold": float(detector.threshold_),
                             **detection_report(truth, scores, scores > detector.threshold_)}
    return evaluation


#: Every picture :func:`save_pictures` may write: a model directory holding them is still
#: a model directory, which a re-run replaces.
PICTURE_NAMES = ("reconstructions.png", "denoising.png", "latent_scatter.png",
                 "vae_samples.png", "vae_manifold.png")


def save_pictures(detector, evaluation: Evaluation, directory: str | os.PathLike, *,
                  seed: int = 0) -> list[Path]:
    """The PNGs that apply to this model, written into ``directory``.

    ``reconstructions.png`` always; ``denoising.png`` with denoising;
    ``latent_scatter.png`` for a 2-D code; ``vae_samples.png`` for the VAE and
    ``vae_manifold.png`` when its latent space is 2-D.
    """
    from ..report.plots import save_figure
    from . import pictures

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shown = slice(0, PICTURE_COUNT)
    figures = {"reconstructions.png": pictures.plot_reconstructions(
        evaluation.images[shown], evaluation.reconstructions[shown],
        title=f"{detector.model} autoencoder: held-out digits")}
    if evaluation.noisy is not None:
        figures["denoising.png"] = pictures.plot_denoising(
            evaluation.noisy[shown], evaluation.denoised[shown], evaluation.images[shown],
            title=f"denoising, noise factor {detector.noise_factor:g}")
    if evaluation.codes is not None:
        figures["latent_scatter.png"] = pictures.plot_latent_scatter(
            evaluation.codes.reshape(-1, 2), evaluation.labels,
            title=f"2-D codes of {len(evaluation.codes):,} held-out digits")
    if detector.model == "vae":
        latent_dim = detector.model_.decoder.input_shape[-1]
        samples = np.random.default_rng(seed).standard_normal((VAE_SAMPLES, latent_dim))
        figures["vae_samples.png"] = pictures.plot_image_grid(
            decode(detector, samples), 10, title="VAE samples from the prior")
        if latent_dim == 2:
            grid = np.linspace(-2.0, 2.0, MANIFOLD_SIZE)
            points = np.array([(x, y) for y in grid[::-1] for x in grid])
            figures["vae_manifold.png"] = pictures.plot_image_grid(
                decode(detector, points), MANIFOLD_SIZE, title="decoded latent manifold",
                x_values=grid, y_values=grid[::-1])
    return [save_figure(figure, directory / name) for name, figure in figures.items()]


def decode(detector, codes: np.ndarray) -> np.ndarray:
    """Images decoded from VAE codes, in the inputs' units."""
    decoded = detector.model_.decoder.predict(np.asarray(codes, dtype=np.float32), verbose=0)
    return detector.scaling_.inverse(decoded.astype(np.float64))
