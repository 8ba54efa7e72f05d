"""The Dask engine: score partitions of the inputs on Dask workers, one machine or many.

An uncompressed input is cut into partitions of whole blocks (byte ranges that start and
end at block boundaries, see :mod:`anomaly.io.blocks`), so every worker parses exactly the
blocks the local engine would, and the committed output is byte-identical to the local
engine's. A ``.csv.gz`` input cannot be read from the middle: it is one partition.

Each worker loads the model once (and keeps it for the next tasks) and runs the same
scoring loop as the local engine (:func:`anomaly.scoring.pipeline.score_source`) into a
part file (:class:`anomaly.scoring.sinks.PartFile`) in a staging directory beside the
output. The client commits the output when every partition is done: it writes the parts'
tables in order into the job's sink, the same sink the local engine writes to. A failed
partition fails the input (the first failure in file order is reported, as the local
engine would report it) and nothing is written.

Workers must see the inputs, the model directory and the output directory under the same
paths as the client (one machine, or a shared file system); paths are made absolute.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from .. import logs
from ..choices import MAX_LOCAL_WORKERS
from ..exceptions import InputError, ModelError
from ..io.blocks import block_start, count_newlines
from ..io.csv_parser import layout_from_head, no_rows_message
from ..io.layout import CsvLayout
from ..io.readers import InputSource
from ..io.writers import file_sha256
from .base import ModelLimits, Progress
from .pipeline import require_scored_rows, score_source
from .plan import STDIO, Job
from .sinks import PartFile, read_part, read_part_rejects, sink_for
from .sources import CsvRangeSource, source_for
from .summary import Counts, ScoredInput, ScoreSummary

#: Blocks per partition: 8 blocks of 8 MB make 64 MB partitions (about 45,000 rows of 140
#: samples), enough work per task to hide Dask's per-task cost.
PARTITION_BLOCKS = 8

#: Seconds given to Dask beyond --connect-timeout to report its own connection error.
CONNECT_GRACE = 5.0

_models: dict[tuple[str, str], object] = {}
_models_lock = threading.Lock()
#: How many times this process loaded a model (read by the tests through ``Client.run``).
model_loads = 0


@dataclass(frozen=True)
class Partition:
    """One task: bytes ``start:stop`` of the job's input at ``path`` (``stop`` None: a
    whole gzip file), scored into ``part_file``."""

    job: Job
    path: str
    start: int
    stop: int | None
    first_line: int
    layout: CsvLayout | None
    part_file: str
    model_dir: str
    model_sha256: str
    runtime: str
    limits: ModelLimits


@dataclass
class PartitionResult:
    outcome: ScoredInput
    part_file: str | None
    rejects_file: str | None


def _run_security():
    """TLS for a local cluster, with a certificate authority made for this run and kept in
    memory: only the run's own client and workers hold a certificate it signed, and every
    connection must show one (Dask's ``Security.temporary``, which needs the
    ``cryptography`` package of the ``dask`` extra)."""
    try:
        from distributed.security import Security

        return Security.temporary()
    except ImportError as error:
        raise InputError("--engine dask needs the cryptography package for its local "
                         "cluster's TLS: pip install 'anomaly[dask]'") from error


class DaskEngine:
    """Score inputs on a Dask cluster.

    Parameters
    ----------
    scheduler : str, optional
        A scheduler's address, ``tcp://host:port``. Without one, entering the engine
        starts a local cluster of ``workers`` processes bound to 127.0.0.1.
    workers : int, optional
        Worker processes of that local cluster (default: one per CPU core). Its
        scheduler and workers speak TLS with certificates made for this run alone
        (:func:`_run_security`): Dask runs the functions its clients send, so another
        user of the machine who reached the ports could run code as the user scoring
        (often root).
    partition_blocks : int, default 8
        Blocks per partition of an uncompressed input.
    connect_timeout : float, default 30
        Seconds to wait for the scheduler.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, workers: int | None = None,
                 partition_blocks: int = PARTITION_BLOCKS, connect_timeout: float = 30.0):
        if partition_blocks < 1:
            raise ValueError(f"partition_blocks must be positive, got {partition_blocks}")
        if workers is not None and not 1 <= workers <= MAX_LOCAL_WORKERS:
            raise ValueError(f"workers must be from 1 to {MAX_LOCAL_WORKERS}, got {workers}")
        self.scheduler, self.partition_blocks = scheduler, partition_blocks
        self.workers = workers or min(os.cpu_count() or 1, MAX_LOCAL_WORKERS)
        self.connect_timeout = connect_timeout
        self.client = None
        self._cluster = None
        self._scratch: str | None = None
        self._config = None

    def __enter__(self) -> "DaskEngine":
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:
            raise InputError("--engine dask needs Dask: pip install 'anomaly[dask]'") from error
        if self.scheduler is None:
            import logging
            import warnings

            import dask

            # The cluster's scratch space, private to this run: distributed's default,
            # $TMPDIR/dask-scratch-space, is reused whoever made it, put on the workers'
            # sys.path and its lock files opened through links (another user planted
            # numpy.py there and it ran as root). No HTTP routes: the scheduler served
            # the workers' logs and errors, rows of the inputs in them, to anyone.
            self._scratch = tempfile.mkdtemp(prefix="anomaly-dask-")
            self._config = dask.config.set({
                "temporary-directory": self._scratch,
                "distributed.scheduler.http.routes": [],
                "distributed.worker.http.routes": []})
            self._config.__enter__()
            try:
                with warnings.catch_warnings():
                    # The scheduler's HTTP endpoint moves to a free port when 8787 is
                    # taken (another cluster here); expected, not news for the user.
                    warnings.filterwarnings("ignore", message="Port .* is already in use")
                    self._cluster = LocalCluster(
                        n_workers=self.workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None,
                        silence_logs=logging.CRITICAL, protocol="tls://",
                        security=_run_security(), local_directory=self._scratch)
                self.client = Client(self._cluster)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        else:
            self.client = self._connect(Client)
        return self

    def _connect(self, client_class):
        """A client of the scheduler, or an InputError once ``connect_timeout`` has passed.

        Dask's own timeout covers reaching the address, not a service there that never
        answers as a scheduler would (an HTTP server, say), which would hang the run for
        ever; so the client is made in a helper thread, waited for with a deadline.
        """
        where = f"--scheduler {self.scheduler}"
        made: dict = {}

        def connect() -> None:
            try:
                made["client"] = client_class(self.scheduler, timeout=self.connect_timeout)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                made["error"] = error

        thread = threading.Thread(target=connect, name="anomaly-dask-connect", daemon=True)
        thread.start()
        # A few seconds' grace, so that Dask's own error (nothing listening, say) comes first.
        thread.join(self.connect_timeout + CONNECT_GRACE)
        if thread.is_alive():
            raise InputError(f"{where}: no Dask scheduler answered within "
                             f"{self.connect_timeout:g} s (see --connect-timeout)")
        error = made.get("error")
        if isinstance(error, (ValueError, TypeError)):
            raise InputError(f"{where}: not a scheduler address ({error}); expected "
                             "tcp://HOST:PORT") from None
        if isinstance(error, (OSError, TimeoutError)):
            raise InputError(f"{where}: cannot connect ({error})") from None
        if error is not None:
            raise error
        return made["client"]

    def __exit__(self, *exc_info) -> None:
        client, cluster, self.client, self._cluster = self.client, self._cluster, None, None
        try:
            if client is not None:
                client.close()
        finally:
            try:
                if cluster is not None:
                    cluster.close()
            finally:
                config, scratch, self._config, self._scratch = \
                    self._config, self._scratch, None, None
                if config is not None:
                    config.__exit__(None, None, None)
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)

    def check(self, job: Job) -> None:
        """A scheduler address that cannot be one is bad usage; and workers open files and
        write part files beside the output: no stdin, no stdout."""
        if self.scheduler is not None:
            from distributed.comm import parse_address, parse_host_port

            try:
                parse_host_port(parse_address(self.scheduler)[1])
            except ValueError as error:
                raise InputError(f"--scheduler {self.scheduler}: not a scheduler address "
                                 f"({error}); expected tcp://HOST:PORT") from None
        if job.input == STDIO:
            raise InputError("<stdin>: the dask engine reads files its workers can open; "
                             "save the data to a file or use --engine local")
        if job.output is None:
            raise InputError(f"{job.input}: the dask engine writes output files, not stdout; "
                             "give --output FILE or use --engine local")
        if job.options.is_recording(job.input):
            raise InputError(f"{job.input}: the dask engine scores beats CSV files; score a "
                             "recording with --engine local, or cut it with 'anomaly beats' "
                             "first")

    def score(self, job: Job, detector, model_dir: Path, *,
              progress: Progress | None = None) -> ScoredInput:
        """Score one input on the cluster and commit its output; see the module docs."""
        path = os.path.abspath(job.input)
        staging = job.output.parent / f".{job.output.name}.parts-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        futures = []
        try:
            with ThreadPoolExecutor(1) as hasher:
                partitions, sha256 = self._plan(path, job, staging, str(Path(model_dir).resolve()),
                                                detector, hasher)
                # Its layout has been read (a gzip input's is read by its worker): what
                # differs from the model's beats is said before the workers score it.
                for message in job.warnings:
                    logs.warning(message, event="fitted_kind", input=job.input)
                futures = self.client.map(score_partition, partitions, pure=False)
                results = self._gather(futures, partitions, path, progress)
                outcome = self._commit(job, results, partitions[0].layout,
                                       float(detector.threshold_))
                # An uncompressed input is hashed here while the workers score it; a gzip
                # input by the worker that reads it whole.
                digest = sha256.result() if sha256 is not None else results[0].outcome.sha256
        finally:
            for future in futures:
                future.cancel()
            _remove_staging(staging)
        return replace(outcome, sha256=digest)

    def _plan(self, path: str, job: Job, staging: Path, model_dir: str, detector, hasher):
        """The partitions of one input, and a future of its SHA-256 (None for gzip)."""
        limits = ModelLimits.of(detector)

        def partition(index: int, start: int, stop: int | None, first_line: int,
                      layout: CsvLayout | None) -> Partition:
            return Partition(job, path, start, stop, first_line, layout,
                             str(staging / f"part-{index:05d}.arrow"), model_dir,
                             detector.model_sha256_, detector.runtime_.name,
                             limits)

        with InputSource(path) as source:  # Missing or unreadable files fail here, as locally.
            if source.compressed:
                return [partition(0, 0, None, 1, None)], None
            head = source.read_head()
        options = job.options
        layout = layout_from_head(job.input, head, label_column=options.label_column,
                                  header=options.header, normal_label=options.normal_label,
                                  samples=limits.samples, value_range=limits.value_range)
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
    def _gather(futures, partitions: list[Partition], path: str, progress: Progress | None):
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
                progress(done, size, results[index].outcome.counts.rows_read)
        # Results not fetched yet are fetched in file order, so the first failure raised
        # is the first in the file.
        return [result if result is not None else future.result()
                for result, future in zip(results, futures)]

    @staticmethod
    def _commit(job: Job, results: list[PartitionResult], layout: CsvLayout | None,
                threshold: float) -> ScoredInput:
        """Write the partitions' scores and rejects, in order, into the job's sink."""
        counts, summary = Counts(), ScoreSummary(threshold)
        for part in results:
            counts += part.outcome.counts
            summary.merge(part.outcome.summary)
        if counts.rows_read == 0:  # (A gzip input's worker has said so already.)
            raise InputError(no_rows_message(job.input, layout))
        with sink_for(job) as sink:
            for part in results:
                if part.part_file is not None:
                    for table in read_part(part.part_file):
                        sink.write(table)
                if part.rejects_file is not None:
                    for rows in read_part_rejects(part.rejects_file):
                        sink.reject(rows)
            require_scored_rows(job.input, counts)
        return ScoredInput(counts, summary)


