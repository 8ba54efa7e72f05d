"""The roles of the scoring pipeline, declared once.

A run (:mod:`anomaly.scoring.run`) carries out a plan (:mod:`anomaly.scoring.plan`): one
job per input. An **engine** scores each job: it reads the job's **beat source** block by
block, scores each block with the detector (:func:`anomaly.scoring.pipeline.score_source`)
and writes the scores and the rejected rows to the job's **sink**, which commits them only
when the input is complete. Each role below is a protocol; its implementations are

- beat sources: :mod:`anomaly.scoring.sources` (a CSV file, ``.csv.gz`` or stdin; a byte
  range of a CSV file);
- sinks: :mod:`anomaly.scoring.sinks` (a scores file, stdout, nothing, a Dask part file);
- engines: :mod:`anomaly.scoring.engines` (this process) and
  :mod:`anomaly.scoring.dask_engine` (a Dask cluster).

A new input kind is one new BeatSource, a new output one new ScoreSink, a new place to
run one new Engine; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence


from ..io.beats import Beats, Reject

if TYPE_CHECKING:
    import pyarrow

    from ..recordings.quality import Analysable

    from ..recordings.segment import BeatWindow

    from .plan import Job
    from .summary import ScoredInput

#: ``progress(done, total, rows)``: source units done (bytes) of ``total`` (None when
#: unknown), and rows read since the last call.
Progress = Callable[[int, "int | None", int], None]


@dataclass(frozen=True)
class ModelLimits:
    """What a model can score: beats of ``samples`` values, each within ``value_range``,
    and, for a model fitted on a recording, cut from recordings by its ``window`` from
    its ``lead`` (the default lead of the recordings it scores).

    A source refuses a first line of another length before it parses anything, and treats
    a sample out of range as a bad row (with its line and column).
    """

    samples: int
    value_range: tuple[float, float]
    window: "BeatWindow | None" = None
    lead: str | None = None

    @classmethod
    def of(cls, detector) -> "ModelLimits":
        """The limits of a fitted or loaded detector: its scaling's, and for a model fitted
        on a recording the beat window and lead its provenance records. ModelError, before
        any input is read, for a context scoring does not know how to compute."""
        from ..model.context import beat_context

        scaling, origin = detector.scaling_, detector.provenance_.recording
        beat_context(scaling.context)
        return cls(scaling.n_samples, scaling.value_range(),
                   None if origin is None else origin.window,
                   None if origin is None else origin.lead)

    def beat_window(self) -> "BeatWindow":
        """The window recordings' beats are cut by: the model's, else the default one
        resampled to the model's length."""
        from ..recordings.segment import BeatWindow

        return self.window or BeatWindow(samples=self.samples)


class BeatSource(Protocol):
    """Where the beats of one input come from. Use as a context manager."""

    #: The input's name in messages and reports.
    name: str
    #: What the ``lines`` of its blocks count, in messages: ``line`` (of a file) or
    #: ``beat`` (of a recording).
    row_unit: str

    def blocks(self) -> Iterator[Beats]:
        """The beats, block by block, in input order; raises InputError on bad input."""

    def progress(self) -> tuple[int, int | None]:
        """``(done, total)`` in the source's units (bytes); total None when unknown."""

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the input's bytes, once :meth:`blocks` is exhausted (None if the
        source does not hash what it reads)."""

    def analysable(self) -> "Analysable | None":
        """How much of a recording could be read, once :meth:`blocks` is exhausted (None
        for a source of beats, not of a recording)."""

    def __enter__(self) -> "BeatSource": ...

    def __exit__(self, *exc_info) -> None: ...


class ScoreSink(Protocol):
    """Where the scores of one input go.

    Used as a context manager: leaving it normally commits what was written (complete
    outputs appear at once), leaving it with an exception discards it.
    """

    def write(self, table: "pyarrow.Table") -> None:
        """Append scored rows: the block's id columns, ``score``, ``is_anomaly``, labels."""

    def reject(self, rows: Sequence[Reject]) -> None:
        """Append rejected rows (``--on-bad-row skip``)."""

    def __enter__(self) -> "ScoreSink": ...

    def __exit__(self, *exc_info) -> None: ...


class Engine(Protocol):
    """Scores the jobs of a run. Entered once for the run (to start or join a cluster)."""

    #: The engine's name in the run report.
    name: str

    def check(self, job: "Job") -> None:
        """Refuse, with an InputError, a job this engine cannot carry out; called for every
        job before the model loads."""

    def score(self, job: "Job", detector, model_dir: Path, *,
              progress: Progress | None = None) -> "ScoredInput":
        """Score one job's input into its sink; return what was scored."""

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc_info) -> None: ...
