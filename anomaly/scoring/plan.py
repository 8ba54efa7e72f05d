"""Planning a scoring run: the inputs, one job per input with its outputs named, and every
destination checked, all before the model loads and before anything is read or created.

A typo in an option costs no time, and a run that cannot write its outputs fails before
it starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..choices import BadRowPolicy, OutputFormat, RuntimeName
from ..exceptions import UsageError
from ..inputs import expand_inputs
from ..io.blocks import BLOCK_BYTES
from ..io.destinations import Place, check_destinations, check_stdout
from ..io.readers import STDIO, check_readable, input_stem
from ..io.writers import check_can_create_directory, check_writable

if TYPE_CHECKING:
    from ..recordings.segment import SegmentOptions

#: The ending of a scores file of each format.
SUFFIXES = {OutputFormat.csv: ".csv", OutputFormat.parquet: ".parquet"}

@dataclass(frozen=True)
class ScoreOptions:
    """How inputs are read, and what happens to bad rows.

    Attributes
    ----------
    label_column : str or int, optional
        As for :func:`anomaly.io.readers.read_beats`; default no labels.
    normal_label : str, default "1"
        The label meaning normal; any other is an anomaly.
    header : bool, optional
        Whether the first row is a header; default detected.
    on_bad_row : {"fail", "skip"}, default "fail"
        ``fail``: the first bad row fails its input. ``skip``: bad rows go to the rejects
        file and the good ones are scored.
    block_bytes : int
        Bytes per block read (8 MB).
    segment : SegmentOptions, optional
        How beats are found in recordings (lead, span, annotations); default the
        recording's default lead, whole, unlabelled.
    signal_csv : bool, default False
        Read ``.csv`` inputs as recordings (samples per lead), not as beats.
    """

    label_column: str | int | None = None
    normal_label: str = "1"
    header: bool | None = None
    on_bad_row: str = BadRowPolicy.fail.value
    block_bytes: int = BLOCK_BYTES
    segment: SegmentOptions | None = None
    signal_csv: bool = False

    def is_recording(self, name: str) -> bool:
        """Whether the input ``name`` is read as a recording."""
        from ..recordings.signals import is_recording

        return is_recording(name, self.signal_csv)

    def as_json(self) -> dict:
        """How the inputs were read, as the run report records it (``options``): what
        ``anomaly summary`` reads the recordings again with."""
        from ..recordings.segment import SegmentOptions

        segment = self.segment or SegmentOptions()
        return {"label_column": self.label_column, "normal_label": self.normal_label,
                "signal_csv": self.signal_csv,
                "recording": {"lead": segment.lead, "from_s": segment.start,
                              "to_s": segment.stop, "fs": segment.fs,
                              "annotations": segment.annotations}}

    @classmethod
    def from_json(cls, value: dict) -> "ScoreOptions":
        """The options :meth:`as_json` wrote (checked by the run report's schema)."""
        from ..recordings.segment import SegmentOptions

        recording = value["recording"]
        segment = SegmentOptions(lead=recording["lead"], start=float(recording["from_s"]),
                                 stop=recording["to_s"], fs=recording["fs"],
                                 annotations=recording["annotations"])
        return cls(label_column=value["label_column"], normal_label=value["normal_label"],
                   signal_csv=value["signal_csv"],
                   segment=None if segment == SegmentOptions() else segment)

    def __post_init__(self) -> None:
        policies = tuple(policy.value for policy in BadRowPolicy)
        if self.on_bad_row not in policies:
            raise ValueError(f"on_bad_row must be one of {policies}, got {self.on_bad_row!r}")

    @property
    def keep_rejects(self) -> bool:
        """Whether bad rows are rejected into a rejects file rather than failing the input."""
        return self.on_bad_row == BadRowPolicy.skip.value


@dataclass(frozen=True)
class Job:
    """One input of a run: how it is read and where its scores go.

    ``index`` is the input's place in the run. ``output`` is the scores file; without one
    the scores go to stdout when ``to_stdout`` and nowhere otherwise (plots only).
    ``rejects`` is the rejects file (skip mode). ``warnings`` are what differs between
    the input's beats and the model's (set once the model has loaded, see
    :mod:`anomaly.scoring.fitted_kind`), said when its first beats are read, before they
    are scored: an input refused before it yields a beat fails in one line.
    """

    input: str
    index: int = 0
    options: ScoreOptions = ScoreOptions()
    output: Path | None = None
    to_stdout: bool = False
    rejects: Path | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunPlan:
    """A checked run: its jobs, in input order, and the run's other outputs.

    ``output_dir`` is created once the model has loaded; the report, HTML report and
    plots are written once every input is scored.
    """

    model_dir: Path
    jobs: tuple[Job, ...]
    output_dir: Path | None = None
    report: Path | None = None
    html: Path | None = None
    plot_dir: Path | None = None
    skip_existing: bool = False
    runtime: str = RuntimeName.auto.value


def plan_run(
    inputs: Sequence[str],
    model_dir: str | os.PathLike,
    *,
    output: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    output_format: str = OutputFormat.csv.value,
    report: str | os.PathLike | None = None,
    html: str | os.PathLike | None = None,
    plot_dir: str | os.PathLike | None = None,
    options: ScoreOptions = ScoreOptions(),
    skip_existing: bool = False,
    keep_scores: bool = True,
    expand: bool = True,
    runtime: str = RuntimeName.auto.value,
) -> RunPlan:
    """Expand the inputs, name each one's outputs and check every destination.

    Parameters
    ----------
    inputs : sequence of str
        Files, globs, directories (their ``*.csv`` and ``*.csv.gz``) or ``-`` (stdin).
    model_dir : path
    output : path or "-", optional
        The scores file of a single input (``-``: stdout). Default ``scores.csv``.
    output_dir : path, optional
        One scores file per input, ``NAME.scores.csv`` (or ``.parquet``); needed with
        several inputs.
    output_format : {"csv", "parquet"}, default "csv"
        Format of the files in ``output_dir``.
    report, html, plot_dir : path, optional
        The JSON run report, the HTML report, the directory of PNG plots.
    options : ScoreOptions
    skip_existing : bool, default False
        Skip inputs whose output is newer than the input and the model.
    keep_scores : bool, default True
        False: write no scores at all (``anomaly plot``).
    expand : bool, default True
        False: the inputs are file names as they stand, not globs or directories.
    runtime : {"auto", "onnx", "keras"}, default "auto"
        What runs the model (see :mod:`anomaly.model.runtimes`).

    Returns
    -------
    RunPlan

    Raises
    ------
    UsageError
        Options that cannot go together.
    InputError
        An input that does not exist or cannot be read, a destination that cannot be
        written.
    """
    refuse_standard_output(report, html, plot_dir)
    names = expand_inputs(inputs) if expand else list(inputs)
    if keep_scores and len(names) > 1 and output_dir is None:
        raise UsageError(f"{len(names)} inputs need --output-dir (one output each), not "
                         "--output", "--output-dir")
    if output is not None and output_dir is not None:
        raise UsageError("give --output or --output-dir, not both", "--output")
    if output_dir is not None:
        output_dir = Path(output_dir)
        check_can_create_directory(output_dir)
        suffix = SUFFIXES[OutputFormat(output_format)]
        outputs: list[Path | None] = [output_dir / output_name(name, suffix) for name in names]
    elif not keep_scores:
        outputs = [None] * len(names)
    else:
        outputs = [None if str(output) == STDIO else Path(output or "scores.csv")]
    to_stdout = keep_scores and outputs == [None]
    if options.keep_rejects and to_stdout:
        raise UsageError("--on-bad-row skip writes a rejects file beside the output, so it "
                         "needs an output file, not '-'", "--on-bad-row")
    jobs = tuple(
        Job(name, index, options, path, to_stdout,
            rejects_file_for(path) if options.keep_rejects and path is not None else None)
        for index, (name, path) in enumerate(zip(names, outputs)))
    if options.segment is not None and not any(options.is_recording(job.input) for job in jobs):
        raise UsageError("--lead, --from, --to, --fs and --annotations apply to recordings, "
                         "and no input is one (a .csv is read as beats unless --signal)")
    for job in jobs:
        # An input whose output is up to date is skipped unread; the run decides that
        # again under the output's lock.
        if job.input != STDIO and not (skip_existing and is_up_to_date(job, Path(model_dir))):
            check_input(job)
    inputs = [Place(Path(path), "the input") for job in jobs for path in input_files(job)]
    destinations = run_destinations(jobs, report, html, plot_dir)
    check_destinations(destinations, inputs, Path(model_dir))
    if to_stdout:
        check_stdout(inputs + list(destinations), Path(model_dir),
                     reads_stdin=any(job.input == STDIO for job in jobs))
    for path in outputs + [report, html]:
        if path is not None and not _made_by_the_run(Path(path).parent, output_dir):
            check_writable(path)
    if plot_dir is not None:
        check_can_create_directory(plot_dir)
    return RunPlan(Path(model_dir), jobs, output_dir,
                   *(None if path is None else Path(path) for path in (report, html, plot_dir)),
                   skip_existing=skip_existing, runtime=RuntimeName(runtime).value)


def refuse_standard_output(report, html, plot_dir) -> None:
    """UsageError when the run report, HTML report or plot directory is ``-``: only
    scores go to standard output."""
    for path, option in ((report, "--report"), (html, "--html"), (plot_dir, "--plot-dir")):
        if path is not None and str(path) == STDIO:
            raise UsageError(f"{STDIO!r} is not a file here: name the file to write", option)


def check_input(job: Job) -> None:
    """Refuse an input that cannot be read: a file that is missing or not a regular file;
    a recording whose files, lead, span or annotations are not there."""
    if not job.options.is_recording(job.input):
        check_readable(job.input)
        return
    from ..recordings.reading import segmenter_for
    from ..recordings.segment import SegmentOptions

    segmenter_for(job.input, job.options.segment or SegmentOptions())


def input_files(job: Job) -> list[str]:
    """The files an input is read from (a WFDB record is several); none for stdin."""
    if job.input == STDIO:
        return []
    if not job.options.is_recording(job.input):
        return [job.input]
    from ..recordings.signals import recording_files

    segment = job.options.segment
    return recording_files(job.input, segment.annotations if segment else None)


def run_destinations(jobs: Sequence[Job], report, html, plot_dir) -> list[Place]:
    """Every file the run would write, with what it is to the run."""
    from ..report.plots import BATCH_PLOTS, recording_plot_names

    places = []
    for job in jobs:
        if job.output is not None:
            places.append(Place(job.output, f"the scores file of {job.input}"))
        if job.rejects is not None:
            places.append(Place(job.rejects, f"the rejects file of {job.input}"))
    places += [Place(Path(path), role) for path, role in
               ((report, "the run report (--report)"), (html, "the HTML report (--html)"))
               if path is not None]
    if plot_dir is not None:
        places += [Place(Path(plot_dir) / name, "a plot (--plot-dir)") for name in BATCH_PLOTS]
        places += [Place(Path(plot_dir) / name, f"a plot of {job.input} (--plot-dir)")
                   for job in jobs if job.options.is_recording(job.input)
                   for name in recording_plot_names(job.input)]
    return places


def _made_by_the_run(directory: Path, output_dir: Path | None) -> bool:
    """Whether ``directory`` is the output directory or a missing parent of it, which the
    run creates (and :func:`check_can_create_directory` has checked)."""
    if output_dir is None:
        return False
    target, candidate = Path(os.path.abspath(output_dir)), Path(os.path.abspath(directory))
    return candidate == target or (candidate in target.parents and not candidate.exists())


def output_name(input_name: str, suffix: str = ".csv") -> str:
    """``day1.csv.gz`` -> ``day1.scores.csv`` (``-`` -> ``stdin.scores.csv``)."""
    return f"{input_stem(input_name)}.scores{suffix}"


def rejects_file_for(output: Path) -> Path:
    """``scores.csv`` -> ``scores.rejects.csv``, beside it."""
    stem = output.name.removesuffix(".parquet").removesuffix(".csv")
    return output.with_name(f"{stem}.rejects.csv")


def output_format(path: Path) -> str:
    """``parquet`` for a name ending in ``.parquet``, else ``csv``."""
    parquet = OutputFormat.parquet
    return (parquet if path.name.endswith(SUFFIXES[parquet]) else OutputFormat.csv).value


def is_up_to_date(job: Job, model_dir: Path) -> bool:
    """Whether the job's output exists and is newer than its input and the model's files
    (False when any of them cannot be looked at)."""
    if job.input == STDIO or job.output is None:
        return False
    try:
        if not job.output.is_file():
            return False
        newest_source = max([os.stat(path).st_mtime_ns for path in input_files(job)] +
                            [path.stat().st_mtime_ns for path in model_dir.iterdir()
                             if path.is_file()])
        return job.output.stat().st_mtime_ns > newest_source
    except OSError:
        return False
