"""Image reconstruction figures: cross-entropy, MSE, PSNR, k-NN accuracy, negative ELBO.

Images are in [0, 1]. Every function returns plain floats.
"""

from __future__ import annotations

import math

import numpy as np

#: Predictions are clipped to [EPSILON, 1 - EPSILON] in the cross-entropy, as Keras does.
EPSILON = 1e-7


def _per_image_binary_cross_entropy(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Cross-entropy summed over each image's pixels, shape ``(n,)`` (nats per image)."""
    images = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    predicted = np.clip(np.asarray(reconstructions, dtype=np.float64).reshape(len(images), -1),
                        EPSILON, 1.0 - EPSILON)
    return -(images * np.log(predicted) + (1.0 - images) * np.log(1.0 - predicted)).sum(axis=1)


def binary_cross_entropy(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean binary cross-entropy per pixel (the figure Keras reports as the loss)."""
    per_image = _per_image_binary_cross_entropy(images, reconstructions)
    return float(per_image.mean() / (np.size(images) // len(images)))


def mean_squared_error(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean squared error per pixel."""
    difference = np.asarray(images, dtype=np.float64) - np.asarray(reconstructions, dtype=np.float64)
    return float(np.mean(difference ** 2))


def psnr(images: np.ndarray, reconstructions: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)`` over the set."""
    mse = mean_squared_error(images, reconstructions)
    return math.inf if mse == 0 else float(10.0 * np.log10(data_range ** 2 / mse))


def knn_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                 test_labels: np.ndarray, n_neighbors: int = 5) -> float:
    """Digit accuracy of a k-nearest-neighbour vote on codes (fitted on the training codes)."""
    from sklearn.neighbors import KNeighborsClassifier

    classifier = KNeighborsClassifier(n_neighbors=n_neighbors)
    classifier.fit(np.reshape(train_codes, (len(train_codes), -1)), train_labels)
    return float(classifier.score(np.reshape(test_codes, (len(test_codes), -1)), test_labels))


def negative_elbo(vae, images: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Negative ELBO of a variational autoencoder in nats per image, and its two terms.

    One code is sampled per image (seeded), as in training.

    Returns
    -------
    dict
        ``negative_elbo`` = ``reconstruction_loss`` (binary cross-entropy summed over the
        pixels) + ``kl_loss`` (KL divergence of the code from the standard normal),
        each the mean over the images.
    """
    from ..model.networks import gaussian_kl, ops

    images = np.asarray(images, dtype=np.float32)
    z_mean, z_log_var = (np.asarray(part, dtype=np.float64)
                         for part in vae.encoder.predict(images, batch_size=1024, verbose=0))
    noise = np.random.default_rng(seed).standard_normal(z_mean.shape)
    codes = (z_mean + np.exp(0.5 * z_log_var) * noise).astype(np.float32)
    reconstructions = vae.decoder.predict(codes, batch_size=1024, verbose=0)
    reconstruction = float(_per_image_binary_cross_entropy(images, reconstructions).mean())
    kl = float(np.mean(ops.convert_to_numpy(gaussian_kl(z_mean, z_log_var))))
    return {"negative_elbo": reconstruction + kl, "reconstruction_loss": reconstruction,
            "kl_loss": kl}
