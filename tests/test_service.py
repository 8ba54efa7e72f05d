"""``anomaly serve``: a real server process on 127.0.0.1, spoken to by a real Open
Inference Protocol client (tritonclient, as a KServe or Triton user's code would) and by
raw HTTP for what a client library never sends."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import edfio
import numpy as np
import pytest
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException

from anomaly.model import AutoencoderDetector
from anomaly.synthetic import synthetic_beats

from anomaly.cli import main
from conftest import FAST, run_cli
from test_recordings import FS, beat_train, synthetic_ecg, write_wfdb

TOKEN = "s3cret-token"


def auth() -> dict[str, str]:
    """The token's header, a new dict each time: tritonclient adds its own headers to the
    dict it is given."""
    return {"Authorization": f"Bearer {TOKEN}"}


#: What the module's server allows: small, so that the limits are reached cheaply.
MAX_BODY_MB = 1
REQUEST_TIMEOUT = 2.0


class Server:
    """An ``anomaly serve`` process: its port, its stderr lines so far, and a way to stop
    it and get its exit code."""

    def __init__(self, *args: str, cwd: Path, env: dict | None = None, wait_ready=True):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "anomaly", "serve", "--port", "0", *args], cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        first = self.process.stderr.readline()
        if not first:
            self.process.wait(timeout=30)
            raise AssertionError(f"the server did not start: {self.process.stderr.read()}")
        self.listening = json.loads(first)
        self.port = self.listening["port"]
        # Read the log lines as they come, so that a full pipe never blocks the server.
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr),
                                       daemon=True)
        self.reader.start()
        # As a deployment does: requests once it is ready (with a recording's model, its
        # live streams' detector imported in the meantime).
        deadline = time.monotonic() + 60
        while wait_ready and self.request("GET", "/v2/health/ready")[0] != 200:
            assert time.monotonic() < deadline and self.process.poll() is None, self.lines
            time.sleep(0.05)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        connection = self.connection()
        connection.request(method, path, body, {**auth(), **(headers or {})})
        response = connection.getresponse()
        result = response.status, dict(response.getheaders()), response.read()
        connection.close()
        return result

    def settled(self, quiet: float = 0.3) -> int:
        """How many log lines have come, once none has come for ``quiet`` seconds: a
        request's log line is written after its answer, and a test that counts the lines
        before its own requests must not count a line of the requests before (10 s at
        most)."""
        deadline = time.monotonic() + 10
        count = len(self.lines)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            if len(self.lines) == count:
                break
            count = len(self.lines)
        return count

    def said_since(self, start: int, count: int = 1) -> list[dict]:
        """The log lines after the first ``start``, parsed, once ``count`` of them have
        come (the log's reader thread may be a line behind; 10 s at most)."""
        deadline = time.monotonic() + 10
        while len(self.lines) < start + count and time.monotonic() < deadline:
            time.sleep(0.05)
        return [json.loads(line) for line in self.lines[start:]]

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and the log lines."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return code, "".join(self.lines)


#: How far (relatively) the score of a beat may move when its samples are rounded: to
#: float32 in a beats CSV, to 7 decimals in the signal CSV here. The holter model's score,
#: its squared error over the training median times its code's distance over the median,
#: moved by up to 2.0e-5 and 2.5e-5 (and not at all from the samples in full, 17 digits,
#: which the upload limit does not take); the flags must not move.
ROUNDED_SAMPLES = 1e-4
#: How far (relatively) a live stream's score may be from the file's: the same samples,
#: through forward passes of other batch sizes, whose float32 sums differ in their last
#: bits (measured: 1.1e-6 for the holter model's score, under 1e-6 for an error alone).
LIVE_AS_FILE = 1e-5


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two model directories: beats' shape alone (96 samples, scored by their squared
    error), and with the RR context."""
    directory = tmp_path_factory.mktemp("served")
    values, labels = synthetic_beats(300, 60, length=96, seed=3)
    normal = values[labels == 1]
    AutoencoderDetector(**FAST, error_metric="mse").fit(normal).save(directory / "shape")
    rr = np.random.default_rng(0).normal(1.0, 0.05, (len(normal), 2))
    timed = AutoencoderDetector(**{**FAST, "epochs": 5},
                                context=("rr_prev_ratio", "rr_next_ratio"))
    timed.fit(np.hstack([normal, rr])).save(directory / "timed")
    (directory / "token").write_text(TOKEN + "\n")
    (directory / "token").chmod(0o600)
    # A model fitted on a recording, as a Holter user fits one, and the recording as EDF.
    peaks = beat_train(120)
    lead = synthetic_ecg(peaks, 120 * FS)
    edfio.Edf([edfio.EdfSignal(lead, FS, label="MLII", physical_range=(-5, 5))]).write(
        directory / "rec.edf")
    # The samples the EDF holds (quantised to its 16 bits), to 1e-7: the same recording.
    stored = edfio.read_edf(directory / "rec.edf").signals[0].data
    np.savetxt(directory / "rec_signal.csv", stored[:, None], fmt="%.7f", header="MLII",
               comments="")
    write_wfdb(directory, "wrec", np.column_stack([lead, -0.5 * lead]))
    # In this process: what is tested here is the service, not the fit's start-up. Its
    # score has the code's factor (as a longer recording's would by default), so that the
    # uploads and the live streams score by it.
    assert main(["fit", str(directory / "rec.edf"), "--epochs", "3", "-m",
                 str(directory / "holter"), "--code-distance", "on", "-q"]) == 0
    return directory, values, labels


@pytest.fixture(scope="module")
def server(models):
    directory, _, _ = models
    (directory / "tmp").mkdir()
    server = Server("-m", f"ecg={directory / 'shape'}", "-m", str(directory / "timed"),
                    "-m", str(directory / "holter"), "--max-upload-mb", "0.5",
                    "--token-file", str(directory / "token"), "--max-body-mb", str(MAX_BODY_MB),
                    "--max-concurrent", "1", "--max-queued", "1",
                    "--request-timeout", str(REQUEST_TIMEOUT),
                    "--max-beats", "5000", "--max-streams", "2", cwd=directory,
                    env={**os.environ, "TMPDIR": str(directory / "tmp")})
    yield server
    code, err = server.stop()
    assert code == 0, err


def read_response(sock: socket.socket) -> bytes:
    """A whole HTTP response from a raw socket: headers, then Content-Length bytes."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{server.port}")


def test_a_v2_client_scores_as_the_command_line_does_in_json_and_binary(models, server):
    directory, values, labels = models
    triton_client = client(server)
    assert server.listening["host"] == "127.0.0.1"
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("ecg", headers=auth())
    metadata = triton_client.get_model_metadata("ecg", headers=auth())
    local = AutoencoderDetector.load(directory / "shape", runtime="onnx")
    assert metadata["inputs"] == [{"name": "beats", "datatype": "FP32", "shape": [-1, 96]}]
    assert [o["name"] for o in metadata["outputs"]] == ["score", "is_anomaly"]
    assert metadata["parameters"]["threshold"] == local.threshold_
    assert metadata["parameters"]["error_metric"] == metadata["parameters"]["score"] == "mse"
    assert metadata["parameters"]["model_sha256"] == local.model_sha256_
    holter = triton_client.get_model_metadata("holter", headers=auth())["parameters"]
    assert (holter["error_metric"], holter["score"]) == (
        "mse", "mse x code distance x sample distance")

    beats = values.astype(np.float32)
    expected = local.score(beats.astype(np.float64))
    for binary in (True, False):
        tensor = triton.InferInput("beats", list(beats.shape), "FP32")
        tensor.set_data_from_numpy(beats, binary_data=binary)
        outputs = [triton.InferRequestedOutput(name, binary_data=binary)
                   for name in ("score", "is_anomaly")]
        result = triton_client.infer("ecg", [tensor], outputs=outputs, headers=auth(),
                                     request_id="r1")
        np.testing.assert_allclose(result.as_numpy("score"), expected, rtol=1e-6)
        np.testing.assert_array_equal(result.as_numpy("is_anomaly"), expected > local.threshold_)
        assert result.get_response()["id"] == "r1"
    # The synthetic anomalies are found: the service flags what the detector flags.
    flagged = result.as_numpy("is_anomaly")
    assert flagged[labels == 0].mean() > 0.8 and flagged[labels == 1].mean() < 0.3


