"""``anomaly mnist ...``: train an autoencoder on MNIST digits, measure it, draw it.

Like the main command line, this module imports nothing heavy at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..choices import MAX_SEED, ModelFamily
from .options import Quiet, SavedModelDir, finite

app = typer.Typer(
    name="mnist",
    help="Autoencoders on MNIST digits: train one, measure it on held-out digits, draw it.",
    no_args_is_help=True,
)


def _digits(value: Optional[str]) -> Optional[list[int]]:
    if value is None:
        return None
    try:
        digits = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise typer.BadParameter(f"expected digits separated by commas, like 1,7; got {value!r}")
    if not digits or not all(0 <= digit <= 9 for digit in digits) or len(digits) == 10:
        raise typer.BadParameter(f"expected some (not all) of the digits 0-9, got {value!r}")
    return digits


@app.command()
def train(
    model: Annotated[ModelFamily, typer.Option(
        help="Autoencoder family: dense (2-D code by default), conv or vae.")] = ModelFamily.dense,
    denoise: Annotated[float, typer.Option(
        metavar="FACTOR", callback=lambda value: finite(value, "--denoise", minimum=0.0),
        help="Train as a denoising autoencoder with Gaussian noise of this standard "
             "deviation (pixels in [0, 1], clipped), clean targets. 0 = off.")] = 0.0,
    latent_dim: Annotated[Optional[int], typer.Option(
        min=1, help="Code size. Default: 2 for dense and vae; for conv, the last feature map.",
        show_default=False)] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 10,
    model_dir: SavedModelDir = Path("mnist-model"),
    report: Annotated[Optional[Path], typer.Option(
        dir_okay=False, help="Also write the held-out figures as JSON here.")] = None,
    data: Annotated[Optional[Path], typer.Option(
        help="Keras mnist.npz, or a directory of the IDX files (.gz or raw). Default: the "
             "Keras cache, then ../shared/data/mnist or $ANOMALY_DATA_DIR/mnist.",
        show_default=False)] = None,
    normal_digits: Annotated[Optional[str], typer.Option(
        metavar="DIGITS", callback=_digits,
        help="Train on these digits only (e.g. 1,7) and report how well the reconstruction "
             "error flags the other held-out digits as anomalies.", show_default=False)] = None,
    picture_dir: Annotated[Optional[Path], typer.Option(
        file_okay=False, help="Where to write the PNG pictures. Default: the model directory.",
        show_default=False)] = None,
    train_size: Annotated[Optional[int], typer.Option(
        min=2, help="Use only the first N training images (quick runs).",
        show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per training batch.")] = 128,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train an autoencoder on MNIST, save it, and report held-out figures and pictures.

    Figures: binary cross-entropy, MSE and PSNR of the reconstructions; with --denoise,
    PSNR of the noisy inputs and of the outputs; with a 2-D code, 5-nearest-neighbour
    digit accuracy on the codes; for the VAE, the negative ELBO and its two terms; with
    --normal-digits, ROC-AUC, precision, recall and F1 of the anomaly flags.
    """
    from ..io.writers import check_can_create_directory, check_writable, write_json
    from ..mnist.data import load_mnist
    from ..mnist.train import PICTURE_NAMES
    from ..model._tensorflow import require_tensorflow
    from ..model.directory import fitting

    require_tensorflow()  # Before the data is read, not after.

    def say(message: str) -> None:
        if not quiet:
            typer.echo(message)

    # Every destination is checked before the data is read and the model trained, and the
    # model's lock held until its pictures are written beside it.
    if report is not None:
        check_writable(report)
    if picture_dir is not None:
        check_can_create_directory(picture_dir)
    with fitting(model_dir, companions=PICTURE_NAMES):
        split = load_mnist(data)
        say(f"Data: {split.source}; {split.note}.")

        from ..mnist.train import evaluate, make_detector, save_pictures, training_images
        from ..model import Provenance

        train_images, train_labels = training_images(split, normal_digits=normal_digits,
                                                     train_size=train_size)
        digits = f" of the digits {','.join(map(str, normal_digits))}" if normal_digits else ""
        noise = f", denoising with noise factor {denoise:g}" if denoise else ""
        say(f"Training a {model.value} autoencoder on {len(train_images):,} images{digits} for "
            f"{epochs} epochs{noise}...")
        detector = make_detector(model.value, latent_dim=latent_dim, epochs=epochs,
                                 noise_factor=denoise, batch_size=batch_size, seed=seed)
        detector.fit(train_images)
        trained_on = ("; trained on the digits " + ",".join(map(str, normal_digits))
                      if normal_digits else "")
        detector.save(model_dir, provenance=Provenance(
            data=f"{split.source}; {split.note}{trained_on}", rows_read=len(train_images)),
                      companions=PICTURE_NAMES)
        say(f"Trained in {detector.training_.fit_seconds:.1f} s; model saved to {model_dir}/")

        evaluation = evaluate(detector, split, (train_images, train_labels),
                              normal_digits=normal_digits, seed=seed)
        pictures = save_pictures(detector, evaluation, picture_dir or model_dir, seed=seed)
        figures = evaluation.report | {
            "model": model.value, "latent_dim": latent_dim, "epochs": epochs,
            "noise_factor": denoise, "seed": seed, "data": split.source, "split": split.note,
            "train_images": len(train_images), "model_dir": str(model_dir),
            "pictures": [str(path) for path in pictures],
        }
        say(format_figures(figures))
        for path in pictures:
            say(f"Wrote {path}")
    if report is not None:
        write_json(report, figures)
        say(f"Wrote {report}")


def format_figures(figures: dict) -> str:
    """The held-out figures as a few lines for the terminal."""
    held_out = figures["held_out"]
    lines = [f"Held-out ({held_out['images']:,} images): binary cross-entropy "
             f"{held_out['binary_crossentropy']:.4f}  MSE {held_out['mse']:.4f}  "
             f"PSNR {held_out['psnr_db']:.2f} dB"]
    if "denoising" in figures:
        denoising = figures["denoising"]
        lines.append(f"Denoising (noise factor {denoising['noise_factor']:g}): noisy inputs "
                     f"PSNR {denoising['noisy_psnr_db']:.2f} dB, outputs "
                     f"{denoising['denoised_psnr_db']:.2f} dB")
    if "latent" in figures:
        lines.append(f"2-D codes: 5-nearest-neighbour digit accuracy "
                     f"{figures['latent']['knn5_accuracy']:.4f}")
    if "vae" in figures:
        vae = figures["vae"]
        lines.append(f"VAE: negative ELBO {vae['negative_elbo']:.2f} nats/image = reconstruction "
                     f"{vae['reconstruction_loss']:.2f} + KL {vae['kl_loss']:.2f}")
    if "anomaly" in figures:
        from ..report.metrics import format_report

        anomaly = figures["anomaly"]
        lines.append(f"Anomalies = digits other than {','.join(map(str, anomaly['normal_digits']))}"
                     f", threshold {anomaly['threshold']:.6g} (mean + k x std)")
        lines.append(format_report(anomaly))
    return "\n".join(lines)
