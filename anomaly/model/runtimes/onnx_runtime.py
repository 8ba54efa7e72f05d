"""The ONNX runtime: the model exported to ONNX, run by onnxruntime without TensorFlow.

Exporting needs Keras (and tf2onnx, through ``keras.Model.export``): it happens on the fit
path, once, and the export is checked against Keras on a probe batch before it is kept.
Scoring needs only ``onnxruntime``, which imports in a tenth of a second where TensorFlow
takes several, and holds a fraction of its memory, and the ``onnx`` package, which reads
the graph before onnxruntime runs it (:mod:`anomaly.model.runtimes.onnx_graph`; its import
takes 0.6 s on the 2-core machine the tool is measured on, nearly all of it ``ml_dtypes``
registering its NumPy types).

In the main thread (the command line's), onnxruntime's calls run in a helper thread while
the main thread waits (:func:`interruptibly`): a Python signal handler runs only in the
main thread, and only between two steps of Python, so SIGTERM (and Ctrl-C) would otherwise
wait for a forward pass, or a load, to end. Elsewhere (the service's and Dask's worker
threads, where no handler runs, and the service's event loop, whose handler raises nothing:
:func:`in_calling_thread`) a pass runs in the calling thread, unless it has a time limit
to wait with. Loading is bounded in time (:data:`LOAD_SECONDS`), and everything
onnxruntime allocates in memory (:data:`ARENA_BYTES`).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from ...exceptions import ModelError, first_line
from .base import INFERENCE_BATCH, codes_unlike_memory, in_batches
from .onnx_graph import GraphFacts, check_graph

#: Largest reconstruction difference between Keras and the exported model that the export
#: accepts (in scaled units, on a probe batch); measured differences are about 1e-7. A
#: code output is held to it over the largest code value (at least 1): MNIST's dense codes
#: differed by 1.1e-5 in values of up to about 10.
EXPORT_TOLERANCE = 1e-5
#: Largest ``model.onnx`` loaded: the dense ECG model is 0.2 MB, the MNIST models 0.3 to
#: 4.3 MB (the dense one with its 784 x 512 first layer is the largest). The file is read
#: whole, parsed and handed to onnxruntime, so this bounds what loading holds.
MAX_ONNX_BYTES = 64 << 20
#: Threads of one forward pass. Scoring parses the next block in a second thread while
#: this one runs (see :mod:`anomaly.scoring.pipeline`), so on the machines the tool is
#: measured on (2 cores) one thread each keeps both busy without oversubscribing them.
INTRA_OP_THREADS = 1
#: Seconds onnxruntime may take to load a checked model and run the probe batches; the
#: networks anomaly exports take well under one.
LOAD_SECONDS = 30
#: The most onnxruntime may allocate in this process, for every session (weights and the
#: tensors of forward passes, from one arena). The check bounds what a graph computes for
#: the batch sizes it tries (one input and two); this bounds anything else a graph might
#: compute for other batch sizes: the pass fails (a model error) before the machine's
#: memory runs out. With Python, NumPy and the reader, a scoring process stays under
#: 1.5 GB.
ARENA_BYTES = 768 << 20
#: The tensors of one forward pass at most: a pass takes this over the graph's bytes per
#: input rows (and at most ``INFERENCE_BATCH``): 550 to 680 for the MNIST convolutional and
#: variational models (a pass of 8,192 took 2.8 GB, and was slower), all of
#: ``INFERENCE_BATCH`` for the ECG ones.
PASS_BYTES = 256 << 20

_T = TypeVar("_T")


class OnnxRuntime:
    """Reconstruct with an onnxruntime ``InferenceSession``.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        Of a model with one input and one output of the same shape (and, for a model with a
        code memory, a second output: the code).
    rows_per_pass : int, default INFERENCE_BATCH
        Inputs per forward pass (see :func:`rows_per_pass`).
    source : path, default "model.onnx"
        What error messages call the model file.
    """

    name = "onnx"

    def __init__(self, session, rows_per_pass: int = INFERENCE_BATCH,
                 source: str | os.PathLike = "model.onnx") -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.rows_per_pass = rows_per_pass
        self.source = source

    def reconstruct(self, scaled: np.ndarray) -> np.ndarray:
        return in_batches(scaled, lambda batch: self._forward(batch)[0])

    def reconstruct_and_encode(self, scaled: np.ndarray, code_size: int
                               ) -> tuple[np.ndarray, np.ndarray]:
        return in_batches(scaled, self._forward, code_size)

    def run(self, inputs: np.ndarray, seconds: float | None = None) -> list[np.ndarray]:
        """One forward pass of ``inputs``, through :func:`interruptibly`: when the wait is
        interrupted or times out, onnxruntime stops the pass at its next node. Returns
        the graph's outputs: the reconstructions, then the codes if it has them.

        Raises
        ------
        TimeoutError
            The pass took over ``seconds``.
        Exception
            onnxruntime's own types, which share no base class but ``Exception``.
        """
        import onnxruntime

        options = onnxruntime.RunOptions()

        def stop() -> None:
            options.terminate = True

        return interruptibly(
            lambda: self.session.run(None, {self.input_name: inputs}, options), seconds,
            cancel=stop)

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """The graph's outputs for ``batch``, run ``rows_per_pass`` rows at a time."""
        parts = []
        for start in range(0, len(batch), self.rows_per_pass):
            rows = batch[start:start + self.rows_per_pass]
            try:
                part = self.run(rows)
            except Exception as error:  # onnxruntime's, e.g. its arena full (ARENA_BYTES).
                raise ModelError(f"{self.source}: a forward pass of {len(rows)} inputs failed "
                                 f"({first_line(error)})") from error
            if np.shape(part[0]) != rows.shape:
                return tuple(part)  # in_batches reports the shape, as for any runtime.
            parts.append(part)
        if len(parts) == 1:
            return tuple(parts[0])
        return tuple(np.concatenate(output) for output in zip(*parts))


