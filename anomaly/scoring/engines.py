"""The local engine: each input scored in this process, streamed block by block.

The Dask engine, which scores partitions of the inputs on a cluster, is in
:mod:`anomaly.scoring.dask_engine`; both implement :class:`anomaly.scoring.base.Engine`.
"""

from __future__ import annotations

from pathlib import Path

from .base import ModelLimits, Progress
from .pipeline import require_scored_rows, score_source
from .plan import Job
from .sinks import sink_for
from .sources import source_for
from .summary import ScoredInput


class LocalEngine:
    """Score each input in this process, streaming it block by block."""

    name = "local"

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def check(self, job: Job) -> None:
        pass

    def score(self, job: Job, detector, model_dir: Path, *,
              progress: Progress | None = None) -> ScoredInput:
        limits = ModelLimits.of(detector)
        with source_for(job, limits=limits) as source, sink_for(job) as sink:
            on_block = None if progress is None else (
                lambda rows: progress(*source.progress(), rows))
            outcome = score_source(detector, source, sink, input_index=job.index,
                                   on_block=on_block, warnings=job.warnings)
            require_scored_rows(source.name, outcome.counts)
        return outcome
