"""Time and peak memory of 'anomaly beats' on a signal CSV, with and without other leads.

Builds signal CSVs (a time column in seconds, then leads in mV, five decimals, as
PhysioNet's ``rdsamp -p -v`` writes them) from MIT-BIH records concatenated to the length
asked (their two signals named MLII and V1 whatever they were), in three makes:

- ``1 lead``: MLII alone: no other lead checks its beats;
- ``2 leads``: MLII and V1: V1 checks MLII's beats;
- ``12 leads``: MLII, V1 and ten copies of MLII at half its size (X1 to X10, not ECG lead
  names, so never opened): the width of a 12-lead export, two leads read.

Runs ``anomaly beats`` on each through a real process under GNU time (``-v``): wall
seconds (the median of ``--repeats`` runs) and the largest peak RSS, and the beats
written. Then what
reading the file costs: in a new Python process each time, as a command starts, opening
its lead and the other leads that check its beats and reading every sample of each (the
median of ``--repeats``), a part of the whole command small enough to be lost in how much
its detectors' time varies from run to run. ``--reading-only`` measures that part alone.

    python scripts/benchmark_signal_csv.py [--data DIR] [--work DIR] [--minutes 30 120]
        [--repeats 5] [--reading-only] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark_long_recording import ANOMALY, measure, mitdb_dir  # noqa: E402

FS = 360
MAKES = {"1 lead": 1, "2 leads": 2, "12 leads": 12}


def build_csv(source: Path, minutes: float, leads: int, target: Path) -> None:
    """A signal CSV of ``minutes`` of the MIT-BIH records in order, with ``leads``
    columns after its time column (see the module's text)."""
    import wfdb

    wanted = int(minutes * 60 * FS)
    names = (source / "RECORDS").read_text().split()
    pieces, have = [], 0
    for name in names * (1 + wanted // (len(names) * 650_000)):
        if have >= wanted:
            break
        signal = wfdb.rdrecord(str(source / name)).p_signal[:wanted - have]
        pieces.append(signal)
        have += len(signal)
    signals = np.concatenate(pieces)
    columns = [signals[:, 0], signals[:, 1]][:leads]
    columns += [signals[:, 0] * 0.5] * (leads - len(columns))
    header = ["time", "MLII", "V1"][:leads + 1] + [f"X{i}" for i in range(1, leads - 1)]
    with target.open("w") as file:
        file.write(",".join(header) + "\n")
        for start in range(0, len(signals), 100_000):
            block = np.column_stack([np.arange(start, min(start + 100_000, len(signals))) / FS]
                                    + [column[start:start + 100_000] for column in columns])
            np.savetxt(file, block, delimiter=",", fmt="%.5f")


#: Opens a signal CSV's lead and the other leads that check its beats, reads every
#: sample of each, and prints the seconds that took (imports excluded).
READ_LEADS = """
import sys, time
sys.path.insert(0, sys.argv[1])
from anomaly.recordings.signals import open_lead, open_other_leads
started = time.perf_counter()
lead = open_lead(sys.argv[2])
for each in (lead, *open_other_leads(lead)):
    each.read(0, each.n_samples)
print(time.perf_counter() - started)
"""


def open_and_read(path: Path, repeats: int) -> float:
    """Seconds to open ``path``'s lead and its other leads and read all of their samples
    in a new process, the median of ``repeats``."""
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", READ_LEADS, str(ROOT), str(path)],
                             capture_output=True, text=True, check=True).stdout)
        for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="MIT-BIH directory (default: found like the tests do)")
    parser.add_argument("--work", help="where to build the files (default: a temporary dir)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[30, 120],
                        help="the files' lengths")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each measure, their median taken")
    parser.add_argument("--reading-only", action="store_true",
                        help="measure opening and reading the leads only")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    source = mitdb_dir(args.data)
    work = Path(args.work or tempfile.mkdtemp(prefix="anomaly-csv-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    if not args.reading_only:
        print("| length | make | MB | beats | wall s (median) | peak RSS MB |")
        print("|---|---|---|---|---|---|")
    for minutes in args.minutes:
        for make, leads in MAKES.items():
            path = work / f"{minutes:g}min-{leads}.csv"
            if not path.exists():
                build_csv(source, minutes, leads, path)
            if args.reading_only:
                results.append({"minutes": minutes, "make": make})
                continue
            out = work / f"{path.stem}.beats.csv"
            runs = [measure(ANOMALY + ["beats", str(path), "-o", str(out), "-q"])
                    for _ in range(args.repeats)]
            beats = sum(1 for _ in out.open()) - 1
            row = {"minutes": minutes, "make": make, "mb": round(path.stat().st_size / 2**20),
                   "beats": beats,
                   "seconds": statistics.median(run["seconds"] for run in runs),
                   "peak_rss_mb": max(run["peak_rss_mb"] for run in runs)}
            results.append(row)
            print(f"| {minutes:g} min | {make} | {row['mb']} | {beats:,} | {row['seconds']} "
                  f"| {row['peak_rss_mb']} |", flush=True)
    print(f"\n| length | make | opening and reading the leads: s (median of {args.repeats}) |")
    print("|---|---|---|")
    for row in results:
        path = work / f"{row['minutes']:g}min-{MAKES[row['make']]}.csv"
        row["read_seconds"] = round(open_and_read(path, args.repeats), 2)
        print(f"| {row['minutes']:g} min | {row['make']} | {row['read_seconds']} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
