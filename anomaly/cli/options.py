"""Options shared by the commands of the command line (Typer; no TensorFlow, no NumPy)."""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
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


def finite(value: float, option: str, minimum: float | None = None,
           maximum: float | None = None) -> float:
    """Typer callback body: ``value``, or a usage error unless it is a finite number (and
    at least ``minimum``, at most ``maximum``). Typer's own range check would let NaN
    through to say "not >= 0"."""
    if not math.isfinite(value) or (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            bounds = f" from {minimum:.10g} to {maximum:.10g}"
        else:
            bounds = "".join(f" {sign} {bound:.10g}" for sign, bound in
                             ((">=", minimum), ("<=", maximum)) if bound is not None)
        raise typer.BadParameter(f"{option} must be a finite number{bounds}, got {value}")
    return value


# -- recordings -------------------------------------------------------------------------

_RECORDINGS = "Recordings (WFDB, EDF, signal CSV)"
Lead = Annotated[Optional[str], typer.Option(
    "--lead", metavar="NAME|INDEX", rich_help_panel=_RECORDINGS,
    help="The lead to read: a name or a 0-based index. Default: MLII or II when the "
         "recording has it, else its first lead named as ECG, else its first lead that may "
         "be ECG (never one named or measured as EEG, respiration, pressure...; a recording "
         "without one is refused).",
    show_default=False)]
FromTime = Annotated[Optional[str], typer.Option(
    "--from", metavar="TIME", rich_help_panel=_RECORDINGS,
    help="Start of the span: seconds or [hh:]mm:ss. Default: the start.", show_default=False)]
ToTime = Annotated[Optional[str], typer.Option(
    "--to", metavar="TIME", rich_help_panel=_RECORDINGS,
    help="End of the span: seconds or [hh:]mm:ss. Default: the end.", show_default=False)]
SamplingRate = Annotated[Optional[float], typer.Option(
    "--fs", metavar="HZ", rich_help_panel=_RECORDINGS,
    help="Samples per second of a signal CSV without a time column. A recording that states "
         "its rate (a time column, a WFDB or EDF header) is read at that rate: --fs must "
         "then equal it, or the recording is refused.", show_default=False)]
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
         "recordings, and beats CSVs with the RR columns (as 'anomaly beats' writes them), "
         "with --model dense and no --denoise.")]
EveryBeat = Annotated[bool, typer.Option(
    "--every-beat", rich_help_panel=_RECORDINGS,
    help="Without labels, train on every beat of the recording, not only on those of its "
         "dominant rhythm and shape (on time, shaped like most beats), which keep the "
         "patient's frequent ectopic beats out of what the model learns as normal.")]
KeepAmplitude = Annotated[bool, typer.Option(
    "--keep-amplitude", rich_help_panel=_RECORDINGS,
    help="Keep beats in the recording's units (baseline-filtered) instead of z-normalising "
         "each one.")]


@dataclass(frozen=True)
class RecordingOptions:
    """What the recording options of a command were given: ``--lead``, ``--from``,
    ``--to``, ``--fs``, ``--annotations`` and, for a command that cuts beats, the beat
    window (``--before``, ``--after``, ``--samples``, ``--keep-amplitude``)."""

    lead: str | None = None
    from_: str | None = None
    to: str | None = None
    fs: float | None = None
    annotations: str | None = None
    window: tuple[float, float, int, bool] | None = None

    def given(self) -> list[str]:
        """The options given of those that only a recording takes (not the window)."""
        names = {"--lead": self.lead, "--from": self.from_, "--to": self.to, "--fs": self.fs,
                 "--annotations": self.annotations}
        return [option for option, value in names.items() if value is not None]

    def segment(self):
        """The options as :class:`anomaly.recordings.segment.SegmentOptions`; None when
        none was given (and the command cuts no beats). A usage error names a bad one."""
        if self.window is None and not self.given():
            return None
        from ..recordings.segment import BeatWindow, SegmentOptions
        from ..recordings.times import parse_time

        times = {}
        for option, text in (("--from", self.from_), ("--to", self.to)):
            if text is not None:
                try:
                    times[option] = parse_time(text)
                except ValueError as error:
                    raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None
        if self.fs is not None and not (math.isfinite(self.fs) and self.fs > 0):
            raise typer.BadParameter(f"--fs must be a positive number, got {self.fs}",
                                     param_hint="'--fs'")
        try:
            window = BeatWindow(*self.window) if self.window is not None else BeatWindow()
        except ValueError as error:
            raise typer.BadParameter(str(error),
                                     param_hint="'--before/--after/--samples'") from None
        return SegmentOptions(lead=self.lead, start=times.get("--from", 0.0),
                              stop=times.get("--to"), fs=self.fs,
                              annotations=self.annotations, window=window)


#: The options of the group, as a command's parameters: name, type and default.
_RECORDING = (("lead", Lead, None), ("from_", FromTime, None), ("to", ToTime, None),
              ("fs", SamplingRate, None), ("annotations", Annotations, None))
_WINDOW = (("before", Before, 0.25), ("after", After, 0.45), ("samples", Samples, 140),
           ("keep_amplitude", KeepAmplitude, False))


def recording_options(*, window: bool = False):
    """Decorator: the recording options as one parameter of a command, ``recording``
    (a :class:`RecordingOptions`), in place of the several options Typer shows.

    With ``window``, the command also takes the beat window's options (it cuts beats).
    """
    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        if "recording" not in signature.parameters:
            raise TypeError(f"{command.__name__} takes no 'recording' parameter for the "
                            "recording options")
        group = _RECORDING + (_WINDOW if window else ())
        options = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=default, annotation=annotation)
                   for name, annotation, default in group]
        parameters = []
        for parameter in signature.parameters.values():
            parameters += options if parameter.name == "recording" else [parameter]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            given = {name: kwargs.pop(name) for name, _, _ in group}
            kwargs["recording"] = RecordingOptions(
                **{name: given[name] for name, _, _ in _RECORDING},
                window=tuple(given[name] for name, _, _ in _WINDOW) if window else None)
            return command(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=parameters)
        wrapper.__annotations__ = {parameter.name: parameter.annotation
                                   for parameter in parameters}
        return wrapper
    return decorate
