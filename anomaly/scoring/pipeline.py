"""The scoring loop every engine runs: blocks from a source, scored by the detector, into
a sink.

The model runs on each whole block; the next block is parsed in a helper thread while the
model scores this one (pyarrow and TensorFlow both release the GIL). Memory stays flat in
the input's size (see :mod:`anomaly.scoring.summary`). Block boundaries depend only on the
bytes, so the same input always yields the same blocks, the same scores and
byte-identical outputs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np

from .. import logs
from ..exceptions import InputError, ModelError
from ..model.context import beat_context
from ..io.beats import Beats
from .base import BeatSource, ScoreSink
from ..io.beats import is_anomaly
from .summary import Counts, ScoredInput, ScoreSummary

if TYPE_CHECKING:
    from ..model.context import BeatContext


def score_source(detector, source: BeatSource, sink: ScoreSink, *, input_index: int = 0,
                 on_block: Callable[[int], None] | None = None,
                 warnings: Sequence[str] = ()) -> ScoredInput:
    """Score every block of ``source`` into ``sink``.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted (or loaded).
    source : BeatSource
    sink : ScoreSink
        Entered by the caller, who refuses an input whose every row was rejected (see
        :func:`require_scored_rows`) before it lets the sink commit.
    input_index : int, default 0
        The input's place in the run (it orders ties among the top beats).
    on_block : callable, optional
        Called after each block with the rows it held.
    warnings : sequence of str
        Said (:func:`anomaly.logs.warning`) when the first block has been read, before it
        is scored; an input refused before it yields a block fails without them, in one
        line.

    Returns
    -------
    ScoredInput
        The counts, the summary and the source's SHA-256.

    Raises
    ------
    InputError
        On bad input (the source's errors), or a block whose beats are not the model's
        input length (naming the input and the block's first line).
    """
    threshold = float(detector.threshold_)
    context = beat_context(detector.scaling_.context)
    summary = ScoreSummary(threshold)
    counts = Counts()
    for number, block in enumerate(prefetched(source.blocks())):
        if number == 0:
            for message in warnings:
                logs.warning(message, event="fitted_kind", input=source.name)
        block = with_context(block, context, source.name)
        sink.reject(block.rejects)
        counts += Counts(rows_rejected=len(block.rejects),
                         first_reject=block.rejects[0] if block.rejects else None)
        if len(block):
            scores, flags = score_block(detector, block, f"{source.name} {source.row_unit}")
            readable = block.readable
            sink.write(score_table(block, scores, flags.astype(np.int8)))
            summary.add(source.name, block, scores, readable, input_index=input_index)
            counts += Counts(rows_scored=len(block), anomalies=int(flags.sum()),
                             rows_unreadable=int((~readable).sum()))
        if on_block is not None:
            on_block(len(block) + len(block.rejects))
    analysable = source.analysable()
    if analysable is not None:
        summary.analysable[source.name] = analysable
    return ScoredInput(counts, summary, source.sha256)


def score_block(detector, block: Beats, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The scores of a block of beats (with their context, see :func:`with_context`) and
    their flags (:func:`anomaly.io.beats.is_anomaly`).

    Raises
    ------
    InputError
        Beats the model cannot take (naming ``where`` and the block's first line:
        ``batch.csv line 12``).
    ModelError
        A score that is not a number: the model is unusable.
    """
    try:
        scores = detector.score(block.values)
    except InputError as error:
        raise InputError(f"{where} {int(block.lines[0])}: {error}") from None
    finite = np.isfinite(scores)
    if not finite.all():
        raise ModelError(f"{where} {int(block.lines[np.argmin(finite)])}: the model's score "
                         "is not a number; the model is unusable")
    return scores, is_anomaly(scores, float(detector.threshold_), block.readable)


def with_context(block: Beats, context: "BeatContext | None", name: str) -> Beats:
    """The block with each beat's samples followed by the context the model predicts
    (see :mod:`anomaly.model.context`); the block itself without one. InputError when
    the input does not hold what the context is computed from."""
    if context is None or not len(block):
        return block
    return replace(block, values=context.appended(block.values, block.ids, name))


def require_scored_rows(input_name: str, counts: Counts) -> None:
    """Refuse an input whose every row was rejected (skip mode), before anything commits."""
    if counts.rows_scored == 0 and counts.first_reject is not None:
        line, reason, _ = counts.first_reject
        raise InputError(f"{input_name}: all {counts.rows_rejected} rows were rejected "
                         f"(the first, line {line}: {reason})")


def score_table(block: Beats, scores: np.ndarray, flags: np.ndarray):
    """The output rows of one block as a pyarrow table: its ids, score, is_anomaly[, label]."""
    import pyarrow as pa

    columns = {name: pa.array(values, from_pandas=True) for name, values in block.ids.items()}
    columns["score"] = pa.array(scores, pa.float64())
    columns["is_anomaly"] = pa.array(flags, pa.int8())
    if block.labels is not None:
        columns[block.label_header] = pa.array(block.labels.tolist(), pa.string())
    return pa.table(columns)


_END = object()


def prefetched(iterable: Iterable) -> Iterator:
    """Iterate ``iterable`` one item ahead in a helper thread."""
    from concurrent.futures import ThreadPoolExecutor

    iterator = iter(iterable)
    with ThreadPoolExecutor(1, thread_name_prefix="anomaly-read") as pool:
        pending = pool.submit(next, iterator, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, iterator, _END)
            yield item
