"""Crafted ``model.onnx`` files, each scored through the command line in a real process.

A model directory can be crafted whole: whoever can write ``model.onnx`` can write the
SHA-256 that ``metadata.json`` records of it. Each crafted graph here is built with
``onnx.helper``, its hash recorded, and scored with ``anomaly score in.csv -m model``.
Every case checks the exit code (3), the one ``Error:`` line naming ``model.onnx`` and what
is wrong, the peak RSS of the process, a bound on its time, and that every file that was
there before is unchanged byte for byte. All but one are refused before onnxruntime sees
them; the one whose shapes change past the batch sizes the check tries fails in
onnxruntime's bounded arena. Also here: every kind of network anomaly builds passes the
check once exported, and SIGTERM ends a long forward pass at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from anomaly.exceptions import EXIT_BAD_MODEL, EXIT_TERMINATED
from anomaly.model.directory import METADATA_FILE, ONNX_FILE
from anomaly.model.runtimes.onnx_graph import (ALLOWED_OPERATORS, MAX_MULTIPLY_ADDS,
                                               check_graph)
from anomaly.synthetic import synthetic_beats, write_beats_csv

from hostile import MEASURE, MEMORY_BUDGET_MB, anomaly, refused, snapshot, \
    started_writing

#: The input length of the ``model_dir`` fixture's model.
N_SAMPLES = 96
#: What a refusal may take, start-up included (about 1 s here). Without the check, the
#: Loop never ends (onnxruntime would be stopped by the load's 30 s), the 200,000 nodes
#: take 14 s to load, and the ConstantOfShape fills 1.8 GB.
REFUSAL_SECONDS = 10


# -- building graphs ------------------------------------------------------------------------

def _model(nodes, initializers=(), *, inputs=None, outputs=None, opsets=(("", 15),),
           functions=()) -> bytes:
    """The bytes of a model of ``nodes``, by default from ``x`` (N, 96) to ``y`` (N, 96)."""
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_SAMPLES])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                        ["N", N_SAMPLES])]
    graph = helper.make_graph(nodes, "crafted", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, version)
                                                    for domain, version in opsets],
                              functions=list(functions))
    return model.SerializeToString()


def _ints(name: str, values) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _floats(name: str, shape) -> TensorProto:
    return numpy_helper.from_array(
        np.random.default_rng(0).normal(0, 0.05, shape).astype(np.float32), name)


def _constant_of_shape_bomb() -> bytes:
    """450 million float32 values (1.8 GB) from a 9-byte shape, summed into the output."""
    return _model([
        helper.make_node("ConstantOfShape", ["shape"], ["big"],
                         value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=1),
        helper.make_node("Add", ["x", "total"], ["y"])], [_ints("shape", [450_000_000])])


def _loop_bomb() -> bytes:
    """A Loop of 10**15 trips adding one, added to the input."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["condition_in"], ["condition_out"]),
         helper.make_node("Add", ["count_in", "one"], ["count_out"])], "body",
        [helper.make_tensor_value_info("trip", TensorProto.INT64, []),
         helper.make_tensor_value_info("condition_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("count_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("condition_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("count_out", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(np.ones(1, np.float32), "one")])
    return _model([helper.make_node("Loop", ["trips", "always", "zero"], ["count"], body=body),
                   helper.make_node("Add", ["x", "count"], ["y"])],
                  [_ints("trips", 10**15), numpy_helper.from_array(np.array(True), "always"),
                   numpy_helper.from_array(np.zeros(1, np.float32), "zero")])


def _branch(name: str) -> onnx.GraphProto:
    return helper.make_graph([helper.make_node("Identity", ["x"], [f"{name}_out"])], name, [],
                             [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT,
                                                            ["N", N_SAMPLES])])


def _if_branches() -> bytes:
    return _model([helper.make_node("If", ["always"], ["y"], then_branch=_branch("then"),
                                    else_branch=_branch("else"))],
                  [numpy_helper.from_array(np.array(True), "always")])


def _scan() -> bytes:
    body = helper.make_graph(
        [helper.make_node("Identity", ["row_in"], ["row_out"])], "body",
        [helper.make_tensor_value_info("row_in", TensorProto.FLOAT, [N_SAMPLES])],
        [helper.make_tensor_value_info("row_out", TensorProto.FLOAT, [N_SAMPLES])])
    return _model([helper.make_node("Scan", ["x"], ["y"], body=body, num_scan_inputs=1)])


def _subgraph_on_an_allowed_operator() -> bytes:
    return _model([helper.make_node("Relu", ["x"], ["y"], body=_branch("hidden"))])


def _tile() -> bytes:
    """An operator outside the list: Tile, to 10 million copies of each input."""
    return _model([helper.make_node("Tile", ["x", "repeats"], ["tiled"]),
                   helper.make_node("Slice", ["tiled", "starts", "ends", "axes"], ["y"])],
                  [_ints("repeats", [1, 10_000_000]), _ints("starts", [0]),
                   _ints("ends", [N_SAMPLES]), _ints("axes", [1])])


def _declared_not_held() -> bytes:
    """A weight that declares a billion values and holds none."""
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1_000_000_000])
    return _model([helper.make_node("Slice", ["w", "starts", "ends"], ["head"]),
                   helper.make_node("Add", ["x", "head"], ["y"])],
                  [weight, _ints("starts", [0]), _ints("ends", [N_SAMPLES])])