def test_a_model_with_the_rr_context_takes_each_beats_rr_intervals(models, server):
    directory, values, _ = models
    metadata = client(server).get_model_metadata("timed", headers=auth())
    assert metadata["inputs"][1] == {"name": "rr_intervals", "datatype": "FP32",
                                     "shape": [-1, 3]}
    assert metadata["parameters"]["rr_intervals_columns"] == ["rr_prev_s", "rr_next_s",
                                                              "rr_local_mean_s"]
    beats = values[:4].astype(np.float32)
    # On time, early, late, and unknown (0: the first beat of a recording).
    rr = np.array([[0.8, 0.8, 0.8], [0.4, 1.2, 0.8], [0.8, 1.6, 0.8], [0, 0.8, 0.8]],
                  dtype=np.float32)
    inputs = [triton.InferInput("beats", [4, 96], "FP32"),
              triton.InferInput("rr_intervals", [4, 3], "FP32")]
    inputs[0].set_data_from_numpy(beats)
    inputs[1].set_data_from_numpy(rr)
    scores = client(server).infer("timed", inputs, headers=auth()).as_numpy("score")
    local = AutoencoderDetector.load(directory / "timed", runtime="onnx")
    ratios = np.array([[1, 1], [0.5, 1.5], [1, 2], [1, 1]])
    expected = local.score(np.hstack([beats.astype(np.float64), ratios]))
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert scores[1] > scores[0] and scores[2] > scores[0]
    # Without its RR intervals the model cannot score: a 400 naming the input.
    with pytest.raises(InferenceServerException, match="missing input 'rr_intervals'"):
        client(server).infer("timed", inputs[:1], headers=auth())


def infer_body(shape, data, **tensor) -> str:
    return json.dumps({"inputs": [{"name": "beats", "shape": shape, "datatype": "FP32",
                                   "data": data, **tensor}]})


