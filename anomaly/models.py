"""Keras model builders. Importing this module imports TensorFlow (quietly)."""

from __future__ import annotations

from ._tensorflow import keras as _keras

keras = _keras()
layers = keras.layers


def build_dense_autoencoder(
    input_length: int,
    *,
    hidden_units: tuple[int, ...] = (128, 64, 8),
    activation: str = "relu",
    code_activation: str | None = None,
    output_activation: str | None = "sigmoid",
) -> "keras.Model":
    """A fully connected autoencoder for 1-D traces.

    The encoder narrows through ``hidden_units``; the decoder mirrors it back to
    ``input_length``. The last entry of ``hidden_units`` is the code size.

    Parameters
    ----------
    input_length : int
        Samples per trace.
    hidden_units : tuple of int, default (128, 64, 8)
        Encoder layer widths, outermost first.
    activation : str, default "relu"
        Activation of the hidden layers.
    code_activation : str or None, default None (linear)
        Activation of the code layer. A linear code cannot lose units to dead ReLUs,
        which made training on ECG5000 depend far less on the seed.
    output_activation : str or None, default "sigmoid"
        Activation of the reconstruction; sigmoid suits inputs scaled to [0, 1].

    Returns
    -------
    keras.Model
        Maps ``(batch, input_length)`` to ``(batch, input_length)``.
    """
    if input_length < 1:
        raise ValueError(f"input_length must be at least 1, got {input_length}")
    if not hidden_units or min(hidden_units) < 1:
        raise ValueError(f"hidden_units must be positive widths, got {hidden_units}")
    inputs = keras.Input(shape=(input_length,), name="trace")
    hidden = inputs
    for index, units in enumerate(hidden_units[:-1]):
        hidden = layers.Dense(units, activation=activation, name=f"encoder_{index}")(hidden)
    hidden = layers.Dense(hidden_units[-1], activation=code_activation, name="code")(hidden)
    for index, units in enumerate(reversed(hidden_units[:-1])):
        hidden = layers.Dense(units, activation=activation, name=f"decoder_{index}")(hidden)
    outputs = layers.Dense(input_length, activation=output_activation, name="reconstruction")(
        hidden
    )
    return keras.Model(inputs, outputs, name="dense_autoencoder")