def _broadcast_bomb() -> bytes:
    """Two weights of 16,384 values whose sum broadcasts to 268 million (1 GB), which
    onnxruntime would compute while loading (constant folding)."""
    return _model([helper.make_node("Add", ["column", "row"], ["square"]),
                   helper.make_node("Slice", ["square", "starts", "ends"], ["corner"]),
                   helper.make_node("Add", ["x", "corner"], ["y"])],
                  [_floats("column", (16_384, 1)), _floats("row", (1, 16_384)),
                   _ints("starts", [0, 0]), _ints("ends", [1, N_SAMPLES])])


def _pad_bomb() -> bytes:
    """Each input padded to 100 million values, then cut back."""
    return _model([helper.make_node("Pad", ["x", "pads"], ["padded"]),
                   helper.make_node("Slice", ["padded", "starts", "ends", "axes"], ["y"])],
                  [_ints("pads", [0, 0, 0, 100_000_000]), _ints("starts", [0]),
                   _ints("ends", [N_SAMPLES]), _ints("axes", [1])])


def _batch_squared() -> bytes:
    """The batch as a row plus the batch as a column: (96 N)**2 values, 64 GB for a
    scoring pass of 8,192 inputs and 36,864 values for a probe of two."""
    return _model([helper.make_node("Reshape", ["x", "as_row"], ["row"]),
                   helper.make_node("Reshape", ["x", "as_column"], ["column"]),
                   helper.make_node("Add", ["row", "column"], ["square"]),
                   helper.make_node("Reshape", ["square", "as_inputs"], ["y"])],
                  [_ints("as_row", [1, -1]), _ints("as_column", [-1, 1]),
                   _ints("as_inputs", [-1, N_SAMPLES])])


