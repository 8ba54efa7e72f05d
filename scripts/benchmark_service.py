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
- load: ``--clients`` (64) clients at once, each on its own kept-alive connection, sending
  one-beat requests for ``--load-seconds`` (60): requests answered, errors by status, p50
  and p99; from threads in this process (whose GIL bounds the rate), and from wrk where it
  is installed (``apt install wrk``: C, so the servers are what is measured);
- the server's peak resident memory (its processes' ``VmHWM``, summed);
- the web stack weighed: the same scoring function (``anomaly.service.app.score``) behind
  the standard library's ``ThreadingHTTPServer``, the least a Python service can stand on,
  timed the same way;
- with ``--mlserver``, the peer side by side in the same run: MLServer serving the same
  model directory through a custom runtime that scores with the same library call
  (``scripts/mlserver_runtime.py``), started, timed and loaded the same way (its REST
  endpoint takes JSON tensors only);
- with ``--recording-model DIR``, last: each server started with a model fitted on a
  recording (whose service imports the live streams' R-peak detector before it is ready),
  its start-up to ready and its memory, idle.

Usage::

    anomaly demo   # a model of 140-sample ECG5000 beats in anomaly-demo/model
    python scripts/benchmark_service.py -m anomaly-demo/model [--requests 200]
    # with the peer, in a virtual environment of its own (MLServer pins its own web stack;
    # uvloop 0.23, which pip chose, broke MLServer 1.7.1's inference workers; 0.21 works):
    python -m venv /tmp/mlserver
    /tmp/mlserver/bin/pip install mlserver==1.7.1 "uvloop<0.22" -e .
    python scripts/benchmark_service.py -m anomaly-demo/model --mlserver /tmp/mlserver/bin/mlserver
    # and a model fitted on a recording's first 5 minutes (with -m as well: after the rest):
    anomaly fit mitdb/100 --to 5:00 -m /tmp/holter-model
    python scripts/benchmark_service.py --mlserver /tmp/mlserver/bin/mlserver \
        --recording-model /tmp/holter-model
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZES = (1, 100, 1000, 10_000)


@dataclass
class Served:
    """A server under test: its name, process, port, seconds to ready and the tensor
    encodings its REST endpoint takes."""

    name: str
    process: subprocess.Popen
    port: int
    ready: float
    encodings: tuple[str, ...]
    #: Whether it is ``anomaly serve`` (not the peer).
    ours: bool = False


def wait_ready(process: subprocess.Popen, port: int, started: float) -> float:
    """Seconds from ``started`` to ``/v2/health/ready`` answering 200."""
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            if request(port, "GET", "/v2/health/ready")[0] == 200:
                return time.perf_counter() - started
        except ConnectionError:
            pass
        time.sleep(0.01)


def start(models: dict[str, Path], *options: str) -> Served:
    """``anomaly serve`` on a free port, serving ``models`` by name, with ``options``."""
    started = time.perf_counter()
    names = [arg for name, path in models.items() for arg in ("-m", f"{name}={path}")]
    process = subprocess.Popen([sys.executable, "-m", "anomaly", "serve", *names, "--port",
                                "0", "--log-format", "json", *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = json.loads(process.stderr.readline())["port"]
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    return Served("anomaly serve", process, port, wait_ready(process, port, started),
                  ("JSON", "binary"), ours=True)


def start_mlserver(executable: Path, model_dir: Path, directory: Path) -> Served:
    """MLServer serving ``model_dir`` through ``mlserver_runtime.AnomalyRuntime`` on free
    ports, with its default of one inference worker process."""
    version = subprocess.run([str(executable.with_name("python")), "-c",
                              "import mlserver; print(mlserver.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    port = free_ports(3)
    # The repository is written by the peer's own Python: mlserver_runtime imports it.
    subprocess.run([str(executable.with_name("python")), "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]); "
                    "from pathlib import Path; from mlserver_runtime import write_repository; "
                    "write_repository(Path(sys.argv[2]), Path(sys.argv[3]), 'ecg', "
                    "int(sys.argv[4]), 1)",
                    str(Path(__file__).parent), str(directory), str(model_dir), str(port)],
                   check=True)
    started = time.perf_counter()
    process = subprocess.Popen([str(executable), "start", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Served(f"MLServer {version}", process, port, wait_ready(process, port, started),
                  ("JSON",))


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive ports nothing listens on (MLServer takes three)."""
    import socket

    for first in range(20_000, 30_000, n):
        try:
            sockets = [socket.create_server(("127.0.0.1", first + k)) for k in range(n)]
        except OSError:
            continue
        for open_socket in sockets:
            open_socket.close()
        return first
    raise SystemExit("no free ports")


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory (VmHWM) of ``pid`` and every process under it, summed."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("VmHWM:")))
    return total / 1024


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
          n: int = 200) -> tuple[int, list[float]]:
    """Latencies (s) of ``n`` requests on one kept-alive connection, after 5 unmeasured;
    or, when the first is refused as too large (413), that status and no latencies."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies = []
    for number in range(n + 5):
        began = time.perf_counter()
        status, answer = request(port, method, path, body, headers, connection)
        if status == 413 and number == 0:
            connection.close()
            return status, []
        if status != 200:
            raise SystemExit(f"{method} {path}: {status} {answer[:200]!r}")
        if number >= 5:
            latencies.append(time.perf_counter() - began)
    connection.close()
    return status, latencies


def load(port: int, body: bytes, headers: dict, clients: int, seconds: float
         ) -> tuple[list[float], Counter]:
    """``clients`` threads, each on its own kept-alive connection, posting ``body`` to
    the model's infer for ``seconds``: the latencies of the requests answered 200, and
    every answer's status (or the exception's name where none came)."""
    begin = threading.Barrier(clients)

    def client(_) -> tuple[list[float], Counter]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        latencies, statuses = [], Counter()
        begin.wait()
        deadline = time.perf_counter() + seconds
        while (began := time.perf_counter()) < deadline:
            try:
                status, _ = request(port, "POST", "/v2/models/ecg/infer", body, headers,
                                    connection)
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            statuses[status] += 1
            if status == 200:
                latencies.append(time.perf_counter() - began)
        connection.close()
        return latencies, statuses

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    return [t for latencies, _ in results for t in latencies], \
        sum((statuses for _, statuses in results), Counter())


def stdlib_server(model_dir: Path):
    """The same model and scoring behind ``http.server.ThreadingHTTPServer`` on a free
    port (live and infer only, no limits): the server, its port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from anomaly.service.app import score
    from anomaly.service.protocol import HEADER_LENGTH
    from anomaly.service.settings import Settings
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
                                        Settings())
            self.answer(content, headers)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def inference_rows(served: Served, local, random_beats, requests: int) -> list[str]:
    """The table's rows for ``served``: live, then infer at each of :data:`SIZES` in each
    encoding it takes."""
    _, live = timed(served.port, "GET", "/v2/health/live", n=requests)
    rows = [f"| {served.name} | GET /v2/health/live | - | {percentile(live, 50) * 1e3:.2f} | "
            f"{percentile(live, 99) * 1e3:.2f} | - | - | - |"]
    for size in SIZES:
        beats = random_beats(size)
        began = time.perf_counter()
        repeats = max(2, 20_000 // (size * 10))
        for _ in range(repeats):
            local.score(beats.astype(np.float32).astype(np.float64))
        own = (time.perf_counter() - began) / repeats
        for encoding, (body, headers) in bodies(beats).items():
            if encoding not in served.encodings:
                continue
            status, latencies = timed(served.port, "POST", "/v2/models/ecg/infer", body,
                                      headers, n=requests if size <= 100
                                      else max(10, requests * 250 // size))
            what = f"| {served.name} | infer, {encoding} ({len(body) / 1024:,.0f} KiB) | {size:,} |"
            if status != 200:
                rows.append(f"{what} refused: {status} | | | {own * 1e3:.2f} | |")
                continue
            p50 = percentile(latencies, 50)
            rows.append(f"{what} {p50 * 1e3:.2f} | {percentile(latencies, 99) * 1e3:.2f} | "
                        f"{size / statistics.mean(latencies):,.0f} | {own * 1e3:.2f} | "
                        f"{(p50 - own) * 1e3:.2f} |")
    return rows


def wrk_load(port: int, body: bytes, headers: dict, clients: int, seconds: float
             ) -> tuple[int, int, float, float, float]:
    """The same load from wrk (a C load generator, one thread per core): requests sent,
    errors (answers not 2xx, and socket errors), 200s a second, p50 and p99 (s)."""
    import re
    import shutil

    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "body").write_bytes(body)
        lines = [f'local file = io.open("{Path(directory) / "body"}", "rb")',
                 "wrk.body = file:read('*a')", "file:close()", 'wrk.method = "POST"']
        lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
        (Path(directory) / "post.lua").write_text("\n".join(lines) + "\n")
        done = subprocess.run([shutil.which("wrk"), f"-t{os.cpu_count()}", f"-c{clients}",
                               f"-d{seconds:.0f}s", "--latency", "-s",
                               str(Path(directory) / "post.lua"),
                               f"http://127.0.0.1:{port}/v2/models/ecg/infer"],
                              capture_output=True, text=True, check=True)
    out = done.stdout
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

    def centile(q: int) -> float:
        value, unit = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()
        return float(value) * units[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                        r"timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + \
        (sum(int(n) for n in sockets.groups()) if sockets else 0)
    answered = requests - (int(bad.group(1)) if bad else 0)
    return requests, errors, answered / seconds, centile(50), centile(99)


def load_rows(served: Served, random_beats, clients: int, seconds: float) -> list[str]:
    """The load table's rows for ``served``: one beat a request, in each encoding, from
    this process's threads, and from wrk where it is installed."""
    import shutil

    rows = []
    for encoding, (body, headers) in bodies(random_beats(1)).items():
        if encoding not in served.encodings:
            continue
        latencies, statuses = load(served.port, body, headers, clients, seconds)
        errors = sum(count for status, count in statuses.items() if status != 200)
        kinds = ", ".join(f"{count:,} {status}" for status, count in sorted(
            statuses.items(), key=str) if status != 200)
        rows.append(f"| Python threads | {served.name} | {encoding} | "
                    f"{sum(statuses.values()):,} | {errors:,}{f' ({kinds})' if kinds else ''} | "
                    f"{len(latencies) / seconds:,.0f} | {percentile(latencies, 50) * 1e3:.1f} | "
                    f"{percentile(latencies, 99) * 1e3:.1f} |")
        if shutil.which("wrk"):
            requests, errors, rate, p50, p99 = wrk_load(served.port, body, headers, clients,
                                                        seconds)
            rows.append(f"| wrk | {served.name} | {encoding} | {requests:,} | {errors:,} | "
                        f"{rate:,.0f} | {p50 * 1e3:.1f} | {p99 * 1e3:.1f} |")
    return rows


def stop(served: Served) -> str:
    """SIGTERM, and how it ended: its exit code, or killed after 60 s without one."""
    served.process.terminate()
    try:
        return f"exit {served.process.wait(timeout=60)}"
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
        return "no exit in 60 s: killed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model-dir", type=Path,
                        help="the model timed (the demo's); without it, --recording-model alone")
    parser.add_argument("--requests", type=int, default=200, help="requests per row")
    parser.add_argument("--clients", type=int, default=64, help="clients at once in the load")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--mlserver", type=Path,
                        help="the peer: an mlserver executable whose Python has anomaly too")
    parser.add_argument("--recording-model", type=Path,
                        help="a model fitted on a recording (anomaly fit RECORD): each "
                             "server's start-up to ready and memory with it, idle")
    args = parser.parse_args(argv)
    if args.model_dir is None:
        if args.recording_model is None:
            parser.error("give -m MODEL_DIR, --recording-model DIR, or both")
        print("\n".join(recording_model_rows(args.recording_model, args.mlserver)))
        return 0
    from anomaly.model import AutoencoderDetector

    local = AutoencoderDetector.load(args.model_dir, runtime="onnx")
    # Beats of the training values' span (the model's own range: what it was fitted on).
    rng = np.random.default_rng(0)
    scaling = local.scaling_

    def random_beats(n: int) -> np.ndarray:
        return scaling.min + scaling.range * rng.uniform(size=(n, scaling.n_samples))

    lines = [f"Model {args.model_dir} ({local.scaling_.n_samples} samples per beat); "
             f"{os.cpu_count()} cores; one client on a kept-alive connection unless said.", ""]
    table = ["| server | request | beats | p50 ms | p99 ms | beats/s | in-process score ms | "
             "HTTP adds ms (p50) |", "|---|---|---|---|---|---|---|---|"]
    loaded = [f"{args.clients} clients at once for {args.load_seconds:.0f} s, each on its own "
              "kept-alive connection, one beat a request:", "",
              "| client | server | tensors | requests | errors | answered 200 a second | "
              "p50 ms | p99 ms |", "|---|---|---|---|---|---|---|---|"]
    summary = ["| server | start-up to ready s | peak RSS MB (each process's peak, summed) | "
               "SIGTERM |",
               "|---|---|---|---|"]
    work = tempfile.TemporaryDirectory(prefix="mlserver-")
    two = None
    for starting in starters(args.model_dir, args.mlserver, Path(work.name)):
        served = starting()
        try:
            table += inference_rows(served, local, random_beats, args.requests)
            print("\n".join(table[-len(SIZES) * 2 - 1:]), file=sys.stderr, flush=True)
            if served.ours:
                body, headers = bodies(random_beats(100))["binary"]
                began = time.perf_counter()
                with ThreadPoolExecutor(2) as pool:
                    list(pool.map(lambda _: timed(served.port, "POST", "/v2/models/ecg/infer",
                                                  body, headers, n=args.requests // 2),
                                  range(2)))
                two = 2 * (args.requests // 2 + 5) * 100 / (time.perf_counter() - began)
            loaded += load_rows(served, random_beats, args.clients, args.load_seconds)
            print("\n".join(loaded[-4:]), file=sys.stderr, flush=True)  # As it goes.
            rss = peak_rss_mb(served.process.pid)
        finally:
            code = stop(served)
        summary.append(f"| {served.name} | {served.ready:.2f} | {rss:,.0f} | {code} |")
    work.cleanup()
    lines += table + ["", f"Two clients at once, 100 beats per request in binary: "
                          f"{two:,.0f} beats/s.", ""] + loaded + [""] + summary
    print("\n".join(lines), flush=True)
    lines = ["", "The same scoring behind the standard library's ThreadingHTTPServer "
                  "(in this process, so its client shares the GIL with it):", "",
              "| request | beats | p50 ms | p99 ms |", "|---|---|---|---|"]
    stdlib, stdlib_port = stdlib_server(args.model_dir)
    _, live = timed(stdlib_port, "GET", "/v2/health/live", n=args.requests)
    lines.append(f"| GET /v2/health/live | - | {percentile(live, 50) * 1e3:.2f} | "
                 f"{percentile(live, 99) * 1e3:.2f} |")
    for size in (1, 100):
        body, headers = bodies(random_beats(size))["binary"]
        _, latencies = timed(stdlib_port, "POST", "/v2/models/ecg/infer", body, headers,
                             n=args.requests)
        lines.append(f"| infer, binary | {size} | {percentile(latencies, 50) * 1e3:.2f} | "
                     f"{percentile(latencies, 99) * 1e3:.2f} |")
    stdlib.shutdown()
    print("\n".join(lines))
    if args.recording_model:
        print("\n".join(recording_model_rows(args.recording_model, args.mlserver)))
    return 0


def starters(model_dir: Path, mlserver: Path | None, work: Path) -> list:
    """What starts each server serving ``model_dir``, in turn: ``anomaly serve``, then
    MLServer (its model repository written under ``work``) when its executable is given."""
    servers = [lambda: start({"ecg": model_dir})]
    if mlserver:
        servers.append(lambda: start_mlserver(mlserver, model_dir, work / "repo"))
    return servers


def recording_model_rows(model_dir: Path, mlserver: Path | None) -> list[str]:
    """Each server started with a model fitted on a recording, as a Holter user serves
    one, and stopped once ready: ``anomaly serve`` is ready once its streams' R-peak
    detector is imported; MLServer's runtime scores beats sent to it, and has no
    streams."""
    lines = ["", f"A model fitted on a recording ({model_dir}), each server started, ready, "
             "then stopped, nothing sent:", "",
             "| server | start-up to ready s | peak RSS MB (each process's peak, summed) | "
             "SIGTERM |", "|---|---|---|---|"]
    work = tempfile.TemporaryDirectory(prefix="mlserver-")
    for starting in starters(model_dir, mlserver, Path(work.name)):
        served = starting()
        try:
            rss = peak_rss_mb(served.process.pid)
        finally:
            code = stop(served)
        lines.append(f"| {served.name} | {served.ready:.2f} | {rss:,.0f} | {code} |")
    work.cleanup()
    return lines


if __name__ == "__main__":
    sys.exit(main())
