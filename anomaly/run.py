"""One ``anomaly score`` run: inputs in, one output each, then the run's reports.

Order of work: every destination is checked before the model loads (a typo costs no
time); each output is locked for the whole run; each input is scored and its output
committed as soon as it is complete; the plots, the HTML report and the JSON run report
come last. A failure on one input leaves the outputs already committed (complete and
correct) and writes nothing for the failing input.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import logs
from .batch import (InputResult, RunSummary, ScoreOptions, is_up_to_date, rejects_file_for,
                    score_input)


@dataclass
class RunResult:
    """Totals of a run, and one :class:`InputResult` per input."""

    inputs: list[InputResult] = field(default_factory=list)
    summary: RunSummary | None = None

    @property
    def anomalies(self) -> int:
        return sum(item.anomalies for item in self.inputs)

    def total(self, key: str) -> int:
        return sum(getattr(item, key) for item in self.inputs)


class ScoreRun:
    """Score ``inputs`` into ``outputs`` (``None`` = stdout) with the model in ``model_dir``."""

    def __init__(self, model_dir: Path, inputs: list[str], outputs: list[Path | None],
                 options: ScoreOptions, *, report: Path | None = None, html: Path | None = None,
                 plot_dir: Path | None = None, skip_existing: bool = False,
                 progress: bool = False, engine=None):
        self.model_dir, self.inputs, self.outputs = Path(model_dir), inputs, outputs
        self.options, self.report, self.html, self.plot_dir = options, report, html, plot_dir
        self.skip_existing = skip_existing
        self.show_progress = progress
        self.engine = LocalEngine() if engine is None else engine

    def execute(self) -> RunResult:
        from .detector import AutoencoderDetector
        from .writers import check_can_create_directory, check_writable, output_lock

        started = time.perf_counter()
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        files = [path for path in self.outputs if path is not None]
        for path in files + [p for p in (self.report, self.html) if p is not None]:
            check_writable(path)
        if self.plot_dir is not None:
            check_can_create_directory(self.plot_dir)
        detector = AutoencoderDetector.load(self.model_dir)
        loaded = time.perf_counter()
        summary = RunSummary(float(detector.threshold_))
        result = RunResult(summary=summary)
        with contextlib.ExitStack() as locks:
            for path in files:
                stale = locks.enter_context(output_lock(path, companions=[rejects_file_for(path)]))
                if stale:
                    logs.info(f"Removed {len(stale)} temporary file(s) left beside {path} by "
                              "an interrupted run.", event="stale_removed",
                              paths=[str(item) for item in stale])
            todo = self._not_skipped(result)
            if todo:
                locks.enter_context(self.engine)
            engine_started = time.perf_counter()
            for input_name, output in todo:
                result.inputs.append(self._score_one(detector, input_name, output, summary))
            result.inputs.sort(key=lambda item: self.inputs.index(item.input))
            for item in result.inputs:
                if item.skipped is None:
                    self._log_input(item, summary.threshold)
            scored = time.perf_counter()
            self._write_reports(detector, summary, result, created,
                                {"load_model": loaded - started,
                                 "engine_start": engine_started - loaded,
                                 "scoring": scored - engine_started})
        return result

    def _not_skipped(self, result: RunResult) -> list[tuple[str, Path | None]]:
        todo = []
        for input_name, output in zip(self.inputs, self.outputs):
            if self.skip_existing and output is not None and is_up_to_date(output, input_name,
                                                                           self.model_dir):
                result.inputs.append(InputResult(input=input_name, output=str(output),
                                                 skipped="output is newer than input and model"))
                logs.info(f"Skipped {input_name}: {output} is newer than it and the model.",
                          event="skipped", input=input_name, output=str(output))
            else:
                todo.append((input_name, output))
        return todo

    def _score_one(self, detector, input_name: str, output: Path | None,
                   summary: RunSummary) -> InputResult:
        with _progress_bar(input_name, self.show_progress) as progress:
            return self.engine.score_input(detector, self.model_dir, input_name, output,
                                           self.options, summary,
                                           input_index=self.inputs.index(input_name),
                                           progress=progress)

    @staticmethod
    def _log_input(item: InputResult, threshold: float) -> None:
        scored = max(item.rows_scored, 1)
        rejected = f", {item.rows_rejected} rejected (see {item.rejects_file})" if item.rows_rejected else ""
        where = f"; scores in {item.output}" if item.output else ""
        logs.info(
            f"Scored {item.rows_scored} rows from {item.input}: {item.anomalies} anomalies "
            f"({item.anomalies / scored:.1%}) above the threshold {threshold:.6g}{rejected}{where}.",
            event="scored", **item.as_json())

    def _write_reports(self, detector, summary: RunSummary, result: RunResult, created: str,
                       seconds: dict[str, float]) -> None:
        from .metrics import format_report
        from .writers import write_json

        metrics = summary.metrics() if summary.scores else None
        if metrics is not None:
            logs.info(format_report(metrics), event="metrics", metrics=metrics)
        scored = [item for item in result.inputs if item.skipped is None]
        plots = []
        if self.plot_dir is not None and summary.scores:
            from .plots import save_batch_plots

            plots = [str(path) for path in save_batch_plots(detector, summary, self.plot_dir)]
            logs.info(f"Plots written to {self.plot_dir}/", event="plots", plots=plots)
        if self.html is not None and summary.scores:
            from .html_report import write_html_report

            write_html_report(self.html, detector, summary, result)
            logs.info(f"HTML report written to {self.html}", event="html", path=str(self.html))
        if self.report is None:
            return
        seconds["total"] = sum(seconds.values())
        rows = result.total("rows_scored")
        report: dict[str, Any] = {
            "created": created,
            "engine": self.engine.name,
            "model": {
                "dir": str(self.model_dir),
                "sha256": detector.metadata_["model_sha256"],
                "threshold": float(detector.threshold_),
                "threshold_k": float(detector.threshold_k),
            },
            "inputs": [item.as_json() for item in result.inputs],
            "rows_read": result.total("rows_read"),
            "rows_scored": rows,
            "rows_rejected": result.total("rows_rejected"),
            "anomalies": result.anomalies,
            "inputs_scored": len(scored),
            "inputs_skipped": len(result.inputs) - len(scored),
            "seconds": {key: round(value, 3) for key, value in seconds.items()},
            "rows_per_second": round(rows / seconds["scoring"], 1) if seconds["scoring"] else None,
        }
        if metrics is not None:
            report["metrics"] = metrics
        if plots:
            report["plots"] = plots
        if self.html is not None:
            report["html"] = str(self.html)
        write_json(self.report, report)
        logs.info(f"Report written to {self.report}", event="report", path=str(self.report))


class LocalEngine:
    """Score each input in this process, streaming it block by block."""

    name = "local"

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def score_input(self, detector, model_dir: Path, input_name: str, output: Path | None,
                    options: ScoreOptions, summary: RunSummary, *, input_index: int = 0,
                    progress=None) -> InputResult:
        import sys

        return score_input(detector, input_name, output, options, summary,
                           input_index=input_index, progress=progress, stdout=sys.stdout.buffer)


@contextlib.contextmanager
def _progress_bar(input_name: str, enabled: bool):
    """A progress callback drawing rows, rows/s and ETA on a terminal; None otherwise."""
    import sys

    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeRemainingColumn)

    started = time.perf_counter()
    rows = [0]
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(Path(input_name).name, total=None, rows=0, rate=0.0)

        def update(done: int, total: int | None, new_rows: int) -> None:
            rows[0] += new_rows
            rate = rows[0] / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rows=rows[0], rate=rate)

        yield update