def _padded_by_the_batch() -> bytes:
    """Padding of ``(batch // 3) * 2**27`` values: none for the check's batches of one
    and two inputs, a thousand billion for scoring's 250; onnxruntime's arena refuses it."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "first"], ["batch"]),
             helper.make_node("Div", ["batch", "three"], ["p0"])]
    nodes += [helper.make_node("Add", [f"p{index}", f"p{index}"], [f"p{index + 1}"])
              for index in range(27)]
    nodes += [helper.make_node("Concat", ["zeros", "p27"], ["pads"], axis=0),
              helper.make_node("Pad", ["x", "pads"], ["padded"]),
              helper.make_node("Slice", ["padded", "starts", "ends", "axes"], ["y"])]
    return _model(nodes, [_ints("first", [0]), _ints("three", [3]), _ints("zeros", [0, 0, 0]),
                          _ints("starts", [0]), _ints("ends", [N_SAMPLES]), _ints("axes", [1])])


def _external_data() -> bytes:
    """A weight whose values are to be read from /etc/passwd."""
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[N_SAMPLES],
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "/etc/passwd"), ("offset", "0"),
                       ("length", str(4 * N_SAMPLES))):
        weight.external_data.add(key=key, value=value)
    return _model([helper.make_node("Add", ["x", "w"], ["y"])], [weight])


def _custom_domain() -> bytes:
    return _model([helper.make_node("Relu", ["x"], ["y"], domain="com.example.evil")],
                  opsets=(("", 15), ("com.example.evil", 1)))


def _function() -> bytes:
    function = helper.make_function("com.example", "Evil", ["a"], ["b"],
                                    [helper.make_node("Relu", ["a"], ["b"])],
                                    [helper.make_opsetid("", 15)])
    return _model([helper.make_node("Evil", ["x"], ["y"], domain="com.example")],
                  opsets=(("", 15), ("com.example", 1)), functions=[function])


def _many_nodes() -> bytes:
    """200,000 Relu one after the other: 14 s for onnxruntime to load (measured here)."""
    count = 200_000
    return _model([helper.make_node("Relu", [f"t{index}" if index else "x"],
                                    [f"t{index + 1}" if index < count - 1 else "y"])
                   for index in range(count)])


def _convolutions(inner: int, kernel: int, channels: int = 128) -> bytes:
    """Allowed operators only: ``inner`` 1-D convolutions of ``channels`` channels over
    the 96 samples, each ``96 * channels**2 * kernel`` multiply-adds per input (48.8
    million for a kernel of 31), between one from the input and one to the output."""
    pad = kernel // 2
    nodes = [helper.make_node("Reshape", ["x", "as_channels"], ["h0"]),
             helper.make_node("Conv", ["h0", "w_in"], ["h1"], pads=[pad, pad])]
    for index in range(1, inner + 1):
        nodes.append(helper.make_node("Conv", [f"h{index}", "w"], [f"h{index + 1}"],
                                      pads=[pad, pad]))
    nodes += [helper.make_node("Conv", [f"h{inner + 1}", "w_out"], ["out"], pads=[pad, pad]),
              helper.make_node("Reshape", ["out", "as_inputs"], ["y"])]
    return _model(nodes, [_ints("as_channels", [-1, 1, N_SAMPLES]),
                          _ints("as_inputs", [-1, N_SAMPLES]),
                          _floats("w_in", (channels, 1, kernel)),
                          _floats("w", (channels, channels, kernel)),
                          _floats("w_out", (1, channels, kernel))])


def _wrong_input_shape() -> bytes:
    return _model([helper.make_node("Relu", ["x"], ["y"])],
                  inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 40])],
                  outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 40])])


def _fixed_batch() -> bytes:
    return _model([helper.make_node("Relu", ["x"], ["y"])],
                  inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, N_SAMPLES])],
                  outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N_SAMPLES])])


def _narrow_output() -> bytes:
    return _model([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])],
                  [_ints("starts", [0]), _ints("ends", [1]), _ints("axes", [1])],
                  outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])])


def _two_inputs() -> bytes:
    return _model([helper.make_node("Add", ["x", "x2"], ["y"])],
                  inputs=[helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", N_SAMPLES])
                          for name in ("x", "x2")])


def _nested(depth: int = 10_000) -> bytes:
    """A graph in an attribute of a node of a graph ... ``depth`` deep, the protobuf
    written by hand (onnx.helper would recurse as deep): GraphProto.node (field 1),
    NodeProto.attribute (5), AttributeProto.g (6), from the inside out."""
    headers, length = [], 0
    for _ in range(depth):
        for number in (6, 5, 1):
            header = _varint(number << 3 | 2) + _varint(length)
            headers.append(header)
            length += len(header)
    headers.append(_varint(7 << 3 | 2) + _varint(length))  # ModelProto.graph
    return b"".join(reversed(headers))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _oversized() -> bytes:
    """A valid graph whose weight makes the file 72 MB."""
    weight = numpy_helper.from_array(np.zeros((18_000_000,), np.float32), "w")
    return _model([helper.make_node("Slice", ["w", "starts", "ends"], ["head"]),
                   helper.make_node("Add", ["x", "head"], ["y"])],
                  [weight, _ints("starts", [0]), _ints("ends", [N_SAMPLES])])


def install(work: Path, data: bytes) -> None:
    """``data`` as the model's ``model.onnx``, its SHA-256 recorded in ``metadata.json``."""
    (work / "model" / ONNX_FILE).write_bytes(data)
    path = work / "model" / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["onnx"]["sha256"] = hashlib.sha256(data).hexdigest()
    path.write_text(json.dumps(metadata))


