"""The Open Inference Protocol's tensors (KServe V2, REST): an inference request's inputs
read from JSON or from the binary tensor extension, and a response written in either.

A request is a JSON object (``id``, ``parameters``, ``inputs``, ``outputs``). Each input
tensor has a ``name``, a ``shape``, a ``datatype`` and its elements either in ``data``
(flat in row-major order, or nested as the shape) or, with the binary tensor extension,
as raw little-endian bytes after the JSON: the header ``Inference-Header-Content-Length``
then gives the JSON's length, and the input's ``parameters.binary_data_size`` its bytes.
An output asked with ``parameters.binary_data`` (or every output, when the request's
``parameters.binary_data_output`` is true, as ``tritonclient`` asks by default) is sent
the same way.

Everything a request declares is checked against :class:`Limits` before anything of its
size is allocated; a request that breaks a rule raises :class:`RequestError` with the
HTTP status to answer and one line saying what is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ..exceptions import first_line
from .settings import Limits

#: The header of the binary tensor extension: the length of the JSON before the tensors.
HEADER_LENGTH = "Inference-Header-Content-Length"
#: The element type of a request's tensors (as the models' metadata declares them), as
#: NumPy reads its raw bytes.
INPUT_TYPE, INPUT_DTYPE = "FP32", np.dtype("<f4")
#: The one version of each model, in its routes and answers.
MODEL_VERSION = "1"
#: Element types of the responses' tensors.
OUTPUT_TYPES = {"FP32": np.dtype("<f4"), "BOOL": np.dtype("?")}


class RequestError(ValueError):
    """A request the server refuses: ``status`` (400, 404, 413...), what is wrong, and the
    ``headers`` the refusal carries (``WWW-Authenticate`` with a 401, ``Retry-After`` with
    a 503)."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def query_values(query: Any, known: set[str]) -> dict[str, str]:
    """A request's query parameters (a Starlette ``QueryParams``), each given once, by
    name; RequestError (400) naming one that is not ``known`` or is given twice (which
    of the two would be meant?)."""
    unknown = sorted(set(query) - known)
    if unknown:
        raise RequestError(f"unknown query parameter {unknown[0][:40]!r} (known: "
                           f"{', '.join(sorted(known))})")
    twice = sorted(name for name in set(query) if len(query.getlist(name)) > 1)
    if twice:
        raise RequestError(f"query parameter {twice[0]!r} is given more than once")
    return {name: query[name] for name in query}


@dataclass(frozen=True)
class Failure:
    """Why a request could not be scored, as a value (without the traceback of where it
    was found, which would keep that frame's data alive): the status to answer and one
    line."""

    status: int
    message: str

    @classmethod
    def of(cls, error: RequestError) -> "Failure":
        return cls(error.status, str(error))

    def line(self) -> bytes:
        """As the last line of a stream of JSON lines."""
        return json.dumps({"error": self.message}).encode() + b"\n"


@dataclass(frozen=True)
class TensorSpec:
    """An input or output tensor as a model's metadata declares it; -1 is any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class InferRequest:
    """A decoded request: its ``id`` (echoed), its inputs by name (float64 arrays of
    their declared shapes), and the outputs asked for with whether each goes binary."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: dict[str, bool] = field(default_factory=dict)


def decode_request(body: bytes, header_length: str | None, inputs: tuple[TensorSpec, ...],
                   outputs: tuple[TensorSpec, ...], limits: Limits = Limits(), *,
                   max_json_bytes: int | None = None) -> InferRequest:
    """Read an inference request for a model whose tensors are ``inputs`` and
    ``outputs``.

    Raises
    ------
    RequestError
        413 for JSON beyond ``max_json_bytes``; 400 for malformed JSON (or nested too
        deeply), a tensor the model has not, one missing, a datatype, shape or element
        count not the model's, a value that is not a finite number, or binary data that
        does not add up.
    """
    json_length = _json_length(header_length, len(body))
    if max_json_bytes is not None and json_length > max_json_bytes:
        raise RequestError(f"the request's JSON is {json_length} bytes; at most "
                           f"{max_json_bytes} (send large tensors in binary)", 413)
    request = _parse_json(body[:json_length])
    try:
        return _decode_parsed(request, memoryview(body)[json_length:], inputs, outputs, limits)
    except RecursionError:  # Quoting, in an error, a value 1,000 to 1,024 deep (orjson reads it).
        raise RequestError("the request's JSON is nested too deeply") from None


