"""Option values shared by the command lines (no TensorFlow, no NumPy)."""

from __future__ import annotations

from enum import Enum


class ModelFamily(str, Enum):
    """The autoencoder families of :mod:`anomaly.models`."""

    dense = "dense"
    conv = "conv"
    vae = "vae"
