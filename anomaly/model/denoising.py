"""Denoising as a training mode for any autoencoder: noisy inputs, clean targets."""

from __future__ import annotations

import math

import numpy as np


def add_noise(values: np.ndarray, noise_factor: float, rng: np.random.Generator, *,
              clip: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``values + noise_factor * N(0, 1)``, clipped to the valid range ``clip``.

    Parameters
    ----------
    values : ndarray
        Clean inputs (any shape).
    noise_factor : float
        Standard deviation of the Gaussian noise, in the values' units.
    rng : numpy.random.Generator
    clip : (low, high), default (0.0, 1.0)

    Returns
    -------
    ndarray of float32, the shape of ``values``
    """
    if not math.isfinite(noise_factor) or noise_factor < 0:
        raise ValueError(f"noise_factor must be a finite number >= 0, got {noise_factor}")
    noisy = values + noise_factor * rng.standard_normal(np.shape(values))
    return np.clip(noisy, *clip).astype(np.float32)


def noisy_batches(values: np.ndarray, *, noise_factor: float, batch_size: int, seed: int,
                  clip: tuple[float, float] = (0.0, 1.0)):
    """A Keras dataset of ``(noisy, clean)`` batches, fresh noise and order every epoch.

    Fresh noise each epoch shows the network many corruptions of each input rather than
    one, which denoises better than training on a single noisy copy.
    """
    from .networks import keras

    class NoisyBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(values))

        def __len__(self) -> int:
            return math.ceil(len(values) / batch_size)

        def __getitem__(self, index: int):
            clean = values[self.order[index * batch_size:(index + 1) * batch_size]]
            return add_noise(clean, noise_factor, self.rng, clip=clip), clean

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(values))

    return NoisyBatches()
