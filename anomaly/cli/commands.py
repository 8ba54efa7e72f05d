"""The ``anomaly`` command line: fit a detector on normal beats, score batches, plot.

Each command parses options, calls the library and prints a short summary; the library's
own errors become one ``Error:`` line on stderr and an exit code. Nothing heavy is imported
at module level: ``anomaly --help`` never loads TensorFlow, pandas or NumPy.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

try:  # Typer >= 0.20 carries its own copy of click; older releases use click itself.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_exceptions

from ..choices import (CODE_DISTANCE_MIN_BEATS, MAX_CALIBRATION_BEATS, MAX_LOCAL_WORKERS,
                       MAX_SEED, BadRowPolicy, CodeDistance, EngineName, ErrorMetric,
                       LogFormat, ModelFamily, OutputFormat, RuntimeName, ThresholdSource)
from ..exceptions import (
    EXIT_ANOMALIES_FOUND,
    EXIT_BAD_INPUT,
    EXIT_BAD_MODEL,
    EXIT_DOWNLOAD_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_TERMINATED,
    AnomalyError,
    InputError,
    Terminated,
    UsageError,
)
from ..recordings import RECORDING_THRESHOLD_K, RECORDING_THRESHOLD_SOURCE
from .options import (
    EveryBeat,
    Header,
    LabelColumn,
    ModelDir,
    NormalLabel,
    Quiet,
    RecordingOptions,
    RrContext,
    Runtime,
    SavedModelDir,
    SignalCsv,
    finite,
    input_file,
    recording_options,
)

if TYPE_CHECKING:
    from ..holter.analysis import SpanFibrillation

EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} success; {EXIT_ANOMALIES_FOUND} anomalies found (only with "
    f"score --fail-on-anomaly); {EXIT_BAD_INPUT} bad usage or bad input "
    f"(the file and what is wrong are named on stderr); {EXIT_BAD_MODEL} model directory "
    f"missing or unusable; {EXIT_INTERNAL} internal error (a bug: rerun with --debug); "
    f"{EXIT_LOCKED} another run is writing the same model or output; "
    f"{EXIT_DOWNLOAD_FAILED} a download failed (data fetch); {EXIT_INTERRUPTED} "
    f"interrupted; {EXIT_TERMINATED} terminated (SIGTERM)."
)

SCORE_EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} success; {EXIT_ANOMALIES_FOUND} anomalies found (only with "
    f"--fail-on-anomaly); {EXIT_BAD_INPUT} bad usage or bad input; {EXIT_BAD_MODEL} model "
    f"directory missing or unusable; {EXIT_INTERNAL} internal error; {EXIT_LOCKED} another "
    f"run is writing the same output; {EXIT_INTERRUPTED} interrupted; {EXIT_TERMINATED} "
    "terminated (SIGTERM)."
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


def _say(message: str, quiet: bool = False, err: bool = False) -> None:
    if not quiet:
        typer.echo(message, err=err)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

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
    else:
        from .. import logs

        logs.route_warnings()


# -- commands ---------------------------------------------------------------------------

@app.command()
@recording_options(window=True)
def fit(
    normal_csv: Annotated[str, typer.Argument(
        metavar="INPUT", show_default=False,
        help="Normal heartbeats: a beats CSV (or .csv.gz), one beat per row; or a recording "
             "(a WFDB record, an .edf file, a signal .csv with --signal), cut into beats. A "
             "bare MIT-BIH record name (208) not found here is taken from the MIT-BIH data "
             "on this machine ($ANOMALY_DATA_DIR, the download cache, ../shared/data).")],
    model_dir: SavedModelDir = Path("model"),
    label_column: LabelColumn = None,
    normal_label: NormalLabel = "1",
    header: Header = None,
    threshold_k: Annotated[Optional[float], typer.Option(
        help="k in the threshold mean + k * std of normal beats' errors (see "
             "--threshold-source). Default: 1, the TensorFlow tutorial's rule; "
             f"{RECORDING_THRESHOLD_K:g} for a recording fitted without labels on its "
             "dominant beats (measured on MIT-BIH; see the README).",
        show_default=False,
        callback=lambda value: value if value is None else finite(value, "--threshold-k"))
    ] = None,
    threshold_source: Annotated[Optional[ThresholdSource], typer.Option(
        help="Whose errors set the threshold: the training beats'; those of 20% of the beats "
             "held out of training; (heldout-refit) those of a first model trained "
             "without them, the model saved then trained on every beat (two fits); or "
             "(heldout-folds) every beat's, each held out of one of five first models, the "
             "model saved then trained on every beat (six fits; over 6,250 beats, "
             "heldout-refit's). Default: heldout-folds; "
             f"{RECORDING_THRESHOLD_SOURCE} for a recording fitted without labels on its "
             "dominant beats (its k was chosen with it).",
        show_default=False)
    ] = None,
    threshold_winsorise: Annotated[Optional[int], typer.Option(
        metavar="COUNT", min=0, max=MAX_CALIBRATION_BEATS,
        help="How many of the largest of those errors count as the largest of the others "
             "before mean + k * std; 1: no one beat, however high its score, moves the "
             "threshold (steadier for a model of many patients' beats; see the README). "
             "Default: 0, every error as it is.",
        show_default=False)
    ] = None,
    error_metric: Annotated[ErrorMetric, typer.Option(
        help="The error in the score: the mean absolute (mae) or squared (mse) difference "
             "of a beat's scaled samples from their reconstruction; auto: mse when the score "
             "has the code's distance, mae without. See the README for what each measured.")
    ] = ErrorMetric.auto,
    code_distance: Annotated[Optional[CodeDistance], typer.Option(
        help="Multiply the score by how far a beat's code and samples lie from the "
             "training beats' (on), not (off), or when a dense model is fitted on at least "
             f"{CODE_DISTANCE_MIN_BEATS} beats (auto). Default: auto; off for a recording "
             "fitted without labels (measured; see the README).",
        show_default=False)
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Most training epochs (early stopping may end sooner).")] = 200,
    seed: Annotated[int, typer.Option(
        min=0, max=MAX_SEED, help="Random seed; the same seed and data give the same model.")
    ] = 0,
    model: Annotated[ModelFamily, typer.Option(
        help="Autoencoder family: dense, conv (1-D convolutional) or vae (variational).")
    ] = ModelFamily.dense,
    denoise: Annotated[float, typer.Option(
        metavar="FACTOR",
        help="Train as a denoising autoencoder: Gaussian noise of this standard deviation "
             "(in min-max-scaled units) on the inputs, clean targets. 0 = off.",
        callback=lambda value: finite(value, "--denoise", minimum=0.0))] = 0.0,
    recording: RecordingOptions = RecordingOptions(),
    signal: SignalCsv = False,
    rr_context: RrContext = None,
    every_beat: EveryBeat = False,
    quiet: Quiet = False,
) -> None:
    """Train a detector on normal beats and save it to the model directory.

    With --label-column, only rows carrying the normal label are used for training (on a
    recording: --annotations atr --label-column label --normal-label N). A recording
    without labels is trained on the beats of its dominant rhythm and shape (premature
    beats and beats of another shape left out) unless --every-beat.

    A model fitted on a recording keeps its beat window, so 'anomaly score' cuts beats the
    same way, and (unless --no-rr-context) scores each beat's timing with its shape, as
    does one fitted on a beats CSV with the RR columns ('anomaly beats' writes them).
    Scoring is the same for every --model: the per-beat error (--error-metric) against
    mean + k * std.
    """
    from .. import logs
    from ..io.readers import read_normal_beats
    from ..model import AutoencoderDetector, Provenance, RecordingOrigin
    from ..model.context import beat_context
    from ..model.directory import fitting
    from ..model.scaling import scaling_note
    from ..model.threshold import calibration_note, fallback_reason, fits_said
    from ..progress import epochs_progress
    from ..recordings.rhythm import RR_CONTEXT
    from ..model._tensorflow import require_tensorflow
    from ..recordings.signals import is_recording, locate_recording

    logs.configure(quiet=quiet)  # The readers' warnings go to stderr, as score's do.
    require_tensorflow()  # Before the data is read, not after.

    # A bad destination fails before the training, a second fit of the same model at once
    # (exit 5), and a failed fit leaves no directory it made.
    with fitting(model_dir):
        normal_csv = locate_recording(normal_csv)
        if is_recording(normal_csv, signal):
            from ..recordings.reading import read_normal_recording_beats

            rr_context = _rr_context_for(rr_context, model, denoise)
            segment = recording.segment()
            data, read = read_normal_recording_beats(
                normal_csv, segment, label_column=label_column, normal_label=normal_label,
                context=beat_context(RR_CONTEXT) if rr_context else None,
                every_beat=every_beat)
            fibrillation = _warn_of_fibrillation(normal_csv, segment, rr_context)
            origin = RecordingOrigin(
                read.window, read.lead.name, segment.start, segment.stop,
                read.counts.dropped_at_edges, fs=read.lead.fs,
                analysable_s=None if fibrillation is None else fibrillation.analysable_s,
                in_af_s=None if fibrillation is None else fibrillation.seconds)
            digest = read.sha256()
            what = (f"{data.n_read} beats of {read.lead.describe(read.other_leads)} "
                    f"between {read.span}")
        else:
            _no_recording_options(recording.given() + (["--every-beat"] if every_beat else []))
            wanted = _rr_context_for(rr_context, model, denoise)
            data = read_normal_beats(_readable_file(normal_csv), label_column=label_column,
                                     normal_label=normal_label, header=header,
                                     context=beat_context(RR_CONTEXT) if wanted else None,
                                     context_required=bool(rr_context))
            origin, digest = None, _sha256_of_files([normal_csv])
            with_context = " and their RR context" if data.context else ""
            what = (f"{data.n_read} rows of {data.normal.shape[1] - len(data.context)} "
                    f"samples{with_context}")
        skipped = f"; skipped {data.left_out}" if data.skipped else ""
        _say(f"Read {what} from {normal_csv}{skipped}.", quiet)
        if origin is not None and label_column is None and not every_beat:
            from ..recordings.patient import few_dominant_note

            note = few_dominant_note(len(data.normal), data.n_read)
            if note is not None:
                typer.echo(f"Warning: {normal_csv}: {note}", err=True)
        context = data.context
        note = scaling_note(data.normal, context)
        if note is not None:
            typer.echo(f"Warning: {normal_csv}: {note}", err=True)
        noise = f", denoising with noise factor {denoise:g}" if denoise else ""
        unit = "rows" if origin is None else "beats"  # A recording's are beats.
        _say(f"Training on {len(data.normal)} normal {unit} ({model.value} "
             f"autoencoder{noise})...", quiet)
        # Each setting given, else the one measured for beats chosen as these were, else
        # the detector's own.
        given = {"threshold_k": threshold_k,
                 "threshold_source": None if threshold_source is None else threshold_source.value,
                 "threshold_winsorise": threshold_winsorise,
                 "code_distance": None if code_distance is None else code_distance.value}
        detector = AutoencoderDetector(**{
            "model": model.value, "noise_factor": denoise, "epochs": epochs, "seed": seed,
            "error_metric": error_metric.value, "context": context, **data.settings,
            **{name: value for name, value in given.items() if value is not None}})
        try:
            with epochs_progress(not quiet) as progress:
                detector.fit(data.normal, on_epoch=progress)
        except InputError as error:
            raise InputError(f"{normal_csv}: {error}") from None
        detector.save(model_dir, provenance=Provenance(
            normal_csv, digest, rows_read=data.n_read, rows_skipped=data.n_skipped,
            recording=origin))
        training, calibration = detector.training_, detector.calibration_
        _say(
            f"Trained {training.epochs} of at most {training.epochs_planned} epochs "
            f"(batches of {training.batch_size}) in {training.fit_seconds:.1f} s"
            f"{fits_said(calibration, detector.heldout_fraction)}.\n"
            f"Network: {_network(detector)}.\n"
            f"Score: {detector.score_description}.\n"
            f"Threshold {_fmt(calibration.threshold)} = mean {_fmt(calibration.mean)} "
            f"+ {detector.threshold_k:g} x std {_fmt(calibration.std)} of the scores of "
            f"{calibration.describe()}.\n"
            f"Model saved to {model_dir}/ ({_model_files(model_dir)}).",
            quiet,
        )
        note = fallback_reason(detector.threshold_source, calibration.source)
        if note is not None:
            _say(f"Note: {note}.", quiet)
        note = calibration_note(calibration, len(data.normal), data.n_read)
        if note is not None:
            typer.echo(f"Warning: {normal_csv}: {note}", err=True)


@app.command()
def export(
    model_dir: Annotated[Path, typer.Option(
        "--model-dir", "-m", help="The model directory to add model.onnx to.",
        file_okay=False)] = Path("model"),
    quiet: Quiet = False,
) -> None:
    """Export a model directory's Keras model to ONNX (model.onnx), for scoring without
    TensorFlow.

    'anomaly fit' writes model.onnx itself; this adds it to a model directory written
    before, or where the export failed. The export is checked against Keras on a probe
    batch, and the directory is replaced atomically with model.onnx and its SHA-256 in
    metadata.json.
    """
    from ..model.directory import add_onnx

    entry = add_onnx(model_dir)
    _say(f"Wrote {model_dir / 'model.onnx'} (largest difference from Keras on a probe batch "
         f"{entry['max_difference']:.2g}).", quiet)


def _sha256_of_files(paths: list[str]) -> str | None:
    """The SHA-256 of the training files read one after the other; None when one is not a
    regular file (a pipe is read once, and has been)."""
    from ..io.writers import files_sha256

    return files_sha256(paths) if all(os.path.isfile(path) for path in paths) else None


def _network(detector) -> str:
    """``dense 140-128-64-16-64-128-140, 37,916 weights``: the family, the dense layers'
    widths, and the size."""
    layers = ""
    if detector.model == "dense":
        widths = [detector.n_features_in_, *detector.hidden_units]
        layers = " " + "-".join(str(width) for width in widths + widths[-2::-1])
    return f"{detector.model}{layers}, {detector.training_.network_parameters:,} weights"


def _model_files(model_dir: Path) -> str:
    from ..model.directory import ONNX_FILE

    return "model.keras, model.onnx" if (model_dir / ONNX_FILE).is_file() else "model.keras only"


@app.command(epilog=SCORE_EXIT_CODES_HELP)
@recording_options()
def score(
    inputs: Annotated[list[str], typer.Argument(
        help="Beats CSV (or .csv.gz) files, one beat per row, or recordings (WFDB records, "
             ".edf files; signal .csv files with --signal): files, globs, directories (their "
             "*.csv, *.csv.gz, *.hea and *.edf) or '-' for stdin. A bare MIT-BIH record name "
             "(208) not found here is taken from the MIT-BIH data on this machine.",
        show_default=False)],
    model_dir: ModelDir = Path("model"),
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Scores file for a single input: CSV (row, score, is_anomaly"
        "[, label]), Parquet if the name ends in .parquet, '-' for stdout. "
        "Default: scores.csv.", dir_okay=False, show_default=False)] = None,
    output_dir: Annotated[Optional[Path], typer.Option(
        help="One scores file per input, named INPUT.scores.csv (or .parquet, see "
             "--output-format); needed with several inputs.", file_okay=False)] = None,
    output_format: Annotated[OutputFormat, typer.Option(
        help="Format of the files in --output-dir.")] = OutputFormat.csv,
    report: Annotated[Optional[Path], typer.Option(
        help="Also write a JSON run report (inputs with SHA-256 and row counts, model, "
             "threshold, counts, timings, metrics).", dir_okay=False)] = None,
    html: Annotated[Optional[Path], typer.Option(
        help="Also write a self-contained HTML report (summary, histogram, most anomalous "
             "beats, and with labels the confusion matrix and ROC/PR curves).",
        dir_okay=False)] = None,
    plot_dir: Annotated[Optional[Path], typer.Option(
        help="Also write PNG plots (reconstructions, score histogram) here.",
        file_okay=False)] = None,
    label_column: LabelColumn = None,
    normal_label: NormalLabel = "1",
    header: Header = None,
    on_bad_row: Annotated[BadRowPolicy, typer.Option(
        help="fail: stop at the first bad row (nothing is written). skip: score the good "
             "rows and write each bad one, with its line and reason, to OUTPUT.rejects.csv."
    )] = BadRowPolicy.fail,
    skip_existing: Annotated[bool, typer.Option(
        help="Skip inputs whose output exists and is newer than the input and the model.")] = False,
    fail_on_anomaly: Annotated[bool, typer.Option(
        help=f"Exit with code {EXIT_ANOMALIES_FOUND} when any beat is an anomaly "
             "(outputs are still written).")] = False,
    log_format: Annotated[LogFormat, typer.Option(
        help="Messages on stderr as text, or as JSON lines for log shippers.")] = LogFormat.text,
    engine: Annotated[EngineName, typer.Option(
        help="local: stream each input in this process. dask: score partitions of the "
             "inputs on Dask workers (same outputs).")] = EngineName.local,
    scheduler: Annotated[Optional[str], typer.Option(
        help="Dask scheduler address (tcp://HOST:PORT) for --engine dask; without it a "
             "local cluster is started on 127.0.0.1.",
        show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(
        help="Worker processes of the local Dask cluster (at most 256). Default: one per "
             "CPU core.",
        min=1, max=MAX_LOCAL_WORKERS, show_default=False)] = None,
    connect_timeout: Annotated[float, typer.Option(
        metavar="SECONDS", help="How long to wait for the --scheduler to answer.",
        callback=lambda value: finite(value, "--connect-timeout", minimum=0.1))] = 30.0,
    recording: RecordingOptions = RecordingOptions(),
    signal: SignalCsv = False,
    runtime: Runtime = RuntimeName.auto,
    quiet: Quiet = False,
) -> int:
    """Score every beat of one or more batches: an anomaly score and flag.

    Scores are streamed: memory stays flat however large the input. Outputs appear only
    when complete, and a lock stops two runs writing the same output. With --label-column,
    also reports precision, recall, F1, accuracy, ROC-AUC and the confusion matrix, with
    the anomaly class as the positive class. Messages go to stderr.
    """
    from .. import logs
    from ..io.arrow_start import arrow_without_pandas
    from ..scoring.plan import ScoreOptions, plan_run
    from ..scoring.run import execute

    logs.configure(log_format.value, quiet=quiet)
    arrow_without_pandas()
    options = ScoreOptions(label_column=label_column, normal_label=normal_label, header=header,
                           on_bad_row=on_bad_row.value, signal_csv=signal,
                           segment=recording.segment())
    with _usage_errors():
        plan = plan_run(inputs, model_dir, output=output, output_dir=output_dir,
                        output_format=output_format.value, report=report, html=html,
                        plot_dir=plot_dir, options=options, skip_existing=skip_existing,
                        runtime=runtime.value)
        runner = _score_engine(engine, scheduler, workers, connect_timeout)
    result = execute(plan, runner, progress=not quiet and log_format is LogFormat.text)
    if fail_on_anomaly and result.anomalies:
        return EXIT_ANOMALIES_FOUND
    return EXIT_OK


@app.command()
@recording_options(window=True)
def beats(
    records: Annotated[list[str], typer.Argument(
        metavar="RECORD...", show_default=False,
        help="Recordings: WFDB records (the path with or without .hea), .edf files, or CSV "
             "files of samples (one column per lead, optional time column in seconds). A "
             "bare MIT-BIH record name (208) not found here is taken from the MIT-BIH data "
             "on this machine ($ANOMALY_DATA_DIR, the download cache, ../shared/data).")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", dir_okay=False,
        help="The beats CSV ('-': standard output): record, beat, sample, time_s, "
             "rr_prev_s, rr_next_s, rr_local_mean_s, unreadable[, label], then the samples "
             "x0...")] = Path("beats.csv"),
    recording: RecordingOptions = RecordingOptions(),
    quiet: Quiet = False,
) -> None:
    """Find the beats of recordings and write them, one per row, as a beats CSV.

    Each beat is a window around its R peak (found by the detector chosen on MIT-BIH),
    band-pass filtered 0.5-40 Hz, resampled and z-normalised like ECG5000's beats; its
    row says where it is (record, sample, time) and its RR context. 'anomaly fit' and
    'anomaly score' read the file as any beats CSV and carry the ids into their outputs;
    'anomaly fit' trains on its RR context too, as on the recording's.
    """
    from .. import logs
    from ..beats_csv import write_beats
    from ..io.readers import STDIO

    logs.configure(quiet=quiet)  # The readers' warnings go to stderr, as score's do.
    # With the beats on standard output, what is said goes to stderr.
    to_stdout = str(output) == STDIO
    say = functools.partial(_say, quiet=quiet, err=to_stdout)
    with _usage_errors():
        export = write_beats(records, output, recording.segment(),
                             on_record=lambda name, n, lead: say(f"{name}: {n} beats, {lead}"))
    labels = ", ".join(f"{label} {count}" for label, count in sorted(export.labels.items()))
    where = "standard output" if to_stdout else output
    say(f"Wrote {export.total} beats of {len(export.beats)} recording(s) to {where}"
        f" ({export.dropped_at_edges} dropped: their window runs off the recording)"
        + (f"; labels: {labels}" if labels else "") + ".")


def _warn_of_fibrillation(path, segment, rr_context: bool) -> "SpanFibrillation | None":
    """Warn when a recording's training span is mostly atrial fibrillation: the model then
    takes that irregular rhythm for the patient's normal one, and flags many normal beats
    whichever way it is fitted (docs/benchmarks.md, label-free patient-specific
    detection). Returns the span's fibrillation (None: its rhythm could not be read),
    which the model directory records."""
    from ..exceptions import first_line
    from ..holter.analysis import span_fibrillation

    try:
        fibrillation = span_fibrillation(path, segment)
    except Exception as error:  # noqa: BLE001 - a warning's reading costs the warning only.
        typer.echo(f"Warning: {path}: its rhythm was not analysed ({first_line(error)}): "
                   "whether it is in atrial fibrillation is not known.", err=True)
        return None
    if fibrillation.mostly:
        typer.echo(f"Warning: {path}: {fibrillation.training_note(rr_context)}.", err=True)
    return fibrillation


def _rr_context_for(asked: bool | None, model: ModelFamily, denoise: float) -> bool:
    """Whether a model of beats with RR intervals predicts the RR context: as asked, else
    when it can (the dense family, without denoising); a usage error when asked where it
    cannot."""
    can = model is ModelFamily.dense and not denoise
    if asked and not can:
        raise UsageError("--rr-context needs --model dense without --denoise", "--rr-context")
    return can if asked is None else asked


def _no_recording_options(given: list[str]) -> None:
    """Refuse recording options given for an input that is not a recording."""
    if given:
        raise UsageError(f"{given[0]} applies to recordings; the input is a beats CSV "
                         "(give --signal to read a .csv as samples per lead)", given[0])


def _readable_file(path: str) -> str:
    """``path``, or a usage error naming the INPUT argument unless it is a readable file."""
    problem = None
    if not os.path.exists(path):
        problem = f"File {path!r} does not exist (nor a WFDB record {path}.hea)."
    elif os.path.isdir(path):
        problem = f"File {path!r} is a directory."
    elif not os.access(path, os.R_OK):
        problem = f"File {path!r} is not readable."
    if problem is not None:
        raise typer.BadParameter(problem, param_hint="'INPUT'")
    return path


def _score_engine(engine: EngineName, scheduler: str | None, workers: int | None,
                  connect_timeout: float):
    if engine is EngineName.local:
        if scheduler is not None or workers is not None:
            option = "--scheduler" if scheduler is not None else "--workers"
            raise UsageError(f"{option} needs --engine dask", option)
        return None
    if scheduler is not None and workers is not None:
        raise UsageError("--workers sizes the local cluster; a --scheduler's cluster has its "
                         "own workers", "--workers")
    from ..scoring.dask_engine import DaskEngine

    return DaskEngine(scheduler, workers=workers, connect_timeout=connect_timeout)


@contextlib.contextmanager
def _usage_errors():
    """The library's usage errors, reported as the command line reports its own."""
    try:
        yield
    except UsageError as error:
        if error.option is None:
            raise
        raise typer.BadParameter(str(error), param_hint=f"'{error.option}'") from None


