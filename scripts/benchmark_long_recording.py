"""Peak memory and time of 'anomaly beats', 'anomaly score' and the service on a 24-hour
recording.

Builds a two-lead WFDB record (format 212, 360 Hz) of 24 hours, about 31 million samples
per lead, by concatenating the 48 MIT-BIH records (each record's two signals in file
order, named MLII and V1 whatever they were: this measures memory and time), and a
30-minute record of the same make (the first record alone). Runs each command on both
through a real process and reports wall time and peak RSS (GNU time's ``-v``: the
``ru_maxrss`` of the process it starts, which execs the command).

``score`` runs twice: writing the scores only, and with ``--report`` and ``--html``
(which read the recording again for its rhythm and draw its pictures; the report and the
page are left in the work directory to be looked at); then ``summary --html`` makes the
same page from that run's report and scores, without scoring again.

Each record is also sent to ``anomaly serve`` over HTTP (``POST /v2/models/{model}/score``,
its files as multipart/form-data, as a browser sends them), its scores read as they stream
back; the server's peak RSS is its VmHWM.

Flat memory means the 24-hour record peaks close to the 30-minute one.

    python scripts/benchmark_long_recording.py [--data DIR] [--work DIR] [--json PATH]

The model scored with is fitted here on the first 5 minutes of the first record (a few
epochs: this measures memory and time, not detection).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anomaly.datasets import find_mitdb  # noqa: E402
from benchmark_service import peak_rss_mb, start, stop  # noqa: E402

ANOMALY = [sys.executable, "-m", "anomaly"]


def mitdb_dir(given: str | None) -> Path:
    found = Path(given) if given else find_mitdb()
    if found is not None and (found / "RECORDS").is_file():
        return found
    sys.exit("MIT-BIH not found: give --data DIR (a directory with RECORDS, NNN.hea, NNN.dat)")


def build_record(source: Path, names: list[str], target: Path) -> int:
    """Concatenate the records ``names`` of ``source`` into the record ``target``; its
    length in samples per lead."""
    import wfdb

    pieces = []
    for name in names:
        record = wfdb.rdrecord(str(source / name), physical=False)
        pieces.append(record.d_signal.astype(np.int16))
    digital = np.concatenate(pieces)
    del pieces
    wfdb.wrsamp(target.name, fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"],
                d_signal=digital, fmt=["212", "212"], adc_gain=[200.0, 200.0],
                baseline=[1024, 1024], write_dir=str(target.parent))
    return len(digital)


def measure(command: list[str]) -> dict:
    """Run ``command`` under GNU time: wall seconds, peak RSS (MB), exit code."""
    started = time.perf_counter()
    finished = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", finished.stderr)
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(int(match.group(1)) / 1024),
            "exit": finished.returncode}


def multipart_body(files: list[Path], boundary: str = "anomaly-benchmark"):
    """A multipart/form-data body of ``files`` read 1 MiB at a time, as a browser sends a
    WFDB record; and its length and content type."""
    heads = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"{path.name}\"\r\n\r\n").encode() for path in files]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(head) + path.stat().st_size + 2 for head, path in zip(heads, files))

    def chunks():
        for head, path in zip(heads, files):
            yield head
            with path.open("rb") as file:
                while chunk := file.read(1 << 20):
                    yield chunk
            yield b"\r\n"
        yield tail

    return chunks(), length + len(tail), f"multipart/form-data; boundary={boundary}"


def measure_service(record: Path, model: Path) -> dict:
    """The record sent to ``anomaly serve`` (``POST .../score?format=wfdb``) as a client
    sends it, its scores read as they stream back: beats, wall seconds from the first byte
    sent to the summary, the server's peak RSS (its VmHWM, model loaded included)."""
    import http.client

    served = start({"model": model}, "--max-upload-mb", "1024", "--request-timeout", "600")
    try:
        body, length, content_type = multipart_body([record.with_suffix(".hea"),
                                                     record.with_suffix(".dat")])
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=600)
        connection.request("POST", "/v2/models/model/score?format=wfdb", body,
                           {"Content-Length": str(length), "Content-Type": content_type})
        response = connection.getresponse()
        if response.status != 200:
            sys.exit(f"the service answered {response.status}: {response.read()[:500]!r}")
        beats = 0
        for line in response:
            if line.startswith(b'{"summary"'):
                break
            beats += 1
        seconds = time.perf_counter() - started
        peak = peak_rss_mb(served.process.pid)
    finally:
        stop(served)
    return {"beats": beats, "seconds": round(seconds, 1), "peak_rss_mb": round(peak),
            "exit": served.process.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="MIT-BIH directory (default: found like the tests do)")
    parser.add_argument("--work", help="where to build the records (default: a temporary dir)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    source = mitdb_dir(args.data)
    names = (source / "RECORDS").read_text().split()
    work = Path(args.work or tempfile.mkdtemp(prefix="anomaly-long-"))
    work.mkdir(parents=True, exist_ok=True)
    lengths = {"30min": build_record(source, names[:1], work / "half_hour"),
               "24h": build_record(source, names, work / "day")}
    subprocess.run([*ANOMALY, "fit", str(work / "half_hour"), "--to", "5:00", "-m",
                    str(work / "model"), "--epochs", "5", "-q"], check=True)
    rows = []
    for label, record in (("30min", "half_hour"), ("24h", "day")):
        hours = lengths[label] / 360 / 3600
        for command, extra in (("beats", ["-o", str(work / f"{record}.beats.csv")]),
                               ("score", ["-m", str(work / "model"), "-o",
                                          str(work / f"{record}.scores.csv")])):
            result = measure([*ANOMALY, command, str(work / record), *extra, "-q"])
            output = Path(extra[-1])
            beats = sum(1 for _ in output.open()) - 1
            rows.append({"record": label, "hours": round(hours, 2), "samples_per_lead":
                         lengths[label], "command": command, "beats": beats, **result})
            output.unlink()
        # The run's reports: the rhythm read again from the recording, the HTML's pictures.
        reports = ["--report", str(work / f"{record}.run.json"),
                   "--html", str(work / f"{record}.report.html")]
        result = measure([*ANOMALY, "score", str(work / record), "-m", str(work / "model"),
                          "-o", str(work / f"{record}.scores.csv"), *reports, "-q"])
        beats = json.loads((work / f"{record}.run.json").read_text())["rows_scored"]
        rows.append({"record": label, "hours": round(hours, 2), "samples_per_lead":
                     lengths[label], "command": "score --report --html", "beats": beats,
                     **result})
        # The same reports later, from the run report and the scores, without scoring.
        result = measure([*ANOMALY, "summary", str(work / f"{record}.run.json"), "--html",
                          str(work / f"{record}.summary.html"), "-q"])
        rows.append({"record": label, "hours": round(hours, 2), "samples_per_lead":
                     lengths[label], "command": "summary --html", "beats": beats, **result})
        (work / f"{record}.scores.csv").unlink()
        rows.append({"record": label, "hours": round(hours, 2),
                     "samples_per_lead": lengths[label], "command": "serve, POST .../score",
                     **measure_service(work / record, work / "model")})
    print("| recording | samples per lead | command | beats | wall (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['record']} ({row['hours']} h) | {row['samples_per_lead']:,} | "
              f"{row['command']} | {row['beats']:,} | {row['seconds']} | {row['peak_rss_mb']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