def rows_per_pass(facts: GraphFacts) -> int:
    """Inputs per forward pass of a checked graph: as many as :data:`PASS_BYTES` holds,
    at least one and at most ``INFERENCE_BATCH``."""
    return max(1, min(INFERENCE_BATCH, PASS_BYTES // facts.bytes_per_input))


def interruptibly(call: Callable[[], _T], seconds: float | None = None, *,
                  cancel: Callable[[], None] | None = None) -> _T:
    """``call()``, run in a helper thread while this thread waits for it (in the main
    thread, unless within :func:`in_calling_thread`, or with ``seconds``; elsewhere called
    directly).

    onnxruntime's calls release the GIL but hold the thread that made them until they
    return; waiting in ``Thread.join`` instead, the main thread runs its signal handlers
    as signals arrive (the CLI's SIGTERM handler raises ``Terminated``, Ctrl-C raises
    ``KeyboardInterrupt``), and the run unwinds at once. The helper thread is a daemon:
    the CLI leaves with ``os._exit``, which ends it wherever it is; elsewhere ``cancel``
    asks it to stop.

    Parameters
    ----------
    call : callable
    seconds : float, optional
        How long to wait; default until ``call`` returns.
    cancel : callable, optional
        Called when the wait ends early (a timeout, or an exception such as
        ``Terminated`` raised by a signal handler).

    Raises
    ------
    TimeoutError
        ``call`` did not return within ``seconds``.
    """
    if seconds is None and (threading.current_thread() is not threading.main_thread()
                            or _IN_CALLING_THREAD.get()):
        # No signal handler runs here, or only one that raises nothing (uvicorn's sets a
        # flag its loop reads after the pass), and nothing bounds the wait: the helper
        # thread would cost a thread's start and join (0.2 ms) for nothing. The service
        # scores in pool threads and, bodies of up to 8 KiB, on its event loop.
        return call()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - raised again in the waiting thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="onnxruntime", daemon=True)
    worker.start()
    try:
        worker.join(seconds)
        if worker.is_alive():
            raise TimeoutError(f"still running after {seconds:g} s")
    except BaseException:
        if cancel is not None:
            cancel()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


#: Set by :func:`in_calling_thread`.
_IN_CALLING_THREAD = contextvars.ContextVar("onnxruntime_in_calling_thread", default=False)


@contextmanager
def in_calling_thread() -> Iterator[None]:
    """Within it, :func:`interruptibly` runs passes in the calling thread even when that is
    the main thread: for a caller whose signal handlers raise nothing (the service's event
    loop: uvicorn's handler sets a flag), to whom the helper thread is a cost without a
    use. Elsewhere in the main thread (the command line, a notebook) Ctrl-C and SIGTERM
    must stop a pass at once."""
    token = _IN_CALLING_THREAD.set(True)
    try:
        yield
    finally:
        _IN_CALLING_THREAD.reset(token)


def export_onnx(model, path: str | os.PathLike, *,
                name: str | os.PathLike | None = None,
                code_size: int | None = None) -> dict[str, Any]:
    """Export a Keras autoencoder's forward pass to ONNX at ``path`` and check it.

    The variational autoencoder is exported decoding its code's mean, as it scores. The
    export must pass the check scoring applies (:func:`check_graph`): a model that could
    not be scored through ONNX is not kept.

    Parameters
    ----------
    model : keras.Model
        A fitted autoencoder of :mod:`anomaly.model.networks`.
    path : path
        The ``.onnx`` file to write.
    name : path, optional
        What error messages call the file (its final place, when ``path`` is a staging
        directory's); default ``path``.
    code_size : int, optional
        For a detector with a code memory: the graph also outputs the dense network's code,
        of this many values.

    Returns
    -------
    dict
        The metadata entry for the file: its ``sha256`` and the exporter's versions.

    Raises
    ------
    ModelError
        When the exporter fails, the export does not pass the check, or its
        reconstructions of a probe batch differ from Keras's by more than
        ``EXPORT_TOLERANCE``.
    """
    import onnxruntime
    import tf2onnx

    from .._tensorflow import quietly
    from ..networks import forward_model, keras

    forward = forward_model(model, with_code=code_size is not None)
    shape = tuple(forward.input_shape[1:])
    probe = np.random.default_rng(0).uniform(size=(64, *shape)).astype(np.float32)
    # Called once before exporting: Keras exports only a model that has been called.
    expected = keras.tree.map_structure(keras.ops.convert_to_numpy,
                                        forward(probe, training=False))
    name = name or path
    try:
        with quietly():
            forward.export(str(path), format="onnx", verbose=False)
        data = Path(path).read_bytes()
    except Exception as error:  # The exporter (tf2onnx) raises many types.
        raise ModelError(f"{name}: the ONNX export failed ({first_line(error)})") from error
    facts = check_graph(data, shape, name, code_size=code_size)
    try:
        got = OnnxRuntime(_session(data), rows_per_pass(facts), name)._forward(probe)
    except ModelError:
        raise
    except Exception as error:  # onnxruntime raises its own types.
        raise ModelError(f"{name}: the ONNX export failed ({first_line(error)})") from error
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    difference = float(np.max(np.abs(got[0] - expected[0])))
    if not difference <= EXPORT_TOLERANCE:
        raise ModelError(f"{name}: the exported model's reconstructions differ from Keras's "
                         f"by {difference:.3g} (at most {EXPORT_TOLERANCE:g} is accepted)")
    entry = {}
    if code_size is not None:
        # Codes are not scaled to [0, 1] as reconstructions are: compared to their size.
        size = max(1.0, float(np.max(np.abs(expected[1]))))
        entry["max_code_difference"] = float(np.max(np.abs(got[1] - expected[1]))) / size
        if not entry["max_code_difference"] <= EXPORT_TOLERANCE:
            raise ModelError(f"{name}: the exported model's codes differ from Keras's by "
                             f"{entry['max_code_difference']:.3g} of their largest value "
                             f"(at most {EXPORT_TOLERANCE:g} is accepted)")
    return {"sha256": hashlib.sha256(data).hexdigest(), "max_difference": difference, **entry,
            "exporter": {"keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
                         "onnxruntime": onnxruntime.__version__}}


def load_onnx_runtime(path: Path, sha256: str, input_shape: tuple[int, ...], *,
                      code_size: int | None = None) -> OnnxRuntime:
    """``model.onnx``, checked against its recorded SHA-256 and its graph checked, loaded
    and checked again.

    The file is read once: the bytes hashed are the bytes checked and the bytes
    onnxruntime loads, so the file cannot change in between. The graph is checked
    (:func:`check_graph`) before onnxruntime sees it. Loading and the probe batches
    below have :data:`LOAD_SECONDS` in all, and SIGTERM ends them at once
    (:func:`interruptibly`). After loading: a batch of inputs of ``input_shape`` maps to
    a batch of the same shape (and, with ``code_size``, to codes of that many values: a
    model with a code memory), and the outputs are finite.

    Raises
    ------
    ModelError
        Naming the file and the first problem found.
    """
    data = _read(path)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{path}: does not match the SHA-256 recorded in metadata.json "
                         "(modified or replaced since it was saved)")
    facts = check_graph(data, input_shape, path, code_size=code_size)
    deadline = time.monotonic() + LOAD_SECONDS
    try:
        session = interruptibly(lambda: _session(data), LOAD_SECONDS)
    except TimeoutError as error:
        raise ModelError(f"{path}: took over {LOAD_SECONDS} s to load; refused") from error
    except Exception as error:  # onnxruntime raises its own types for a corrupt model.
        raise ModelError(f"{path}: cannot be loaded ({first_line(error)})") from error
    runtime = OnnxRuntime(session, rows_per_pass(facts), path)
    for rows in (1, 2):
        probe = np.full((rows, *input_shape), 0.5, dtype=np.float32)
        try:
            output, *code = runtime.run(probe, max(deadline - time.monotonic(), 0.0))
        except TimeoutError as error:
            raise ModelError(f"{path}: took over {LOAD_SECONDS} s to load and run on "
                             f"{rows} input(s); refused") from error
        except Exception as error:  # onnxruntime's own types, for a shape it cannot take.
            raise ModelError(f"{path}: does not take inputs of shape {input_shape} "
                             f"({first_line(error)})") from error
        if np.shape(output) != probe.shape:
            raise ModelError(f"{path}: maps inputs of shape {input_shape} to "
                             f"{np.shape(output)[1:]}; an autoencoder's output has its "
                             "input's shape")
        if code_size is not None and np.shape(code[0]) != (rows, code_size):
            raise ModelError(f"{path}: {codes_unlike_memory(code[0], code_size)}")
        for values, what in ((output, "reconstructions"), *((codes, "codes") for codes in code)):
            if not np.isfinite(values).all():
                raise ModelError(f"{path}: {what} are not finite numbers (NaN or infinite); "
                                 "such a model scores nothing")
    return runtime