def _decode_parsed(request: Any, binary: memoryview, inputs: tuple[TensorSpec, ...],
                   outputs: tuple[TensorSpec, ...], limits: Limits) -> InferRequest:
    """:func:`decode_request` once the JSON is parsed; ``binary``, what follows it."""
    if not isinstance(request, dict):
        raise RequestError("the request must be a JSON object with 'inputs'")
    declared = {spec.name: spec for spec in inputs}
    tensors = request.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise RequestError("the request's 'inputs' must be a non-empty list of tensors")
    decoded: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in tensors:
        values, used = _decode_input(tensor, declared, binary[offset:], limits)
        if tensor["name"] in decoded:
            raise RequestError(f"input '{tensor['name']}' is given twice")
        decoded[tensor["name"]] = values
        offset += used
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} bytes of binary data follow the tensors "
                           "the JSON declares")
    missing = [name for name in declared if name not in decoded]
    if missing:
        raise RequestError(f"missing input '{missing[0]}' (the model's inputs: "
                           f"{', '.join(declared)})")
    rows = {len(values) for values in decoded.values()}
    if len(rows) > 1:
        raise RequestError("the inputs hold different numbers of rows: "
                           + ", ".join(f"{name} {len(v)}" for name, v in decoded.items()))
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError("the request's 'id' must be a string")
    return InferRequest(request_id, decoded, _asked_outputs(request, outputs))


