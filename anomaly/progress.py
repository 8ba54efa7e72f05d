"""Progress bars on stderr, for people at a terminal: rows scored, epochs trained.

Each is a context manager yielding a callback, or None when stderr is not a terminal or
the bar is not wanted (``--quiet``, JSON logs): a cron job's mail and a log shipper's
lines stay free of control characters. Both draw with rich, and vanish when done.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Iterator


def _bar(*columns):
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(*columns, BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


def _wanted(enabled: bool) -> bool:
    return enabled and sys.stderr.isatty()


@contextlib.contextmanager
def rows_progress(input_name: str,
                  enabled: bool) -> Iterator[Callable[[int, int | None, int], None] | None]:
    """A callback ``update(bytes_done, bytes_total, new_rows)`` drawing an input's
    progress with rows and rows/s; None when not drawing."""
    if not _wanted(enabled):
        yield None
        return
    from rich.progress import TextColumn

    started = time.perf_counter()
    rows = [0]
    with _bar(TextColumn("{task.description}"),
              TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s")) as bar:
        task = bar.add_task(Path(input_name).name, total=None, rows=0, rate=0.0)

        def update(done: int, total: int | None, new_rows: int) -> None:
            rows[0] += new_rows
            rate = rows[0] / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rows=rows[0], rate=rate)

        yield update


@contextlib.contextmanager
def epochs_progress(enabled: bool) -> Iterator[Callable[[int, int, dict], None] | None]:
    """A callback ``update(epoch, epochs, logs)`` drawing training's progress: which fit
    of several (``logs["fit"]``, when the threshold's models are fitted first), epoch of
    ``epochs`` (the most; early stopping may end sooner) and the loss; None when not
    drawing."""
    if not _wanted(enabled):
        yield None
        return
    from rich.progress import TextColumn

    # Fields, not the task's own completed/total: the total is unknown (None) until the
    # first epoch ends, and a format spec cannot take None.
    with _bar(TextColumn("training{task.fields[fit]}  epoch {task.fields[epoch]}/"
                         "{task.fields[epochs]}  loss {task.fields[loss]}")) as bar:
        task = bar.add_task("fit", total=None, loss="-", fit="", epoch=0, epochs="?")
        shown = [None]

        def update(epoch: int, epochs: int, logs: dict) -> None:
            loss, fit = logs.get("loss"), logs.get("fit")
            if fit != shown[0]:  # Each fit starts its own bar, elapsed and ETA.
                shown[0] = fit
                bar.reset(task)
            bar.update(task, completed=epoch + 1, total=epochs, epoch=epoch + 1, epochs=epochs,
                       fit="" if fit is None else f" (fit {fit})",
                       loss="-" if loss is None else f"{float(loss):.5g}")

        yield update
