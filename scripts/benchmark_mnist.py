#!/usr/bin/env python
"""Benchmark the autoencoder family on MNIST against the classic Keras recipes.

Protocol: the 10,000 real MNIST test images (IDX, ``../shared/data/mnist``), the first
8,000 to train and the last 2,000 held out; every method is trained and measured in the
same run, on the same split. The components are the package's own (``anomaly.mnist``):

- conv autoencoder, 10 epochs: held-out binary cross-entropy (bar <= 0.085), next to the
  classic 16-8-8 conv/max-pool recipe ("Building Autoencoders in Keras"), 10 epochs;
- denoising at noise factor 0.4, 10 epochs: held-out PSNR (bar >= 19 dB), next to the
  noisy inputs and the classic 32-32 conv/pool denoiser (one noisy copy), 10 epochs;
- dense autoencoder with a 2-D code: 5-NN digit accuracy on held-out codes (bar >= 0.60),
  next to the classic 784-128-64-10-2 recipe and PCA to 2-D;
- VAE: held-out negative ELBO (nats per image, and its terms) with a 2-D latent, next to
  the keras-io VAE recipe; sample quality of a VAE with a larger latent: a small CNN
  trained on the 8,000 images gives its mean top-class probability on 1,000 samples
  from the prior (bar >= 0.8, all ten digits present);
- image anomaly: train on the digits 1 and 7, score the held-out digits, ROC-AUC and F1
  at the mean + std threshold, next to PCA reconstruction error.

Usage::

    python scripts/benchmark_mnist.py [--data PATH] [--seed 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from anomaly.model.denoising import add_noise
from anomaly.model.errors import reconstruction_error
from anomaly.model.threshold import mean_plus_std_threshold
from anomaly.report.metrics import detection_report
from anomaly.mnist.data import load_mnist
from anomaly.mnist.metrics import binary_cross_entropy, knn_accuracy, negative_elbo, psnr
from anomaly.mnist.train import evaluate, make_detector

EPOCHS = 10
LATENT_EPOCHS = 30
VAE_EPOCHS = 30
SAMPLING_LATENT_DIM = 8
NORMAL_DIGITS = (1, 7)


def timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def ours(split, family, *, seed, normal_digits=None, **settings):
    """Fit the package's detector and return its held-out report and the detector."""
    from anomaly.mnist.train import training_images

    train = training_images(split, normal_digits=normal_digits)
    detector = make_detector(family, seed=seed, **settings)
    _, seconds = timed(lambda: detector.fit(train[0]))
    report = evaluate(detector, split, train, normal_digits=normal_digits, seed=seed).report
    return report, detector, seconds


def classic_conv_pool(keras, seed, encoder, decoder):
    """A classic conv/max-pool autoencoder: ``encoder`` filter counts, each conv then a
    2x2 pool; ``decoder`` ``(filters, padding)`` pairs, each conv then a 2x upsampling;
    a sigmoid conv to one channel."""
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = x = keras.Input((28, 28, 1))
    for filters in encoder:
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    for filters, padding in decoder:
        x = layers.Conv2D(filters, 3, activation="relu", padding=padding)(x)
        x = layers.UpSampling2D(2)(x)
    outputs = layers.Conv2D(1, 3, activation="sigmoid", padding="same")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def classic_conv(keras, seed):
    """The classic convolutional autoencoder: 16-8-8 conv/max-pool, a 4x4x8 code (the
    unpadded 16-filter conv brings 16x16 back to 14x14)."""
    return classic_conv_pool(keras, seed, (16, 8, 8), ((8, "same"), (8, "same"), (16, "valid")))


def classic_denoiser(keras, seed):
    """The classic denoiser: 32-32 conv/max-pool encoder, 32-32 conv/upsampling decoder."""
    return classic_conv_pool(keras, seed, (32, 32), ((32, "same"), (32, "same")))


