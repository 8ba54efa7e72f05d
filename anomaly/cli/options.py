"""Options shared by the commands of the command line (Typer; no TensorFlow, no NumPy)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..choices import RuntimeName


def model_dir_option(**checks):
    """``--model-dir/-m``; ``checks`` are Typer's path checks."""
    return typer.Option("--model-dir", "-m",
                        help="Model directory (model.keras, model.onnx, metadata.json).",
                        **checks)


#: A model directory a command writes.
SavedModelDir = Annotated[Path, model_dir_option(file_okay=False)]
#: The model directory 'score' and 'plot' load. Not checked when parsing: loading checks
#: it, so a missing or unusable one (a file, say) exits with the model's code, 3.
ModelDir = Annotated[Path, model_dir_option()]
Runtime = Annotated[RuntimeName, typer.Option(
    help="What runs the model: auto (model.onnx with onnxruntime when the model directory "
         "has one, else Keras), onnx, or keras (imports TensorFlow).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
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


def input_file(help_text: str):
    """A file argument Typer checks before the command runs."""
    return typer.Argument(help=help_text, exists=True, dir_okay=False, readable=True,
                          show_default=False)


def finite(value: float, option: str, minimum: float | None = None) -> float:
    """Typer callback body: ``value``, or a usage error unless it is a finite number (and
    at least ``minimum``). Typer's own range check would let NaN through to say "not >= 0"."""
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        at_least = "" if minimum is None else f" >= {minimum:g}"
        raise typer.BadParameter(f"{option} must be a finite number{at_least}, got {value}")
    return value


# -- recordings -------------------------------------------------------------------------

_RECORDINGS = "Recordings (WFDB, EDF, signal CSV)"
Lead = Annotated[Optional[str], typer.Option(
    "--lead", metavar="NAME|INDEX", rich_help_panel=_RECORDINGS,
    help="The lead to read: a name or a 0-based index. Default: MLII when the recording "
         "has it, else its first lead.", show_default=False)]
FromTime = Annotated[Optional[str], typer.Option(
    "--from", metavar="TIME", rich_help_panel=_RECORDINGS,
    help="Start of the span: seconds or [hh:]mm:ss. Default: the start.", show_default=False)]
ToTime = Annotated[Optional[str], typer.Option(
    "--to", metavar="TIME", rich_help_panel=_RECORDINGS,
    help="End of the span: seconds or [hh:]mm:ss. Default: the end.", show_default=False)]
SamplingRate = Annotated[Optional[float], typer.Option(
    "--fs", metavar="HZ", rich_help_panel=_RECORDINGS,
    help="Samples per second of a signal CSV without a time column.", show_default=False)]
Annotations = Annotated[Optional[str], typer.Option(
    "--annotations", metavar="EXT", rich_help_panel=_RECORDINGS,
    help="Label each beat with the AAMI class (N, S, V, F, Q; '-' for none) of the reference "
         "beat in the WFDB annotation file RECORD.EXT (atr for MIT-BIH) within 150 ms.",
    show_default=False)]
SignalCsv = Annotated[bool, typer.Option(
    "--signal", rich_help_panel=_RECORDINGS,
    help="Read .csv inputs as recordings (one column per lead, optional time column), not "
         "as beats.")]
Before = Annotated[float, typer.Option(
    metavar="SECONDS", rich_help_panel=_RECORDINGS,
    help="Window of a beat before its R peak.")]
After = Annotated[float, typer.Option(
    metavar="SECONDS", rich_help_panel=_RECORDINGS,
    help="Window of a beat after its R peak.")]
Samples = Annotated[int, typer.Option(
    rich_help_panel=_RECORDINGS,
    help="Samples per beat after resampling (ECG5000's beats have 140).")]
RrContext = Annotated[Optional[bool], typer.Option(
    "--rr-context/--no-rr-context", rich_help_panel=_RECORDINGS, show_default=False,
    help="Also score when each beat comes: the network predicts the beat's RR context (the "
         "intervals from the previous and to the next R peak, over the local mean) from its "
         "shape, so a premature beat of normal shape scores high. Default: on for "
         "recordings with --model dense and no --denoise.")]
KeepAmplitude = Annotated[bool, typer.Option(
    "--keep-amplitude", rich_help_panel=_RECORDINGS,
    help="Keep beats in the recording's units (baseline-filtered) instead of z-normalising "
         "each one.")]
