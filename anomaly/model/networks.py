"""Keras autoencoder builders shared by ECG traces and MNIST images.

One set of builders parametrised by input shape: ``(length,)`` or ``(length, 1)`` is a
1-D trace, ``(height, width)`` or ``(height, width, channels)`` an image. Every model maps
a batch of inputs to reconstructions of the same shape. Importing this module imports
TensorFlow (quietly).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ._tensorflow import keras as _keras

keras = _keras()
layers = keras.layers
ops = keras.ops

_REGISTER = keras.saving.register_keras_serializable(package="anomaly")


# -- input geometry ---------------------------------------------------------------------

def normalise_input_shape(input_shape: int | tuple[int, ...]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (an int is a 1-D trace length)."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if not 1 <= len(shape) <= 3 or any(int(size) != size or size < 1 for size in shape):
        raise ValueError(
            "input_shape must be a length, (length,), (length, 1), (height, width) or "
            f"(height, width, channels) of positive ints, got {input_shape!r}"
        )
    return tuple(int(size) for size in shape)


def _spatial_layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Spatial dimensions and channels: ``(length, 1)`` is a trace, ``(h, w)`` an image."""
    if len(shape) == 1:
        return shape, 1
    if len(shape) == 2:
        return ((shape[0],), 1) if shape[1] == 1 else (shape, 1)
    return shape[:2], shape[2]


def _conv_layers(rank: int) -> dict[str, Callable]:
    if rank == 1:
        return {"conv": layers.Conv1D, "transpose": layers.Conv1DTranspose,
                "pad": lambda p, name: layers.ZeroPadding1D((0, p[0]), name=name),
                "crop": lambda p, name: layers.Cropping1D((0, p[0]), name=name)}
    return {"conv": layers.Conv2D, "transpose": layers.Conv2DTranspose,
            "pad": lambda p, name: layers.ZeroPadding2D(((0, p[0]), (0, p[1])), name=name),
            "crop": lambda p, name: layers.Cropping2D(((0, p[0]), (0, p[1])), name=name)}


def _check_widths(name: str, widths: tuple[int, ...]) -> tuple[int, ...]:
    if not widths or any(int(width) != width or width < 1 for width in widths):
        raise ValueError(f"{name} must be positive widths, got {widths!r}")
    return tuple(int(width) for width in widths)


# -- dense ------------------------------------------------------------------------------

def build_dense_autoencoder(
    input_shape: int | tuple[int, ...],
    *,
    hidden_units: tuple[int, ...] = (128, 64, 16),
    activation: str = "relu",
    code_activation: str | None = None,
    output_activation: str | None = "sigmoid",
) -> "keras.Model":
    """A fully connected autoencoder; images are flattened and reshaped back.

    Parameters
    ----------
    input_shape : int or tuple of int
        Samples per trace, or an image shape such as ``(28, 28)``.
    hidden_units : tuple of int, default (128, 64, 16)
        Encoder layer widths, outermost first; the last is the code size (2 gives a
        code you can plot). The decoder mirrors the encoder.
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
        Maps ``(batch, *input_shape)`` to the same shape; the code layer is named
        ``"code"`` (see :func:`encoder_of`).
    """
    shape = normalise_input_shape(input_shape)
    hidden_units = _check_widths("hidden_units", hidden_units)
    inputs = keras.Input(shape=shape, name="trace" if len(shape) == 1 else "image")
    hidden = inputs if len(shape) == 1 else layers.Flatten(name="flatten")(inputs)
    for index, units in enumerate(hidden_units[:-1]):
        hidden = layers.Dense(units, activation=activation, name=f"encoder_{index}")(hidden)
    hidden = layers.Dense(hidden_units[-1], activation=code_activation, name="code")(hidden)
    for index, units in enumerate(reversed(hidden_units[:-1])):
        hidden = layers.Dense(units, activation=activation, name=f"decoder_{index}")(hidden)
    outputs = layers.Dense(math.prod(shape), activation=output_activation,
                           name="reconstruction")(hidden)
    if len(shape) > 1:
        outputs = layers.Reshape(shape, name="reshape")(outputs)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


