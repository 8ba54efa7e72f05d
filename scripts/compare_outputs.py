#!/usr/bin/env python
"""Check that this checkout scores exactly as another revision does.

Exports the other revision (``--base``, default ``main``) with ``git archive`` into a
temporary directory, fits one model, then runs the same ``anomaly score`` commands with
each tree's code (``PYTHONPATH``), in two working directories, on the same inputs and the
same model. Scores files (CSV and Parquet) and rejects files must be byte-identical; run
reports must be identical once the fields that change from run to run are removed
(``created``, ``seconds``, ``rows_per_second``).

Inputs: the synthetic beats the tests use (labelled with a header, unlabelled, gzip,
bad rows under ``--on-bad-row skip``, several inputs into ``--output-dir``); with ECG5000
on this machine, the tutorial's test split and 150,000 beats drawn from ECG5000 (several
Dask partitions); with MIT-BIH, a recording (record 208: a model fitted on its first five
minutes with the RR context, its next ten scored against the annotations). Every case
runs on the local engine and on the Dask engine (but the recording: the Dask engine scores
beats CSV files), with both runtimes (ONNX and Keras).

Usage::

    python scripts/compare_outputs.py [--base REV] [--data PATH] [--engines local,dask]
        [--runtimes onnx,keras] [--fit-with base|this] [--fits]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: Report fields that differ between any two runs (times), removed before comparing.
VOLATILE = {"created", "seconds", "rows_per_second"}


def export(revision: str, target: Path) -> Path:
    """The tree of ``revision``, extracted into ``target``."""
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def anomaly(tree: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m anomaly ARGS`` with the code of ``tree``."""
    environment = os.environ | {"PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "anomaly", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True)


def make_inputs(directory: Path, data: Path | None) -> dict[str, Path]:
    """The input files, by name."""
    from anomaly.synthetic import synthetic_beats, write_beats_csv

    inputs: dict[str, Path] = {}
    values, labels = synthetic_beats(400, 200, length=96, seed=1)
    write_beats_csv(directory / "train.csv", values, labels)
    inputs["train"] = directory / "train.csv"
    values, labels = synthetic_beats(1500, 500, length=96, seed=2)
    write_beats_csv(directory / "batch.csv", values, labels, header=True)
    write_beats_csv(directory / "nolabel.csv", values)
    inputs["batch"], inputs["nolabel"] = directory / "batch.csv", directory / "nolabel.csv"
    (directory / "packed.csv.gz").write_bytes(gzip.compress((directory / "batch.csv").read_bytes()))
    inputs["gzip"] = directory / "packed.csv.gz"
    lines = (directory / "batch.csv").read_text().splitlines()
    for line, text in {5: "1,2,3", 700: "x" * 20, 1900: ",".join(["nan"] * 97),
                       1950: lines[1949].replace(",", ";", 3)}.items():
        lines[line - 1] = text
    (directory / "mixed.csv").write_text("\n".join(lines) + "\n")
    inputs["mixed"] = directory / "mixed.csv"
    if data is not None:
        from sklearn.model_selection import train_test_split

        from anomaly import read_beats

        beats = read_beats(data, label_column="last", normal_label="1")
        numbers = 1 - beats.truth.astype(int)  # ECG5000's labels: 1 normal, 0 abnormal
        train_x, test_x, train_y, test_y = train_test_split(beats.values, numbers,
                                                            test_size=0.2, random_state=21)
        write_beats_csv(directory / "ecg_train.csv", train_x, train_y)
        write_beats_csv(directory / "ecg_test.csv", test_x, test_y, header=True)
        rng = np.random.default_rng(0)
        rows = rng.integers(0, len(beats), 150_000)
        noisy = beats.values[rows] + rng.normal(0, 0.01, (len(rows), beats.n_samples))
        np.savetxt(directory / "ecg_large.csv", np.column_stack([noisy, numbers[rows]]),
                   delimiter=",", fmt=["%.6f"] * beats.n_samples + ["%d"])
        inputs |= {"ecg_train": directory / "ecg_train.csv", "ecg_test": directory / "ecg_test.csv",
                   "ecg_large": directory / "ecg_large.csv"}
    return inputs


#: The recording compared, and the span its model is fitted on.
RECORD, FIT_SPAN = "208", ("--to", "5:00")


def find_record() -> Path | None:
    """MIT-BIH's record :data:`RECORD` (its path without extension), or None."""
    from anomaly.datasets import find_mitdb

    directory = find_mitdb([RECORD])
    return None if directory is None else directory / RECORD


def cases(inputs: dict[str, Path]) -> dict[str, tuple[str, list[str]]]:
    """Case name -> (model name, ``anomaly score`` arguments); outputs are relative."""
    found = {
        "labelled": ("synthetic", [inputs["batch"], "--label-column", "label", "-o", "s.csv",
                                   "--report", "r.json"]),
        "parquet": ("synthetic", [inputs["batch"], "--label-column", "label", "-o",
                                  "s.parquet", "--report", "r.json"]),
        "unlabelled": ("synthetic", [inputs["nolabel"], "-o", "s.csv", "--report", "r.json"]),
        "gzip": ("synthetic", [inputs["gzip"], "--label-column", "label", "-o", "s.csv",
                               "--report", "r.json"]),
        "skip": ("synthetic", [inputs["mixed"], "--label-column", "label", "--on-bad-row",
                               "skip", "-o", "s.csv", "--report", "r.json"]),
        "several": ("synthetic", [inputs["batch"], inputs["gzip"], inputs["mixed"],
                                  "--label-column", "label", "--on-bad-row", "skip",
                                  "--output-dir", "out", "--report", "r.json"]),
    }
    if "ecg_test" in inputs:
        found |= {
            "ecg5000 split": ("ecg5000", [inputs["ecg_test"], "--label-column", "label",
                                          "-o", "s.csv", "--report", "r.json"]),
            "ecg5000 150k": ("ecg5000", [inputs["ecg_large"], "--label-column", "last",
                                         "-o", "s.csv", "--report", "r.json"]),
        }
    if "record" in inputs:
        found["recording"] = ("recording", [inputs["record"], "--from", "5:00", "--to", "15:00",
                                            "--annotations", "atr", "--label-column", "label",
                                            "--normal-label", "N", "-o", "s.csv",
                                            "--report", "r.json"])
    return {name: (model, [str(arg) for arg in args]) for name, (model, args) in found.items()}


def without_volatile(value, volatile=VOLATILE):
    if isinstance(value, dict):
        return {key: without_volatile(item, volatile) for key, item in value.items()
                if key not in volatile}
    if isinstance(value, list):
        return [without_volatile(item, volatile) for item in value]
    return value


def differences(ours: Path, theirs: Path, volatile=VOLATILE) -> list[str]:
    """What differs between two working directories' outputs."""
    names = sorted({path.relative_to(ours) for path in ours.rglob("*") if path.is_file()}
                   | {path.relative_to(theirs) for path in theirs.rglob("*") if path.is_file()})
    found = []
    for name in names:
        a, b = ours / name, theirs / name
        if not (a.exists() and b.exists()):
            found.append(f"{name}: only in {'this checkout' if a.exists() else 'the base'}")
        elif name.suffix == ".json":
            if (without_volatile(json.loads(a.read_text()), volatile)
                    != without_volatile(json.loads(b.read_text()), volatile)):
                found.append(f"{name}: reports differ")
        elif a.read_bytes() != b.read_bytes():
            found.append(f"{name}: bytes differ")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="revision to compare with (default main)")
    parser.add_argument("--data", type=Path, default=None,
                        help="ECG5000 CSV (default: ../shared/data or $ANOMALY_DATA_DIR)")
    parser.add_argument("--engines", default="local,dask", help="engines to run (default both)")
    parser.add_argument("--runtimes", default="onnx,keras",
                        help="runtimes to score with (default both)")
    parser.add_argument("--fits", action="store_true",
                        help="also fit every model with each revision and compare what "
                             "each one's model scores")
    parser.add_argument("--fit-with", default="base", choices=("base", "this"),
                        help="whose code fits the models both trees score with (default base: "
                             "this checkout must read model directories written before it)")
    args = parser.parse_args(argv)

    from anomaly.datasets import find_ecg5000

    data = args.data or find_ecg5000()
    with tempfile.TemporaryDirectory(prefix="anomaly-compare-") as temporary:
        work = Path(temporary)
        base = export(args.base, work / "base")
        trees = {"this checkout": ROOT, args.base: base}
        inputs = make_inputs(work, data)
        record = find_record()
        print(f"Inputs in {work}; ECG5000 {'from ' + str(data) if data else 'not found'}; "
              f"MIT-BIH {RECORD} {'from ' + str(record) if record else 'not found'}.",
              flush=True)
        models = {"synthetic": (inputs["train"], "--label-column", "last", "--epochs", "40")}
        if data is not None:
            models["ecg5000"] = (inputs["ecg_train"], "--label-column", "last")
        if record is not None:
            inputs["record"] = record
            models["recording"] = (record, *FIT_SPAN, "--annotations", "atr",
                                   "--label-column", "label", "--normal-label", "N")
        for name, (train, *extra) in models.items():
            fitter = base if args.fit_with == "base" else ROOT
            fitted = anomaly(fitter, ["fit", str(train), "-m", str(work / name), "-q", *extra],
                             work)
            if fitted.returncode:
                print(fitted.stderr, file=sys.stderr)
                return 2
        failures = 0
        # The Dask engine scores beats CSV files; a recording is scored by the local one.
        runs = [(case, engine, runtime) for case in cases(inputs)
                for engine in args.engines.split(",") for runtime in args.runtimes.split(",")
                if not (case == "recording" and engine == "dask")]
        for case, engine, runtime in runs:
            model, case_args = cases(inputs)[case]
            where = f"{case} ({engine}, {runtime})"
            directories = {}
            for label, tree in trees.items():
                directory = work / "runs" / where / label.replace("/", "_")
                directory.mkdir(parents=True)
                done = anomaly(tree, ["score", *case_args, "-m", str(work / model), "-q",
                                      "--engine", engine, "--runtime", runtime], directory)
                if done.returncode:
                    print(f"{where}, {label}: exit {done.returncode}: {done.stderr.strip()}",
                          file=sys.stderr)
                    return 2
                directories[label] = directory
            found = differences(*directories.values())
            outputs = sorted(str(path.relative_to(directories["this checkout"]))
                             for path in directories["this checkout"].rglob("*")
                             if path.is_file())
            verdict = "identical" if not found else "DIFFERENT: " + "; ".join(found)
            print(f"{where}: {', '.join(outputs)}: {verdict}", flush=True)
            failures += bool(found)
        if args.fits:
            failures += compare_fits(models, cases(inputs), trees, work)
        return 1 if failures else 0