def _read(path: Path) -> bytes:
    """The bytes of ``model.onnx``, at most :data:`MAX_ONNX_BYTES` of them."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            # Read one byte more than allowed: a file that grows after fstat is refused too.
            data = file.read(MAX_ONNX_BYTES + 1) if size <= MAX_ONNX_BYTES else b""
    except OSError as error:
        raise ModelError(f"{path}: cannot be read ({error.strerror or error})") from error
    if size > MAX_ONNX_BYTES or len(data) > MAX_ONNX_BYTES:
        raise ModelError(f"{path}: {max(size, len(data)):,} bytes; at most "
                         f"{MAX_ONNX_BYTES:,} are loaded")
    return data


def _session(model: bytes):
    """An onnxruntime session of a model's bytes (checked by :func:`check_graph` first),
    allocating from the process's bounded arena."""
    import onnxruntime

    _bound_arena()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = INTRA_OP_THREADS
    options.inter_op_num_threads = 1
    # Fatal messages only: its errors reach the caller as exceptions, which become one
    # Error: line; logged as well, they would add lines to stderr (and a cron job's mail).
    options.log_severity_level = 4
    options.add_session_config_entry("session.use_env_allocators", "1")
    return onnxruntime.InferenceSession(model, sess_options=options,
                                        providers=["CPUExecutionProvider"])


@functools.cache
def _bound_arena() -> None:
    """Give onnxruntime's environment an arena of at most :data:`ARENA_BYTES`, which every
    session that asks for the environment's allocators shares, and its telemetry off:
    once per process."""
    import onnxruntime

    # Off in this package's processes before onnxruntime loads (ORT_DISABLE_TELEMETRY,
    # anomaly/__init__.py); here too where a host imported onnxruntime first.
    onnxruntime.disable_telemetry_events()
    memory = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR,
                                       0, onnxruntime.OrtMemType.DEFAULT)
    # -1: onnxruntime's defaults for how the arena grows.
    onnxruntime.create_and_register_allocator(memory,
                                              onnxruntime.OrtArenaCfg(ARENA_BYTES, -1, -1, -1))