def _truncated(work: Path) -> bytes:
    return (work / "model" / ONNX_FILE).read_bytes()[:50_000]


# -- every crafted model: exit 3, one line, little memory, little time, nothing changed ---------

#: Each crafted model: how it is built, and what its one-line error says (also measured by
#: scripts/benchmark_hostile.py).
CRAFTED = {
    "ConstantOfShape of 450M values": (
        _constant_of_shape_bomb,
        ["uses the operator ConstantOfShape, which no network of anomaly uses"]),
    "Loop of 1e15 trips": (_loop_bomb, ["uses the operator Loop (control flow)"]),
    "If": (_if_branches, ["uses the operator If (control flow)"]),
    "Scan": (_scan, ["uses the operator Scan (control flow)"]),
    "a subgraph on Relu": (_subgraph_on_an_allowed_operator,
                           ["the node 'y' (Relu) holds a subgraph (control flow)"]),
    "Tile": (_tile, ["uses the operator Tile, which no network of anomaly uses"]),
    "a billion values declared, none held": (
        _declared_not_held,
        ["the weight 'w' declares 1,000,000,000 values (dimensions [1000000000]) and holds 0"]),
    "a broadcast to 268M values": (
        _broadcast_bomb, ["computes 268,435,552 values that do not depend on the inputs; at "
                          "most 1,048,576 are allowed"]),
    "Pad to 100M values": (_pad_bomb, ["the tensor 'padded' (Pad) holds 100,000,096 values "
                                       "per input; at most 98,304 are allowed"]),
    "a batch squared": (_batch_squared, ["the tensor 'square' (Add) grows faster than the "
                                         "batch (9,216 values for one input, 36,864 for two)"]),
    "padded by the batch, beyond the check's batches": (
        _padded_by_the_batch, ["a forward pass of 250 inputs failed (", "Available memory of "]),
    "external data from /etc/passwd": (
        _external_data, ["the weight 'w' refers to external data ('/etc/passwd')"]),
    "a custom domain": (_custom_domain,
                        ["uses the operator Relu of the domain 'com.example.evil'"]),
    "a function": (_function, ["defines 1 function(s)"]),
    "200,000 nodes": (_many_nodes, ["has 200,000 nodes; at most 1,000 are loaded"]),
    # 25 * 96 * 128**2 * 31, two convolutions of 96 * 128 * 31, and 192 for the reshapes.
    "1.2e9 multiply-adds per input": (
        lambda: _convolutions(inner=25, kernel=31),
        [f"takes 1,219,731,648 multiply-adds per input; at most {MAX_MULTIPLY_ADDS:,} are "
         "allowed"]),
    "declared input of another shape": (
        _wrong_input_shape,
        ["does not take inputs of shape (96,): its graph declares the shape (None, 40)"]),
    "a fixed batch of 1": (
        _fixed_batch,
        ["does not take inputs of shape (96,): its graph declares the shape (1, 96)"]),
    "output narrower than the input": (
        _narrow_output, ["maps inputs of shape (96,) to (1,); an autoencoder's output has "
                         "its input's shape"]),
    "two inputs": (_two_inputs, ["has 2 inputs and 1 outputs; an autoencoder has one of each"]),
    "72 MB": (_oversized, [": 72,000,", " bytes; at most 67,108,864 are read"]),
    "nested 10,000 deep": (_nested, ["cannot be loaded (not an ONNX model: "]),
    "truncated": (_truncated, ["cannot be loaded (not an ONNX model: "]),
}


#: The crafted models that would take memory or time if the check let them through: each
#: is scored in a real process, its peak memory and seconds measured. The others are
#: refused for what they are, not for what they would cost: loaded in this process, which
#: is what a scoring process does first (and several seconds of the suite's time less).
COSTLY = ("ConstantOfShape of 450M values", "Loop of 1e15 trips", "a broadcast to 268M values",
          "Pad to 100M values", "a batch squared",
          "padded by the batch, beyond the check's batches", "200,000 nodes",
          "1.2e9 multiply-adds per input", "72 MB", "nested 10,000 deep",
          "external data from /etc/passwd")


