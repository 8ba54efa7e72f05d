"""The model directory format: ``model.keras`` and ``model.onnx`` beside ``metadata.json``.

``model.keras`` is Keras's native format, loaded in safe mode (no arbitrary code, no
pickle); ``model.onnx`` is its forward pass exported to ONNX, which scoring runs without
TensorFlow (see :mod:`anomaly.runtimes`); ``metadata.json`` holds what the networks do
not: the detector's parameters, the input shape, the scaling, the threshold and its
statistics, how the model was trained, versions, and the SHA-256 of each model file,
each fact once. A directory without ``model.onnx`` (written before the export existed,
or where it failed) is scored with Keras. Here are the metadata's
schema and its validation, the mapping between a fitted detector and its metadata, and
the writing and reading of the directory. A directory is written beside its destination
and renamed into place, so it appears complete or not at all.

Format 2 records the constructor parameters under ``params``. Format 1 (anomaly 0.1 before
it) spread some of them over ``architecture`` and ``training`` and lost the others; it is
still read.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import __version__
from .exceptions import InputError, ModelError
from .io.writers import check_can_create, file_sha256, replace_directory, write_json

#: Version of the model directory layout written; load reads 1 to 3, refuses newer ones.
#: 3 adds the context parameters (an anomaly that reads 2 would not know them).
FORMAT_VERSION = 3
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
#: Keras config keys that declare a shape, and those that declare a layer's width.
_SHAPE_KEYS = {"batch_shape", "batch_input_shape", "input_shape", "shape", "target_shape"}
_WIDTH_KEYS = {"units", "filters"}

_NUMBER = (int, float)
#: Parameters older metadata does not record, at the values those models were fitted
#: with (not today's defaults): the threshold from the training errors, every epoch.
FITTED_BEFORE_RECORDED = {"threshold_source": "training", "max_inputs_seen": None}
#: Required keys and their types, by format version; nested dicts are checked the same
#: way, and ``dict`` (the type) is a JSON object whose keys the detector checks.
_SCHEMAS: dict[int, dict[str, Any]] = {
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


def write_model_directory(directory: str | os.PathLike, model, metadata: dict[str, Any], *,
                          companions: tuple[str, ...] = (), onnx: bool = True) -> dict[str, Any]:
    """Write a model directory, atomically.

    Parameters
    ----------
    directory : path
        Checked first with :func:`check_destination`.
    model : keras.Model
        Saved as ``model.keras``.
    metadata : dict
        From :func:`build_metadata`; the SHA-256 of ``model.keras`` is added.
    companions : tuple of str, default ()
        Other files the writer keeps in its model directories (see
        :func:`check_destination`).
    onnx : bool, default True
        Also export the model to ``model.onnx`` and record it (a failed export is a
        warning: the directory is written without it).

    Returns
    -------
    dict
        The metadata as written.
    """
    target = check_destination(directory, companions)
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = json.loads(json.dumps(metadata))
    with _staged(target) as staging:
        model.save(staging / MODEL_FILE)
        metadata["model_sha256"] = file_sha256(staging / MODEL_FILE)
        metadata.pop("onnx", None)
        if onnx:
            metadata.update(_exported(model, staging / ONNX_FILE, target / ONNX_FILE))
        write_json(staging / METADATA_FILE, metadata)
    return metadata


@contextlib.contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A new directory beside ``target`` to write a model directory into: it replaces
    ``target`` when the block ends, and is removed if the block fails."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _exported(model, path: Path, name: Path) -> dict[str, Any]:
    """``{"onnx": entry}`` after exporting ``model`` to ``path``; ``{}`` with a warning
    when the export fails (the model is still saved, and scored with Keras)."""
    from . import logs
    from .runtimes.onnx_runtime import export_onnx

    try:
        return {"onnx": export_onnx(model, path, name=name)}
    except ModelError as error:
        path.unlink(missing_ok=True)
        logs.warning(f"Warning: {error}; this model will be scored with Keras, and "
                     "'anomaly export' tries the export again.", event="onnx_export_failed")
        return {}


def add_onnx(directory: str | os.PathLike) -> dict[str, Any]:
    """Export the Keras model of a model directory to ``model.onnx`` beside it, atomically.

    The directory is copied beside itself, the export and the new metadata are written
    into the copy, and the copy replaces the directory, so readers see the old directory
    or the new one, never a mix. An existing ``model.onnx`` is replaced.

    Returns
    -------
    dict
        The metadata as written.

    Raises
    ------
    ModelError
        The model directory does not load, holds something other than files (which the
        copy would drop), or the export fails.
    """
    from .runtimes.onnx_runtime import export_onnx

    target = Path(directory)
    metadata = read_metadata(target)
    model = load_keras_model(target, metadata)
    check_can_create(target)
    kept = [item for item in target.iterdir() if item.name != ONNX_FILE]
    for item in kept:
        if item.is_symlink() or not item.is_file():
            raise ModelError(f"{item}: not a regular file; a model directory holds only "
                             "files, and the export would not carry it over")
    with _staged(target) as staging:
        for item in kept:
            shutil.copy2(item, staging / item.name)
        metadata["onnx"] = export_onnx(model, staging / ONNX_FILE, name=target / ONNX_FILE)
        write_json(staging / METADATA_FILE, metadata)
    return metadata


def _is_replaceable(path: Path, companions: tuple[str, ...] = ()) -> bool:
    """An empty directory, or one holding nothing but a model's files and its companions."""
    return all(p.name in (MODEL_FILE, ONNX_FILE, METADATA_FILE)
               or (p.name in companions and p.is_file()) for p in path.iterdir())