# -- convolutional ----------------------------------------------------------------------

def _conv_encoder(inputs, shape, filters, kernel_size, activation):
    """Strided convolutions, each halving every spatial dimension.

    The input is zero-padded at the end up to a multiple of ``2 ** len(filters)`` so the
    decoder's transposed convolutions come back to the padded size exactly; the decoder
    crops the padding off again. Returns the feature map and the geometry the decoder needs.
    """
    spatial, channels = _spatial_layout(shape)
    conv = _conv_layers(len(spatial))
    step = 2 ** len(filters)
    padding = tuple(-size % step for size in spatial)
    hidden = inputs
    if shape != (*spatial, channels):
        hidden = layers.Reshape((*spatial, channels), name="add_channels")(hidden)
    if any(padding):
        hidden = conv["pad"](padding, "pad")(hidden)
    for index, width in enumerate(filters):
        hidden = conv["conv"](width, kernel_size, strides=2, padding="same",
                              activation=activation, name=f"encoder_conv_{index}")(hidden)
    return hidden, {"shape": shape, "spatial": spatial, "channels": channels,
                    "padding": padding, "feature_shape": tuple(hidden.shape[1:])}


def _conv_decoder(hidden, geometry, filters, kernel_size, activation, output_activation):
    """Transposed convolutions back to the input's shape (the mirror of the encoder)."""
    conv = _conv_layers(len(geometry["spatial"]))
    for index, width in enumerate(reversed(filters)):
        hidden = conv["transpose"](width, kernel_size, strides=2, padding="same",
                                   activation=activation, name=f"decoder_conv_{index}")(hidden)
    hidden = conv["conv"](geometry["channels"], kernel_size, padding="same",
                          activation=output_activation, name="reconstruction")(hidden)
    if any(geometry["padding"]):
        hidden = conv["crop"](geometry["padding"], "crop")(hidden)
    if tuple(hidden.shape[1:]) != geometry["shape"]:
        hidden = layers.Reshape(geometry["shape"], name="reshape")(hidden)
    return hidden


def _dense_bridge(hidden, feature_shape, activation, name):
    """Flatten a feature map, and a function from a code back to that map's shape."""
    flat = layers.Flatten(name=f"{name}_flatten")(hidden)
    return flat, lambda code: layers.Reshape(feature_shape, name=f"{name}_reshape")(
        layers.Dense(math.prod(feature_shape), activation=activation,
                     name=f"{name}_expand")(code))


def build_conv_autoencoder(
    input_shape: int | tuple[int, ...],
    *,
    filters: tuple[int, ...] = (32, 64),
    kernel_size: int = 3,
    latent_dim: int | None = None,
    activation: str = "relu",
    output_activation: str | None = "sigmoid",
) -> "keras.Model":
    """A convolutional autoencoder: 1-D for traces, 2-D for images.

    The encoder is a stack of strided convolutions (each halves the length, or height
    and width); the decoder mirrors it with transposed convolutions and a final
    convolution to the input's channels. Any size works: the input is padded to a
    multiple of ``2 ** len(filters)`` and the output cropped back.

    Parameters
    ----------
    input_shape : int or tuple of int
        ``length``, ``(length,)``, ``(length, 1)``, ``(height, width)`` or
        ``(height, width, channels)``.
    filters : tuple of int, default (32, 64)
        Channels of the encoder's convolutions, outermost first.
    kernel_size : int, default 3
    latent_dim : int or None, default None
        With a number, the feature map is flattened to a dense linear code of this size
        (a real bottleneck, for anomaly scoring); with None the last feature map is the
        code.
    activation : str, default "relu"
    output_activation : str or None, default "sigmoid"

    Returns
    -------
    keras.Model
        Maps ``(batch, *input_shape)`` to the same shape; the code layer is named ``"code"``.
    """
    shape = normalise_input_shape(input_shape)
    filters = _check_widths("filters", filters)
    if latent_dim is not None and latent_dim < 1:
        raise ValueError(f"latent_dim must be at least 1 or None, got {latent_dim}")
    inputs = keras.Input(shape=shape, name="input")
    hidden, geometry = _conv_encoder(inputs, shape, filters, kernel_size, activation)
    if latent_dim is None:
        hidden = layers.Identity(name="code")(hidden)
    else:
        flat, expand = _dense_bridge(hidden, geometry["feature_shape"], activation, "bridge")
        hidden = expand(layers.Dense(latent_dim, name="code")(flat))
    outputs = _conv_decoder(hidden, geometry, filters, kernel_size, activation,
                            output_activation)
    return keras.Model(inputs, outputs, name="conv_autoencoder")


