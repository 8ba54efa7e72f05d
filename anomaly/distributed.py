"""The Dask engine: score partitions of the inputs on Dask workers, one machine or many.

An uncompressed input is cut into partitions of whole blocks (byte ranges that start and
end at block boundaries, see :mod:`anomaly.blocks`), so every worker parses exactly the
blocks the local engine would, and the committed output is byte-identical to the local
engine's. A ``.csv.gz`` input cannot be read from the middle: it is one partition.

Each worker loads the model once (and keeps it for the next tasks), scores its partition
and writes the score tables to a part file (Arrow IPC, one record batch per block) in a
staging directory beside the output. The client commits the output when every partition
is done: it writes the part files' tables in order through the same writer the local
engine uses, to a temporary file renamed into place. A failed partition fails the input
(the first failure in file order is reported, as the local engine would report it) and
nothing is written.

Workers must see the inputs, the model directory and the output directory under the same
paths as the client (one machine, or a shared file system); paths are made absolute.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .batch import (InputResult, RunSummary, ScoreOptions, ScoresWriter, finish_input,
                    output_format, score_blocks)
from .blocks import block_start
from .exceptions import InputError, ModelError
from .readers import (CsvLayout, iter_parsed_range, layout_from_head, no_rows_message,
                      open_input)

#: Blocks per partition: 8 blocks of 8 MB make 64 MB partitions (about 45,000 rows of 140
#: samples), enough work per task to hide Dask's per-task cost.
PARTITION_BLOCKS = 8

_models: dict[tuple[str, str], object] = {}
_models_lock = threading.Lock()
#: How many times this process loaded a model (read by the tests through ``Client.run``).
model_loads = 0


@dataclass(frozen=True)
class Partition:
    """One task: bytes ``start:stop`` of ``path`` (``stop`` None: a whole gzip file)."""

    path: str
    name: str
    start: int
    stop: int | None
    first_line: int
    layout: CsvLayout | None
    options: ScoreOptions
    part_file: str
    model_dir: str
    model_sha256: str
    input_index: int


@dataclass
class PartitionResult:
    counts: InputResult
    summary: RunSummary
    rejects: list[tuple[int, str, str]]
    part_file: str | None
    sha256: str | None = None


class DaskEngine:
    """Score inputs on a Dask cluster: ``scheduler`` (``tcp://host:port``) or, without
    one, a local cluster of ``workers`` processes bound to 127.0.0.1."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, workers: int | None = None,
                 partition_blocks: int = PARTITION_BLOCKS, connect_timeout: float = 30.0):
        if partition_blocks < 1:
            raise ValueError(f"partition_blocks must be positive, got {partition_blocks}")
        self.scheduler, self.partition_blocks = scheduler, partition_blocks
        self.workers = workers or os.cpu_count() or 1
        self.connect_timeout = connect_timeout
        self.client = None
        self._cluster = None

    def __enter__(self) -> "DaskEngine":
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:
            raise InputError("--engine dask needs Dask: pip install 'anomaly[dask]'") from error
        if self.scheduler is None:
            import logging
            import warnings

            with warnings.catch_warnings():
                # The scheduler's HTTP endpoint moves to a free port when 8787 is taken
                # (another cluster on this machine); that is expected, not news for the user.
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                             processes=True, host="127.0.0.1",
                                             dashboard_address=None,
                                             silence_logs=logging.CRITICAL)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as error:
                raise InputError(f"--scheduler {self.scheduler}: cannot connect ({error})") from error
        return self

    def __exit__(self, *exc_info) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        self.client = self._cluster = None

    def score_input(self, detector, model_dir: Path, input_name: str, output: Path | None,
                    options: ScoreOptions, summary: RunSummary, *, input_index: int = 0,
                    progress=None) -> InputResult:
        """Score one input on the cluster and commit its output; see the module docs."""
        if input_name == "-":
            raise InputError("<stdin>: the dask engine reads files its workers can open; "
                             "save the data to a file or use --engine local")
        if output is None:
            raise InputError(f"{input_name}: the dask engine writes output files, not stdout; "
                             "give --output FILE or use --engine local")
        started = time.perf_counter()
        path = os.path.abspath(input_name)
        staging = output.parent / f".{output.name}.parts-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        futures = []
        try:
            with ThreadPoolExecutor(1) as hasher:
                partitions, sha256 = self._plan(path, input_name, options, staging,
                                                str(Path(model_dir).resolve()),
                                                detector.metadata_["model_sha256"],
                                                input_index, hasher)
                futures = self.client.map(score_partition, partitions, pure=False)
                results = self._gather(futures, partitions, path, progress)
                result = self._commit(input_name, output, options, summary, results,
                                      partitions[0].layout)
                result.sha256 = sha256.result() if sha256 is not None else results[0].sha256
        finally:
            for future in futures:
                future.cancel()
            shutil.rmtree(staging, ignore_errors=True)
        result.seconds = time.perf_counter() - started
        return result

    def _plan(self, path: str, name: str, options: ScoreOptions, staging: Path,
              model_dir: str, model_sha256: str, input_index: int, hasher):
        """The partitions of one input, and a future of its SHA-256 (None for gzip)."""
        def partition(index: int, start: int, stop: int | None, first_line: int,
                      layout: CsvLayout | None) -> Partition:
            return Partition(path, name, start, stop, first_line, layout, options,
                             str(staging / f"part-{index:05d}.arrow"), model_dir,
                             model_sha256, input_index)

        with open_input(path) as source:  # Missing or unreadable files fail here, as locally.
            if source.compressed:
                return [partition(0, 0, None, 1, None)], None
            head = source.read_head()
        from .detector import file_sha256

        layout = layout_from_head(path, head, label_column=options.label_column,
                                  header=options.header, normal_label=options.normal_label)
        size = os.path.getsize(path)
        step = options.block_bytes * self.partition_blocks
        with open(path, "rb") as stream:
            bounds = sorted({block_start(stream, nominal) for nominal in range(0, size, step)}
                            | {size})
        ranges = list(zip(bounds[:-1], bounds[1:]))
        newlines = self.client.gather(self.client.map(
            count_newlines, [path] * len(ranges), [start for start, _ in ranges],
            [stop for _, stop in ranges], pure=False))
        first_lines = list(itertools.accumulate(newlines[:-1], initial=1))
        return ([partition(index, start, stop, first_lines[index], layout)
                 for index, (start, stop) in enumerate(ranges)],
                hasher.submit(file_sha256, path))

    @staticmethod
    def _gather(futures, partitions: list[Partition], path: str, progress):
        """Every partition's result, in order; the first failure in file order is raised."""
        from distributed import as_completed

        results = [None] * len(futures)
        if progress is not None:
            size = os.path.getsize(path)
            done = 0
            index_of = {future.key: index for index, future in enumerate(futures)}
            for future in as_completed(futures):
                if future.status == "error":
                    break
                index = index_of[future.key]
                part, results[index] = partitions[index], future.result()
                done += (size if part.stop is None else part.stop) - part.start
                progress(done, size, results[index].counts.rows_read)
        # Results not fetched yet are fetched in file order, so the first failure raised
        # is the first in the file.
        return [result if result is not None else future.result()
                for result, future in zip(results, futures)]

    @staticmethod
    def _commit(input_name: str, output: Path, options: ScoreOptions, summary: RunSummary,
                results: list[PartitionResult], layout: CsvLayout | None) -> InputResult:
        import pyarrow as pa

        from .writers import atomic_write

        result = InputResult(input=input_name, output=str(output))
        rejects: list[tuple[int, str, str]] = []
        for part in results:
            result.rows_scored += part.counts.rows_scored
            result.rows_rejected += part.counts.rows_rejected
            result.anomalies += part.counts.anomalies
            rejects += part.rejects
        result.rows_read = result.rows_scored + result.rows_rejected
        if result.rows_read == 0:  # (A gzip input's worker has said so already.)
            raise InputError(no_rows_message(input_name, layout))
        with atomic_write(output, "wb") as file:
            writer = ScoresWriter(file, output_format(output))
            for part_file in [part.part_file for part in results if part.part_file]:
                with pa.memory_map(part_file) as source:
                    reader = pa.ipc.open_file(source)
                    for index in range(reader.num_record_batches):
                        writer.write(pa.Table.from_batches([reader.get_batch(index)]))
            finish_input(input_name, output, writer, rejects, result,
                         options.on_bad_row == "skip")
        for part in results:
            summary.merge(part.summary)
        return result


