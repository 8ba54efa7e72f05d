"""The model directory: ``model.keras`` and ``model.onnx`` beside ``metadata.json``.

The only module that reads or writes one. ``model.keras`` is Keras's native format, loaded
in safe mode (no arbitrary code, no pickle); ``model.onnx`` is its forward pass exported
to ONNX, which scoring runs without TensorFlow (see :mod:`anomaly.model.runtimes`);
``metadata.json`` holds what the networks do not, each fact once, as the values that own
it write it: the detector's parameters, the :class:`~anomaly.model.scaling.Scaling` (the
input's shape and layout with its scaling), the
:class:`~anomaly.model.threshold.Calibration` (the threshold and whose errors set it),
the :class:`~anomaly.model.training.TrainingSummary`, the :class:`Provenance` (the
training file and its hash; for a recording, its lead, span and beat window), versions,
and the SHA-256 of each model file. A directory is written beside its destination and
renamed into place, so it appears complete or not at all.

Format 9 is written: format 8 with the threshold's winsorised scores (the parameter
``threshold_winsorise`` and the calibration's ``winsorised``, how many of the largest
scores counted as the largest of the others; required, so that the mean and spread
recorded are read as what they are). Format 8 was format 7 with the centroids of the
training beats' samples in the code memory (``sample_centroids``, a third factor of the
score; null when a fit kept none, and required, so that a memory stripped of it is
refused), so that a release that reads only format 7 refuses such a directory as newer
rather than score it without that factor against a threshold set with it. Format 7 was
format 6 with, for a detector that scores by its code's distance, the memory of training
codes (``code_memory``, :mod:`anomaly.model.code_memory`; its ``model.onnx`` then outputs
the code too); a format-7 memory scores by the codes' distance alone. Format 6 was format
5 with a recording's model's dominant beat (the beat window's ``template``, on which beats
are aligned: :mod:`anomaly.recordings.alignment`). Format 5 was format 4 with the score's
``error_metric`` among the parameters (a format-4 directory scores the mean absolute error
it was calibrated on). Formats 1 to 8 are still read (their thresholds were set on every
score as it was): format 3 kept the threshold's statistics, the network's size and the
provenance as loose keys (beside the fit's figures under ``training``), format 2 lacked
the context, and format 1 (anomaly 0.1 before it) spread some parameters over
``architecture`` and ``training`` and lost the others.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import __version__
from ..exceptions import InputError, ModelError, shortened
from ..io.writers import (check_can_create, file_sha256, make_staging_directory, output_lock,
                          replace_directory, write_json)
from ..json_values import is_count, is_finite, is_sha256, known
from ..choices import CODE_DISTANCE_MIN_BEATS
from .code_memory import CodeMemory, code_size
from .parameters import CONSTRAINTS
from .provenance import Provenance, RecordingOrigin
from .scaling import Scaling
from .threshold import Calibration
from .training import TrainingSummary

#: Version of the model directory layout written; 1 to 9 are read, newer ones refused.
FORMAT_VERSION = 9
MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
#: Limits on what a model directory may ask of the loader, checked before anything heavy
#: is read: values per input (MNIST's digits have 784, ECG5000's beats 140), the units or
#: filters of a layer, the bytes ``metadata.json`` and each ``model.keras`` member unpack to.
MAX_INPUT_VALUES = 1_000_000
MAX_LAYER_WIDTH = 16_384
MAX_METADATA_BYTES = 1 << 20
MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 1 << 30
#: Largest ``model.keras`` read (and hashed): its members, as above, and the archive's
#: own bytes.
MAX_MODEL_BYTES = MAX_WEIGHTS_BYTES + 2 * MAX_CONFIG_BYTES
#: Keras config keys that declare a shape, and those that declare a layer's width.
_SHAPE_KEYS = {"batch_shape", "batch_input_shape", "input_shape", "shape", "target_shape"}
_WIDTH_KEYS = {"units", "filters"}

_NUMBER = (int, float)
#: Parameters formats 4 to 8 do not record (added by format 9): their thresholds were set
#: on every score as it was.
ADDED_AFTER_FORMAT_8 = {"threshold_winsorise": 0}
#: What calibrations before format 9 do not record, alike: no score was winsorised.
CALIBRATED_BEFORE_FORMAT_9 = {"winsorised": 0}
#: Parameters formats 5 and 6 do not record (added by format 7): their models score by
#: the error alone.
ADDED_AFTER_FORMAT_6 = {"code_distance": "off", **ADDED_AFTER_FORMAT_8}
#: Parameters format 4 does not record (added by format 5), at the values its models were
#: fitted with: the mean absolute error.
ADDED_AFTER_FORMAT_4 = {"error_metric": "mae", **ADDED_AFTER_FORMAT_6}
#: Parameters formats 1 to 3 do not record, at the values those models were fitted with
#: (not today's defaults): the threshold from the training errors, every epoch, the mean
#: absolute error.
FITTED_BEFORE_RECORDED = {"threshold_source": "training", "max_inputs_seen": None,
                          **ADDED_AFTER_FORMAT_4}
#: Required keys and their types, by format version; nested dicts are checked the same
#: way, and ``dict`` (the type) is a JSON object whose own value checks its keys.
_SCHEMAS: dict[int, dict[str, Any]] = {
    9: {
        "format_version": int,
        "params": dict,
        "scaling": dict,
        "calibration": dict,
        "training": dict,
        "provenance": dict,
        "model_sha256": str,
    },
    3: {
        "format_version": int,
        "params": dict,
        "input_shape": list,
        "scaling": {"method": str, "min": _NUMBER, "range": _NUMBER},
        "threshold": _NUMBER,
        "train_error_mean": _NUMBER,
        "train_error_std": _NUMBER,
        "training": {"rows": int, "epochs": int},
        "model_sha256": str,
    },
    1: {
        "format_version": int,
        "architecture": {"model": str, "hidden_units": list},
        "input_length": int,
        "scaling": {"method": str, "min": _NUMBER, "range": _NUMBER},
        "threshold": _NUMBER,
        "threshold_k": _NUMBER,
        "train_error_mean": _NUMBER,
        "train_error_std": _NUMBER,
        "training": {
            "rows": int,
            "epochs": int,
            "max_epochs": int,
            "batch_size": int,
            "learning_rate": _NUMBER,
            "validation_fraction": _NUMBER,
            "seed": int,
        },
        "model_sha256": str,
    },
}
_SCHEMAS[2] = _SCHEMAS[3]  # Format 2 lacks only the optional context parameters.
# Format 8 lacks only the winsorised count, format 7 also the code memory's samples,
# format 6 the code memory, format 5 also the beat window's template (a recording's
# model), format 4 also the error metric among the parameters.
_SCHEMAS[4] = _SCHEMAS[5] = _SCHEMAS[6] = _SCHEMAS[7] = _SCHEMAS[8] = _SCHEMAS[9]


# -- the values a model directory records ----------------------------------------------

@dataclass(frozen=True)
class ModelRecord:
    """What a model directory records besides its networks, as values.

    ``model_sha256`` and ``onnx`` (the ONNX file's SHA-256, with the exporter's versions
    and the largest difference from Keras on a probe batch; None without ``model.onnx``)
    are set when the directory is written. ``code_memory`` is the detector's, None when it
    scores by the error alone.
    """

    params: dict[str, Any]
    scaling: Scaling
    calibration: Calibration
    training: TrainingSummary
    provenance: Provenance = Provenance()
    code_memory: CodeMemory | None = None
    model_sha256: str | None = None
    onnx: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """``metadata.json`` as written: one section per value."""
        data = {
            "format_version": self.format_version,
            "detector": "AutoencoderDetector",
            "params": _jsonable(self.params),
            "scaling": self.scaling.to_json(),
            "calibration": self.calibration.to_json(),
            "code_memory": None if self.code_memory is None else self.code_memory.to_json(),
            "training": self.training.to_json(),
            "provenance": self.provenance.to_json(),
            "versions": self.versions,
            "created": self.created,
            "model_sha256": self.model_sha256,
            "onnx": self.onnx,
        }
        return known(data)


# -- writing ----------------------------------------------------------------------------

def check_destination(directory: str | os.PathLike, companions: tuple[str, ...] = ()) -> Path:
    """Refuse a model destination that cannot or must not be replaced, before any work.

    A model directory is replaced whole: the destination must be absent, empty, or a model
    directory (holding only its files and the ``companions`` its writer declares), must
    not be the working directory, and its parent must be writable.

    Raises
    ------
    InputError
        Naming the directory and what is wrong with it.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is a file, not a model directory")
    if target.exists() and target.resolve() == Path.cwd().resolve():
        raise InputError(f"{target}: is the working directory; a model directory is replaced "
                         "whole, so name one inside it (for example -m model)")
    if target.exists() and not _is_replaceable(target, companions):
        raise InputError(f"{target}: exists and is not a model directory; refusing to "
                         "overwrite it")
    check_can_create(target)
    return target