# -- variational ------------------------------------------------------------------------

@_REGISTER
class Sampling(layers.Layer):
    """The reparameterisation trick: ``z = mean + exp(log_var / 2) * epsilon``."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


def _sum_over_samples(values):
    """Sum over every axis but the batch axis."""
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


def gaussian_kl(z_mean, z_log_var):
    """KL divergence of N(z_mean, exp(z_log_var)) from the standard normal, per input
    (summed over the code), in nats. Works on tensors and on NumPy arrays."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


@_REGISTER
class VariationalAutoencoder(keras.Model):
    """An encoder to a Gaussian code, the reparameterisation trick and a decoder.

    The loss is the negative ELBO per input: binary cross-entropy of the reconstruction,
    summed over samples (nats per image for [0, 1] data), plus the KL divergence of the
    code's Gaussian from the standard normal prior. Training reports ``loss``,
    ``reconstruction_loss`` and ``kl_loss``. Data may be ``x`` or ``(inputs, targets)``
    (noisy inputs with clean targets for denoising).

    Called on inputs, the model decodes the code's mean (deterministic); in training it
    decodes a sample.

    Parameters
    ----------
    encoder : keras.Model
        Maps inputs to ``(z_mean, z_log_var)``.
    decoder : keras.Model
        Maps a code to a reconstruction.
    seed : int or None
        Seeds the sampling noise.
    """

    def __init__(self, encoder, decoder, *, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        # Built already: the encoder and decoder are built functional models.
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, inputs, training: bool = False):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        code = self.sampling([z_mean, z_log_var]) if training else z_mean
        return self.decoder(code, training=training)

    def elbo_terms(self, inputs, targets, training: bool = False):
        """Mean reconstruction loss and mean KL divergence over the batch."""
        z_mean, z_log_var = self.encoder(inputs, training=training)
        reconstruction = self.decoder(self.sampling([z_mean, z_log_var]), training=training)
        reconstruction_loss = ops.mean(_sum_over_samples(
            ops.binary_crossentropy(ops.cast(targets, reconstruction.dtype), reconstruction)))
        kl_loss = ops.mean(gaussian_kl(z_mean, z_log_var))
        return reconstruction_loss, kl_loss

    def _record(self, reconstruction_loss, kl_loss):
        self.loss_tracker.update_state(reconstruction_loss + kl_loss)
        self.reconstruction_tracker.update_state(reconstruction_loss)
        self.kl_tracker.update_state(kl_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        inputs, targets = _inputs_and_targets(data)
        with tf.GradientTape() as tape:
            reconstruction_loss, kl_loss = self.elbo_terms(inputs, targets, training=True)
            loss = reconstruction_loss + kl_loss
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._record(reconstruction_loss, kl_loss)

    def test_step(self, data):
        inputs, targets = _inputs_and_targets(data)
        return self._record(*self.elbo_terms(inputs, targets, training=False))

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "VariationalAutoencoder":
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def _inputs_and_targets(data):
    if isinstance(data, (tuple, list)):
        inputs = data[0]
        targets = data[1] if len(data) > 1 and data[1] is not None else inputs
        return inputs, targets
    return data, data


def build_vae(
    input_shape: int | tuple[int, ...],
    *,
    latent_dim: int = 2,
    filters: tuple[int, ...] = (32, 64),
    kernel_size: int = 3,
    dense_units: int = 64,
    activation: str = "relu",
    seed: int | None = None,
) -> VariationalAutoencoder:
    """A convolutional variational autoencoder (1-D for traces, 2-D for images).

    Encoder: the strided convolutions of :func:`build_conv_autoencoder`, a dense layer,
    then two linear heads for the code's mean and log-variance. Decoder: a dense layer
    back to the feature map and the transposed convolutions, with a sigmoid output (the
    loss is binary cross-entropy, so inputs belong in [0, 1]).

    Parameters
    ----------
    input_shape : int or tuple of int
    latent_dim : int, default 2
        Size of the code; 2 lets the decoded manifold be drawn.
    filters : tuple of int, default (32, 64)
    kernel_size : int, default 3
    dense_units : int, default 64
        Width of the dense layer on each side of the code.
    activation : str, default "relu"
    seed : int or None
        Seeds the sampling noise.

    Returns
    -------
    VariationalAutoencoder
        Compile it with an optimizer only; the model computes its own loss.
    """
    shape = normalise_input_shape(input_shape)
    filters = _check_widths("filters", filters)
    if latent_dim < 1 or dense_units < 1:
        raise ValueError(f"latent_dim and dense_units must be at least 1, got "
                         f"{latent_dim} and {dense_units}")
    inputs = keras.Input(shape=shape, name="input")
    hidden, geometry = _conv_encoder(inputs, shape, filters, kernel_size, activation)
    flat, expand = _dense_bridge(hidden, geometry["feature_shape"], activation, "bridge")
    flat = layers.Dense(dense_units, activation=activation, name="encoder_dense")(flat)
    z_mean = layers.Dense(latent_dim, name="z_mean")(flat)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(flat)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

    code = keras.Input(shape=(latent_dim,), name="code")
    hidden = layers.Dense(dense_units, activation=activation, name="decoder_dense")(code)
    outputs = _conv_decoder(expand(hidden), geometry, filters, kernel_size, activation,
                            "sigmoid")
    decoder = keras.Model(code, outputs, name="decoder")
    return VariationalAutoencoder(encoder, decoder, seed=seed, name="vae")


# -- one entry point --------------------------------------------------------------------

#: Model family name -> builder; the names are :class:`anomaly.choices.ModelFamily`'s.
BUILDERS: dict[str, Callable[..., Any]] = {
    "dense": build_dense_autoencoder,
    "conv": build_conv_autoencoder,
    "vae": build_vae,
}


def build_autoencoder(family: str, input_shape: int | tuple[int, ...], **options: Any):
    """Build the autoencoder of a family (``"dense"``, ``"conv"`` or ``"vae"``)."""
    if family not in BUILDERS:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(BUILDERS)}")
    return BUILDERS[family](input_shape, **options)


