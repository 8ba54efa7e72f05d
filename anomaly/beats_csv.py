"""``anomaly beats``: recordings cut into a beats CSV that ``fit`` and ``score`` read.

It sits above :mod:`anomaly.recordings` (which finds the beats) and uses the input
expansion (:mod:`anomaly.inputs`), destination checks and table writer (:mod:`anomaly.io`)
that a scoring run uses, so that a beats file is named, checked and written as a scores
file is.

The file's header is ``record, beat, sample, time_s, rr_prev_s, rr_next_s,
rr_local_mean_s, unreadable`` (see :data:`anomaly.io.layout.ID_COLUMNS`), then ``label`` with
annotations, then the samples ``x0 ... x{n-1}`` (float32 precision: the model computes in
float32). Every recording is checked before anything is read, and the file appears only
when complete.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .recordings.reading import segmenter_for
from .recordings.segment import RecordingBeats, SegmentCounts, SegmentOptions


@dataclass
class BeatsExport:
    """What ``anomaly beats`` wrote: beats per record, the lead each was read from
    (``lead MLII (of MLII, V1)``), beats dropped at the recordings' ends, and the labels'
    counts (with annotations)."""

    output: Path
    beats: dict[str, int] = field(default_factory=dict)
    leads: dict[str, str] = field(default_factory=dict)
    dropped_at_edges: int = 0
    labels: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.beats.values())


def write_beats(records: Sequence[str], output: str | os.PathLike, options: SegmentOptions,
                *, on_record: Callable[[str, int, str], None] | None = None) -> BeatsExport:
    """Cut every recording of ``records`` into beats, written to ``output`` (CSV; ``-``:
    standard output).

    ``on_record(name, beats, lead)`` is called as each recording is done, ``lead`` saying
    which lead was read and from which (``lead MLII (of MLII, V1)``: the default lead is
    chosen per recording, so it may differ from one to the next) and how much of it could
    be read (:meth:`anomaly.recordings.quality.Analysable.describe`).

    Raises
    ------
    InputError
        A recording that cannot be read, a lead or span it does not have, a recording
        where no beat is found; nothing is written.
    UsageError
        ``output`` is one of the recordings' files, or not a regular file.
    """
    from .inputs import expand_inputs
    from .io.destinations import Place, check_destinations, check_stdout
    from .io.readers import STDIO
    from .io.tables import TableWriter
    from .io.writers import StandardOutput, check_writable
    from .recordings.quality import Analysable
    from .recordings.signals import recording_files

    names = expand_inputs(records)
    segmenters = [segmenter_for(name, options) for name in names]
    to_stdout = str(output) == STDIO
    output = Path(output)
    inputs = [Place(Path(path), "the input") for name in names
              for path in recording_files(name, options.annotations)]
    if to_stdout:
        check_stdout(inputs, None)
        destination = contextlib.nullcontext(StandardOutput())
    else:
        check_destinations([Place(output, "the beats file (--output)")], inputs, None)
        check_writable(output)
        destination = _complete_file(output)
    export = BeatsExport(output)
    with destination as file:
        writer = TableWriter(file, "csv")
        for name, segmenter in zip(names, segmenters):
            record, counts = segmenter.lead.record, SegmentCounts()
            for chunk in segmenter.chunks():
                counts += chunk.counts
                if chunk.beats is not None:
                    writer.write(beats_table(chunk.beats, record))
                    if chunk.beats.labels is not None:
                        export.labels.update(chunk.beats.labels.tolist())
            export.beats[name] = counts.beats
            export.leads[name] = segmenter.lead.describe(segmenter.other_leads)
            export.dropped_at_edges += counts.dropped_at_edges
            if on_record is not None:
                analysable = Analysable.of(counts, segmenter.lead.fs, segmenter.lead.started)
                on_record(name, counts.beats, f"{export.leads[name]}; {analysable.describe()}")
        writer.close()
        file.flush()  # Before the run says it wrote them: a failure is the run's.
    return export


@contextlib.contextmanager
def _complete_file(output: Path):
    """The beats file, locked, appearing only when complete."""
    from .io.writers import atomic_write, output_lock

    with output_lock(output), atomic_write(output, "wb") as file:
        yield file


def beats_table(beats: RecordingBeats, record: str):
    """Beats as the beats CSV's rows: ids, label (when known), samples."""
    import pyarrow as pa

    columns = {name: pa.array(values, from_pandas=True)
               for name, values in beats.ids(record).items()}
    if beats.labels is not None:
        columns["label"] = pa.array(beats.labels.tolist(), pa.string())
    values = beats.values.astype(np.float32)
    for j in range(values.shape[1]):
        columns[f"x{j}"] = pa.array(values[:, j])
    return pa.table(columns)