def classic_dense_2d(keras, seed):
    """The classic deep dense autoencoder with a 2-D code: 784-128-64-10-2."""
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((784,))
    x = inputs
    for units in (128, 64, 10):
        x = layers.Dense(units, activation="relu")(x)
    code = layers.Dense(2, name="code")(x)
    x = code
    for units in (10, 64, 128):
        x = layers.Dense(units, activation="relu")(x)
    outputs = layers.Dense(784, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model, keras.Model(inputs, code)


def classic_vae(seed):
    """The keras-io VAE: conv 32-64 strided, Dense 16, 2-D latent, transposed decoder."""
    from anomaly.model.networks import VariationalAutoencoder, keras

    layers = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28))
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Dense(16, activation="relu")(layers.Flatten()(x))
    encoder = keras.Model(inputs, [layers.Dense(2)(x), layers.Dense(2)(x)])
    codes = keras.Input((2,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(codes)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(codes, layers.Reshape((28, 28))(x))
    model = VariationalAutoencoder(encoder, decoder, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam())
    return model


def digit_classifier(keras, images, labels, seed):
    """A small CNN trained on the training digits, to judge generated samples."""
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((28, 28)), layers.Reshape((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.3), layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=8, batch_size=128, verbose=0)
    return model


def sample_quality(classifier, decoder, latent_dim, seed, n=1000):
    codes = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype("float32")
    samples = decoder.predict(codes, verbose=0)
    probabilities = classifier.predict(samples, verbose=0)
    digits = np.bincount(probabilities.argmax(axis=1), minlength=10)
    return {"mean_top_probability": float(probabilities.max(axis=1).mean()),
            "digits_present": int((digits > 0).sum()), "digit_counts": digits.tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="mnist.npz or IDX directory (default: ../shared/data/mnist)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    seed = args.seed

    split = load_mnist(args.data)
    print(f"MNIST: {split.source}; {split.note}", flush=True)
    from anomaly.model.networks import keras

    train_x, train_y = split.train_images, split.train_labels
    test_x, test_y = split.test_images, split.test_labels
    results: dict = {"split": split.note, "seed": seed}
    rows: list[tuple[str, str, str, str, str]] = []

    def row(component, figure, value, classic, bar):
        rows.append((component, figure, value, classic, bar))
        print("  " + " | ".join((component, figure, value, classic, bar)), flush=True)

    # Conv autoencoder.
    report, _, seconds = ours(split, "conv", epochs=EPOCHS, seed=seed)
    model = classic_conv(keras, seed)
    _, classic_seconds = timed(lambda: model.fit(train_x[..., None], train_x[..., None],
                                                 epochs=EPOCHS, batch_size=128, verbose=0))
    classic_bce = binary_cross_entropy(test_x, model.predict(test_x[..., None], verbose=0))
    results["conv"] = {"ours": report["held_out"], "classic_bce": classic_bce,
                       "seconds": seconds, "classic_seconds": classic_seconds}
    row("conv autoencoder (32-64 strided, 10 epochs)", "held-out BCE",
        f"{report['held_out']['binary_crossentropy']:.4f}",
        f"{classic_bce:.4f} (16-8-8 conv/pool)", "<= 0.085")

    # Denoising.
    report, _, seconds = ours(split, "conv", epochs=EPOCHS, noise_factor=0.4, seed=seed)
    rng = np.random.default_rng(seed)
    model = classic_denoiser(keras, seed)
    noisy_train = add_noise(train_x, 0.4, rng)
    model.fit(noisy_train[..., None], train_x[..., None], epochs=EPOCHS, batch_size=128, verbose=0)
    noisy_test = add_noise(test_x, 0.4, np.random.default_rng(seed))
    classic_psnr = psnr(test_x, model.predict(noisy_test[..., None], verbose=0)[..., 0])
    denoising = report["denoising"]
    results["denoising"] = denoising | {"classic_psnr_db": classic_psnr, "seconds": seconds}
    row("denoising conv autoencoder, noise 0.4", "held-out PSNR",
        f"{denoising['denoised_psnr_db']:.2f} dB (noisy {denoising['noisy_psnr_db']:.2f} dB)",
        f"{classic_psnr:.2f} dB (32-32 conv/pool)", ">= 19 dB")

    # 2-D latent.
    report, _, seconds = ours(split, "dense", latent_dim=2, epochs=LATENT_EPOCHS, seed=seed)
    model, encoder = classic_dense_2d(keras, seed)
    flat_train, flat_test = train_x.reshape(-1, 784), test_x.reshape(-1, 784)
    model.fit(flat_train, flat_train, epochs=LATENT_EPOCHS, batch_size=128, verbose=0)
    classic_knn = knn_accuracy(encoder.predict(flat_train, verbose=0), train_y,
                               encoder.predict(flat_test, verbose=0), test_y)
    pca = PCA(n_components=2, random_state=0).fit(flat_train)
    pca_knn = knn_accuracy(pca.transform(flat_train), train_y, pca.transform(flat_test), test_y)
    results["latent_2d"] = {"ours": report["latent"]["knn5_accuracy"], "classic": classic_knn,
                            "pca": pca_knn, "seconds": seconds}
    row(f"dense 784-512-256-2, {LATENT_EPOCHS} epochs", "5-NN accuracy on 2-D codes",
        f"{report['latent']['knn5_accuracy']:.4f}",
        f"{classic_knn:.4f} (784-128-64-10-2); PCA-2D {pca_knn:.4f}", ">= 0.60")

    # VAE: negative ELBO with a 2-D latent, sample quality with a larger one.
    classifier = digit_classifier(keras, train_x, train_y, seed)
    classifier_accuracy = float(classifier.evaluate(test_x, test_y, verbose=0)[1])
    report, detector, seconds = ours(split, "vae", latent_dim=2, epochs=VAE_EPOCHS, seed=seed)
    model = classic_vae(seed)
    model.fit(train_x, epochs=VAE_EPOCHS, batch_size=128, verbose=0)
    classic = negative_elbo(model, test_x, seed=seed)
    results["vae_2d"] = {"ours": report["vae"], "classic": classic, "seconds": seconds,
                         "samples": sample_quality(classifier, detector.model_.decoder, 2, seed),
                         "classic_samples": sample_quality(classifier, model.decoder, 2, seed)}
    vae = report["vae"]
    row(f"VAE, 2-D latent, {VAE_EPOCHS} epochs", "held-out -ELBO nats/image (recon + KL)",
        f"{vae['negative_elbo']:.1f} ({vae['reconstruction_loss']:.1f} + {vae['kl_loss']:.1f})",
        f"{classic['negative_elbo']:.1f} ({classic['reconstruction_loss']:.1f} + "
        f"{classic['kl_loss']:.1f}) (keras-io VAE)", "-")
    report, detector, seconds = ours(split, "vae", latent_dim=SAMPLING_LATENT_DIM,
                                     epochs=VAE_EPOCHS, seed=seed)
    quality = sample_quality(classifier, detector.model_.decoder, SAMPLING_LATENT_DIM, seed)
    results["vae_sampling"] = {"latent_dim": SAMPLING_LATENT_DIM, "ours": report["vae"],
                               "samples": quality, "classifier_accuracy": classifier_accuracy,
                               "seconds": seconds}
    vae = report["vae"]
    row(f"VAE, {SAMPLING_LATENT_DIM}-D latent, {VAE_EPOCHS} epochs", "held-out -ELBO nats/image",
        f"{vae['negative_elbo']:.1f} ({vae['reconstruction_loss']:.1f} + {vae['kl_loss']:.1f})",
        "-", "-")
    classic_quality = results["vae_2d"]["classic_samples"]
    row(f"VAE, {SAMPLING_LATENT_DIM}-D latent: 1,000 samples",
        f"mean top-class probability (CNN, held-out accuracy {classifier_accuracy:.3f}); digits present",
        f"{quality['mean_top_probability']:.3f}; {quality['digits_present']}/10",
        f"{classic_quality['mean_top_probability']:.3f}; {classic_quality['digits_present']}/10 "
        "(keras-io VAE, 2-D)", ">= 0.8; 10/10")

    # Image anomaly.
    digits = ",".join(map(str, NORMAL_DIGITS))
    report, detector, seconds = ours(split, "conv", latent_dim=16, epochs=EPOCHS, seed=seed,
                                     normal_digits=NORMAL_DIGITS)
    anomaly = report["anomaly"]
    normal = train_x[np.isin(train_y, NORMAL_DIGITS)].reshape(-1, 784)
    pca = PCA(n_components=16, random_state=0).fit(normal)
    errors = lambda x: reconstruction_error(x, pca.inverse_transform(pca.transform(x)))  # noqa: E731
    scores = errors(test_x.reshape(-1, 784))
    truth = (~np.isin(test_y, NORMAL_DIGITS)).astype(int)
    pca_report = detection_report(truth, scores, scores > mean_plus_std_threshold(errors(normal)))
    results["anomaly"] = {"ours": anomaly, "pca": pca_report, "seconds": seconds}
    row(f"image anomaly: conv, code 16, normal digits {digits}", "ROC-AUC; F1 at mean+std",
        f"{anomaly['roc_auc']:.4f}; {anomaly['f1']:.4f}",
        f"{pca_report['roc_auc']:.4f}; {pca_report['f1']:.4f} (PCA 16, same rule)", "-")

    print("\n| component | figure | anomaly | classic recipe (same run) | bar |\n|---|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
