"""The ``anomaly`` command line: fit a detector on normal beats, score batches, plot.

Each command parses options, calls the library and prints a short summary; the library's
own errors become one ``Error:`` line on stderr and an exit code. Nothing heavy is imported
at module level: ``anomaly --help`` never loads TensorFlow, pandas or NumPy.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # Typer >= 0.20 carries its own copy of click; older releases use click itself.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_exceptions

from .exceptions import (
    EXIT_BAD_INPUT,
    EXIT_BAD_MODEL,
    EXIT_INTERNAL,
    EXIT_OK,
    AnomalyError,
)

EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} success; {EXIT_BAD_INPUT} bad usage or bad input "
    f"(the file and what is wrong are named on stderr); {EXIT_BAD_MODEL} model directory "
    f"missing or unusable; {EXIT_INTERNAL} internal error (a bug: rerun with --debug)."
)

app = typer.Typer(
    name="anomaly",
    help="Find abnormal heartbeats in ECG traces with an autoencoder.\n\n"
    "Train on normal beats with 'anomaly fit', then score batches with 'anomaly score'.",
    epilog=EXIT_CODES_HELP,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}

# -- shared options ---------------------------------------------------------------------

ModelDir = Annotated[
    Path,
    typer.Option("--model-dir", "-m", help="Model directory (model.keras + metadata.json).",
                 file_okay=False),
]
LabelColumn = Annotated[
    Optional[str],
    typer.Option(help="Label column: a header name, a 0-based index, 'first' or 'last'. "
                      "Default: no labels."),
]
NormalLabel = Annotated[
    str, typer.Option(help="Label value meaning normal; any other value is an anomaly.")
]
Header = Annotated[
    Optional[bool],
    typer.Option("--header/--no-header",
                 help="Whether the first row is a header. Default: detected."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def _input_file(help_text: str):
    return typer.Argument(help=help_text, exists=True, dir_okay=False, readable=True,
                          show_default=False)


def _finite(value: float, option: str) -> float:
    if not math.isfinite(value):
        raise typer.BadParameter(f"{option} must be a finite number, got {value}")
    return value


def _say(message: str, quiet: bool = False) -> None:
    if not quiet:
        typer.echo(message)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"anomaly {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks and TensorFlow's own log lines on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          is_eager=True, callback=_print_version)] = False,
) -> None:
    _state["debug"] = debug
    if debug:
        os.environ["ANOMALY_DEBUG"] = "1"


# -- commands ---------------------------------------------------------------------------

@app.command()
def fit(
    normal_csv: Annotated[Path, _input_file("CSV (or .csv.gz) of normal heartbeats, one per row.")],
    model_dir: ModelDir = Path("model"),
    label_column: LabelColumn = None,
    normal_label: NormalLabel = "1",
    header: Header = None,
    threshold_k: Annotated[float, typer.Option(
        help="k in the threshold mean + k * std of the training errors.",
        callback=lambda value: _finite(value, "--threshold-k"))] = 1.0,
    epochs: Annotated[int, typer.Option(min=1, help="Most training epochs (early stopping may end sooner).")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed and data give the same model.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a detector on normal beats and save it to the model directory.

    With --label-column, only rows carrying the normal label are used for training.
    """
    from .detector import AutoencoderDetector
    from .scoring import load_training_data

    data = load_training_data(normal_csv, label_column=label_column,
                              normal_label=normal_label, header=header)
    skipped = ""
    if data.beats.labels is not None:
        skipped = (f"; skipped {data.n_skipped} rows whose label in column "
                   f"{data.beats.label_name!r} is not {normal_label!r}")
    _say(f"Read {len(data.beats)} rows of {data.beats.n_samples} samples from {normal_csv}"
         f"{skipped}.", quiet)
    _say(f"Training on {len(data.normal)} normal rows...", quiet)
    detector = AutoencoderDetector(threshold_k=threshold_k, epochs=epochs, seed=seed)
    detector.fit(data.normal)
    detector.save(model_dir, training_file=normal_csv,
                  extra={"rows_read": len(data.beats), "rows_skipped": data.n_skipped})
    _say(
        f"Trained {detector.epochs_trained_} epochs in {detector.fit_seconds_:.1f} s.\n"
        f"Threshold {_fmt(detector.threshold_)} = mean {_fmt(detector.train_error_mean_)} "
        f"+ {threshold_k:g} x std {_fmt(detector.train_error_std_)} of the training errors.\n"
        f"Model saved to {model_dir}/",
        quiet,
    )


@app.command(epilog=EXIT_CODES_HELP)
def score(
    batch_csv: Annotated[Path, _input_file("CSV (or .csv.gz) of heartbeats to score, one per row.")],
    model_dir: ModelDir = Path("model"),
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Scores CSV: row, score, is_anomaly[, label]; '-' for stdout.",
        dir_okay=False)] = Path("scores.csv"),
    report: Annotated[Optional[Path], typer.Option(
        help="Also write a JSON report (counts, threshold, metrics).", dir_okay=False)] = None,
    plot_dir: Annotated[Optional[Path], typer.Option(
        help="Also write PNG plots (reconstructions, score histogram) here.",
        file_okay=False)] = None,
    label_column: LabelColumn = None,
    normal_label: NormalLabel = "1",
    header: Header = None,
    quiet: Quiet = False,
) -> None:
    """Score every beat of a batch: reconstruction error and an anomaly flag per row.

    With --label-column, also reports precision, recall, F1, accuracy, ROC-AUC and the
    confusion matrix, with the anomaly class as the positive class.
    """
    from .writers import check_can_create_directory, check_writable

    # Every destination is checked before the model loads, so a typo costs no time.
    to_stdout = str(output) == "-"
    for destination in ([] if to_stdout else [output]) + ([report] if report else []):
        check_writable(destination)
    if plot_dir is not None:
        check_can_create_directory(plot_dir)
    detector = _load_detector(model_dir)
    from .readers import read_beats
    from .scoring import score_beats

    beats = read_beats(batch_csv, label_column=label_column, header=header)
    batch = score_beats(detector, beats, normal_label=normal_label)
    batch.extra["model_dir"] = str(model_dir)
    batch.extra["model_sha256"] = detector.metadata_["model_sha256"]
    _write_outputs(batch, detector, output, report, plot_dir)
    # With scores on stdout the summary goes to stderr, so the two never mix.
    _print_summary(batch, output, report, plot_dir, quiet=quiet, err=to_stdout)