def _remove_staging(staging: Path) -> None:
    """Remove a run's staging directory. A cancelled partition may still be running on
    its worker and create its part file while the directory is being removed, which then
    stays behind, not empty: so it is renamed first, and a partition that starts writing
    after that finds no directory to write into."""
    removing = staging.with_name(f"{staging.name}.removing")
    try:
        os.rename(staging, removing)
    except OSError:
        removing = staging
    shutil.rmtree(removing, ignore_errors=True)


def score_partition(partition: Partition) -> PartitionResult:
    """Worker task: score one partition into its part file."""
    detector = _detector(partition.model_dir, partition.model_sha256, partition.runtime)
    job = partition.job
    if partition.stop is None:
        source = source_for(job, limits=partition.limits, path=partition.path)
    else:
        source = CsvRangeSource(partition.path, partition.layout, partition.start,
                                partition.stop, first_line=partition.first_line,
                                options=job.options, name=job.input)
    with source, PartFile(partition.part_file) as part:
        outcome = score_source(detector, source, part, input_index=job.index)
    return PartitionResult(outcome, *part.written)


def _detector(model_dir: str, model_sha256: str, runtime: str):
    """The model, loaded once per worker process with the client's runtime and kept for
    the next tasks."""
    global model_loads
    from ..model import AutoencoderDetector

    key = (model_dir, model_sha256, runtime)
    with _models_lock:
        if key not in _models:
            detector = AutoencoderDetector.load(model_dir, runtime=runtime)
            if detector.model_sha256_ != model_sha256:
                raise ModelError(f"{model_dir}: the model changed while the run was scoring")
            _models[key] = detector
            model_loads += 1
        return _models[key]