def model_lock(directory: str | os.PathLike):
    """Hold a model directory's lock (``.NAME.lock`` beside it) for a whole fit: a second
    fit, save or export of the same directory fails at once (OutputLockedError, exit 5),
    and what killed fits left beside it (staging, a swapped-out old model) is removed.
    Writing a model directory takes it too; within one process, taking it again is free."""
    return output_lock(directory)


@contextlib.contextmanager
def fitting(directory: str | os.PathLike, *, companions: tuple[str, ...] = ()) -> Iterator[Path]:
    """What a command that fits a model holds for its whole run: the destination checked
    (:func:`check_destination`), its missing parent directories made, and the model's lock
    (:func:`model_lock`). A fit that fails leaves nothing: the directories it made are
    removed again (when still empty), and the lock with them."""
    directory = check_destination(directory, companions=companions)
    made = []
    missing = [parent for parent in [directory.parent, *directory.parent.parents]
               if not parent.exists()]
    for parent in reversed(missing):
        try:
            parent.mkdir()
        except FileExistsError:  # Another fit made it meanwhile: it is not ours to remove.
            continue
        made.append(parent)
    try:
        with model_lock(directory):
            yield directory
    except BaseException:
        for parent in reversed(made):
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise


def write_model(directory: str | os.PathLike, model, record: ModelRecord, *,
                companions: tuple[str, ...] = (), onnx: bool = True) -> ModelRecord:
    """Write a model directory, atomically.

    Parameters
    ----------
    directory : path
        Checked first with :func:`check_destination`.
    model : keras.Model
        Saved as ``model.keras``.
    record : ModelRecord
        What ``metadata.json`` records; the versions, the time and the model files'
        hashes are added.
    companions : tuple of str, default ()
        Other files the writer keeps in its model directories (see
        :func:`check_destination`).
    onnx : bool, default True
        Also export the model to ``model.onnx`` and record it (a failed export is a
        warning: the directory is written without it).

    Returns
    -------
    ModelRecord
        The record as written.
    """
    target = check_destination(directory, companions)
    target.parent.mkdir(parents=True, exist_ok=True)
    with model_lock(target):
        return _write_model(target, model, record, onnx)


