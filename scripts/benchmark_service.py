#!/usr/bin/env python
"""The service's cost: ``anomaly serve`` started as a user starts it, then timed from a
client on the same machine.

- start-up: from the process's start to ``/v2/health/ready`` answering 200;
- the web stack's own cost: ``GET /v2/health/live`` round trips, which do no work;
- inference: ``POST /v2/models/{m}/infer`` with 1, 100 and 1,000 beats, the tensors in
  JSON and in the binary tensor extension, request bodies built beforehand (what a client
  spends encoding is not the server's); beside each, the same beats scored in this process
  by ``AutoencoderDetector.score`` on the ONNX runtime (the model's own cost), so that what
  the HTTP layer adds is the difference;
- throughput with two clients at once (the service's default pool is 4 threads);
- the web stack weighed: the same scoring function (``anomaly.service.app.score``) behind
  the standard library's ``ThreadingHTTPServer``, the least a Python service can stand on,
  timed the same way.

Usage::

    anomaly demo   # a model of 140-sample ECG5000 beats in anomaly-demo/model
    python scripts/benchmark_service.py -m anomaly-demo/model [--requests 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SIZES = (1, 100, 1000)


def start(model_dir: Path) -> tuple[subprocess.Popen, int, float]:
    """``anomaly serve`` on a free port: the process, its port, and seconds to ready."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "anomaly", "serve", "-m",
                                f"ecg={model_dir}", "--port", "0", "--log-format", "json"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = json.loads(process.stderr.readline())["port"]
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    while True:
        try:
            if request(port, "GET", "/v2/health/ready")[0] == 200:
                return process, port, time.perf_counter() - started
        except ConnectionError:
            time.sleep(0.01)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, connection=None) -> tuple[int, bytes]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body, headers or {})
    response = connection.getresponse()
    result = response.status, response.read()
    if own:
        connection.close()
    return result


def bodies(beats: np.ndarray) -> dict[str, tuple[bytes, dict]]:
    """The same request in JSON and in the binary tensor extension."""
    shape = list(beats.shape)
    as_json = json.dumps({"inputs": [{"name": "beats", "shape": shape, "datatype": "FP32",
                                      "data": beats.astype(np.float32).ravel().tolist()}]})
    raw = beats.astype("<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "beats", "shape": shape, "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    return {"JSON": (as_json.encode(), {"Content-Type": "application/json"}),
            "binary": (head + raw, {"Inference-Header-Content-Length": str(len(head))})}


def timed(port: int, method: str, path: str, body=None, headers=None,
          n: int = 200) -> list[float]:
    """Latencies (s) of ``n`` requests on one kept-alive connection, after 5 unmeasured."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    for number in range(n + 5):
        began = time.perf_counter()
        status, answer = request(port, method, path, body, headers, connection)
        if status != 200:
            raise SystemExit(f"{method} {path}: {status} {answer[:200]!r}")
        if number >= 5:
            latencies.append(time.perf_counter() - began)
    connection.close()
    return latencies


def stdlib_server(model_dir: Path):
    """The same model and scoring behind ``http.server.ThreadingHTTPServer`` on a free
    port (live and infer only, no limits): the server, its port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from anomaly.service.app import score
    from anomaly.service.protocol import HEADER_LENGTH
    from anomaly.service.settings import Limits
    from anomaly.service.server import load_models

    model = load_models({"ecg": model_dir})["ecg"]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # Its best: without, 44 ms a response.

        def answer(self, content: bytes, headers: dict) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:
            self.answer(b'{"live":true}', {"Content-Type": "application/json"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            content, headers, _ = score(model, body, self.headers.get(HEADER_LENGTH),
                                           Limits())
            self.answer(content, headers)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model-dir", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200, help="requests per row")
    args = parser.parse_args(argv)
    from anomaly.model import AutoencoderDetector

    local = AutoencoderDetector.load(args.model_dir, runtime="onnx")
    # Beats of the training values' span (the model's own range: what it was fitted on).
    rng = np.random.default_rng(0)
    scaling = local.scaling_

    def random_beats(n: int) -> np.ndarray:
        return scaling.min + scaling.range * rng.uniform(size=(n, scaling.n_samples))

    process, port, ready = start(args.model_dir)
    try:
        lines = [f"Model {args.model_dir} ({local.scaling_.n_samples} samples per beat); "
                 f"{os.cpu_count()} cores; {args.requests} requests per row, one client on a "
                 "kept-alive connection unless said.", "",
                 f"Start-up to ready: {ready:.2f} s.", ""]
        live = timed(port, "GET", "/v2/health/live", n=args.requests)
        lines += ["| request | beats | p50 ms | p99 ms | beats/s | in-process score ms | "
                  "HTTP adds ms (p50) |", "|---|---|---|---|---|---|---|",
                  f"| GET /v2/health/live | - | {percentile(live, 50) * 1e3:.2f} | "
                  f"{percentile(live, 99) * 1e3:.2f} | - | - | - |"]
        for size in SIZES:
            beats = random_beats(size)
            began = time.perf_counter()
            for _ in range(20):
                local.score(beats.astype(np.float32).astype(np.float64))
            own = (time.perf_counter() - began) / 20
            for encoding, (body, headers) in bodies(beats).items():
                latencies = timed(port, "POST", "/v2/models/ecg/infer", body, headers,
                                  n=args.requests if size < 1000 else args.requests // 4)
                p50 = percentile(latencies, 50)
                lines.append(f"| infer, {encoding} ({len(body) / 1024:.0f} KiB) | {size} | "
                             f"{p50 * 1e3:.2f} | {percentile(latencies, 99) * 1e3:.2f} | "
                             f"{size / statistics.mean(latencies):,.0f} | {own * 1e3:.2f} | "
                             f"{(p50 - own) * 1e3:.2f} |")
        beats = random_beats(100)
        body, headers = bodies(beats)["binary"]
        began = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: timed(port, "POST", "/v2/models/ecg/infer", body, headers,
                                          n=args.requests // 2), range(2)))
        seconds = time.perf_counter() - began
        lines += ["", f"Two clients at once, 100 beats per request in binary: "
                      f"{2 * (args.requests // 2 + 5) * 100 / seconds:,.0f} beats/s."]
        lines += ["", "The same scoring behind the standard library's ThreadingHTTPServer "
                      "(in this process, so its client shares the GIL with it):", "",
                  "| request | beats | p50 ms | p99 ms |", "|---|---|---|---|"]
        stdlib, stdlib_port = stdlib_server(args.model_dir)
        live = timed(stdlib_port, "GET", "/v2/health/live", n=args.requests)
        lines.append(f"| GET /v2/health/live | - | {percentile(live, 50) * 1e3:.2f} | "
                     f"{percentile(live, 99) * 1e3:.2f} |")
        for size in (1, 100):
            body, headers = bodies(random_beats(size))["binary"]
            latencies = timed(stdlib_port, "POST", "/v2/models/ecg/infer", body, headers,
                              n=args.requests)
            lines.append(f"| infer, binary | {size} | {percentile(latencies, 50) * 1e3:.2f} | "
                         f"{percentile(latencies, 99) * 1e3:.2f} |")
        stdlib.shutdown()
    finally:
        process.terminate()
        code = process.wait(timeout=60)
    lines += ["", f"SIGTERM: exit {code}."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