def build_metadata(detector, *, n_train: int) -> dict[str, Any]:
    """The metadata of a fitted detector (without ``model_sha256``, added on writing)."""
    from ._tensorflow import versions

    return {
        "format_version": FORMAT_VERSION,
        "detector": type(detector).__name__,
        "params": _jsonable(detector.get_params()),
        "input_shape": list(detector.input_shape_),
        "scaling": {"method": "minmax", "min": detector.scale_min_,
                    "range": detector.scale_range_,
                    **({"context_min": [float(v) for v in detector.context_min_],
                        "context_range": [float(v) for v in detector.context_range_]}
                       if detector.context else {})},
        "threshold": detector.threshold_,
        "train_error_mean": detector.train_error_mean_,
        "train_error_std": detector.train_error_std_,
        "threshold_source": {"beats": detector.threshold_source_,
                             "n": int(len(detector.threshold_errors_))},
        "network": {"parameters": detector.network_parameters_},
        "training": {"rows": int(n_train), "epochs": int(detector.epochs_trained_),
                     "epochs_planned": int(detector.epochs_planned_),
                     "batch_size": int(detector.batch_size_),
                     "fit_seconds": round(detector.fit_seconds_, 3)},
        "versions": {"anomaly": __version__, "python": platform.python_version(), **versions()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# -- reading ----------------------------------------------------------------------------

def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """The validated metadata of a model directory whose ``model.keras`` matches its hash.

    Raises
    ------
    ModelError
        If the directory is missing or incomplete, the metadata is malformed or from a
        newer format, or ``model.keras`` does not match its recorded hash.
    """
    directory = Path(directory)
    metadata_path, model_path = directory / METADATA_FILE, directory / MODEL_FILE
    try:
        if directory.exists() and not directory.is_dir():
            raise ModelError(f"{directory}: a file, not a model directory (model.keras + "
                             "metadata.json)")
        if not directory.is_dir():
            raise ModelError(f"{directory}: no model directory here (run 'anomaly fit' first)")
        for required in (metadata_path, model_path):
            if not required.is_file():
                raise ModelError(f"{directory}: incomplete model directory, {required.name} "
                                 "is missing")
        if metadata_path.stat().st_size > MAX_METADATA_BYTES:
            raise ModelError(f"{metadata_path}: {metadata_path.stat().st_size:,} bytes; "
                             f"metadata is at most {MAX_METADATA_BYTES:,}")
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
    validate_metadata(metadata, metadata_path)
    if model_sha256 != metadata["model_sha256"]:
        raise ModelError(
            f"{model_path}: does not match the SHA-256 recorded in {METADATA_FILE} "
            "(modified or replaced since it was saved)"
        )
    return metadata


def load_keras_model(directory: str | os.PathLike, metadata: dict[str, Any]):
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
    from .models import input_shape_of, keras

    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a corrupt archive.
        raise ModelError(f"{model_path}: cannot be loaded ({error})") from error
    shape = input_shape(metadata)
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


def input_shape(metadata: dict[str, Any]) -> tuple[int, ...]:
    """The shape of one input. Format 1 directories from before the convolutional and
    variational families hold a dense model of 1-D traces and record only
    ``input_length``."""
    if "input_shape" in metadata:
        return tuple(metadata["input_shape"])
    return (metadata["input_length"],)


def detector_params(metadata: dict[str, Any]) -> dict[str, Any]:
    """The detector's constructor parameters, as saved.

    Format 1 directories give what their architecture and training sections hold
    (``model_options``: the builder's options as recorded, which build the same network);
    the other parameters take their defaults.
    """
    if metadata["format_version"] >= 2:
        params = {**FITTED_BEFORE_RECORDED, **metadata["params"]}
        for name in ("hidden_units", "context"):
            if isinstance(params.get(name), list):
                params[name] = tuple(params[name])
        if isinstance(params.get("model_options"), dict):
            params["model_options"] = _tuples(params["model_options"])
        return params
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


def fitted_state(metadata: dict[str, Any]) -> dict[str, Any]:
    """The detector's fitted attributes that the metadata holds (all but the network)."""
    return {
        "n_features_in_": math.prod(input_shape(metadata)),
        "input_shape_": input_shape(metadata),
        "scale_min_": metadata["scaling"]["min"],
        "scale_range_": metadata["scaling"]["range"],
        "threshold_": metadata["threshold"],
        "train_error_mean_": metadata["train_error_mean"],
        "train_error_std_": metadata["train_error_std"],
        "epochs_trained_": metadata["training"]["epochs"],
        # Older models set the threshold from the training beats and did not count weights.
        "threshold_source_": metadata.get("threshold_source", {}).get("beats", "training"),
        **({"network_parameters_": metadata["network"]["parameters"]}
           if "network" in metadata else {}),
        **({"context_min_": np.array(metadata["scaling"]["context_min"], dtype=np.float64),
            "context_range_": np.array(metadata["scaling"]["context_range"], dtype=np.float64)}
           if "context_min" in metadata["scaling"] else {}),
    }


def validate_metadata(metadata: Any, source: str | os.PathLike = METADATA_FILE) -> None:
    """Check a model's metadata against the schema: keys, types, finite numbers, version.

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
                fail(f"{where or 'the metadata'} should be a JSON object")
            for key, sub_schema in schema.items():
                if key not in value:
                    fail(f"missing key {where + key!r}")
                check(value[key], sub_schema, f"{where}{key}.")
            return
        name = where.rstrip(".")
        # bool is an int in Python, but true/false is never a valid count or number here.
        if isinstance(value, bool) or not isinstance(value, schema):
            fail(f"{name!r} has the wrong type ({type(value).__name__})")
        if schema is _NUMBER and not _is_finite(value):
            fail(f"{name!r} is not a finite number")

    version = metadata.get("format_version") if isinstance(metadata, dict) else None
    if isinstance(version, int) and not isinstance(version, bool):
        # Checked first: a newer format may well have other keys.
        if version > FORMAT_VERSION:
            fail(f"model format version {version} is newer than this anomaly supports "
                 f"({FORMAT_VERSION}); upgrade anomaly")
        if version < 1:
            fail(f"unknown model format version {version}")
    check(metadata, _SCHEMAS.get(version, _SCHEMAS[FORMAT_VERSION]), "")
    if version == 1:
        _validate_format_1(metadata, fail)
    shape = input_shape(metadata)
    if not 1 <= len(shape) <= 3 or not all(_is_count(size) for size in shape):
        fail("'input_shape' must be a list of 1 to 3 positive integers")
    if math.prod(shape) > MAX_INPUT_VALUES:
        fail(f"'input_shape' {list(shape)} holds over {MAX_INPUT_VALUES:,} values per input")
    if metadata["scaling"]["method"] != "minmax" or metadata["scaling"]["range"] <= 0:
        fail("scaling must be 'minmax' with a positive range")
    if not _is_sha256(metadata["model_sha256"]):
        fail("'model_sha256' is not a SHA-256 hex digest")
    if "threshold_source" in metadata:  # Optional: absent from older models.
        check(metadata["threshold_source"], {"beats": str, "n": int}, "threshold_source.")
        if metadata["threshold_source"]["beats"] not in ("training", "heldout", "heldout-refit"):
            fail("'threshold_source.beats' must be 'training', 'heldout' or 'heldout-refit'")
    if "network" in metadata:  # Optional: absent from older models.
        check(metadata["network"], {"parameters": int}, "network.")
    _validate_context(metadata, fail)
    if "onnx" in metadata:
        # Optional: a model saved before ONNX export, or whose export failed, has none.
        check(metadata["onnx"], {"sha256": str}, "onnx.")
        if not _is_sha256(metadata["onnx"]["sha256"]):
            fail("'onnx.sha256' is not a SHA-256 hex digest")


def _validate_context(metadata: dict[str, Any], fail) -> None:
    """A model with context columns records each one's scaling, and only such a model."""
    params = metadata.get("params")  # Format 1 has none.
    context = params.get("context", []) if isinstance(params, dict) else []
    if not isinstance(context, list) or not all(isinstance(name, str) for name in context):
        fail("'params.context' must be a list of column names")
    if not context:
        if "context_min" in metadata["scaling"] or "context_range" in metadata["scaling"]:
            fail("'scaling' holds a context's scaling, but 'params.context' names none")
        return
    shape = input_shape(metadata)
    if len(shape) != 1 or shape[0] <= len(context):
        fail("'params.context' needs 1-D inputs with more values than context columns")
    for key in ("context_min", "context_range"):
        values = metadata["scaling"].get(key)
        if (not isinstance(values, list) or len(values) != len(context)
                or not all(isinstance(v, _NUMBER) and not isinstance(v, bool)
                           and _is_finite(v) for v in values)):
            fail(f"'scaling.{key}' must be {len(context)} finite number(s), one per context "
                 "column")
    if not all(v > 0 for v in metadata["scaling"]["context_range"]):
        fail("'scaling.context_range' must be positive")


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(character in "0123456789abcdef" for character in text)


def _is_finite(number: int | float) -> bool:
    """Whether a JSON number is a finite float: an integer may be too large for one."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _validate_format_1(metadata: dict[str, Any], fail) -> None:
    """Format 1's own checks. What the parameters may be is the detector's to say, when it
    is built from them."""
    if not _is_count(metadata["input_length"]):
        fail("'input_length' must be at least 1")
    if "input_shape" in metadata:
        shape = metadata["input_shape"]
        if not isinstance(shape, list) or not all(_is_count(size) for size in shape):
            fail("'input_shape' must be a list of 1 to 3 positive integers")
        if math.prod(shape) != metadata["input_length"]:
            fail(f"'input_shape' {shape} does not hold 'input_length' "
                 f"{metadata['input_length']} values")
    units = metadata["architecture"]["hidden_units"]
    if not units or not all(_is_count(u) for u in units):
        fail("'architecture.hidden_units' must be a list of positive integers")
    if not isinstance(metadata["architecture"].get("options", {}), dict):
        fail("'architecture.options' should be a JSON object")


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {key: _jsonable(value) if isinstance(value, dict)
            else list(value) if isinstance(value, tuple) else value
            for key, value in options.items()}


def _tuples(options: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in options.items()}