@app.command()
def plot(
    batch_csv: Annotated[Path, input_file("CSV (or .csv.gz) of heartbeats to plot.")],
    model_dir: ModelDir = Path("model"),
    plot_dir: Annotated[Path, typer.Option(help="Directory for the PNG files.",
                                           file_okay=False)] = Path("plots"),
    label_column: LabelColumn = None,
    normal_label: NormalLabel = "1",
    header: Header = None,
    runtime: Runtime = RuntimeName.auto,
    quiet: Quiet = False,
) -> None:
    """Draw beats over their reconstructions and the score histogram, as PNG files.

    Writes normal_beat.png (a typical normal beat), anomalous_beat.png (the most
    anomalous beat) and score_histogram.png (all scores with the threshold line).
    """
    from .. import logs
    from ..io.arrow_start import arrow_without_pandas
    from ..scoring.plan import ScoreOptions, plan_run
    from ..scoring.run import execute

    logs.configure(quiet=True)  # The plots are what this command reports, on stdout.
    arrow_without_pandas()
    options = ScoreOptions(label_column=label_column, normal_label=normal_label, header=header)
    plan = plan_run([str(batch_csv)], model_dir, plot_dir=plot_dir, options=options,
                    keep_scores=False, expand=False, runtime=runtime.value)
    for path in execute(plan).plots:
        _say(f"Wrote {path}", quiet)