def _write_model(target: Path, model, record: ModelRecord, onnx: bool) -> ModelRecord:
    from ._tensorflow import versions

    record = replace(record, format_version=FORMAT_VERSION, onnx=None,
                     versions={"anomaly": __version__, "python": platform.python_version(),
                               **versions()},
                     created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with _staged(target) as staging:
        model.save(staging / MODEL_FILE)
        record = replace(record, model_sha256=file_sha256(staging / MODEL_FILE))
        if onnx:
            record = replace(record, onnx=_exported(model, staging / ONNX_FILE,
                                                    target / ONNX_FILE, record.code_memory))
        write_json(staging / METADATA_FILE, record.to_json())
    return record


@contextlib.contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A new directory beside ``target`` to write a model directory into: it replaces
    ``target`` when the block ends, and is removed if the block fails."""
    staging = make_staging_directory(target)
    try:
        yield staging
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _exported(model, path: Path, name: Path, memory: CodeMemory | None
              ) -> dict[str, Any] | None:
    """The ONNX entry after exporting ``model`` to ``path`` (with its code as a second
    output for a ``memory`` of codes); None with a warning when the export fails (the
    model is still saved, and scored with Keras)."""
    from .. import logs
    from .runtimes.onnx_runtime import export_onnx

    try:
        return export_onnx(model, path, name=name, code_size=code_size(memory))
    except ModelError as error:
        path.unlink(missing_ok=True)
        logs.warning(f"Warning: {error}; this model will be scored with Keras, and "
                     "'anomaly export' tries the export again.", event="onnx_export_failed")
        return None


def add_onnx(directory: str | os.PathLike) -> dict[str, Any]:
    """Export the Keras model of a model directory to ``model.onnx`` beside it, atomically.

    The directory is copied beside itself, the export and the metadata with its new entry
    are written into the copy, and the copy replaces the directory, so readers see the old
    directory or the new one, never a mix. An existing ``model.onnx`` is replaced; the
    metadata keeps its format (an older directory stays readable by the anomaly that
    wrote it).

    Returns
    -------
    dict
        The ONNX entry written (``sha256``, ``max_difference``, ``exporter``).

    Raises
    ------
    ModelError
        The model directory does not load (or its parameters are refused as scoring
        refuses them), holds something other than files (which the copy would drop), or
        the export fails.
    """
    target = Path(directory)
    with model_lock(target):
        return _add_onnx(target)


def _add_onnx(target: Path) -> dict[str, Any]:
    from .detector import detector_of
    from .runtimes.onnx_runtime import export_onnx

    metadata = _read_metadata(target)
    record = _record(metadata, target / METADATA_FILE)
    # The detector owns its parameters' defaults and checks: nothing is written for a
    # directory that scoring would refuse.
    detector_of(record, target / METADATA_FILE)
    model = load_keras_model(target, record.scaling.input_shape)
    check_can_create(target)
    kept = [item for item in target.iterdir() if item.name != ONNX_FILE]
    for item in kept:
        if item.is_symlink() or not item.is_file():
            raise ModelError(f"{item}: not a regular file; a model directory holds only "
                             "files, and the export would not carry it over")
    with _staged(target) as staging:
        for item in kept:
            shutil.copy2(item, staging / item.name)
        metadata["onnx"] = export_onnx(model, staging / ONNX_FILE, name=target / ONNX_FILE,
                                       code_size=code_size(record.code_memory))
        write_json(staging / METADATA_FILE, metadata)
    return metadata["onnx"]


def _is_replaceable(path: Path, companions: tuple[str, ...] = ()) -> bool:
    """An empty directory, or one holding nothing but a model's files and its companions."""
    return all(p.name in (MODEL_FILE, ONNX_FILE, METADATA_FILE)
               or (p.name in companions and p.is_file()) for p in path.iterdir())


# -- reading ----------------------------------------------------------------------------

def read_model(directory: str | os.PathLike) -> ModelRecord:
    """The record of a model directory whose ``model.keras`` matches its hash, validated.

    Raises
    ------
    ModelError
        If the directory is missing or incomplete, the metadata is malformed or from a
        newer format, or ``model.keras`` does not match its recorded hash.
    """
    directory = Path(directory)
    return _record(_read_metadata(directory), directory / METADATA_FILE)


def model_file(directory: str | os.PathLike, name: str, max_bytes: int) -> Path:
    """``directory / name``, a regular file of at most ``max_bytes``, else a ModelError:
    a file that is missing, or that is a directory, FIFO or device (reading one may never
    end), or too large to hash and read."""
    path = Path(directory) / name
    if not path.exists():
        raise ModelError(f"{directory}: incomplete model directory, {name} is missing")
    if not path.is_file():
        raise ModelError(f"{path}: not a regular file (a directory, FIFO or device, or a "
                         "link to one)")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelError(f"{path}: {size:,} bytes; at most {max_bytes:,} are read")
    return path


def _read_metadata(directory: Path) -> dict[str, Any]:
    """``metadata.json`` as JSON, checked against its format's schema, of a directory whose
    ``model.keras`` matches the hash it records."""
    metadata_path, model_path = directory / METADATA_FILE, directory / MODEL_FILE
    try:
        if directory.exists() and not directory.is_dir():
            raise ModelError(f"{directory}: a file, not a model directory (model.keras + "
                             "metadata.json)")
        if not directory.is_dir():
            raise ModelError(f"{directory}: no model directory here (run 'anomaly fit' first)")
        model_file(directory, METADATA_FILE, MAX_METADATA_BYTES)
        model_file(directory, MODEL_FILE, MAX_MODEL_BYTES)
        text = metadata_path.read_text(encoding="utf-8")
        model_sha256 = file_sha256(model_path)
    except OSError as error:
        raise ModelError(f"{error.filename or directory}: cannot be read "
                         f"({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise ModelError(f"{metadata_path}: unreadable metadata ({error})") from error
    try:
        metadata = json.loads(text)
    except (ValueError, RecursionError) as error:
        # A RecursionError is JSON nested deeper than the parser's stack; a ValueError
        # also an integer of more digits than Python converts.
        raise ModelError(f"{metadata_path}: unreadable metadata ({error})") from error
    _check_schema(metadata, metadata_path)
    if model_sha256 != metadata["model_sha256"]:
        raise ModelError(
            f"{model_path}: does not match the SHA-256 recorded in {METADATA_FILE} "
            "(modified or replaced since it was saved)"
        )
    return metadata


def _record(metadata: dict[str, Any], source: Path) -> ModelRecord:
    """The values of metadata that passed its schema; ModelError naming ``source`` and
    the first problem found."""
    version = metadata["format_version"]
    try:
        record = (_record_of_format_4_to_9(metadata) if version >= 4
                  else _record_of_format_1_to_3(metadata))
        _check_record(record)
    except ValueError as error:
        raise ModelError(f"{source}: {error}") from None
    return record


def _record_of_format_4_to_9(metadata: dict[str, Any]) -> ModelRecord:
    version = metadata["format_version"]
    added = (ADDED_AFTER_FORMAT_4 if version == 4 else ADDED_AFTER_FORMAT_6 if version < 7
             else ADDED_AFTER_FORMAT_8 if version < 9 else None)
    params = _params(metadata["params"], added)
    missing = [name for name in CONSTRAINTS if name not in params]
    if missing:
        raise ValueError(f"'params' lacks {', '.join(missing)}")
    calibration = metadata["calibration"]  # A JSON object: the schema says so.
    if version < 9:
        calibration = {**calibration, **CALIBRATED_BEFORE_FORMAT_9}
    return ModelRecord(
        params=params,
        scaling=Scaling.from_json(metadata["scaling"]),
        calibration=Calibration.from_json(calibration),
        training=TrainingSummary.from_json(metadata["training"]),
        provenance=Provenance.from_json(metadata["provenance"]),
        code_memory=(None if metadata.get("code_memory") is None
                     else CodeMemory.from_json(metadata["code_memory"], version)),
        model_sha256=metadata["model_sha256"], onnx=metadata.get("onnx"),
        versions=metadata.get("versions", {}), created=metadata.get("created"),
        format_version=version)


def _record_of_format_1_to_3(metadata: dict[str, Any]) -> ModelRecord:
    """Formats 1 to 3 as format 9's values (see the module's text)."""
    params = _params_of_format_1_to_3(metadata)
    if isinstance(metadata.get("input_shape"), list):
        shape = metadata["input_shape"]
    else:  # Format 1 before the convolutional families: dense models of 1-D traces.
        shape = [metadata["input_length"]]
    old_scaling = metadata["scaling"]
    scaling = Scaling.from_json({
        "method": old_scaling["method"], "input_shape": shape, "min": old_scaling["min"],
        "range": old_scaling["range"], "context": list(params.get("context") or ()),
        **{key: old_scaling[key] for key in ("context_min", "context_range")
           if key in old_scaling}})
    # Older models set the threshold from the training beats and count them as rows.
    source = metadata.get("threshold_source", {"beats": "training",
                                               "n": metadata["training"]["rows"]})
    calibration = Calibration.from_json({
        "source": source.get("beats"), "n": source.get("n"),
        "mean": metadata["train_error_mean"], "std": metadata["train_error_std"],
        "threshold": metadata["threshold"], **CALIBRATED_BEFORE_FORMAT_9})
    training = metadata["training"]
    summary = TrainingSummary.from_json({
        "rows": training["rows"], "epochs": training["epochs"],
        "epochs_planned": training.get("epochs_planned"),
        "batch_size": training.get("batch_size"),
        "network_parameters": metadata.get("network", {}).get("parameters"),
        "fit_seconds": training.get("fit_seconds")})
    recording = training.get("recording", {})
    if not isinstance(recording, dict):
        raise ValueError("'training.recording' should be a JSON object")
    origin = None
    if "beat_window" in training:  # Written with the recording's lead and span.
        origin = RecordingOrigin.from_json({**recording,
                                            "beat_window": training["beat_window"]})
    provenance = Provenance.from_json({
        **{key: training[key] for key in ("file", "file_sha256", "rows_read", "rows_skipped",
                                          "data") if key in training},
        **({"recording": origin.to_json()} if origin else {})})
    return ModelRecord(params, scaling, calibration, summary, provenance,
                       model_sha256=metadata["model_sha256"], onnx=metadata.get("onnx"),
                       versions=metadata.get("versions", {}), created=metadata.get("created"),
                       format_version=metadata["format_version"])


def _params(params: dict[str, Any], recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """Constructor parameters as saved, JSON lists back to the tuples they were; those a
    format did not record take the values in ``recorded``."""
    context = params.get("context", [])
    if not isinstance(context, list) or not all(isinstance(name, str) for name in context):
        raise ValueError("'params.context' must be a list of column names")
    params = {**(recorded or {}), **params}
    for name in ("hidden_units", "context"):
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    if isinstance(params.get("model_options"), dict):
        params["model_options"] = _tuples(params["model_options"])
    return params


def _params_of_format_1_to_3(metadata: dict[str, Any]) -> dict[str, Any]:
    """Format 2 and 3 record ``params``. Format 1 directories give what their architecture
    and training sections hold (``model_options``: the builder's options as recorded,
    which build the same network); the other parameters take their defaults."""
    if metadata["format_version"] >= 2:
        return _params(metadata["params"], FITTED_BEFORE_RECORDED)
    _check_format_1(metadata)
    training, architecture = metadata["training"], metadata["architecture"]
    return {
        "model": architecture["model"],
        "model_options": _tuples(architecture.get("options", {})),
        "hidden_units": tuple(architecture["hidden_units"]),
        "loss": training.get("loss", "mae") if architecture["model"] != "vae" else "mae",
        "noise_factor": training.get("noise_factor", 0.0),
        "epochs": training["max_epochs"],
        "batch_size": training["batch_size"],
        "learning_rate": training["learning_rate"],
        "validation_fraction": training["validation_fraction"],
        "threshold_k": metadata["threshold_k"],
        "seed": training["seed"],
        **FITTED_BEFORE_RECORDED,
    }


def _check_record(record: ModelRecord) -> None:
    """What ties the values together, and what bounds a loader's work."""
    if record.scaling.n_values > MAX_INPUT_VALUES:
        raise ValueError(f"the input shape {shortened(str(list(record.scaling.input_shape)))}"
                         f" holds over {MAX_INPUT_VALUES:,} values per input")
    origin = record.provenance.recording
    if origin is not None and origin.window.samples != record.scaling.n_samples:
        raise ValueError(f"a beat window of {origin.window.samples} samples for a model of "
                         f"{record.scaling.n_samples}")
    _check_code_memory(record)
    asked, winsorised = record.params.get("threshold_winsorise"), record.calibration.winsorised
    if is_count(asked, least=0) and winsorised != asked:
        raise ValueError(f"'calibration.winsorised' {winsorised} is not the parameters' "
                         f"threshold_winsorise {shortened(str(asked))}")
    if tuple(record.params.get("context") or ()) != record.scaling.context:
        given = shortened(str(list(record.params.get("context") or ())))
        raise ValueError(f"the parameters' context {given} is not the scaling's "
                         f"{shortened(str(list(record.scaling.context)))}")
    # Every format records k (format 1 beside its threshold): a threshold is its rule's.
    if "threshold_k" not in record.params:
        raise ValueError("'params' lacks threshold_k")
    k = record.params["threshold_k"]
    if is_finite(k):  # Else refused with the other parameters (detector.detector_of).
        record.calibration.check_rule(k)


def _check_code_memory(record: ModelRecord) -> None:
    """A code memory where the parameters and the training say the score has one."""
    memory, params = record.code_memory, record.params
    if memory is None:
        if params.get("code_distance") == "on":
            raise ValueError("no code memory for a detector whose code_distance is 'on'")
        return
    if params.get("code_distance") == "off":
        raise ValueError("a code memory for a detector whose code_distance is 'off'")
    if params.get("model") != "dense":
        raise ValueError(f"a code memory for the {shortened(repr(params.get('model')))} "
                         "family; only the dense family's code is remembered")
    if params.get("code_distance") == "auto" and record.training.rows < CODE_DISTANCE_MIN_BEATS:
        raise ValueError(f"a code memory for a detector fitted on {record.training.rows} "
                         f"beats; code_distance 'auto' keeps one from "
                         f"{CODE_DISTANCE_MIN_BEATS}")
    if memory.sample_size not in (None, record.scaling.n_samples):
        raise ValueError(f"a code memory of beats of {memory.sample_size} samples for a "
                         f"model of {record.scaling.n_samples}")


def _check_schema(metadata: Any, source: str | os.PathLike = METADATA_FILE) -> None:
    """Check metadata's keys and types against its format's schema, and its version.

    Raises
    ------
    ModelError
        Naming the file and the first problem found.
    """
    def fail(problem: str) -> None:
        raise ModelError(f"{source}: {problem}")

    def check(value: Any, schema: Any, where: str) -> None:
        if isinstance(schema, dict):
            if not isinstance(value, dict):
                fail(f"{where.rstrip('.')!r} should be a JSON object" if where
                     else "the metadata should be a JSON object")
            for key, sub_schema in schema.items():
                if key not in value:
                    fail(f"missing key {where + key!r}")
                check(value[key], sub_schema, f"{where}{key}.")
            return
        name = where.rstrip(".")
        # bool is an int in Python, but true/false is never a valid count or number here.
        if isinstance(value, bool) or not isinstance(value, schema):
            fail(f"{name!r} has the wrong type ({type(value).__name__})")
        if schema is _NUMBER and not is_finite(value):
            fail(f"{name!r} is not a finite number")

    version = metadata.get("format_version") if isinstance(metadata, dict) else None
    if isinstance(version, bool) or not isinstance(version, int):
        version = None  # Not an integer: the current format's schema says so.
    if version is not None:
        # Checked first: a newer format may well have other keys.
        if version > FORMAT_VERSION:
            fail(f"model format version {shortened(str(version))} is newer than this "
                 f"anomaly supports ({FORMAT_VERSION}); upgrade anomaly")
        if version < 1:
            fail(f"unknown model format version {shortened(str(version))}")
    check(metadata, _SCHEMAS.get(version, _SCHEMAS[FORMAT_VERSION]), "")
    if version in (2, 3) and not all(is_count(size) for size in metadata["input_shape"]):
        fail("'input_shape' must be a list of 1 to 3 positive integers")
    if not is_sha256(metadata["model_sha256"]):
        fail("'model_sha256' is not a SHA-256 hex digest")
    if version in (1, 2, 3):  # Optional keys of formats 1 to 3.
        if "threshold_source" in metadata:
            check(metadata["threshold_source"], {"beats": str, "n": int}, "threshold_source.")
        if "network" in metadata:
            check(metadata["network"], {"parameters": int}, "network.")
    if "onnx" in metadata:
        # Optional: a model saved before ONNX export, or whose export failed, has none.
        check(metadata["onnx"], {"sha256": str}, "onnx.")
        if not is_sha256(metadata["onnx"]["sha256"]):
            fail("'onnx.sha256' is not a SHA-256 hex digest")


def _check_format_1(metadata: dict[str, Any]) -> None:
    """Format 1's own checks. What the parameters may be is the detector's to say, when it
    is built from them."""
    if not is_count(metadata["input_length"]):
        raise ValueError("'input_length' must be at least 1")
    if "input_shape" in metadata:
        shape = metadata["input_shape"]
        if not isinstance(shape, list) or not all(is_count(size) for size in shape):
            raise ValueError("'input_shape' must be a list of 1 to 3 positive integers")
        if math.prod(shape) != metadata["input_length"]:
            raise ValueError(f"'input_shape' {shape} does not hold 'input_length' "
                             f"{metadata['input_length']} values")
    units = metadata["architecture"]["hidden_units"]
    if not units or not all(is_count(u) for u in units):
        raise ValueError("'architecture.hidden_units' must be a list of positive integers")
    if not isinstance(metadata["architecture"].get("options", {}), dict):
        raise ValueError("'architecture.options' should be a JSON object")


# -- the networks -----------------------------------------------------------------------

def load_keras_model(directory: str | os.PathLike, input_shape: tuple[int, ...]):
    """``model.keras``, checked, loaded in safe mode, checked again and made ready.

    Before loading: the archive's members unpack to bounded sizes, and the layers its
    config declares hold bounded shapes and widths (a crafted config cannot make the
    loader allocate gigabytes). After: the input shape is the metadata's, every weight is
    finite, and the model maps a batch of inputs to a batch of the same shape, which
    also traces its compiled predict step (the first block scored does not pay for it).

    Raises
    ------
    ModelError
        Naming ``model.keras`` and the first problem found.
    """
    model_path = Path(directory) / MODEL_FILE
    _check_archive(model_path)
    from .networks import input_shape_of, keras

    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a corrupt archive.
        raise ModelError(f"{model_path}: cannot be loaded ({error})") from error
    shape = tuple(input_shape)
    if input_shape_of(model) != (None, *shape):
        raise ModelError(
            f"{model_path}: input shape {input_shape_of(model)} does not match the "
            f"metadata's input shape {shape}"
        )
    if not all(np.isfinite(weights).all() for weights in model.get_weights()):
        raise ModelError(f"{model_path}: some weights are not finite numbers (NaN or "
                         "infinite); such a model scores nothing")
    # Two batch sizes: the second generalises the traced step's shape to any batch.
    for rows in (1, 2):
        output = model.predict_on_batch(np.zeros((rows, *shape), dtype=np.float32))
        if not isinstance(output, np.ndarray) or output.shape != (rows, *shape):
            got = (output.shape[1:] if isinstance(output, np.ndarray)
                   else f"{len(output)} outputs")
            raise ModelError(f"{model_path}: maps inputs of shape {shape} to {got}; an "
                             "autoencoder's output has its input's shape")
    return model


def _check_archive(model_path: Path) -> None:
    """Bounded member sizes and a config of bounded shapes and widths, before loading."""
    import zipfile

    def fail(problem: str) -> None:
        raise ModelError(f"{model_path}: {problem}")

    try:
        with zipfile.ZipFile(model_path) as archive:
            members = archive.infolist()
            for member in members:
                limit = (MAX_CONFIG_BYTES if member.filename.endswith(".json")
                         else MAX_WEIGHTS_BYTES)
                if member.file_size > limit:
                    fail(f"{member.filename} unpacks to {member.file_size:,} bytes; at most "
                         f"{limit:,} are read")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RecursionError) as error:
        fail(f"cannot be loaded ({type(error).__name__}: {error})")
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in _SHAPE_KEYS and isinstance(value, list):
                    for shape in (value if value and isinstance(value[0], list) else [value]):
                        sizes = [size for size in shape if isinstance(size, int)]
                        if math.prod(sizes) > MAX_INPUT_VALUES:
                            fail(f"a layer declares the shape {shape}, over "
                                 f"{MAX_INPUT_VALUES:,} values")
                elif key in _WIDTH_KEYS and isinstance(value, int) and value > MAX_LAYER_WIDTH:
                    fail(f"a layer declares {value:,} {key}; at most {MAX_LAYER_WIDTH:,}")
                else:
                    stack.append(value)


# -- JSON ----------------------------------------------------------------------------

def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {key: _jsonable(value) if isinstance(value, dict)
            else list(value) if isinstance(value, tuple) else value
            for key, value in options.items()}


def _tuples(options: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in options.items()}