class _PartWriter:
    """Writes score tables to an Arrow IPC file, one record batch per table."""

    def __init__(self, path: str):
        self.path, self._writer = path, None

    def write(self, table) -> None:
        import pyarrow as pa

        if self._writer is None:
            self._writer = pa.ipc.new_file(self.path, table.schema)
        for batch in table.to_batches():
            self._writer.write_batch(batch)

    def close(self) -> str | None:
        """Close the file; its path, or None if no table was written."""
        if self._writer is None:
            return None
        self._writer.close()
        return self.path


def score_partition(partition: Partition) -> PartitionResult:
    """Worker task: score one partition into its part file."""
    detector = _detector(partition.model_dir, partition.model_sha256)
    options = partition.options
    keep_rejects = options.on_bad_row == "skip"
    counts = InputResult(input=partition.name, output=None)
    summary = RunSummary(float(detector.threshold_))
    writer = _PartWriter(partition.part_file)
    sha256 = None
    if partition.stop is None:
        with open_input(partition.path) as source:
            source.name = partition.name
            blocks = source.iter_parsed(options.block_bytes, label_column=options.label_column,
                                        header=options.header,
                                        normal_label=options.normal_label,
                                        keep_rejects=keep_rejects)
            rejects = score_blocks(detector, partition.name, blocks, writer, summary, counts,
                                   options.normal_label, input_index=partition.input_index)
            sha256 = source.sha256
    else:
        blocks = iter_parsed_range(partition.path, partition.layout, partition.start,
                                   partition.stop, first_line=partition.first_line,
                                   block_size=options.block_bytes, keep_rejects=keep_rejects,
                                   name=partition.name)
        rejects = score_blocks(detector, partition.name, blocks, writer, summary, counts,
                               options.normal_label, input_index=partition.input_index)
    return PartitionResult(counts, summary, rejects, writer.close(), sha256)


def count_newlines(path: str, start: int, stop: int) -> int:
    """Worker task: how many line ends bytes ``start:stop`` of a file hold."""
    count = 0
    with open(path, "rb") as stream:
        stream.seek(start)
        remaining = stop - start
        while remaining > 0:
            chunk = stream.read(min(remaining, 16 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count


def _detector(model_dir: str, model_sha256: str):
    """The model, loaded once per worker process and kept for the next tasks."""
    global model_loads
    from .detector import AutoencoderDetector

    key = (model_dir, model_sha256)
    with _models_lock:
        if key not in _models:
            detector = AutoencoderDetector.load(model_dir)
            if detector.metadata_["model_sha256"] != model_sha256:
                raise ModelError(f"{model_dir}: the model changed while the run was scoring")
            _models[key] = detector
            model_loads += 1
        return _models[key]