def compare_fits(models: dict, all_cases: dict, trees: dict[str, Path], work: Path) -> int:
    """Each tree fits each model and scores its cases with it: the same fit gives the same
    threshold and the same scores, byte for byte (the model files' own bytes, and so their
    hashes in the reports, differ from save to save)."""
    failures = 0
    for name, (train, *extra) in models.items():
        directories = {}
        for label, tree in trees.items():
            directory = work / "fits" / name / label.replace("/", "_")
            directory.mkdir(parents=True)
            fitted = anomaly(tree, ["fit", str(train), "-m", "model", "-q", *extra], directory)
            if fitted.returncode:
                print(f"fit {name}, {label}: {fitted.stderr.strip()}", file=sys.stderr)
                return failures + 1
            for case, (model, case_args) in all_cases.items():
                if model == name:
                    run = directory / "runs" / case
                    run.mkdir(parents=True)
                    anomaly(tree, ["score", *case_args, "-m", str(directory / "model"), "-q"],
                            run)
            directories[label] = directory / "runs"
        found = differences(*directories.values(), volatile=VOLATILE | {"sha256", "dir"})
        verdict = "identical" if not found else "DIFFERENT: " + "; ".join(found)
        print(f"fitted by each revision, {name}: scores and reports {verdict}", flush=True)
        failures += bool(found)
    return failures


if __name__ == "__main__":
    sys.exit(main())
