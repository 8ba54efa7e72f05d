"""The check of a ``model.onnx`` before onnxruntime sees it.

A model directory can be crafted: whoever can write ``model.onnx`` can write the SHA-256
that ``metadata.json`` records of it, so the hash proves nothing about the graph. And
onnxruntime runs whatever a graph says while it loads it (constant folding) and when it
runs it: a ``ConstantOfShape`` of 450 million values took 2.1 GB, a ``Loop`` of 10**15
trips never ended, in C++ code that a Python SIGTERM handler cannot interrupt. So the graph
is read with the ``onnx`` package (its protobuf schema, checker and shape inference, which
run nothing) and refused unless it looks like what :func:`export_onnx
<anomaly.model.runtimes.onnx_runtime.export_onnx>` writes:

- operators of the standard domain from :data:`ALLOWED_OPERATORS` only: no control flow
  (``Loop``, ``If``, ``Scan``: every subgraph attribute is refused), no functions, no
  custom domains, no tensor attributes;
- every weight stored in the file itself (no external data, which could name any file on
  the machine), holding the values its dimensions declare, and at most
  :data:`MAX_NODES` nodes;
- one float input of the model's input shape and one output of that shape, and with a
  memory of training codes (:mod:`anomaly.model.code_memory`) a second: the code, float
  numbers of the memory's width per input;
- the shape of every tensor the graph computes known before it runs, for a batch of one
  input and of two: the small integer tensors that shapes are computed from (``Shape``,
  ``Concat``, ``Pad``'s pads, ``Reshape``'s target) are evaluated, and the graph's shapes
  inferred again, until every shape is known. A tensor may then grow with the batch, at
  most linearly, and hold at most :data:`WIDEST_FACTOR` times the input's values per
  input; what does not grow with the batch is bounded in all (:data:`MAX_FIXED_VALUES`).

What the check learns bounds what running costs: :attr:`GraphFacts.bytes_per_input` is
what one input's tensors take, from which the runtime sizes its forward passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...exceptions import ModelError, first_line

#: The operators of the networks anomaly builds, as tf2onnx exports them. Found by
#: exporting every network kind with random non-zero weights (zero biases are folded away,
#: hiding ``Add``) through ``export_onnx`` and listing their nodes' ``op_type``: the dense
#: family on traces (96, and 98 with two context columns), on images ((28, 28) with the
#: MNIST tool's 2-D code, (8, 8, 2)); the convolutional family on traces ((96,), (96, 1),
#: (140,), with and without a dense code) and on images ((28, 28) with and without a code,
#: (10, 12, 3)); the variational family on traces and on images (decoding the code's mean),
#: latent sizes 2 and 8. Denoising and the RR context change the training data, not the
#: graph. ``tests/test_hostile_models.py`` exports each kind and checks it passes.
ALLOWED_OPERATORS = frozenset({
    "Add", "Cast", "Concat", "Conv", "ConvTranspose", "Div", "Gather", "MatMul", "Max",
    "Neg", "Pad", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Split", "Squeeze", "Sub",
    "Transpose", "Unsqueeze",
})
#: Operators that run a subgraph: named in the refusal, for they are the usual attack.
CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
#: The exported networks have 8 to 105 nodes (the 1-D convolutions compute their padding
#: with shape arithmetic); ten times the most leaves room for deeper options.
MAX_NODES = 1_000
#: A tensor may hold this many times the input's values per input (or
#: :data:`WIDEST_FLOOR`, for small inputs). The widest tensor of an exported network is
#: its first convolution's channels at the input's full resolution: 32 times the input
#: (the default filters, (32, 64)); 1,024 leaves room for 32 times wider layers.
WIDEST_FACTOR = 1024
WIDEST_FLOOR = 1 << 16
#: What every tensor of one input may take in all: the MNIST convolutional networks take
#: about 0.5 MB per image.
MAX_BYTES_PER_INPUT = 64 << 20
#: The work of one input's forward pass, in multiply-adds: the exported networks take 5
#: thousand (dense, small) to 7.5 million (variational, MNIST); wider convolutions take
#: more (filters (128, 256) on MNIST, about 100 million). This bounds the time of the probe
#: batches that loading runs (a second or so at most), and of scoring.
MAX_MULTIPLY_ADDS = 1 << 30
#: Values of the computed tensors that do not grow with the batch, in all (the exported
#: networks compute at most 134: shapes and paddings).
MAX_FIXED_VALUES = 1 << 20
#: Largest tensor the check evaluates to learn a shape (shapes, pads, axes are a few
#: values), and the largest initializer it keeps the values of while inferring shapes.
SHAPE_VALUES = 1024
#: Rounds of shape inference and evaluation per batch size: an exported network needs one
#: more than it has transposed 1-D convolutions (whose padding is computed from the shape
#: of their output): 3 with the default two filters. What is still unknown after
#: these many is refused.
MAX_ROUNDS = 16
#: Element types of weights and of computed tensors, as ``onnx.TensorProto`` numbers
#: them, and their bytes: float32 (1), int32 (6) and int64 (7), the only ones the exports
#: hold and compute.
ELEMENT_BYTES = {1: 4, 6: 4, 7: 8}
FLOAT32 = 1


@dataclass(frozen=True)
class GraphFacts:
    """What the check of a graph learned.

    Attributes
    ----------
    bytes_per_input : int
        The bytes of every tensor that grows with the batch, per input, the input and the
        output included: an upper bound of a forward pass's memory per input (onnxruntime
        reuses buffers, so it takes less).
    multiply_adds : int
        The work of one input's forward pass (the convolutions' and matrix products'
        multiply-adds, one per value for the other operators).
    """

    bytes_per_input: int
    multiply_adds: int


def check_graph(data: bytes, input_shape: tuple[int, ...], name: object, *,
                code_size: int | None = None) -> GraphFacts:
    """Refuse a ``model.onnx`` that is not a graph of the kind anomaly exports.

    Parameters
    ----------
    data : bytes
        The file's bytes (the very bytes that are then handed to onnxruntime).
    input_shape : tuple of int
        One input's shape, from the model's metadata, e.g. ``(140,)`` or ``(28, 28)``.
    name : path
        What error messages call the file.
    code_size : int, optional
        With a memory of training codes, the width of the code the graph must also output.

    Returns
    -------
    GraphFacts

    Raises
    ------
    ModelError
        Naming the file and the first problem found.
    """
    model = _parse(data, name)
    outputs = 1 if code_size is None else 2
    _check_structure(model, tuple(input_shape), outputs, name)
    one, two = (_shapes_at(model, batch, name) for batch in (1, 2))
    return _bound(model, one, two, tuple(input_shape), code_size, name)


def _parse(data: bytes, name: object):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        # From bytes: nothing the graph names outside the file (external data) is read.
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ModelError(f"{name}: cannot be loaded (not an ONNX model: "
                         f"{first_line(error)})") from error
    if not model.HasField("graph"):
        raise ModelError(f"{name}: cannot be loaded (not an ONNX model: it holds no graph)")
    return model


# -- what the graph is made of ----------------------------------------------------------

def _check_structure(model, input_shape: tuple[int, ...], outputs: int, name: object
                     ) -> None:
    from onnx import AttributeProto

    graph = model.graph
    if model.functions:
        raise ModelError(f"{name}: defines {len(model.functions)} function(s); the networks "
                         "anomaly exports define none")
    if model.training_info:
        raise ModelError(f"{name}: holds training steps (training_info); a scoring model "
                         "holds none")
    if graph.sparse_initializer:
        raise ModelError(f"{name}: holds sparse initializers; the networks anomaly exports "
                         "hold none")
    if len(graph.node) > MAX_NODES:
        raise ModelError(f"{name}: has {len(graph.node):,} nodes; at most {MAX_NODES:,} are "
                         "loaded (the networks anomaly exports have at most about 100)")
    for node in graph.node:
        what = f"the node '{node.name or (node.output[0] if node.output else '')}'"
        if node.domain not in ("", "ai.onnx"):
            raise ModelError(f"{name}: uses the operator {node.op_type} of the domain "
                             f"'{node.domain}'; only standard ONNX operators are loaded")
        if node.op_type in CONTROL_FLOW:
            raise ModelError(f"{name}: uses the operator {node.op_type} (control flow), which "
                             "no network of anomaly uses")
        if node.op_type not in ALLOWED_OPERATORS:
            raise ModelError(f"{name}: uses the operator {node.op_type}, which no network of "
                             "anomaly uses")
        for attribute in node.attribute:
            if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
                raise ModelError(f"{name}: {what} ({node.op_type}) holds a subgraph "
                                 "(control flow)")
            if attribute.type not in (AttributeProto.FLOAT, AttributeProto.INT,
                                      AttributeProto.STRING, AttributeProto.FLOATS,
                                      AttributeProto.INTS, AttributeProto.STRINGS) \
                    or attribute.ref_attr_name:
                raise ModelError(f"{name}: {what} ({node.op_type}) has an attribute "
                                 f"'{attribute.name}' of a kind no network of anomaly uses")
    for tensor in graph.initializer:
        _check_stored(tensor, name)
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    if len(inputs) != 1 or len(graph.output) != outputs:
        expected = ("an autoencoder has one of each" if outputs == 1 else "a model with a "
                    "code memory has one input and two (its reconstruction and its code)")
        raise ModelError(f"{name}: has {len(inputs)} inputs and {len(graph.output)} outputs; "
                         f"{expected}")
    _check_input(inputs[0], input_shape, name)


def _check_stored(tensor, name: object) -> None:
    """A weight holds, in the file, the values its dimensions declare."""
    from onnx import TensorProto

    if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
        where = next((entry.value for entry in tensor.external_data
                      if entry.key == "location"), "?")
        raise ModelError(f"{name}: the weight '{tensor.name}' refers to external data "
                         f"('{where}'); a model.onnx holds all its weights")
    if tensor.data_type not in ELEMENT_BYTES:
        raise ModelError(f"{name}: the weight '{tensor.name}' is of type "
                         f"{TensorProto.DataType.Name(tensor.data_type)}; the networks "
                         "anomaly exports hold float32, int32 and int64 values")
    if any(size < 0 for size in tensor.dims):
        raise ModelError(f"{name}: the weight '{tensor.name}' has the negative dimensions "
                         f"{list(tensor.dims)}")
    declared = math.prod(tensor.dims)
    if tensor.HasField("raw_data"):
        held = len(tensor.raw_data) / ELEMENT_BYTES[tensor.data_type]
    else:
        held = sum(len(field) for field in (tensor.float_data, tensor.int32_data,
                                            tensor.int64_data))
    if held != declared:
        raise ModelError(f"{name}: the weight '{tensor.name}' declares {declared:,} values "
                         f"(dimensions {list(tensor.dims)}) and holds {held:,g}")


def _check_input(value, input_shape: tuple[int, ...], name: object) -> None:
    from onnx import TensorProto

    tensor_type = value.type.tensor_type
    if not value.type.HasField("tensor_type") or tensor_type.elem_type != TensorProto.FLOAT:
        raise ModelError(f"{name}: its input is not a tensor of float32; scoring passes "
                         "float32 inputs")
    dims = list(tensor_type.shape.dim) if tensor_type.HasField("shape") else None
    declared = None if dims is None else tuple(
        dim.dim_value if dim.HasField("dim_value") else None for dim in dims)
    # The batch is any size: a fixed one (or no declared shape) could not take scoring's.
    if declared is None or declared[:1] != (None,) or declared[1:] != input_shape:
        shown = "no shape" if declared is None else f"the shape {declared}"
        raise ModelError(f"{name}: does not take inputs of shape {input_shape}: its graph "
                         f"declares {shown}")


# -- the shape of every tensor before anything runs -------------------------------------

def _shapes_at(model, batch: int, name: object) -> dict[str, tuple[int, tuple | None]]:
    """The element type and shape of every tensor of the graph fed ``batch`` inputs.

    ONNX shape inference alone leaves unknown the shapes that the graph computes from
    other shapes (the exported 1-D convolutions compute their padding with ``Max``,
    ``Div`` and ``Neg``, which its data propagation does not follow). So: infer; evaluate
    every node whose inputs are known values and whose outputs are known to be small
    (``Shape`` of a known shape, arithmetic on such values); infer again with those values
    as constants; until nothing more is learned, or :data:`MAX_ROUNDS` times.
    """
    from onnx import numpy_helper

    graph = model.graph
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer
              if math.prod(tensor.dims) <= SHAPE_VALUES}
    folded: set[int] = set()
    for round_ in range(MAX_ROUNDS):
        shapes = _inferred(model, batch, values, folded, name, check=round_ == 0 and batch == 1)
        learned = False
        for index, node in enumerate(graph.node):
            if index in folded:
                continue
            outputs = _evaluated(model, node, values, shapes, name)
            if outputs is not None:
                values.update(outputs)
                shapes.update({key: _described(array) for key, array in outputs.items()})
                folded.add(index)
                learned = True
        if not learned:
            break
    # After MAX_ROUNDS, what is still unknown is refused by _bound.
    return shapes


def _inferred(model, batch: int, values: dict, folded: set[int], name: object, *,
              check: bool) -> dict[str, tuple[int, tuple | None]]:
    """ONNX shape inference over the graph with ``batch`` inputs, the folded nodes
    replaced by their values, and the weights larger than :data:`SHAPE_VALUES` by inputs
    of their shape (their values never decide a shape; leaving them out keeps the copies
    the inference makes small)."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    source = next(value for value in graph.input if value.name not in weights)
    fed = onnx.ValueInfoProto()
    fed.CopyFrom(source)
    fed.type.tensor_type.shape.dim[0].Clear()
    fed.type.tensor_type.shape.dim[0].dim_value = batch
    stand_ins = [helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
                 for tensor in graph.initializer if tensor.name not in values]
    skeleton = helper.make_model(
        helper.make_graph([node for index, node in enumerate(graph.node) if index not in folded],
                          graph.name or "graph", [fed, *stand_ins], list(graph.output),
                          initializer=[numpy_helper.from_array(array, key)
                                       for key, array in values.items()]),
        opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        if check:
            onnx.checker.check_model(skeleton)
        inferred = shape_inference.infer_shapes(skeleton, check_type=True, strict_mode=True,
                                                data_prop=True)
    except (onnx.checker.ValidationError, shape_inference.InferenceError) as error:
        raise ModelError(f"{name}: is not a valid ONNX graph ({first_line(error)})") from error
    shapes = {key: _described(array) for key, array in values.items()}
    for value in [fed, *stand_ins, *inferred.graph.value_info, *inferred.graph.output]:
        tensor_type = value.type.tensor_type
        dims = (tuple(dim.dim_value if dim.HasField("dim_value") else None
                      for dim in tensor_type.shape.dim)
                if tensor_type.HasField("shape") else None)
        shapes.setdefault(value.name, (tensor_type.elem_type, dims))
    return shapes


def _described(array) -> tuple[int, tuple[int, ...]]:
    """An array's element type (``onnx.TensorProto``'s number) and shape."""
    from onnx import helper

    return int(helper.np_dtype_to_tensor_dtype(array.dtype)), tuple(array.shape)


def _evaluated(model, node, values: dict, shapes: dict, name: object) -> dict | None:
    """The outputs of ``node`` when they can be computed now and are small, else None."""
    import numpy as np

    if node.op_type == "Shape":
        _, dims = shapes.get(node.input[0], (None, None))
        if dims is None or None in dims:
            return None
        start, end = 0, len(dims)
        for attribute in node.attribute:
            if attribute.name == "start":
                start = attribute.i
            elif attribute.name == "end":
                end = attribute.i
        return {node.output[0]: np.array(dims[slice(start, end)], dtype=np.int64)}
    if not all(key in values for key in node.input if key):
        return None
    for key in node.output:
        _, dims = shapes.get(key, (None, None))
        if key and (dims is None or None in dims or math.prod(dims) > SHAPE_VALUES):
            return None
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    inputs = [key for key in node.input if key]
    outputs = [key for key in node.output if key]
    single = helper.make_model(
        helper.make_graph([node], "node",
                          [helper.make_tensor_value_info(key, helper.np_dtype_to_tensor_dtype(
                              values[key].dtype), values[key].shape) for key in inputs],
                          [helper.make_tensor_value_info(key, shapes[key][0], shapes[key][1])
                           for key in outputs]),
        opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        results = ReferenceEvaluator(single).run(None, {key: values[key] for key in inputs})
    except Exception as error:  # The reference operators raise NumPy's and their own.
        raise ModelError(f"{name}: node '{node.name or outputs[0]}' ({node.op_type}) fails on "
                         f"the model's input shape ({first_line(error)})") from error
    return {key: np.asarray(result) for key, result in zip(outputs, results)}


def _bound(model, one: dict, two: dict, input_shape: tuple[int, ...], code_size: int | None,
           name: object) -> GraphFacts:
    """Every computed tensor known, growing at most linearly with the batch, and small."""
    input_values = math.prod(input_shape)
    widest = max(WIDEST_FACTOR * input_values, WIDEST_FLOOR)
    per_input = 2 * 4 * input_values  # The input and the output, float32.
    fixed = 0
    work = 0
    for node in model.graph.node:
        for key in node.output:
            if not key:
                continue
            what = f"the tensor '{key}' ({node.op_type})"
            (kind, dims_one), (_, dims_two) = one.get(key, (0, None)), two.get(key, (0, None))
            if dims_one is None or None in dims_one or dims_two is None or None in dims_two:
                raise ModelError(f"{name}: the shape of {what} cannot be known before it "
                                 "runs; the networks anomaly exports have only known shapes")
            if kind not in ELEMENT_BYTES:
                raise ModelError(f"{name}: {what} is of a type the networks anomaly exports "
                                 "never compute (only float32, int32 and int64)")
            values_one, values_two = math.prod(dims_one), math.prod(dims_two)
            if values_two == values_one:
                fixed += values_one
            elif values_two == 2 * values_one:
                if values_one > widest:
                    raise ModelError(
                        f"{name}: {what} holds {values_one:,} values per input; at most "
                        f"{widest:,} are allowed ({WIDEST_FACTOR:,} times the model's "
                        f"{input_values:,} input values)")
                per_input += values_one * ELEMENT_BYTES[kind]
            else:
                raise ModelError(f"{name}: {what} grows faster than the batch ({values_one:,} "
                                 f"values for one input, {values_two:,} for two)")
        work += _multiply_adds(node, one)
    if fixed > MAX_FIXED_VALUES:
        raise ModelError(f"{name}: computes {fixed:,} values that do not depend on the "
                         f"inputs; at most {MAX_FIXED_VALUES:,} are allowed")
    if per_input > MAX_BYTES_PER_INPUT:
        raise ModelError(f"{name}: its tensors take {per_input:,} bytes per input; at most "
                         f"{MAX_BYTES_PER_INPUT:,} are allowed")
    if work > MAX_MULTIPLY_ADDS:
        raise ModelError(f"{name}: takes {work:,} multiply-adds per input; at most "
                         f"{MAX_MULTIPLY_ADDS:,} are allowed")
    output = model.graph.output[0].name
    kind, produced = one.get(output, (0, None))
    if kind != FLOAT32:
        raise ModelError(f"{name}: its output is not a tensor of float32; an autoencoder's "
                         "output is its input's kind")
    if produced != (1, *input_shape):
        shown = "an unknown shape" if produced is None else produced[1:]
        raise ModelError(f"{name}: maps inputs of shape {input_shape} to {shown}; an "
                         "autoencoder's output has its input's shape")
    if code_size is not None:
        kind, produced = one.get(model.graph.output[1].name, (0, None))
        if kind != FLOAT32 or produced != (1, code_size):
            shown = "an unknown shape" if produced is None else produced[1:]
            raise ModelError(f"{name}: its second output is not a code of {code_size} float32 "
                             f"values per input (got {shown}), as the model's code memory "
                             "needs")
    return GraphFacts(bytes_per_input=per_input, multiply_adds=work)


def _multiply_adds(node, shapes: dict) -> int:
    """The multiply-adds of a node for one input (an element-wise node: one per value)."""
    def size(key: str) -> int:
        return math.prod(shapes[key][1])

    if node.op_type == "MatMul":
        return size(node.output[0]) * shapes[node.input[0]][1][-1]
    if node.op_type == "Conv":
        return size(node.output[0]) * math.prod(shapes[node.input[1]][1][1:])
    if node.op_type == "ConvTranspose":
        return size(node.input[0]) * math.prod(shapes[node.input[1]][1][1:])
    return sum(size(key) for key in node.output if key)
