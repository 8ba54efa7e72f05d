#!/usr/bin/env python
"""Live ECG streams (``anomaly serve``'s WebSocket, ``/v2/models/{m}/stream``): how soon
each beat comes back, and how well the online beats agree with ``anomaly score`` on the
same record.

For each MIT-BIH record: a patient model fitted on its first 5 minutes, as a Holter user
fits one (``anomaly fit RECORD --to 5:00``), all served by one ``anomaly serve``; then

- **agreement**: the whole record (its first lead, as ``anomaly`` reads it, in float64)
  streamed in 0.1 s messages as fast as the service takes them (a flush every 10 s of
  lead, at most two unanswered), against ``anomaly score
  RECORD -m MODEL`` on the file: beats matched within 150 ms both ways, the share at the
  very same R-peak sample, the largest score difference where the samples are the same,
  flags that differ; the provisional beats against the final ones;
- **latency**: the first minutes of some records replayed in 0.1 s messages at real time
  and faster (a message sent every 0.1 s / speed), at the record's rate or resampled to
  others (``--latency-rates``, as a device of that rate would send it): from the moment the
  message holding a beat's R peak is sent to the moment its provisional (and its final)
  result arrives, in wall-clock seconds; the service's CPU time over the replay's wall time.

Usage::

    python scripts/benchmark_live.py [--data DIR] [--records 100 105 ...]
        [--latency-records 100 208] [--speeds 1 10] [--latency-minutes 3]
        [--latency-rates 360 1000]

``--records`` with no record measures the latency alone.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.datasets import find_mitdb
from benchmark_service import peak_rss_mb, start, stop

ANOMALY = [sys.executable, "-m", "anomaly"]
RECORDS = ("100", "105", "119", "201", "203", "208", "210", "232")
CHUNK_SECONDS = 0.1
#: Unpaced, a flush every this many messages (10 s of lead), at most FLUSHES_AHEAD
#: unanswered.
FLUSH_EVERY = 100
FLUSHES_AHEAD = 2
MATCH_SECONDS = 0.15


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay(port: int, model: str, samples: np.ndarray, fs: float, speed: float | None):
    """Stream ``samples`` in :data:`CHUNK_SECONDS` messages, one every CHUNK_SECONDS /
    ``speed`` (None: as fast as the service takes them). Returns the messages with the
    time each arrived, and the time each chunk was sent."""
    from websockets.sync.client import connect

    chunk = int(round(CHUNK_SECONDS * fs))
    n_chunks = -(-len(samples) // chunk)
    sent = np.zeros(n_chunks)
    received: list[tuple[float, dict]] = []
    flushed = threading.Semaphore(FLUSHES_AHEAD)
    with connect(f"ws://127.0.0.1:{port}/v2/models/{model}/stream?fs={fs:g}&dtype=float64",
                 max_size=None) as socket_:
        json.loads(socket_.recv())

        def receive() -> None:
            while True:
                message = json.loads(socket_.recv())
                received.append((time.perf_counter(), message))
                if "flushed" in message:
                    flushed.release()
                if "summary" in message or "error" in message:
                    return

        reader = threading.Thread(target=receive)
        reader.start()
        started = time.perf_counter()
        for i in range(n_chunks):
            if speed is not None:
                # A device sends a chunk once its last sample is recorded.
                delay = started + (i + 1) * CHUNK_SECONDS / speed - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            elif i % FLUSH_EVERY == 0 and i:
                # As fast as the service takes them: a flush every FLUSH_EVERY messages,
                # at most FLUSHES_AHEAD unanswered. Sent blindly, the samples would fill
                # the socket's buffers, and the keepalive pings behind them would time out.
                flushed.acquire()
                socket_.send(json.dumps({"flush": i}))
            sent[i] = time.perf_counter()
            socket_.send(samples[i * chunk:(i + 1) * chunk].astype("<f8").tobytes())
        socket_.send(json.dumps({"end": True}))
        reader.join()
    if not received or "summary" not in received[-1][1]:
        raise SystemExit(f"the stream of {model} ended without its summary: "
                         f"{received[-1][1] if received else 'no message'}")
    return received, sent, chunk


def matched(a: np.ndarray, b: np.ndarray, tolerance: int) -> np.ndarray:
    """For each of ``a``, whether one of ``b`` (sorted) lies within ``tolerance``."""
    if len(b) == 0:
        return np.zeros(len(a), dtype=bool)
    at = np.clip(np.searchsorted(b, a), 1, len(b) - 1) if len(b) > 1 else np.zeros(len(a), int)
    near = np.minimum(np.abs(a - b[at - 1 if len(b) > 1 else at]), np.abs(a - b[at]))
    return near <= tolerance


def agreement(record: str, expected: pd.DataFrame, messages: list, fs: float) -> dict:
    final = pd.DataFrame([m for _, m in messages if m.get("final") is True])
    provisional = pd.DataFrame([m for _, m in messages if m.get("final") is False])
    tolerance = int(round(MATCH_SECONDS * fs))
    offline = expected["sample"].to_numpy()
    online = final["sample"].to_numpy()
    same = expected.merge(final, on="sample", suffixes=("_offline", "_online"))
    scores = np.abs(same["score_offline"] - same["score_online"])
    flags = (same["is_anomaly_offline"] == 1) != same["is_anomaly_online"]
    # A beat's score depends on its neighbours too (its RR context, and whether it is
    # readable): where the detector found another beat beside it, or judged readability
    # otherwise, the score differs with them. "Same context": those agree too.
    context = np.ones(len(same), dtype=bool)
    for column in ("rr_prev_s", "rr_next_s", "rr_local_mean_s"):
        offline_, online_ = same[f"{column}_offline"], same[f"{column}_online"]
        context &= (np.abs(offline_ - online_) < 1e-9) | (offline_.isna() & online_.isna())
    readable = [same[f"unreadable_{side}"].astype(object).fillna("") for side in
                ("offline", "online")]
    context &= readable[0] == readable[1]
    given = provisional["sample"].to_numpy()
    near = pd.merge_asof(provisional.sort_values("sample"), final.sort_values("sample"),
                         on="sample", direction="nearest", tolerance=tolerance,
                         suffixes=("_provisional", "_final"))
    near = near.dropna(subset=["score_final"])
    return {"record": record, "offline beats": len(offline), "final beats": len(online),
            "Se": matched(offline, np.sort(online), tolerance).mean(),
            "+P": matched(online, np.sort(offline), tolerance).mean(),
            "same sample": len(same) / len(offline),
            "scores within 1e-6": float((scores <= 1e-6).mean()),
            "same context": float(context.mean()),
            "max diff, same context": float(scores[context].max()),
            "flags differ": int(flags.sum()), "flags differ, same context": int(flags[context].sum()),
            "provisional +P": matched(given, np.sort(online), tolerance).mean(),
            "provisional Se": matched(online, np.sort(given), tolerance).mean(),
            "provisional flags agree": float((near["is_anomaly_provisional"]
                                              == near["is_anomaly_final"]).mean()),
            "provisional median relative score diff": float(np.median(
                np.abs(near["score_provisional"] - near["score_final"])
                / near["score_final"].abs()))}


def latencies(messages: list, sent: np.ndarray, chunk: int, final: bool) -> np.ndarray:
    return np.array([at - sent[m["sample"] // chunk] for at, m in messages
                     if m.get("final") is final])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="MIT-BIH directory (default: found like the tests do)")
    parser.add_argument("--records", nargs="*", default=list(RECORDS))
    parser.add_argument("--latency-records", nargs="+", default=["100", "208"])
    parser.add_argument("--speeds", nargs="+", type=float, default=[1.0, 10.0])
    parser.add_argument("--latency-minutes", type=float, default=3.0)
    parser.add_argument("--latency-rates", nargs="+", type=float,
                        help="sampling rates to replay at, resampled (default: the record's)")
    parser.add_argument("--epochs", type=int, help="the fit's epochs (default: fit's own)")
    parser.add_argument("--work", help="where models and scores go (default: a temporary dir)")
    args = parser.parse_args()
    source = Path(args.data) if args.data else find_mitdb()
    if source is None or not (source / "RECORDS").is_file():
        sys.exit("MIT-BIH not found: give --data DIR (a directory with RECORDS, NNN.hea, "
                 "NNN.dat)")
    from anomaly.recordings.filters import resample, resampling_ratio
    from anomaly.recordings.signals import open_lead

    work = Path(args.work or tempfile.mkdtemp(prefix="anomaly-live-"))
    work.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(args.records + args.latency_records))
    models = {}
    for name in names:
        model = work / f"model_{name}"
        if not (model / "model.onnx").is_file():
            epochs = ["--epochs", str(args.epochs)] if args.epochs else []
            subprocess.run([*ANOMALY, "fit", str(source / name), "--to", "5:00", "-m",
                            str(model), *epochs, "-q"], check=True)
        models[f"r{name}"] = model
    served = start(models, "--max-streams", "4", "--request-timeout", "120")
    process, port = served.process, served.port
    ready_rss = peak_rss_mb(process.pid)  # Ready: the streams' detector imported.
    try:
        rows = []
        for name in args.records:
            done = subprocess.run([*ANOMALY, "score", str(source / name), "-m",
                                   str(models[f"r{name}"]), "-o", "-", "-q"],
                                  capture_output=True, text=True, check=True)
            expected = pd.read_csv(io.StringIO(done.stdout))
            lead = open_lead(source / name)
            samples = lead.read(0, lead.n_samples)
            started = time.perf_counter()
            messages, sent, chunk = replay(port, f"r{name}", samples, lead.fs, None)
            row = agreement(name, expected, messages, lead.fs)
            row["stream wall s"] = time.perf_counter() - started
            rows.append(row)
            print(json.dumps(row), flush=True)
        timing = []
        for name, rate in itertools.product(args.latency_records,
                                            args.latency_rates or [None]):
            lead = open_lead(source / name)
            samples, fs = lead.read(0, int(args.latency_minutes * 60 * lead.fs)), lead.fs
            if rate is not None:
                # As the beat-detection benchmark resamples a record (at 360 Hz MIT-BIH's
                # own samples: the ratio is 1).
                ratio = resampling_ratio(lead.fs, rate)
                samples, fs = resample(samples, ratio), lead.fs * ratio
            for speed in args.speeds:
                cpu, wall = cpu_seconds(process.pid), time.perf_counter()
                messages, sent, chunk = replay(port, f"r{name}", samples, float(fs), speed)
                cpu, wall = cpu_seconds(process.pid) - cpu, time.perf_counter() - wall
                early = latencies(messages, sent, chunk, False)
                late = latencies(messages, sent, chunk, True)
                timing.append({"record": name, "fs": float(fs), "speed": speed,
                               "beats": len(early), "p50": np.median(early),
                               "p95": np.percentile(early, 95),
                               "p99": np.percentile(early, 99), "max": early.max(),
                               "within 1 s": (early <= 1.0).mean(),
                               "final p50": np.median(late), "cpu share": cpu / wall})
                print(json.dumps(timing[-1]), flush=True)
        rss = peak_rss_mb(process.pid)
    finally:
        stop(served)
    epochs = f"{args.epochs} epochs" if args.epochs else "the fit's defaults"
    if rows:
        agreement_table(rows, args.records, epochs)
    latency_table(timing, args.latency_minutes)
    print(f"\nService peak RSS: {ready_rss:.0f} MB once ready, {rss:.0f} MB after the streams "
          f"({len(models)} models loaded).")


def agreement_table(rows: list[dict], records: list[str], epochs: str) -> None:
    """The agreement of each record's streamed beats with ``anomaly score``'s, and pooled."""
    print(f"\nRecords {', '.join(records)}: patient models fitted on each record's first "
          f"5 minutes ({epochs}); 0.1 s messages; beats matched within 150 ms.\n")
    print("| record | offline beats | final beats | Se | +P | same sample | of which: scores "
          "within 1e-6 | same context | largest score difference, same context | flags "
          "differ (same context) | provisional Se / +P | provisional flags agree | "
          "provisional median score diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['record']} | {r['offline beats']:,} | {r['final beats']:,} | {r['Se']:.4f} "
              f"| {r['+P']:.4f} | {r['same sample']:.4f} | {r['scores within 1e-6']:.4f} | "
              f"{r['same context']:.4f} | {r['max diff, same context']:.1e} | "
              f"{r['flags differ']} ({r['flags differ, same context']}) | "
              f"{r['provisional Se']:.4f} / {r['provisional +P']:.4f} | "
              f"{r['provisional flags agree']:.4f} | "
              f"{r['provisional median relative score diff']:.1%} |")
    offline = sum(r["offline beats"] for r in rows)
    online = sum(r["final beats"] for r in rows)
    same = sum(r["same sample"] * r["offline beats"] for r in rows)

    def pooled(key: str, weight: str = "offline beats") -> float:
        return sum(r[key] * r[weight] for r in rows) / sum(r[weight] for r in rows)

    for r in rows:
        r["same beats"] = r["same sample"] * r["offline beats"]
    print(f"| pooled | {offline:,} | {online:,} | {pooled('Se'):.4f} | "
          f"{pooled('+P', 'final beats'):.4f} | {same / offline:.4f} | "
          f"{pooled('scores within 1e-6', 'same beats'):.4f} | "
          f"{pooled('same context', 'same beats'):.4f} | "
          f"{max(r['max diff, same context'] for r in rows):.1e} | "
          f"{sum(r['flags differ'] for r in rows)} "
          f"({sum(r['flags differ, same context'] for r in rows)}) | | | |")


def latency_table(timing: list[dict], minutes: float) -> None:
    """Each replay's latencies, from the message holding a beat's R peak to its result."""
    print(f"\nLatency, first {minutes:g} minutes, seconds from sending the "
          "message holding a beat's R peak to receiving its result:\n")
    print("| record | Hz | speed | beats | p50 | p95 | p99 | max | within 1 s | final p50 | "
          "service CPU (cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in timing:
        print(f"| {t['record']} | {t['fs']:g} | {t['speed']:g}x | {t['beats']} | {t['p50']:.3f} | "
              f"{t['p95']:.3f} | {t['p99']:.3f} | {t['max']:.3f} | {t['within 1 s']:.4f} | "
              f"{t['final p50']:.2f} | {t['cpu share']:.2f} |")


if __name__ == "__main__":
    main()