@app.command()
def summary(
    run_report: Annotated[Path, typer.Argument(
        help="The JSON run report 'anomaly score --report' wrote.", dir_okay=False,
        show_default=False)],
    html: Annotated[Optional[Path], typer.Option(
        help="Write the HTML report (as 'anomaly score --html' would have).",
        dir_okay=False)] = None,
    report: Annotated[Optional[Path], typer.Option(
        help="Write the run report again, each recording with its rhythm.",
        dir_okay=False)] = None,
    plot_dir: Annotated[Optional[Path], typer.Option(
        help="Also write the PNG plots here.", file_okay=False)] = None,
    model_dir: Annotated[Optional[Path], typer.Option(
        "--model-dir", "-m", help="The model that scored. Default: the run report's.",
        file_okay=False, show_default=False)] = None,
    log_format: Annotated[LogFormat, typer.Option(
        help="Messages on stderr as text, or as JSON lines for log shippers.")] = LogFormat.text,
    quiet: Quiet = False,
) -> None:
    """Write the reports of recordings already scored, without scoring them again.

    Reads the run report of an 'anomaly score --report' run and the scores files it
    names, checks that the model and each recording are the ones scored, reads each
    recording again for its rhythm and strips, and writes the HTML report, the JSON
    report and the plots that run would have written with --html, --report and
    --plot-dir: a job scores at night, a person summarises later.
    """
    from .. import logs
    from ..exceptions import UsageError
    from ..scoring.scored import summarise

    logs.configure(log_format.value, quiet=quiet)
    if html is None and report is None and plot_dir is None:
        raise UsageError("nothing to write: give --html, --report or --plot-dir", "--html")
    summarise(run_report, report=report, html=html, plot_dir=plot_dir, model_dir=model_dir)


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

    Uses ECG5000 when it is on this machine ($ANOMALY_DATA_DIR, the cache 'anomaly data
    fetch ecg5000' fills, or ../shared/data), otherwise synthetic beats generated
    in-process, and says which.
    """
    from .. import logs
    from ..demo import run_demo
    from ..model._tensorflow import require_tensorflow

    logs.configure(quiet=True)  # The demo says what it did on stdout.
    require_tensorflow()

    run_demo(workdir, force_synthetic=synthetic, epochs=epochs,
             echo=lambda message: _say(message, quiet))


# The MNIST tools, as 'anomaly mnist ...'; like this module, they import nothing heavy.
from .mnist import app as mnist_app  # noqa: E402
from .data import app as data_app  # noqa: E402
from .serve import serve as serve_command  # noqa: E402

app.add_typer(mnist_app, name="mnist")
app.add_typer(data_app, name="data")
app.command("serve")(serve_command)


def _flow_docstrings(typer_app: typer.Typer) -> None:
    """Join the lines of each paragraph of the commands' docstrings.

    Typer keeps the line breaks of every paragraph after the first, so text wrapped at
    the source's width came out in ragged lines; joined, it wraps to the terminal.
    """
    for command in typer_app.registered_commands:
        text = command.help or inspect.getdoc(command.callback) or ""
        command.help = "\n\n".join(" ".join(paragraph.split())
                                    for paragraph in text.split("\n\n")) or None
    for group in typer_app.registered_groups:
        _flow_docstrings(group.typer_instance)


_flow_docstrings(app)


# -- running ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every failure into one line and an exit code."""
    from .. import logs

    logs.reset()
    try:
        result = app(args=argv, prog_name="anomaly", standalone_mode=False)
    except click_exceptions.ClickException as error:
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        # A group given no command has printed its help (Typer's, on standard output);
        # Click's error carries that help as its message, which Typer leaves empty.
        message = ("Missing command." if isinstance(error, NO_COMMAND_ERRORS)
                   else error.format_message())
        return _fail(f"{message}{hint}", EXIT_BAD_INPUT)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", EXIT_INTERRUPTED)
    except SystemExit as error:
        # Click's answer to a broken pipe (a reader of stdout that stopped): exit 1, which
        # here means anomalies found. Its other exits come back as codes (below).
        if not isinstance(error.__context__, BrokenPipeError):
            raise
        if _asks_for_help(sys.argv[1:] if argv is None else argv):
            return EXIT_OK  # 'anomaly --help | head': the reader had what it wanted.
        return _fail("standard output: Broken pipe", EXIT_BAD_INPUT)
    except Terminated:
        return _fail("terminated (SIGTERM); nothing half-written was left", EXIT_TERMINATED)
    except AnomalyError as error:
        return _fail(str(error), error.exit_code)
    except OSError as error:
        # Disk full, permission changed mid-run: the environment, not a bug.
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"{where}{error.strerror or error}", EXIT_BAD_INPUT)
    except Exception as error:  # A bug: still one line, the traceback with --debug.
        return _fail(f"internal error ({type(error).__name__}: {error}); "
                     "rerun with --debug and report it", EXIT_INTERNAL)
    if result == EXIT_INTERRUPTED:  # Typer's answer to Ctrl-C: said as ours is.
        return _fail("interrupted", EXIT_INTERRUPTED)
    return result if isinstance(result, int) else EXIT_OK