@pytest.mark.parametrize("case", COSTLY)
def test_a_costly_crafted_model_onnx_is_exit_3_at_once(work, case):
    craft, fragments = CRAFTED[case]
    install(work, craft())
    before = snapshot(work)
    started = time.monotonic()
    finished = anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", cwd=work, timeout=120)
    seconds = time.monotonic() - started
    refused(finished, "model/model.onnx: ", *fragments, code=EXIT_BAD_MODEL)
    assert finished.peak_mb < MEMORY_BUDGET_MB
    assert seconds < REFUSAL_SECONDS
    assert snapshot(work) == before


@pytest.mark.parametrize("case", [case for case in CRAFTED if case not in COSTLY])
def test_a_crafted_model_onnx_is_refused_when_loaded(work, case):
    from anomaly.exceptions import ModelError
    from anomaly.model import AutoencoderDetector

    craft, fragments = CRAFTED[case]
    install(work, craft(work) if craft is _truncated else craft())
    before = snapshot(work)
    with pytest.raises(ModelError) as refusal:
        AutoencoderDetector.load(work / "model", runtime="onnx")
    message = str(refusal.value)
    assert "\n" not in message and message.startswith(f"{work / 'model' / ONNX_FILE}: ")
    assert all(fragment in message for fragment in fragments), message
    assert snapshot(work) == before


def test_the_fixture_model_scores_through_onnx_within_the_budget(work):
    """The baseline the refusals are measured against: the same run scores the real model."""
    finished = anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", cwd=work)
    assert finished.code == 0, finished.stderr
    assert "(onnx runtime)" in finished.stderr
    assert finished.peak_mb < MEMORY_BUDGET_MB
    assert len((work / "s.csv").read_text().splitlines()) == 1 + 250


#: Runs ``model.onnx`` (argv[1]) on two inputs through the runtime's session, without the
#: check: what the arena alone does with a graph the check would refuse.
UNCHECKED_RUN = """
import sys
import numpy as np
from anomaly.model.runtimes.onnx_runtime import _session
session = _session(open(sys.argv[1], "rb").read())
try:
    session.run(None, {"x": np.zeros((2, 96), np.float32)})
except Exception as error:
    print(str(error).splitlines()[0])
    sys.exit(3)
"""