@pytest.mark.parametrize("body, headers, status, message", [
    ("{not json", {}, 400, "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, {}, 400, "nested too deeply"),
    ('{"inputs": [{"name": "beats", "shape": [1, 96], "datatype": ' + "[" * 1010 + "]" * 1010
     + "}]}", {}, 400, "nested too deeply"),
    ('{"inputs": []}', {}, 400, "non-empty list"),
    (infer_body([1, 95], [0.1] * 95), {}, 400, r"shape must be \[n, 96\]"),
    (infer_body([1, 96], [0.1] * 95), {}, 400, "95 elements for a shape of 96"),
    (infer_body([1, 96], [0.1] * 95 + [float("nan")]), {}, 400, "NaN is not a number"),
    (infer_body([1, 96], [0.1] * 95 + ["x"]), {}, 400, "numbers only"),
    (infer_body([1, 96], [0.1] * 95 + [1e30]), {}, 400, "outside the range the model can"),
    (infer_body([10 ** 12, 96], [0.1] * 96), {}, 413, "1000000000000 rows; 1 to 5000"),
    (infer_body([10 ** 4000, 96], [0.1] * 96), {}, 413, r"'beats': 10{76}\.\.\. rows; 1 to 5000"),
    (infer_body([1, 10 ** 4000], [0.1] * 96), {}, 400, r"got \[1, 10000000000+\.\.\.$"),
    (infer_body([1, 96], [0.1] * 96, datatype="BYTES"), {}, 400, "datatype must be FP32"),
    (infer_body([1, 96], None, parameters={"binary_data_size": 384}), {}, 400,
     "384 bytes of binary data declared, 0 sent"),
    (infer_body([1, 96], [0.1] * 96), {"Inference-Header-Content-Length": "99999999"}, 400,
     "Inference-Header-Content-Length must be a length within"),
    (json.dumps({"inputs": [{"name": "ecg", "shape": [1], "datatype": "FP32", "data": [1]}]}),
     {}, 400, "no input 'ecg'"),
    (infer_body([1, 96], [0.1] * 96) + " " * (MAX_BODY_MB << 20), {}, 413, "at most"),
    (infer_body([1, 96], [0.1] * 96), {"Authorization": "Bearer wrong"}, 401, "bearer token"),
    (infer_body([1, 96], [0.1] * 96), {"Content-Encoding": "gzip"}, 415, "compressed"),
    (infer_body([1, 96], [0.1] * 95 + [True]), {}, 400, "numbers only"),
    (infer_body([1, 96], [0.1] * 95 + ["0.1"]), {}, 400, "numbers only"),
    (infer_body([1, 96], [0.1] * 96, datatype="FP64"), {}, 400, "datatype must be FP32"),
    (json.dumps({"inputs": json.loads(infer_body([1, 96], [0.1] * 96))["inputs"],
                 "outputs": [{"name": ["score"]}]}), {}, 400, "no output"),
    (json.dumps({"inputs": json.loads(infer_body([1, 96], [0.1] * 96))["inputs"],
                 "outputs": [{"name": "score", "parameters": [1]}]}), {}, 400,
     "'parameters' must be an object"),
    (json.dumps({"inputs": json.loads(infer_body([1, 96], [0.1] * 96))["inputs"],
                 "outputs": [{"name": "score"}, {"name": "score"}]}), {}, 400, "asked twice"),
    (infer_body([1, 96], [0.1] * 95 + [10 ** 400]), {}, 400, "beyond the numbers a float"),
    (json.dumps({"inputs": [{"name": "\ud800", "shape": [1, 96], "datatype": "FP32",
                             "data": [0.1] * 96}]}), {}, 400, r"no input '\\ud800'"),
], ids=["malformed", "deeply nested", "nested in a field", "no inputs", "wrong width",
        "too few elements", "NaN",
        "text", "huge value", "huge declared shape", "a shape of 4,000 digits",
        "a width of 4,000 digits", "wrong datatype", "missing binary",
        "bad header length", "unknown input", "body too large", "wrong token", "gzip",
        "boolean", "number as text", "FP64", "output name not text", "output parameters",
        "output twice", "integer beyond floats", "lone surrogate"])
def test_a_bad_request_gets_a_4xx_with_one_line_and_the_server_stays_up(server, body, headers,
                                                                        status, message):
    code, _, answer = server.request("POST", "/v2/models/ecg/infer", body, headers)
    error = json.loads(answer)["error"]
    assert code == status and re.search(message, error), (code, error[:400])
    assert "\n" not in error and len(error) <= 300, error[:400]
    code, _, _ = server.request("POST", "/v2/models/ecg/infer", infer_body([1, 96], [0.1] * 96))
    assert code == 200


#: JSON as a client might send it: any nesting of numbers (NaN, infinities and integers
#: beyond any float among them, which json.dumps writes), text (lone surrogates too),
#: booleans and nulls.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(10 ** 300, 10 ** 400)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=30)


def as_orjson_reads(value):
    """``value`` with integers beyond 64 bits as floats where a float holds them, as
    orjson reads them (a difference in values documented in ``protocol._parse_json``)."""
    if isinstance(value, list):
        return [as_orjson_reads(item) for item in value]
    if isinstance(value, dict):
        return {key: as_orjson_reads(item) for key, item in value.items()}
    if type(value) is int and not -2 ** 63 <= value < 2 ** 64:
        try:
            return float(value)
        except OverflowError:  # Beyond a double: orjson refuses it, the fallback reads it.
            return value
    return value


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(JSON_VALUES, st.booleans())
def test_a_request_s_json_is_read_and_refused_as_the_standard_library_reads_it(value, ascii):
    """orjson parses requests; what it refuses the standard library reads again, so that
    what is accepted and what a client is told stay as they were. Written as ASCII, or as
    UTF-8 with lone surrogates passed through (which no parser may read)."""
    from anomaly.service.protocol import RequestError, _parse_json, _refuse_constant

    text = json.dumps(value, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        with pytest.raises(RequestError, match="not valid JSON") as refused:
            _parse_json(text)
        assert str(error).split(":")[0] in str(refused.value)
        return
    assert as_orjson_reads(_parse_json(text)) == as_orjson_reads(expected)


def test_routes_answer_json_errors_and_ask_for_the_token(server):
    code, _, answer = server.request("GET", "/v2/models/nope")
    assert code == 404 and "no model 'nope'" in json.loads(answer)["error"]
    code, _, answer = server.request("GET", "/v2/models/ecg/versions/1")
    assert code == 200 and json.loads(answer)["versions"] == ["1"]
    code, _, answer = server.request("POST", "/v2/models/ecg/versions/1/infer",
                                     infer_body([1, 96], [0.1] * 96))
    assert code == 200 and json.loads(answer)["model_version"] == "1"
    code, _, answer = server.request("GET", "/v2/models/ecg/versions/2")
    assert code == 404 and "(version '2')" in json.loads(answer)["error"]
    code, _, answer = server.request("GET", "/nowhere")
    assert code == 404 and json.loads(answer)["error"].startswith("Not Found")
    connection = server.connection()
    connection.request("GET", "/v2/models/ecg")  # No token.
    response = connection.getresponse()
    assert response.status == 401 and "bearer token" in json.loads(response.read())["error"]
    # RFC 6750's challenge, which says how to authenticate, and that a token sent was wrong.
    assert response.getheader("WWW-Authenticate") == 'Bearer realm="anomaly"'
    connection.request("GET", "/v2/models/ecg", headers={"Authorization": "Bearer wrong"})
    response = connection.getresponse()
    assert response.status == 401 and response.read()
    assert response.getheader("WWW-Authenticate") == \
        'Bearer realm="anomaly", error="invalid_token"'
    connection.request("GET", "/v2/models/ecg", headers={"Authorization": "Basic eDp5"})
    response = connection.getresponse()
    assert response.status == 401 and response.read()
    assert response.getheader("WWW-Authenticate") == 'Bearer realm="anomaly"'  # no error
    connection.request("GET", "/v2/health/ready")  # The health checks need none.
    assert connection.getresponse().status == 200


def test_a_request_beyond_the_places_waits_its_turn_and_one_beyond_the_queue_is_refused(
        server):
    """The one place is taken before the body is read: a client sending its body slowly
    holds it; the next request waits its turn (--max-queued 1), the one after is told to
    come back, and once the slow one times out (408) the waiting one is scored."""
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"POST /v2/models/ecg/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"inputs\"")
    # Half the timeout later: the waiting request's wait ends well after the slow one's.
    time.sleep(REQUEST_TIMEOUT / 2)
    body = infer_body([1, 96], [0.1] * 96)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(server.request, "POST", "/v2/models/ecg/infer", body)
        time.sleep(0.3)
        assert not waiting.done()
        now = metrics(server)
        assert now["anomaly_request_places_taken"] == 1 and now["anomaly_requests_waiting"] == 1
        code, headers, answer = server.request("POST", "/v2/models/ecg/infer", body)
        assert code == 503 and headers["retry-after"] == "1", answer
        assert "the queue for one is full (1)" in json.loads(answer)["error"]
        slow.settimeout(REQUEST_TIMEOUT + 10)
        answer = read_response(slow)
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408") and b"took over" in answer
        code, _, answer = waiting.result(timeout=REQUEST_TIMEOUT + 10)
        assert code == 200, answer


def test_a_client_leaving_the_queue_gives_up_its_turn_at_once(server):
    """A request waiting its turn whose client leaves, having sent its body whole or in
    part, is taken out of the queue then (a 499), not at its turn: the next request may
    queue. The one place is held meanwhile by a client sending its body slowly."""
    key = 'anomaly_requests_total{method="POST",route="/v2/models/{model}/infer",status="499"}'
    head = (b"POST /v2/models/ecg/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n")
    body = infer_body([1, 96], [0.1] * 96).encode()
    for sent in (body, body[:100]):  # the whole body, then a part of it
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(head % 1000 + b'{"inputs"')
        try:
            before = metrics(server).get(key, 0)
            queued = socket.create_connection(("127.0.0.1", server.port))
            queued.sendall(head % len(body) + sent)
            deadline = time.monotonic() + REQUEST_TIMEOUT / 4
            while metrics(server)["anomaly_requests_waiting"] != 1:
                assert time.monotonic() < deadline, "the request never queued"
                time.sleep(0.02)
            queued.close()
            deadline = time.monotonic() + REQUEST_TIMEOUT / 4
            while (now := metrics(server))["anomaly_requests_waiting"] != 0 or \
                    now.get(key, 0) != before + 1:
                assert time.monotonic() < deadline, "still queued after its client left"
                time.sleep(0.02)
            # Noticed while the place was still held: not at its turn.
            assert now["anomaly_request_places_taken"] == 1
            # A body its headers say is too large is refused at once, not after a wait.
            code, _, answer = server.request("POST", "/v2/models/ecg/infer", b"",
                                             {"Content-Length": str(10 ** 9)})
            assert code == 413 and metrics(server)["anomaly_request_places_taken"] == 1, answer
        finally:
            slow.close()
        # The slow client gone too, its place comes free.
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while metrics(server)["anomaly_request_places_taken"] != 0:
            assert time.monotonic() < deadline, "the slow client's place was not given back"
            time.sleep(0.02)
    code, _, _ = server.request("POST", "/v2/models/ecg/infer", body)
    assert code == 200


def test_metrics_count_requests_beats_and_anomalies(models, server):
    from anomaly.service.app import INLINE_BYTES

    _, values, labels = models
    scored = 'anomaly_beats_scored_total{model="ecg"}'
    anomalies = 'anomaly_anomalies_total{model="ecg"}'
    ok = 'anomaly_requests_total{method="POST",route="/v2/models/{model}/infer",status="200"}'
    # Ten beats are scored in a pool thread, one on the event loop: counted alike.
    for beats, where in ((values[:10], "pool"), (values[-1:], "event loop")):
        before = metrics(server)
        body = infer_body(list(beats.shape), beats.ravel().tolist())
        assert (len(body) <= INLINE_BYTES) == (where == "event loop")
        code, _, answer = server.request("POST", "/v2/models/ecg/infer", body)
        assert code == 200
        flags = json.loads(answer)["outputs"][1]["data"]
        after = metrics(server)
        assert after[scored] == before.get(scored, 0) + len(beats), where
        assert after[anomalies] == before.get(anomalies, 0) + sum(flags), where
        assert after[ok] == before.get(ok, 0) + 1
        if where == "pool":
            assert 0 < sum(flags) < 10  # Both kinds among the beats sent.
    assert any(name.startswith('anomaly_model_info{model="timed"') for name in after)
    assert 'anomaly_request_duration_seconds_count{route="/v2/models/{model}/infer"}' in after


def test_a_request_no_route_takes_is_counted_and_logged_as_every_request(server):
    """A scanner's 404s and a wrong method's 405 are seen in the metrics and the log,
    under one route label, whatever the path or method."""
    before = metrics(server)
    lines = server.settled()
    asked = [("GET", "/wp-login.php", 404), ("GET", "/v2/models/ecg/infer", 405),
             ("FOOBAR", "/v2", 405)]
    for method, path, status in asked:
        code, headers, answer = server.request(method, path)
        assert code == status and json.loads(answer)["error"], (method, path, code)
        if status == 405:  # RFC 9110: a 405 says which methods the route takes.
            assert set(headers["allow"].split(", ")) in ({"POST"}, {"GET", "HEAD"}), headers
    after = metrics(server)
    for method, status in (("GET", 404), ("GET", 405), ("other", 405)):
        key = f'anomaly_requests_total{{method="{method}",route="unmatched",status="{status}"}}'
        assert after[key] == before.get(key, 0) + 1, key
    said = server.said_since(lines, 3)
    assert [(event["method"], event["path"], event["route"], event["status"])
            for event in said if event["event"] == "request"
            and event["path"] != "/metrics"] == [
        (method, path, "unmatched", status) for method, path, status in asked]


def metrics(server: Server) -> dict[str, float]:
    code, headers, answer = server.request("GET", "/metrics")
    assert code == 200 and headers["content-type"].startswith("text/plain")
    lines = [line.rsplit(" ", 1) for line in answer.decode().splitlines()
             if line and not line.startswith("#")]
    return {name: float(value) for name, value in lines}


def test_sigterm_answers_the_request_in_flight_refuses_new_ones_and_exits_0(models):
    directory, _, _ = models
    server = Server("-m", str(directory / "shape"), "--request-timeout", "20",
                    cwd=directory)
    body = infer_body([1, 96], [0.1] * 96).encode()
    in_flight = socket.create_connection(("127.0.0.1", server.port))
    in_flight.sendall(b"POST /v2/models/shape/infer HTTP/1.1\r\nHost: x\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)
    in_flight.sendall(body[10:])
    in_flight.settimeout(30)
    answer = read_response(in_flight)
    in_flight.close()
    assert answer.startswith(b"HTTP/1.1 200") and b'"score"' in answer
    code = server.process.wait(timeout=60)
    server.reader.join(timeout=10)
    assert code == 0, server.lines
    events = [json.loads(line) for line in server.lines]
    assert events[-1]["event"] == "stopped"
    # The one request answered besides the checks that the service was ready.
    assert [event["path"] for event in events if event["event"] == "request"
            and event["path"] != "/v2/health/ready"] == ["/v2/models/shape/infer"]


def test_serve_refuses_a_bad_model_or_token_in_one_line_before_listening(models, tmp_path):
    directory, _, _ = models
    keras_only = tmp_path / "keras-only"
    keras_only.mkdir()
    for name in ("metadata.json", "model.keras"):
        (keras_only / name).write_bytes((directory / "shape" / name).read_bytes())
    empty, long = tmp_path / "empty-token", tmp_path / "long-token"
    accented, fifo = tmp_path / "accented-token", tmp_path / "fifo-token"
    empty.write_text("\n")
    long.write_text("t" * 5000)
    accented.write_text("caf\u00e9")  # UTF-8 in the file: a client's header is latin-1
    os.mkfifo(fifo)  # would block a plain open until something writes to it
    for token in (empty, long, accented, fifo):
        token.chmod(0o600)
    for args, code, message in (
            (["-m", str(directory / "shape"), "--token-file", str(long)], 2,
             "long-token: the token file holds over 4,096 bytes"),
            (["-m", str(keras_only)], 3, "no model.onnx; the service scores on the ONNX"),
            (["-m", str(tmp_path / "nowhere")], 3, "nowhere: no such model directory"),
            (["-m", str(directory / "shape"), "--token-file", str(empty)], 2,
             "must hold one token"),
            (["-m", str(directory / "shape"), "--token-file", str(accented)], 2,
             "a token is letters, digits and -._~+/ (then = padding)"),
            (["-m", str(directory / "shape"), "--token-file", str(fifo)], 2,
             "fifo-token: the token file is not a regular file"),
            (["-m", "a=" + str(directory / "shape"), "-m", "a=" + str(directory / "timed")], 2,
             "the name 'a' is given twice")):
        done = subprocess.run([sys.executable, "-m", "anomaly", "serve", "--port", "0", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == code, done.stderr
        # In the service's log format (JSON lines unless told), as its later errors are.
        said = json.loads(done.stderr)
        assert message in said["message"] and said["level"] == "error", said
        assert said["exit_code"] == code
    done = subprocess.run([sys.executable, "-m", "anomaly", "serve", "--port", "0",
                           "--log-format", "text", "-m", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stderr.startswith("Error: ")
    assert "nowhere: no such model directory" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    for option, value in (("--request-timeout", "1e308"), ("--max-body-mb", "1e308")):
        done = subprocess.run([sys.executable, "-m", "anomaly", "serve", "--port", "0",
                               option, value, "-m", str(directory / "shape")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and f"Invalid value for '{option}'" in done.stderr, \
            done.stderr


def test_a_token_file_others_may_read_is_warned_of(models, tmp_path):
    directory, _, _ = models
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "anomaly", "serve", "--port", "0",
                           "--token-file", str(token), "-m", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=60)
    warning, failure = done.stderr.splitlines()
    warned = json.loads(warning)
    assert warned["event"] == "token_readable" and f"chmod 600 {token}" in warned["message"]
    assert done.returncode == 3 and "no such model directory" in json.loads(failure)["message"]


def test_the_service_never_imports_tensorflow(models):
    directory, _, _ = models
    script = ("import sys\n"
              "from anomaly.service.server import load_models\n"
              "from anomaly.service.app import create_app\n"
              f"models = load_models({{'ecg': {str(directory / 'shape')!r}}})\n"
              "create_app(models)\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


# -- recordings and beats CSVs over HTTP ----------------------------------------------------

def uploads_left(directory: Path) -> list[Path]:
    """The server's upload directories still in its TMPDIR."""
    return list((directory / "tmp").glob("anomaly-upload-*"))


def upload(server: Server, name: str, query: str, directory: Path) -> tuple[int, list[dict]]:
    code, _, answer = server.request("POST", f"/v2/models/holter/score?{query}",
                                     (directory / name).read_bytes())
    if code != 200:
        return code, [json.loads(answer)]
    return code, [json.loads(line) for line in answer.decode().splitlines()]


def test_a_recording_uploaded_is_scored_as_anomaly_score_scores_the_file(models, server,
                                                                        capsys):
    """EDF, signal CSV and beats CSV: each beat's score and flag as 'anomaly score' gives
    them, streamed as JSON lines, then the summary with what was analysable."""
    import pandas as pd

    directory, _, _ = models
    code, out, err = run_cli(capsys, "score", directory / "rec.edf", "-m", directory / "holter",
                             "-o", "-", "-q")
    assert code == 0, err
    expected = pd.read_csv(io.StringIO(out))

    code, lines = upload(server, "rec.edf", "format=edf", directory)
    assert code == 200, lines
    *beats, summary = lines
    summary = summary["summary"]
    assert summary["beats_scored"] == len(beats) == len(expected) and summary["warnings"] == []
    assert summary["analysable"]["analysable_share"] == 1.0 and summary["input"] == "upload.edf"
    np.testing.assert_array_equal([b["sample"] for b in beats], expected["sample"])
    np.testing.assert_allclose([b["score"] for b in beats], expected["score"], rtol=1e-12)
    assert [b["is_anomaly"] for b in beats] == list(expected["is_anomaly"] == 1)
    assert beats[0]["rr_prev_s"] is None  # Unknown: null, not NaN.
    assert summary["anomalies"] == int(expected["is_anomaly"].sum())

    code, lines = upload(server, "rec_signal.csv", "format=signal-csv&fs=360&from=1:00",
                         directory)
    assert code == 200, lines
    late = expected[expected["time_s"] >= 60]
    np.testing.assert_allclose([b["score"] for b in lines[:-1]], late["score"],
                               rtol=ROUNDED_SAMPLES)
    assert [b["is_anomaly"] for b in lines[:-1]] == list(late["is_anomaly"] == 1)

    code, _, err = run_cli(capsys, "beats", directory / "rec.edf", "-o",
                           directory / "rec.beats.csv", "-q")
    assert code == 0, err
    code, lines = upload(server, "rec.beats.csv", "format=beats-csv", directory)
    assert code == 200, lines
    # The model centres beats on the patient's dominant beat; the CSV's were cut around
    # their R peaks (on this lead the same windows): said first, as 'anomaly score' says it.
    warning, *beats, summary = lines
    assert "centres each beat's window on the wave of its QRS complex" in warning["warning"]
    assert summary["summary"]["warnings"] == [warning["warning"]]
    np.testing.assert_allclose([b["score"] for b in beats], expected["score"],
                               rtol=ROUNDED_SAMPLES)
    assert [b["is_anomaly"] for b in beats] == list(expected["is_anomaly"] == 1)
    assert not uploads_left(directory)  # Each upload removed once answered.


def test_a_beats_file_nearly_all_flagged_says_so_in_its_answers_warnings(models, server,
                                                                         capsys):
    """A beats CSV whose samples are noise: nearly every row flagged, said in the
    summary's warnings, as 'anomaly score' says it in its log."""
    import pandas as pd

    directory, _, _ = models
    code, _, err = run_cli(capsys, "beats", directory / "rec.edf", "-o",
                           directory / "noise.beats.csv", "-q")
    assert code == 0, err
    beats = pd.read_csv(directory / "noise.beats.csv")
    samples = [name for name in beats.columns if name.startswith("x")]
    beats[samples] = np.random.default_rng(5).normal(0, 3, (len(beats), len(samples)))
    beats.to_csv(directory / "noise.beats.csv", index=False)
    code, lines = upload(server, "noise.beats.csv", "format=beats-csv", directory)
    assert code == 200, lines
    summary = lines[-1]["summary"]
    assert summary["anomalies"] > 0.9 * summary["beats_scored"] >= 27, summary
    readable = summary["beats_scored"] - summary["beats_unreadable"]
    assert any(f"{summary['anomalies']} of the {readable} readable rows scored are flagged, "
               "nearly all" in warning for warning in summary["warnings"]), summary


def test_a_recording_mostly_flagged_says_so_in_its_answers_warnings(models, server):
    """An upload of which the model flags more than half the beats (here the lead it was
    fitted on, inverted) says in its summary's warnings that the flags say little, as
    'anomaly score' does in its log."""
    import edfio

    directory, _, _ = models
    lead = edfio.read_edf(directory / "rec.edf").signals[0].data
    edfio.Edf([edfio.EdfSignal(-lead, FS, label="MLII", physical_range=(-5, 5))]).write(
        directory / "inverted.edf")
    code, lines = upload(server, "inverted.edf", "format=edf", directory)
    assert code == 200, lines
    summary = lines[-1]["summary"]
    assert summary["anomalies"] > summary["beats_scored"] / 2
    assert any("beats are flagged, more than half: the model does not know" in warning
               for warning in summary["warnings"]), summary


@pytest.mark.parametrize("query, body, status, message", [
    ("", b"x", 400, "format, how the upload is read, is required (one of edf, signal-csv, "
                    "beats-csv, wfdb"),
    ("format=pdf", b"x", 400, "format must be one of edf, signal-csv, beats-csv, wfdb, got "
                              "'pdf'"),
    ("format=edf", b"garbage", 400, "upload.edf: not an EDF file"),
    ("format=edf&speed=2", b"x", 400, "unknown query parameter 'speed'"),
    ("format=signal-csv&fs=abc", b"x", 400, "fs must be a positive number"),
    ("format=signal-csv&fs=360&from=soon", b"MLII\n1\n", 400, "from: "),
    ("format=beats-csv&from=1:00", b"x", 400, "apply to recordings"),
    ("format=beats-csv", b"1,2,3\n", 400, "expected 140 samples per beat"),
    ("format=edf", b"0" * 600_000, 413, "at most"),
    ("format=edf&lead=0&lead=1", b"x", 400, "query parameter 'lead' is given more than once"),
    ("format=edf&lead=" + "V" * 5000, "rec.edf", 400, f"no lead '{'V' * 64}...' (its"),
    # The model named as the client names it, not by where it lies on the server.
    ("format=signal-csv&fs=360", b"V5\n" + b"0.1\n" * 400, 400, "the model (holter) was fitted"),
], ids=["no format", "unknown format", "not EDF", "unknown parameter", "bad fs", "bad time",
        "span of a beats CSV", "wrong beat length", "too large", "lead twice", "long lead",
        "another lead"])
def test_a_bad_upload_gets_a_4xx_naming_it_and_leaves_nothing(models, server, query, body,
                                                             status, message):
    directory, _, _ = models
    if body == "rec.edf":  # A good recording, its options not.
        body = (directory / body).read_bytes()
    code, _, answer = server.request("POST", f"/v2/models/holter/score?{query}", body)
    assert code == status and message in json.loads(answer)["error"], answer
    if "the model (" in message:  # The report of the same upload names it alike.
        code, _, answer = server.request("POST", f"/v2/models/holter/report?{query}", body)
        assert code == status and message in json.loads(answer)["error"], answer
    assert not uploads_left(directory)


def test_a_client_leaving_midway_frees_its_place_and_its_upload(models, server):
    directory, _, _ = models
    body = (directory / "rec.edf").read_bytes()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /v2/models/holter/score?format=edf HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    deadline = time.monotonic() + 30
    while uploads_left(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not uploads_left(directory)
    # The one place (--max-concurrent 1) is free again.
    assert metrics(server)["anomaly_request_places_taken"] == 0
    code, _, _ = server.request("POST", "/v2/models/ecg/infer", infer_body([1, 96], [0.1] * 96))
    assert code == 200


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    """Without Content-Length (chunked), the limit holds as the body arrives: 413."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /v2/models/ecg/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * 65536
    sent = 0
    try:
        while sent <= (MAX_BODY_MB << 20) + len(chunk):
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # The server answered and closed: what follows reads its answer.
    sock.settimeout(30)
    answer = read_response(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413") and b"over 1048576 bytes" in answer


def test_ctrl_c_stops_the_service_as_sigterm_does(models):
    directory, _, _ = models
    server = Server("-m", str(directory / "shape"), cwd=directory)
    assert server.request("GET", "/v2/health/live")[0] == 200
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=60) == 0
    server.reader.join(timeout=10)
    events = [json.loads(line)["event"] for line in server.lines]
    assert events[-1] == "stopped"
    # A beat-set model alone: the live streams' detector is not imported before it is needed.
    assert "streams_ready" not in events


def test_a_service_of_a_recording_s_model_is_ready_once_its_streams_detector_is_imported(
        server):
    """Imported once the port answers, not in the first stream's first step (where it
    made the first beat late): every readiness check before the log line says so was
    refused, and none after."""
    deadline = time.monotonic() + 10  # The log's reader thread may be a line behind.
    while time.monotonic() < deadline and not any('"streams_ready"' in line
                                                   for line in server.lines):
        time.sleep(0.05)
    events = [json.loads(line) for line in server.lines]
    imported = [index for index, event in enumerate(events)
                if event["event"] == "streams_ready"]
    assert len(imported) == 1, events
    checks = [(index < imported[0], event["status"]) for index, event in enumerate(events)
              if event["event"] == "request" and event["path"] == "/v2/health/ready"]
    before = [status for early, status in checks if early]
    after = [status for early, status in checks if not early]
    assert before and set(before) == {400} and after and set(after) == {200}


def test_a_broken_detector_install_is_logged_and_leaves_inference_ready(models, tmp_path):
    directory, _, _ = models
    broken = tmp_path / "site" / "neurokit2"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("a broken install")\n')
    env = {**os.environ, "PYTHONPATH": str(broken.parent)}
    server = Server("-m", str(directory / "holter"), cwd=directory, env=env)
    code, _, answer = server.request("GET", "/v2/models/holter")
    assert code == 200
    code, _ = server.stop()
    events = [json.loads(line) for line in server.lines]
    failed = [event for event in events if event["event"] == "streams_not_ready"]
    assert code == 0 and len(failed) == 1 and "a broken install" in failed[0]["message"]
    assert "streams_ready" not in [event["event"] for event in events]


def test_sigterm_while_the_detector_is_imported_exits_0_after_it(models):
    directory, _, _ = models
    server = Server("-m", str(directory / "holter"), cwd=directory, wait_ready=False)
    # Once the port answers, the import has begun (a SIGTERM before would stop the service
    # before it began, as the command line stops).
    deadline = time.monotonic() + 60
    while server.request("GET", "/v2/health/live")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.request("GET", "/v2/health/ready")[0] == 400  # Still importing.
    code, _ = server.stop()
    events = [json.loads(line)["event"] for line in server.lines]
    assert code == 0 and events[-2:] == ["streams_ready", "stopped"], events


def rss_mb(server: Server) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def test_memory_returns_after_requests_that_fail(server):
    """A malformed request's parsed JSON is not kept alive by its error (it was, in a
    reference cycle through the error's traceback: 100 MB a 4 MB request)."""
    body = b'{"x": [' + b"{}," * 300_000 + b'{}], "inputs": []}'  # 0.9 MB, 300,000 objects.
    for _ in range(3):
        assert server.request("POST", "/v2/models/ecg/infer", body)[0] == 400
    before = rss_mb(server)
    for _ in range(20):
        assert server.request("POST", "/v2/models/ecg/infer", body)[0] == 400
    assert rss_mb(server) - before < 60, (before, rss_mb(server))


def test_a_connection_sending_no_headers_is_closed_and_a_client_leaving_is_not_a_5xx(server):
    idle = socket.create_connection(("127.0.0.1", server.port))
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(b"GET /v2 HTTP/1.1\r\nX: ")
    for sock in (idle, half):
        sock.settimeout(REQUEST_TIMEOUT + 10)
        assert sock.recv(100) == b""  # Closed by the server at the deadline.
        sock.close()
    before = metrics(server)
    gone = socket.create_connection(("127.0.0.1", server.port))
    gone.sendall(b"POST /v2/models/ecg/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
    time.sleep(0.3)
    gone.close()
    key = 'anomaly_requests_total{method="POST",route="/v2/models/{model}/infer",status="499"}'
    deadline = time.monotonic() + 10
    while metrics(server).get(key, 0) == before.get(key, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = metrics(server)
    assert after.get(key, 0) == before.get(key, 0) + 1
    errors = [name for name in after if 'status="500"' in name]
    assert not errors, errors


def test_what_is_not_http_is_refused_in_one_log_line_naming_the_client(server):
    """400, said in one JSON log line with the client (uvicorn's own line, bare text and
    without the client, is not said), the connection closed, the server up."""
    lines = server.settled()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # Until the server closes it.
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    said = server.said_since(lines)
    assert [(event["event"], event["status"], event["client"]) for event in said] == \
        [("bad_http", 400, "127.0.0.1")], said
    assert server.request("GET", "/v2/health/live")[0] == 200


def test_uvicorn_s_warnings_are_lines_of_the_service_s_log_with_their_traceback(capsys):
    """In the service's JSON lines, not bare text; those the service says better itself
    (with the client) not at all."""
    import logging

    from anomaly import logs

    library = logging.getLogger("uvicorn.error")
    saved = library.handlers[:], library.filters[:], library.level, library.propagate
    ours = logs.LOGGER.handlers[:], logs.LOGGER.level
    try:
        logs.configure("json")
        logs.adopt("uvicorn.error", unless=("Invalid HTTP request received.",))
        library.info("Started server process")  # Below a warning.
        library.warning("Exceeded concurrency limit.")
        library.warning("Invalid HTTP request received.")
        try:
            raise ValueError("an application's bug")
        except ValueError:
            library.error("Exception in ASGI application", exc_info=True)
    finally:
        library.handlers[:], library.filters[:], level, library.propagate = saved
        library.setLevel(level)
        logs.LOGGER.handlers[:] = ours[0]
        logs.LOGGER.setLevel(ours[1])
    said = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["message"], line["event"]) for line in said] == [
        ("warning", "Exceeded concurrency limit.", "uvicorn.error"),
        ("error", "Exception in ASGI application", "uvicorn.error")]
    assert "ValueError: an application's bug" in said[1]["exception"]


def test_a_text_log_line_is_one_line_whatever_a_request_path_holds(models):
    """The path is the client's: a line break in it (``/x%0AStopped: ...``) is written
    escaped in the text log, as the JSON log escapes it, not as a second, forged line."""
    directory, _, _ = models
    process = subprocess.Popen([sys.executable, "-m", "anomaly", "serve", "--port", "0",
                                "--log-format", "text", "-m", str(directory / "shape")],
                               stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", process.stderr.readline()).group(1))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/x%0AStopped:%20the%20requests%20in%20flight%0D%5C")
        assert connection.getresponse().status == 404
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert "GET /x\\nStopped: the requests in flight\\r\\\\ 404" in err, err
    assert [line for line in err.splitlines() if line.startswith("Stopped:")] == [
        "Stopped: the requests in flight were answered"]


@pytest.mark.parametrize("ending", [b"", b"\r\n"], ids=["one line without end", "lines"])
def test_headers_without_end_are_cut_off_in_bounded_memory(server, ending):
    """A client sending one header line for ever, or header lines for ever, is refused
    and closed once 16 KiB of an unfinished head are held (h11's bound), not at the header
    deadline with all it sent held (httptools, uvicorn's other parser, holds a line
    without end whole, and copies it at each read)."""
    before = rss_mb(server)
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-More: ")
        piece = (b"c" * 1000 + ending + (b"X-More: " if ending else b"")) * 64
        # Reset or a broken pipe once the server closed it (a timeout would not do).
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            while sent < 500 << 20:
                sock.sendall(piece)
                sent += len(piece)
    # What the sockets' buffers hold, at most, before the server's close is seen.
    assert sent < 32 << 20, sent
    assert rss_mb(server) - before < 20, (before, rss_mb(server))
    assert server.request("GET", "/v2/health/live")[0] == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["Content-Length", "chunked"])
def test_a_request_offering_http2_as_java_s_client_does_is_answered_in_http_1_1(server,
                                                                               chunked):
    """Java's HttpClient offers HTTP/2 on every new connection (``Upgrade: h2c``). The
    service ignores the offer, as HTTP lets it, and reads the body: with httptools,
    uvicorn's other parser, the body is lost (uvicorn issue 2722). The next request on
    the connection is answered too."""
    body = infer_body([1, 96], [0.1] * 96).encode()
    framed = (b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" if chunked else body)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/ecg/infer HTTP/1.1\r\nHost: x\r\nAuthorization: "
                     b"Bearer " + TOKEN.encode() + b"\r\nConnection: Upgrade, HTTP2-Settings"
                     b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                     b"Content-Type: application/json\r\n" + length + b"\r\n\r\n" + framed)
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["outputs"][0]["name"] == "score"
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
    assert not [line for line in server.lines if "upgrade" in line.lower()]


def test_the_web_page_shows_a_dropped_recordings_report_in_a_real_browser(models, server,
                                                                          tmp_path):
    """Debian's chromium, driven by playwright: the page at / sends an EDF recording with
    the token and shows its report (the summary, the recording's timeline); a file that is
    not a recording is said in one line. A screenshot is left for a person to look at."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    directory, _, _ = models
    bad = tmp_path / "notes.edf"
    bad.write_text("not a recording")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(f"http://127.0.0.1:{server.port}/")
        assert page.locator("#model option").all_text_contents() == ["ecg", "timed", "holter"]
        page.select_option("#model", "holter")
        page.fill("#token", TOKEN)
        page.set_input_files("#file", str(directory / "rec.edf"))
        page.click("#go")
        page.wait_for_function("document.getElementById('status').textContent"
                               ".includes('scored by')", timeout=60_000)
        report = page.frame_locator("#report")
        assert report.locator("h1").text_content() == "anomaly scoring report"
        assert report.locator("td", has_text="rec.edf").count() >= 1
        assert report.locator("img[alt='timeline of rec.edf']").count() == 1
        assert report.locator("img[alt^='ECG strip of rec.edf: ']").count() >= 1
        page.screenshot(path=str(tmp_path / "web_page.png"))

        # A WFDB record: its header and signal file chosen together, sent as one form.
        page.set_input_files("#file", [str(directory / "wrec.hea"), str(directory / "wrec.dat")])
        assert page.input_value("#format") == "wfdb"
        page.fill("#from", "0:30")
        page.click("#go")
        page.wait_for_function("document.getElementById('status').textContent"
                               ".startsWith('wrec.hea, scored by')", timeout=60_000)
        assert report.locator("img[alt^='ECG strip of wrec: ']").count() >= 1
        # In the summary table and in the recording's block.
        assert report.locator("td", has_text="1.5 of 1.5 min analysable").count() == 2

        page.set_input_files("#file", str(bad))
        page.click("#go")
        page.wait_for_function("document.getElementById('status').className === 'error'",
                               timeout=60_000)
        message = page.text_content("#status")
        assert message.startswith("Not scored: notes.edf: not an EDF file"), message
        browser.close()
    assert not uploads_left(directory)


def multipart(files: dict[str, bytes], type_first: bool = False) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body of ``files`` (name: content), as a browser sends it (with
    ``type_first``, each part's Content-Type before its Content-Disposition)."""
    boundary = "anomaly-test-boundary"

    def head(name: str) -> str:
        disposition = f"Content-Disposition: form-data; name=\"file\"; filename=\"{name}\""
        kind = "Content-Type: application/octet-stream"
        return "\r\n".join([kind, disposition] if type_first else [disposition, kind])

    body = b"".join(f"--{boundary}\r\n{head(name)}\r\n\r\n".encode() + content + b"\r\n"
                    for name, content in files.items())
    return body + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_a_wfdb_record_is_sent_as_its_files_and_scored_as_the_command_line_does(models, server,
                                                                              capsys):
    import pandas as pd

    directory, _, _ = models
    code, out, err = run_cli(capsys, "score", directory / "wrec", "-m", directory / "holter",
                             "-o", "-", "-q")
    assert code == 0, err
    expected = pd.read_csv(io.StringIO(out))
    record = {name: (directory / name).read_bytes() for name in ("wrec.hea", "wrec.dat")}
    body, headers = multipart(record, type_first=True)
    code, _, answer = server.request("POST", "/v2/models/holter/score?format=wfdb", body, headers)
    assert code == 200, answer
    *beats, summary = [json.loads(line) for line in answer.decode().splitlines()]
    assert summary["summary"]["input"] == "wrec" and len(beats) == len(expected)
    np.testing.assert_allclose([b["score"] for b in beats], expected["score"], rtol=1e-12)

    for files, status, message in (
            ({"wrec.dat": record["wrec.dat"]}, 400, "one .hea header file; got 0 among wrec.dat"),
            ({"wrec.hea": record["wrec.hea"], "other.dat": record["wrec.dat"]}, 400,
             "the header wrec.hea names the signal file 'wrec.dat', which was not sent"),
            ({f"{i}.dat": b"" for i in range(9)}, 400, "at most 8 files"),
            ({"wrec.hea": b"", "WREC.HEA": b""}, 400, "got 2 among"),
            ({"../../wrec.hea": record["wrec.hea"], "/tmp/wrec.dat": record["wrec.dat"]}, 200,
             '"input": "wrec"')):  # A path in a file name is only a name.
        body, headers = multipart(files)
        code, _, answer = server.request("POST", "/v2/models/holter/score?format=wfdb", body,
                                         headers)
        assert code == status and message in answer.decode(), answer[-300:]
    code, _, answer = server.request("POST", "/v2/models/holter/score?format=wfdb",
                                     record["wrec.hea"])
    assert code == 415 and "multipart/form-data" in json.loads(answer)["error"]
    long = "b" * 257  # Beyond RFC 2046's 70 (and the parser's own 256: it raised a 500).
    code, _, answer = server.request("POST", "/v2/models/holter/score?format=wfdb", b"x",
                                     {"Content-Type": f"multipart/form-data; boundary={long}"})
    assert code == 400 and "boundary is 257 bytes; at most 70" in json.loads(answer)["error"]
    assert not uploads_left(directory)


def test_a_client_that_stops_reading_is_taken_as_gone_and_frees_what_it_held():
    """The queue between the scoring thread and the response: full for longer than the
    stall limit, the scoring stops (ClientGone) rather than hold its place for as long as
    the client keeps its connection open; and reading ends when the thread has gone."""
    from anomaly.service.uploads import _END, QUEUE_BLOCKS, ClientGone, Lines

    lines = Lines(stall_seconds=0.3)
    for number in range(QUEUE_BLOCKS):
        lines.put(b"%d\n" % number)
    started = time.monotonic()
    with pytest.raises(ClientGone):
        lines.put(b"one more\n")
    assert 0.3 <= time.monotonic() - started < 5 and lines.gone.is_set()
    gone = threading.Thread(target=lambda: None)
    gone.start()
    gone.join()
    assert [lines.get(gone) for _ in range(QUEUE_BLOCKS)] == [b"%d\n" % n
                                                              for n in range(QUEUE_BLOCKS)]
    assert lines.get(gone) is _END



# Live ECG (WebSocket /v2/models/{model}/stream).

def stream_url(server: Server, query: str = "fs=360&dtype=float64", model: str = "holter") -> str:
    return f"ws://127.0.0.1:{server.port}/v2/models/{model}/stream?{query}"


def live_lead(directory: Path) -> np.ndarray:
    """The samples of rec.edf's lead as anomaly reads them (EDF stores them in 16 bits)."""
    from anomaly.recordings.signals import open_lead

    lead = open_lead(directory / "rec.edf")
    return lead.read(0, lead.n_samples)


def test_a_live_stream_gives_each_beat_within_its_window_and_finally_as_anomaly_score_does(
        models, server, capsys):
    """Samples sent in quarter seconds, each followed by a flush: every beat comes back
    provisionally in the flush after its window has arrived (0.45 s after its R peak),
    and finally with the very sample, score and flag 'anomaly score' gives it."""
    import pandas as pd
    from websockets.sync.client import connect

    from anomaly.recordings.live import FINAL_EVERY_SECONDS

    directory, _, _ = models
    code, out, err = run_cli(capsys, "score", directory / "rec.edf", "-m", directory / "holter",
                             "-o", "-", "-q")
    assert code == 0, err
    expected = pd.read_csv(io.StringIO(out))
    samples = live_lead(directory)
    chunk = FS // 4
    provisional, final, given_by = [], [], {}
    with connect(stream_url(server), additional_headers=auth()) as socket_:
        start = json.loads(socket_.recv())["start"]
        assert start["model"] == "holter" and start["warnings"] == []
        assert start["beat_window"] == {"before_s": 0.25, "after_s": 0.45, "samples": 140,
                                        "keep_amplitude": False, "aligned": True}
        assert start["final_after_s"] == pytest.approx(0.45 + 10 + FINAL_EVERY_SECONDS)
        for first in range(0, len(samples), chunk):
            socket_.send(samples[first:first + chunk].astype("<f8").tobytes())
            socket_.send(json.dumps({"flush": first}))
            while "flushed" not in (message := json.loads(socket_.recv())):
                (final if message["final"] else provisional).append(message)
                given_by[message["sample"], message["final"]] = first + chunk
            assert message == {"flushed": first, "samples": min(first + chunk, len(samples))}
        socket_.send(json.dumps({"end": True}))
        while "summary" not in (message := json.loads(socket_.recv())):
            final.append(message)
        summary = message["summary"]
    np.testing.assert_array_equal([beat["sample"] for beat in final], expected["sample"])
    assert [beat["beat"] for beat in final] == list(expected["beat"])
    np.testing.assert_allclose([beat["score"] for beat in final], expected["score"],
                               rtol=LIVE_AS_FILE)
    assert [beat["is_anomaly"] for beat in final] == list(expected["is_anomaly"] == 1)
    np.testing.assert_allclose([beat["rr_next_s"] or np.nan for beat in final],
                               expected["rr_next_s"], equal_nan=True)
    assert summary["beats_scored"] == len(expected) and summary["samples"] == len(samples)
    assert summary["anomalies"] == int(expected["is_anomaly"].sum())
    assert summary["analysable"]["analysable_share"] == 1.0
    # Provisionally: every beat, in the first flush after its window has arrived.
    assert [beat["sample"] for beat in provisional] == list(expected["sample"])
    window = int(0.45 * FS)
    late = [(beat["sample"], given_by[beat["sample"], False]) for beat in provisional
            if not beat["sample"] + window <= given_by[beat["sample"], False]
            < max(beat["sample"] + window, 2 * FS) + chunk]
    # (The detector looks at 2 s of lead at least: the first beats wait for them.)
    assert late == []
    assert all(beat["rr_next_s"] is None and beat["beat"] is None for beat in provisional)
    # Finally: once 10 s more had arrived (or the stream had ended), in the next final
    # step (one every FINAL_EVERY_SECONDS).
    during = [beat for beat in final if (beat["sample"], True) in given_by]
    assert len(during) >= len(final) - 15
    for beat, after in zip(during, during[1:]):
        # Once 10 s more had come and the next beat was final too.
        assert beat["sample"] + window + 10 * FS <= given_by[beat["sample"], True] \
            <= after["sample"] + window + (10 + FINAL_EVERY_SECONDS) * FS + chunk
    # Its previous RR interval is known already; its next one is not (a ratio of 1).
    np.testing.assert_allclose([beat["rr_prev_s"] or np.nan for beat in provisional],
                               expected["rr_prev_s"], equal_nan=True)


def test_a_live_stream_scored_in_float32_and_large_chunks_finds_the_same_beats(models, server):
    """The default sample type, and a minute per message: cut into steps, the same beats."""
    from websockets.sync.client import connect

    directory, _, _ = models
    samples = live_lead(directory)
    with connect(stream_url(server, "fs=360"), additional_headers=auth()) as socket_:
        socket_.recv()
        for first in range(0, len(samples), 60 * FS):
            socket_.send(samples[first:first + 60 * FS].astype("<f4").tobytes())
        socket_.send(json.dumps({"end": True}))
        messages = []
        while "summary" not in (message := json.loads(socket_.recv())):
            messages.append(message)
    final = [m for m in messages if m["final"]]
    assert message["summary"]["beats_scored"] == len(final) > 100
    peaks = np.array([m["sample"] for m in final])
    assert np.diff(peaks).min() >= 0.2 * FS  # None given twice.
    reference = beat_train(120)
    assert len(peaks) >= len(reference) - 2
    assert np.abs(peaks[:, None] - reference[None, :]).min(axis=1).max() <= 0.15 * FS


def test_a_live_stream_mostly_flagged_says_so_in_its_summary(models, server):
    """A stream of beats the model does not know (its lead inverted) ends in a summary
    whose warnings say that more than half are flagged, as an upload's does."""
    from websockets.sync.client import connect

    directory, _, _ = models
    samples = -live_lead(directory)
    with connect(stream_url(server, "fs=360"), additional_headers=auth()) as socket_:
        socket_.recv()
        socket_.send(samples.astype("<f4").tobytes())
        socket_.send(json.dumps({"end": True}))
        while "summary" not in (message := json.loads(socket_.recv())):
            pass
    summary = message["summary"]
    assert summary["anomalies"] > summary["beats_scored"] / 2 > 50
    assert any("beats are flagged, more than half: the model does not know" in warning
               for warning in summary["warnings"]), summary


def test_sigterm_ends_a_live_stream_with_what_it_was_sent_then_exits_0(models):
    """Stopping the service does not cut a stream off: the samples it was sent are
    scored, a flush it was sent answered, its last beats and summary sent, and its socket
    closed with 1001."""
    from websockets.sync.client import connect

    directory, _, _ = models
    server = Server("-m", str(directory / "holter"), cwd=directory)
    samples = live_lead(directory)[:40 * FS]
    messages = []
    with connect(stream_url(server), open_timeout=30) as socket_:
        socket_.recv()
        socket_.send(samples[:20 * FS].astype("<f8").tobytes())
        socket_.send(json.dumps({"flush": "half"}))
        socket_.send(samples[20 * FS:].astype("<f8").tobytes())
        server.process.send_signal(signal.SIGTERM)
        messages = [json.loads(text) for text in socket_]  # Until the service closes.
        assert socket_.protocol.close_code == 1001
    closed = time.monotonic()
    assert server.process.wait(timeout=60) == 0, server.lines
    # It stops once its streams have ended, not after waiting the 30 s they are allowed.
    assert time.monotonic() - closed < 10
    server.reader.join(timeout=10)
    summary = messages[-1]["summary"]
    assert [message for message in messages if "flushed" in message] == \
        [{"flushed": "half", "samples": 20 * FS}]
    final = [message for message in messages[:-1] if message.get("final")]
    assert summary["samples"] == len(samples) and summary["beats_scored"] == len(final)
    # Every beat of the 40 s, the last ones included (the lead's last 0.45 s is too short
    # for a window).
    assert len(final) >= len(beat_train(40)) - 2
    assert final[-1]["sample"] >= len(samples) - 2 * FS
    ended = [json.loads(line) for line in server.lines if '"stream"' in line]
    assert [line["ended"] for line in ended] == ["stopped"]


@pytest.mark.parametrize("query, headers, status, message", [
    ("fs=360", {}, 401, "bearer token"),
    ("fs=360", None, 404, "no model 'nope'"),
    ("", None, 400, "fs, the stream's sampling rate in Hz, is required"),
    ("fs=fast", None, 400, "sampling rate"),
    ("fs=360&dtype=int8", None, 400, "dtype must be one of float32, float64"),
    ("fs=360&gain=2", None, 400, "unknown query parameter 'gain'"),
    ("fs=360&fs=250", None, 400, "query parameter 'fs' is given more than once"),
    ("fs=20000", None, 400, "a beat window of 0.7 s at 20000 Hz is 14,000 samples"),
], ids=["no token", "no model", "no rate", "bad rate", "bad dtype", "unknown parameter",
        "rate twice", "window too long"])
def test_a_stream_that_cannot_be_taken_is_refused_before_the_socket_opens(
        server, query, headers, status, message):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = stream_url(server, query, model="nope" if status == 404 else "holter")
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=auth() if headers is None else headers)
    assert refused.value.response.status_code == status
    assert message in json.loads(refused.value.response.body)["error"]
    if status == 401:
        assert refused.value.response.headers["WWW-Authenticate"] == 'Bearer realm="anomaly"'


@pytest.mark.parametrize("send, code, message", [
    (b"\x00" * 7, 1007, "7 bytes is not a whole number of float64 samples"),
    (np.array([0.1, np.nan]).tobytes(), 1007, "sample 1 is nan, not an ECG's value"),
    (np.array([1e300]).tobytes(), 1007, "not an ECG's value"),
    ("hello", 1007, "a text message must be"),
    ('{"flush": [1]}', 1007, "a text message must be"),
    (None, 1008, f"nothing came for {REQUEST_TIMEOUT:g} s"),
], ids=["partial sample", "NaN", "huge", "not JSON", "bad flush", "idle"])
def test_a_stream_sending_what_is_not_a_lead_is_told_why_and_closed(server, send, code,
                                                                      message):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(stream_url(server), additional_headers=auth()) as socket_:
        socket_.recv()
        if send is not None:
            socket_.send(send)
        assert message in json.loads(socket_.recv(timeout=10))["error"]
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=10)
    assert closed.value.rcvd.code == code
    # The service is still there for the next one.
    assert server.request("GET", "/v2/health/ready")[0] == 200


def test_streams_beyond_max_streams_get_503_and_a_closed_one_frees_its_place(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    first = connect(stream_url(server), additional_headers=auth())
    second = connect(stream_url(server), additional_headers=auth())
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(stream_url(server), additional_headers=auth())
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "5"
        assert metrics(server)["anomaly_live_streams"] == 2
    finally:
        first.close()
    for _ in range(100):  # The service sees the close as the client's frame arrives.
        try:
            connect(stream_url(server), additional_headers=auth()).close()
            break
        except InvalidStatus:
            time.sleep(0.05)
    else:
        raise AssertionError("a closed stream's place was not given back")
    second.close()


def test_a_live_stream_keeps_a_bounded_stretch_of_the_lead_whatever_its_length():
    """Five minutes fed ten seconds at a time: the lead kept never grows past the
    detector's history, or the filter's settling, a beat's window, its wait for the
    final result and a step."""
    from anomaly.recordings.live import (FINAL_EVERY_SECONDS, FINAL_SECONDS,
                                         HISTORY_SECONDS, LiveSegmenter)
    from anomaly.recordings.filters import PAD_SECONDS

    lead = synthetic_ecg(beat_train(300), 300 * FS)
    live = LiveSegmenter(FS)
    kept, finals = 0, 0
    for first in range(0, len(lead), 10 * FS):
        for step in live.feed(lead[first:first + 10 * FS]):
            finals += len(step.final.beats) if step.final.beats is not None else 0
            kept = max(kept, len(live.buffer))
    settling = PAD_SECONDS + 0.25 + 0.45 + 0.2 + FINAL_SECONDS + FINAL_EVERY_SECONDS
    assert kept <= round(max(HISTORY_SECONDS, settling) * FS)
    assert len(live.buffer) >= round(HISTORY_SECONDS * FS)  # What the detector looks at.
    assert len(beat_train(300)) - 20 <= finals <= len(beat_train(300))


def test_a_live_stream_gives_the_beat_before_a_long_pause_its_next_interval(tmp_path):
    """A 14 s pause (an asystole's length; the lead still moves with its wander and
    noise): the beat before it waits for the beat after it, and gets the interval
    anomaly's reading of the recorded file gives it; the beats and their context agree."""
    from anomaly.recordings.live import LiveSegmenter
    from anomaly.recordings.segment import Segmenter, SegmentOptions
    from anomaly.recordings.signals import open_lead

    peaks = np.concatenate([beat_train(40), 54 * FS + beat_train(40)])
    write_wfdb(tmp_path, "pause", synthetic_ecg(peaks, 94 * FS)[:, None], lead_names=("MLII",))
    lead = open_lead(tmp_path / "pause")
    samples = lead.read(0, lead.n_samples)
    on_file = [chunk.beats for chunk in Segmenter(lead, SegmentOptions()).chunks()
               if chunk.beats is not None]
    live = LiveSegmenter(lead.fs)
    streamed = [step.final.beats for first in range(0, len(samples), FS // 10)
                for step in live.feed(samples[first:first + FS // 10])
                if step.final.beats is not None]
    if (last := live.end().final.beats) is not None:
        streamed.append(last)
    for column in ("sample", "rr_prev", "rr_next", "rr_local_mean", "unreadable"):
        np.testing.assert_array_equal(np.concatenate([getattr(b, column) for b in streamed]),
                                      np.concatenate([getattr(b, column) for b in on_file]))
    rr_next = np.concatenate([b.rr_next for b in streamed])
    assert np.nanmax(rr_next) > 13  # The pause, as the beat before it knows it.
