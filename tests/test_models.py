"""The shared autoencoder builders: shapes, save/load, the VAE's loss, the noise of
denoising (its PSNR gain is tested end to end in tests/test_mnist.py)."""

from __future__ import annotations

import numpy as np
import pytest

import anomaly.model.networks as keras_models
from anomaly.model.denoising import add_noise

from conftest import synthetic_digits

keras = keras_models.keras


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    images, _ = synthetic_digits(512, seed=0)
    return images.astype(np.float32) / 255.0


@pytest.mark.parametrize("family", ["dense", "conv", "vae"])
@pytest.mark.parametrize("input_shape", [140, (96,), (30, 1), (28, 28), (27, 27), (32, 32, 1)])
def test_output_shape_equals_input_shape(family, input_shape):
    model = keras_models.build_autoencoder(family, input_shape)
    shape = keras_models.normalise_input_shape(input_shape)
    batch = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    assert tuple(model(batch).shape) == (3, *shape)
    assert keras_models.input_shape_of(model) == (None, *shape)


@pytest.mark.parametrize("family, options, code_shape", [
    ("dense", {"hidden_units": (64, 2)}, (2,)),
    ("conv", {"filters": (8, 16)}, (7, 7, 16)),
    ("conv", {"filters": (8, 16), "latent_dim": 5}, (5,)),
    ("vae", {"latent_dim": 3}, (3,)),
])
def test_encoder_gives_codes(family, options, code_shape):
    model = keras_models.build_autoencoder(family, (28, 28), **options)
    codes = keras_models.encoder_of(model)(np.zeros((4, 28, 28), dtype=np.float32))
    assert tuple(codes.shape) == (4, *code_shape)


def test_conv_is_one_dimensional_for_traces_and_two_for_images():
    trace_model = keras_models.build_conv_autoencoder(140)
    image_model = keras_models.build_conv_autoencoder((28, 28))
    assert isinstance(trace_model.get_layer("encoder_conv_0"), keras.layers.Conv1D)
    assert isinstance(image_model.get_layer("encoder_conv_0"), keras.layers.Conv2D)
    assert isinstance(image_model.get_layer("decoder_conv_0"), keras.layers.Conv2DTranspose)


@pytest.mark.parametrize("family", ["dense", "conv", "vae"])
def test_save_and_load_in_safe_mode_gives_identical_predictions(family, digits, tmp_path):
    model = keras_models.build_autoencoder(family, (28, 28))
    model.compile(optimizer="adam", loss=None if family == "vae" else "binary_crossentropy")
    model.fit(digits[:128], None if family == "vae" else digits[:128], epochs=1,
              batch_size=64, verbose=0)  # trained weights, not the initial ones
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(digits[:16], verbose=0),
                                  model.predict(digits[:16], verbose=0))


def test_vae_loss_decreases_and_reports_both_terms(digits):
    keras.utils.set_random_seed(0)
    model = keras_models.build_vae((28, 28), latent_dim=2, filters=(8, 16), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(digits[:256], epochs=8, batch_size=64, verbose=0).history
    assert {"loss", "reconstruction_loss", "kl_loss"} <= set(history)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    # The KL term the model reports is the closed form on its encoder's outputs.
    evaluated = model.evaluate(digits[:256], batch_size=64, verbose=0, return_dict=True)
    z_mean, z_log_var = (part.astype(np.float64)
                         for part in model.encoder.predict(digits[:256], verbose=0))
    kl = -0.5 * (1 + z_log_var - z_mean ** 2 - np.exp(z_log_var)).sum(axis=1)
    assert evaluated["kl_loss"] == pytest.approx(kl.mean(), rel=1e-4)
    assert kl.mean() > 0.1  # the code is used, not collapsed onto the prior


def test_add_noise_is_clipped_and_seeded():
    clean = np.full((50, 28, 28), 0.5, dtype=np.float32)
    noisy = add_noise(clean, 0.4, np.random.default_rng(0))
    assert noisy.min() >= 0 and noisy.max() <= 1 and noisy.std() > 0.2
    np.testing.assert_array_equal(noisy, add_noise(clean, 0.4, np.random.default_rng(0)))
    assert add_noise(clean, 5.0, np.random.default_rng(0), clip=(-1, 2)).min() == -1
    with pytest.raises(ValueError, match="noise_factor"):
        add_noise(clean, -0.1, np.random.default_rng(0))


@pytest.mark.parametrize("call, message", [
    (lambda: keras_models.build_autoencoder("lstm", 10), "unknown model family 'lstm'"),
    (lambda: keras_models.build_dense_autoencoder(0), "input_shape"),
    (lambda: keras_models.build_conv_autoencoder((28, 28), filters=()), "filters"),
    (lambda: keras_models.build_vae(140, latent_dim=0), "latent_dim"),
])
def test_bad_builder_arguments_are_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