def test_onnxruntime_allocates_from_a_bounded_arena(tmp_path):
    """Behind the check: the ConstantOfShape bomb run as it is fails in onnxruntime's
    arena (768 MiB) instead of taking its 1.8 GB (1.84 GB peak RSS without the arena)."""
    model = tmp_path / "bomb.onnx"
    model.write_bytes(_constant_of_shape_bomb())
    rss = tmp_path / "rss.txt"
    run = subprocess.run([sys.executable, "-c", MEASURE, str(rss), sys.executable, "-c",
                          UNCHECKED_RUN, str(model)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 3, run.stderr
    assert "smaller than requested bytes of 1800000000" in run.stdout
    assert int(rss.read_text()) / 1024 < 450_000_000 * 4 / 2**20 / 2


# -- every network anomaly builds passes the check ------------------------------------------

#: One of each kind of network the package builds (family, input shape, builder options):
#: the dense family on traces and on images with the MNIST tool's 2-D code, the
#: convolutional one on traces (with and without a dense code) and on images, and the
#: variational one on both (exported decoding its code's mean). Denoising and the RR
#: context change what the network is trained on, not its graph.
NETWORK_KINDS = {
    "dense trace": ("dense", (96,), {}),
    "dense image, 2-D code": ("dense", (28, 28), {"hidden_units": (512, 256, 2)}),
    "conv trace": ("conv", (96,), {}),
    "conv trace, dense code": ("conv", (96, 1), {"filters": (8, 16), "latent_dim": 4}),
    "conv image": ("conv", (28, 28), {"latent_dim": None}),
    "conv image, 2-D code": ("conv", (28, 28), {"latent_dim": 2}),
    "vae trace": ("vae", (96,), {}),
    "vae image": ("vae", (28, 28), {"latent_dim": 2, "dense_units": 128}),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """Each kind of :data:`NETWORK_KINDS` exported by ``export_onnx`` (which checks it).

    Weights are drawn at random rather than trained: the graph is the same, except that
    the exporter folds away an all-zero bias (an untrained network's), hiding its ``Add``.
    """
    from anomaly.model.networks import build_autoencoder
    from anomaly.model.runtimes.onnx_runtime import export_onnx

    directory = tmp_path_factory.mktemp("exports")
    rng = np.random.default_rng(0)
    files = {}
    for kind, (family, shape, options) in NETWORK_KINDS.items():
        network = build_autoencoder(family, shape, **options)
        network.set_weights([rng.normal(0, 0.1, weight.shape).astype(weight.dtype)
                             for weight in network.get_weights()])
        path = directory / f"{kind.replace(' ', '_').replace(',', '')}.onnx"
        export_onnx(network, path)
        files[kind] = (path, shape)
    return files


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_every_network_kind_passes_the_check(exported, kind):
    path, shape = exported[kind]
    facts = check_graph(path.read_bytes(), shape, path)
    values = int(np.prod(shape))
    # Between the input and the output alone (8 bytes a value) and a few hundred copies.
    assert 8 * values < facts.bytes_per_input < 1000 * 4 * values
    assert values <= facts.multiply_adds < MAX_MULTIPLY_ADDS // 100


def test_the_allowlist_is_what_the_exported_networks_use(exported):
    used = set()
    for path, _ in exported.values():
        used |= {node.op_type for node in onnx.load(str(path)).graph.node}
    assert used == ALLOWED_OPERATORS


# -- SIGTERM during a long forward pass ---------------------------------------------------------

def test_sigterm_ends_a_long_forward_pass_at_once(work):
    """A model the check lets through (allowed operators, bounded tensors, 0.9e9
    multiply-adds per input) whose forward passes take seconds each: onnxruntime holds the
    thread that calls it for a whole pass, so SIGTERM is honoured at once only because the
    pass runs in a helper thread while the main thread waits (run in the main thread,
    SIGTERM waited 4.7 s for a shorter pass to end).

    No model that passes the check loads for long: the probe batches of this one take
    0.06 s. So what is tested here is the long pass; loading calls onnxruntime the same
    way (``interruptibly``)."""
    install(work, _convolutions(inner=6, kernel=95))
    values, _ = synthetic_beats(700, 0, length=N_SAMPLES, seed=5)
    write_beats_csv(work / "big.csv", values)
    (work / "out").mkdir()
    before = snapshot(work)
    process = started_writing(work, "score", "big.csv", "-m", "model", "-o", "out/s.csv")
    time.sleep(0.5)  # Inside the first pass: 700 inputs, 16 s of one core here.
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_TERMINATED, err
    assert err.strip() == "Error: terminated (SIGTERM); nothing half-written was left"
    assert time.monotonic() - sent < 2
    assert snapshot(work) == before


@pytest.mark.parametrize("name, plant, fragment", [
    ("model.keras", lambda path: os.truncate(path, 20 << 30), "bytes; at most"),
    ("model.onnx", lambda path: (path.unlink(), os.mkfifo(path)), "not a regular file"),
    ("model.onnx", lambda path: (path.unlink(), path.symlink_to("/dev/zero")),
     "not a regular file"),
    ("metadata.json", lambda path: (path.unlink(), os.mkfifo(path)), "not a regular file"),
], ids=["model.keras a 20 GB sparse file", "model.onnx a FIFO", "model.onnx a link to "
        "/dev/zero", "metadata.json a FIFO"])
def test_a_model_file_that_is_not_a_file_or_too_large_is_refused_at_once(work, name, plant,
                                                                        fragment):
    """Neither hashed to the end (20 GB took 52 s) nor waited on."""
    plant(work / "model" / name)
    before = snapshot(work)
    started = time.monotonic()
    finished = anomaly("score", "in.csv", "-m", "model", "-o", "s.csv", cwd=work, timeout=120)
    refused(finished, f"model/{name}: ", fragment, code=EXIT_BAD_MODEL)
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert snapshot(work) == before