def encoder_of(model) -> "keras.Model":
    """The model from inputs to codes (the code's mean for a variational autoencoder)."""
    if isinstance(model, VariationalAutoencoder):
        return keras.Model(model.encoder.input, model.encoder.outputs[0], name="code_mean")
    return keras.Model(model.input, model.get_layer("code").output, name="encoder")


def code_size_of(model) -> int:
    """Numbers per code of a fitted autoencoder (its encoder's output)."""
    return math.prod(encoder_of(model).output_shape[1:])


def forward_model(model, *, with_code: bool = False) -> "keras.Model":
    """The model from inputs to reconstructions as scoring runs it: the model itself, or
    for a variational autoencoder a functional model decoding the code's mean (what
    calling it does outside training), which can be exported. ``with_code``: a dense
    autoencoder's model whose outputs are the reconstruction and the code (what a
    detector with a code memory scores by)."""
    if with_code:
        return keras.Model(model.input, [model.output, model.get_layer("code").output],
                           name="reconstruction_and_code")
    if isinstance(model, VariationalAutoencoder):
        return keras.Model(model.encoder.input, model.decoder(model.encoder.outputs[0]),
                           name="vae_mean_decoder")
    return model


def input_shape_of(model) -> tuple[int | None, ...]:
    """The model's input shape including the batch axis, e.g. ``(None, 28, 28)``."""
    if isinstance(model, VariationalAutoencoder):
        model = model.encoder
    return tuple(model.input_shape)
