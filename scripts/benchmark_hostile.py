#!/usr/bin/env python
"""Peak memory of ``anomaly score`` on hostile inputs, each in a fresh process.

Fits a small model on synthetic beats, then scores each hostile input (files that never
end, lines without ends, gzip bombs, first lines of absurd width, a million bad rows)
and records the exit code, the error line and the process's peak RSS (wait4, in a small launcher). The
target: every hostile input refused with exit 2 (a million bad rows under
``--on-bad-row skip``: scored, exit 0) within 1.5 GB, TensorFlow included. A good
100,000-row file is scored beside them for reference.

Usage::

    python scripts/benchmark_hostile.py [--json PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MB = 1500


#: A small process that runs a command and writes its peak RSS (KB) to the file argv[1]:
#: a child of this process would be charged the memory this process had when it forked
#: (Linux counts it until the new program starts).
MEASURE = ("import os, sys\n"
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    os.execv(sys.argv[2], sys.argv[2:])\n"
           "_, status, usage = os.wait4(pid, 0)\n"
           "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
           "sys.exit(os.waitstatus_to_exitcode(status) % 256)\n")


def run(args: list[str], cwd: Path, stdin=None) -> dict:
    """``anomaly ARGS`` in a new process: exit code, last stderr line, seconds, peak MB."""
    started = time.perf_counter()
    with open(cwd / "stderr.txt", "wb") as stderr:
        completed = subprocess.run([sys.executable, "-c", MEASURE, str(cwd / "rss.txt"),
                                    sys.executable, "-m", "anomaly", *args], cwd=cwd,
                                   stdin=stdin or subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    message = (cwd / "stderr.txt").read_text(errors="replace").strip().splitlines()
    peak_kb = int((cwd / "rss.txt").read_text())
    return {"exit": completed.returncode, "message": message[-1] if message else "",
            "seconds": round(time.perf_counter() - started, 1), "peak_mb": round(peak_kb / 1024)}


def make_inputs(directory: Path) -> dict[str, tuple[list[str], object]]:
    """Case name -> (``anomaly score`` arguments before ``-m``, stdin or None)."""
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    values, _ = synthetic_beats(100_000, 0, length=140, seed=1)
    write_beats_csv(directory / "good.csv", values)
    good = (directory / "good.csv").read_text().splitlines()[0]
    (directory / "bomb.csv.gz").write_bytes(gzip.compress(b"0," * 2_000_000 + b"0\n", 9))
    with open(directory / "endless.csv", "wb") as file:
        for _ in range(20):
            file.write(b"1" * (1 << 20))
    (directory / "wide.csv").write_text(",".join(["0"] * 50_000) + "\n")
    (directory / "fields.csv").write_text(",".join(["0"] * 200_000) + "\n")
    (directory / "bad_rows.csv").write_text(good + "\n" + "1,2,x\n" * 1_000_000)
    return {
        "good file, 100,000 rows (reference)": (["good.csv"], None),
        "gzip bomb: 13 KB unpacking to one 4 MB line": (["bomb.csv.gz"], None),
        "20 MB without a line end": (["endless.csv"], None),
        "first line of 50,000 fields (model: 140)": (["wide.csv"], None),
        "first line of 200,000 fields": (["fields.csv"], None),
        "/dev/zero as a file": (["/dev/zero"], None),
        "/dev/zero as standard input": (["-"], "/dev/zero"),
        "1,000,000 bad rows, --on-bad-row skip": (["bad_rows.csv", "--on-bad-row", "skip"],
                                                  None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    rows, failures = [], 0
    with tempfile.TemporaryDirectory(prefix="anomaly-hostile-") as temporary:
        work = Path(temporary)
        values, _ = synthetic_beats(1000, 0, length=140, seed=0)
        write_beats_csv(work / "train.csv", values)
        fitted = run(["fit", "train.csv", "-m", "model", "--epochs", "5", "-q"], work)
        if fitted["exit"]:
            print(f"fit failed: {fitted['message']}", file=sys.stderr)
            return 2
        for name, (score_args, stdin) in make_inputs(work).items():
            with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
                result = run(["score", *score_args, "-m", "model", "-o", "scores.csv", "-q"],
                             work, stdin=source)
            expected = 0 if "reference" in name or "skip" in name else 2
            result |= {"case": name, "pass": result["exit"] == expected
                       and result["peak_mb"] < BUDGET_MB}
            failures += not result["pass"]
            rows.append(result)
            print(f"  {name}: exit {result['exit']}, {result['peak_mb']} MB", flush=True)
    print("\n| input | exit | peak RSS MB | seconds | message |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['exit']} | {row['peak_mb']:,} | {row['seconds']} | "
              f"`{row['message'][:110]}` |")
    verdict = "PASS" if not failures else "FAIL"
    print(f"\n{verdict}: every hostile input refused (exit 2) or, with skip, scored, each "
          f"under {BUDGET_MB:,} MB")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "budget_mb": BUDGET_MB}, indent=2) + "\n")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