def encode_response(model_name: str, request: InferRequest, outputs: dict[str, np.ndarray],
                    specs: tuple[TensorSpec, ...], parameters: dict[str, Any]
                    ) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (its content type; with binary tensors, the JSON's
    length): each output asked for (every output when none was named), in JSON or binary as
    asked."""
    asked = request.outputs or {spec.name: False for spec in specs}
    types = {spec.name: spec.datatype for spec in specs}
    tensors, raw = [], []
    for name, binary in asked.items():
        values = np.asarray(outputs[name], dtype=OUTPUT_TYPES[types[name]])
        tensor = {"name": name, "datatype": types[name], "shape": list(values.shape)}
        if binary:
            data = values.tobytes()
            tensor["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            tensor["data"] = values.tolist()
        tensors.append(tensor)
    response = {"model_name": model_name, "model_version": MODEL_VERSION, "outputs": tensors,
                "parameters": parameters}
    if request.id is not None:
        response = {"id": request.id, **response}
    head = json.dumps(response, allow_nan=False).encode()
    if not raw:
        return head, {"Content-Type": "application/json"}
    return head + b"".join(raw), {HEADER_LENGTH: str(len(head)),
                                  "Content-Type": "application/octet-stream"}


def _parse_json(text: bytes) -> Any:
    """``text`` parsed as JSON, as Python's own parser reads it (numbers beyond a double
    and escaped lone surrogates included), with orjson as the fast path.

    orjson parses the numbers of 1,000 beats in 11 ms where the standard library takes
    37; it refuses what RFC 8259 refuses (NaN, nesting beyond 1,024) and numbers beyond
    a double, which JSON's grammar allows. Whatever it refuses is read again by the
    standard library, which either reads it (and the checks after say what is wrong with
    the values) or says in words of its own what is wrong, at the cost of a second parse
    of a request that fails. Two differences remain: an integer beyond 64 bits comes as
    a float where orjson reads it (3.13 does; a shape that large is then refused as not
    whole numbers, 400, where the standard library's integer was refused as too many
    rows, 413), and nesting 1,000 to 1,024 deep, which the standard library refuses, is
    read (:func:`decode_request` refuses it where quoting it in an error would recurse).
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestError("the request's JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(f"the request is not valid JSON ({first_line(error)[:120]})") from None


def _json_length(header_length: str | None, body_length: int) -> int:
    if header_length is None:
        return body_length
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= body_length:
        raise RequestError(f"{HEADER_LENGTH} must be a length within the body's "
                           f"{body_length} bytes, got {header_length[:40]!r}")
    return length


def _decode_input(tensor: Any, declared: dict[str, TensorSpec], binary: memoryview,
                  limits: Limits) -> tuple[np.ndarray, int]:
    """One input tensor as float64 of its shape, and the binary bytes it used."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError("each input must be an object with a 'name'")
    name = tensor["name"]
    spec = declared.get(name)
    if spec is None:
        raise RequestError(f"the model has no input {name[:80]!r} (its inputs: "
                           f"{', '.join(declared)})")
    datatype = tensor.get("datatype")
    if datatype != INPUT_TYPE:
        raise RequestError(f"input '{name}': datatype must be {INPUT_TYPE}, got "
                           f"{str(datatype)[:40]!r}")
    shape = _shape(name, tensor.get("shape"), spec, limits)
    count = math.prod(shape)
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f"input '{name}': 'parameters' must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        width = INPUT_DTYPE.itemsize
        if not isinstance(size, int) or size != count * width:
            raise RequestError(f"input '{name}': binary_data_size must be {count} x "
                               f"{width} bytes for shape {list(shape)}, got {str(size)[:40]}")
        if size > len(binary):
            raise RequestError(f"input '{name}': {size} bytes of binary data declared, "
                               f"{len(binary)} sent")
        values = np.frombuffer(binary[:size], dtype=INPUT_DTYPE).astype(np.float64)
        used = size
    else:
        values, used = _json_data(name, tensor.get("data"), count), 0
    if not np.isfinite(values).all():
        at = int(np.argmin(np.isfinite(values)))
        raise RequestError(f"input '{name}': element {at} is not a finite number")
    return values.reshape(shape), used


def _shape(name: str, shape: Any, spec: TensorSpec, limits: Limits) -> tuple[int, ...]:
    expected = "[" + ", ".join("n" if size < 0 else str(size) for size in spec.shape) + "]"
    if (not isinstance(shape, list) or len(shape) != len(spec.shape)
            or not all(isinstance(size, int) and not isinstance(size, bool) for size in shape)):
        raise RequestError(f"input '{name}': shape must be {expected}, got {_brief(shape)}")
    for size, wanted in zip(shape, spec.shape):
        if (wanted >= 0 and size != wanted) or size < 0:
            raise RequestError(f"input '{name}': shape must be {expected}, got {_brief(shape)}")
    if not 1 <= shape[0] <= limits.max_rows:
        raise RequestError(f"input '{name}': {_brief(shape[0])} rows; 1 to {limits.max_rows} "
                           "per request", status=413 if shape[0] > limits.max_rows else 400)
    return tuple(shape)


def _brief(value: Any) -> str:
    """``value`` as an error message quotes it: at most 80 characters (a shape of integers
    thousands of digits long is valid JSON)."""
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_data(name: str, data: Any, count: int) -> np.ndarray:
    if not isinstance(data, list):
        raise RequestError(f"input '{name}': 'data' must be a list of numbers (or "
                           "parameters.binary_data_size with the binary extension)")
    try:
        elements = np.asarray(data, dtype=object).ravel()
    except ValueError:  # Ragged beyond what an object array holds.
        elements = np.array([data], dtype=object)
    # JSON numbers only: not "0.1" (text), true (a boolean) or a list left ragged. Their
    # types' set, mapped in C: over 140,000 numbers (1,000 beats) 2 ms, where a generator
    # took 8 ms.
    if not set(map(type, elements)) <= {int, float}:
        raise RequestError(f"input '{name}': 'data' must hold numbers only, flat or "
                           "nested as the shape")
    if elements.size != count:
        raise RequestError(f"input '{name}': {elements.size} elements for a shape of "
                           f"{count}")
    try:
        values = elements.astype(np.float64)
    except OverflowError:  # An integer beyond any float (10**400).
        raise RequestError(f"input '{name}': an element is beyond the numbers a float "
                           "holds") from None
    return values


def _asked_outputs(request: dict, specs: tuple[TensorSpec, ...]) -> dict[str, bool]:
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError("the request's 'parameters' must be an object")
    all_binary = parameters.get("binary_data_output") is True
    asked = request.get("outputs")
    if not asked:  # Absent or empty: every output.
        return {spec.name: all_binary for spec in specs}
    names = [spec.name for spec in specs]
    if not isinstance(asked, list):
        raise RequestError("the request's 'outputs' must be a list")
    outputs = {}
    for output in asked:
        name = output.get("name") if isinstance(output, dict) else output
        if not isinstance(name, str) or name not in names:
            raise RequestError(f"the model has no output {str(name)[:80]!r} (its outputs: "
                               f"{', '.join(names)})")
        if name in outputs:
            raise RequestError(f"output '{name}' is asked twice")
        parameters = output.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise RequestError(f"output '{name}': 'parameters' must be an object")
        outputs[name] = parameters.get("binary_data", all_binary) is True
    return outputs


def _refuse_constant(token: str):
    raise ValueError(f"{token} is not a number JSON allows")