@app.command()
def plot(
    batch_csv: Annotated[Path, _input_file("CSV (or .csv.gz) of heartbeats to plot.")],
    model_dir: ModelDir = Path("model"),
    plot_dir: Annotated[Path, typer.Option(help="Directory for the PNG files.",
                                           file_okay=False)] = Path("plots"),
    label_column: LabelColumn = None,
    normal_label: NormalLabel = "1",
    header: Header = None,
    quiet: Quiet = False,
) -> None:
    """Draw beats over their reconstructions and the score histogram, as PNG files.

    Writes normal_beat.png (a typical normal beat), anomalous_beat.png (the most
    anomalous beat) and score_histogram.png (all scores with the threshold line).
    """
    from .plots import save_batch_plots
    from .readers import read_beats
    from .scoring import score_beats

    detector = _load_detector(model_dir)
    beats = read_beats(batch_csv, label_column=label_column, header=header)
    batch = score_beats(detector, beats, normal_label=normal_label)
    for path in save_batch_plots(detector, batch, plot_dir):
        _say(f"Wrote {path}", quiet)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its model, scores, "
                                               "report and plots.", file_okay=False)] = Path("anomaly-demo"),
    synthetic: Annotated[bool, typer.Option(
        "--synthetic", help="Use generated beats even when ECG5000 is available.")] = False,
    epochs: Annotated[int, typer.Option(min=1, help="Most training epochs.")] = 200,
    quiet: Quiet = False,
) -> None:
    """Run the whole path offline: fit, score, report and plots.

    Uses ECG5000 when it is on this machine (../shared/data or $ANOMALY_DATA_DIR),
    otherwise synthetic beats generated in-process, and says which.
    """
    from .demo import run_demo

    run_demo(workdir, force_synthetic=synthetic, epochs=epochs,
             echo=lambda message: _say(message, quiet))


# -- helpers ----------------------------------------------------------------------------

def _load_detector(model_dir: Path):
    from .detector import AutoencoderDetector

    return AutoencoderDetector.load(model_dir)


def _write_outputs(batch, detector, output: Path, report: Optional[Path],
                   plot_dir: Optional[Path]) -> None:
    from .writers import write_json, write_scores_csv, write_scores_rows

    labels = batch.beats.labels
    label_name = batch.beats.label_name if batch.beats.layout.has_header else "label"
    # Plots and report first, scores last: a failure part way leaves no new scores file.
    if plot_dir is not None:
        from .plots import save_batch_plots

        batch.extra["plots"] = [str(path) for path in save_batch_plots(detector, batch, plot_dir)]
    if report is not None:
        write_json(report, batch.summary())
    if str(output) == "-":
        try:
            write_scores_rows(sys.stdout, 1, batch.scores, batch.is_anomaly, labels, label_name,
                              header=True)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away ('anomaly score ... -o - | head'): not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        write_scores_csv(output, batch.scores, batch.is_anomaly, labels, label_name)


def _print_summary(batch, output, report, plot_dir, *, quiet: bool, err: bool) -> None:
    if quiet:
        return
    from .metrics import format_report

    share = batch.n_anomalies / len(batch.beats)
    lines = [
        f"Scored {len(batch.beats)} rows from {batch.beats.path}: {batch.n_anomalies} anomalies "
        f"({share:.1%}) above the threshold {_fmt(batch.threshold)}.",
    ]
    if batch.metrics is not None:
        lines.append(format_report(batch.metrics))
    if str(output) != "-":
        lines.append(f"Scores written to {output}")
    if report is not None:
        lines.append(f"Report written to {report}")
    if plot_dir is not None:
        lines.append(f"Plots written to {plot_dir}/")
    typer.echo("\n".join(lines), err=err)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every failure into one line and an exit code."""
    try:
        result = app(args=argv, prog_name="anomaly", standalone_mode=False)
    except click_exceptions.ClickException as error:
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return _fail(f"{error.format_message()}{hint}", EXIT_BAD_INPUT)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", 130)
    except AnomalyError as error:
        return _fail(str(error), error.exit_code)
    except OSError as error:
        # Disk full, permission changed mid-run: the environment, not a bug.
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"{where}{error.strerror or error}", EXIT_BAD_INPUT)
    except Exception as error:  # A bug: still one line, the traceback with --debug.
        return _fail(f"internal error ({type(error).__name__}: {error}); "
                     "rerun with --debug and report it", EXIT_INTERNAL)
    return result if isinstance(result, int) else EXIT_OK


def _fail(message: str, code: int) -> int:
    if _state["debug"]:
        traceback.print_exc()
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    typer.echo(f"Error: {first_line}", err=True)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