#: Click's error for a group given no command (``no_args_is_help``), in the versions that
#: have one.
NO_COMMAND_ERRORS = tuple(error for error in (getattr(click_exceptions, "NoArgsIsHelpError",
                                                      None),) if error is not None)


def _asks_for_help(argv: list) -> bool:
    """Whether the command line asks for help, which Click prints whatever else it holds
    (an argument ``--help`` before the first ``--``), or for the version (the first
    argument ``--version``)."""
    arguments = [str(argument) for argument in argv]
    before = arguments[:arguments.index("--")] if "--" in arguments else arguments
    return "--help" in before or arguments[:1] == ["--version"]


def _fail(message: str, code: int) -> int:
    from .. import logs

    if _state["debug"]:
        traceback.print_exc()
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    if logs.says_json():
        logs.error(first_line, exit_code=code)
    else:
        typer.echo(f"Error: {first_line}", err=True)
    return code


def _terminate(signum, frame) -> None:
    raise Terminated()


def _run_exit_handlers() -> None:
    """Run the exit handlers libraries registered, as a normal exit does before the
    interpreter's teardown (which :func:`run` skips): TensorFlow's remove the files its
    autograph writes to $TMPDIR, one a fit, left there otherwise. A handler that fails is
    one warning line, not a traceback (Python reports it through ``sys.unraisablehook``)."""
    from .. import logs
    from ..exceptions import first_line

    def one_line(unraisable) -> None:
        logs.warning(f"Warning: an exit handler failed ({type(unraisable.exc_value).__name__}: "
                     f"{first_line(unraisable.exc_value)})")

    hook, sys.unraisablehook = sys.unraisablehook, one_line
    try:
        atexit._run_exitfuncs()  # CPython's own, the one a normal exit calls.
    finally:
        sys.unraisablehook = hook


def run() -> None:
    """Console-script entry point: exit with ``main``'s code, skipping interpreter teardown.

    All work (outputs committed, reports written, a Dask cluster closed) is done when
    ``main`` returns. Tearing down the interpreter then can still abort in pyarrow's
    thread pools ("terminate called without an active exception", SIGABRT, exit 134;
    apache/arrow#34314), which a scheduler would read as a failed run; so flush the
    streams and leave with the code ``main`` returned, once the exit handlers have run.

    SIGTERM, what systemd and most schedulers send to stop a job, unwinds the run as
    Ctrl-C does (outputs not yet complete are removed, locks released) and exits 143.
    """
    signal.signal(signal.SIGTERM, _terminate)
    code = main()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # The run is over: a SIGTERM now ends it.
    if code in (EXIT_OK, EXIT_ANOMALIES_FOUND):
        # Not after a failure: a Dask cluster interrupted while it started fails its own
        # handlers, with asyncio's tracebacks.
        _run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
