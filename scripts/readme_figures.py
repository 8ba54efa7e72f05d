#!/usr/bin/env python
"""Regenerate the README's pictures: two plots ``anomaly demo`` makes on ECG5000, and
screenshots of a recording's HTML report.

- ``docs/demo_anomalous_beat.png`` and ``docs/demo_score_histogram.png``: the demo run on
  ECG5000 in a temporary directory (as ``anomaly demo --workdir TMP`` does). ECG5000 must
  be on this machine (``../shared/data`` or ``$ANOMALY_DATA_DIR``); without it this part
  is skipped, and said.
- ``docs/report_summary.png``, ``docs/report_strips.png``, ``docs/report_families.png``:
  parts of the HTML report of a synthetic 30-minute Holter recording (EDF, 250 Hz, in
  microvolts; :func:`anomaly.synthetic.synthetic_holter`: PVCs, ventricular bigeminy,
  two runs of ventricular tachycardia, two sinus pauses and 5 minutes of atrial
  fibrillation; started at 09:12 on 2 March 2026, its header says), fitted label-free
  on its first 5 minutes and scored as a user would (``anomaly fit``, ``anomaly score
  --html``), shot in headless Chromium (Debian's,
  driven by playwright). Synthetic so that the pictures may be published; they show
  what the report looks like, not how well it does (see ``docs/benchmarks.md``).

Usage::

    python scripts/readme_figures.py [demo] [report]    # both by default
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
PICTURES = {"anomalous_beat.png": "demo_anomalous_beat.png",
            "score_histogram.png": "demo_score_histogram.png"}
FS = 250
HOLTER_S = 1800.0


def demo_pictures() -> None:
    from anomaly.datasets import find_ecg5000
    from anomaly.demo import run_demo

    if find_ecg5000() is None:
        print("ECG5000 not found (../shared/data or $ANOMALY_DATA_DIR): the demo's "
              "pictures, of ECG5000, are left as they are", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory(prefix="anomaly-demo-") as workdir:
        report = run_demo(workdir)
        for made, kept in PICTURES.items():
            shutil.copyfile(Path(workdir) / "plots" / made, DOCS / kept)
            print(f"Wrote {DOCS / kept} ({(DOCS / kept).stat().st_size:,} bytes)")
    metrics = report["metrics"]
    print(f"Held-out ROC-AUC {metrics['roc_auc']:.4f}, F1 {metrics['f1']:.4f}")


def report_pictures() -> None:
    import datetime

    import edfio
    from playwright.sync_api import sync_playwright

    from anomaly.synthetic import synthetic_holter

    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser")
                    if shutil.which(name)), None)
    if browser is None:
        sys.exit("no chromium on this machine (apt install chromium)")
    with tempfile.TemporaryDirectory(prefix="anomaly-report-") as workdir:
        work = Path(workdir)
        signal, _ = synthetic_holter(HOLTER_S, FS, seed=3, af=(1200.0, 1500.0),
                                     pvc_every=15, bigeminy=(420.0, 510.0),
                                     runs=(640.0, 1700.0), pauses=(910.0, 1560.0))
        edfio.Edf([edfio.EdfSignal(signal * 1000, FS, label="ECG II", physical_dimension="uV",
                                   physical_range=(-8000, 8000))],
                  starttime=datetime.time(9, 12),
                  recording=edfio.Recording(startdate=datetime.date(2026, 3, 2))
                  ).write(work / "holter.edf")
        anomaly = [sys.executable, "-m", "anomaly"]
        subprocess.run(anomaly + ["fit", "holter.edf", "--to", "5:00", "-m", "model", "-q"],
                       cwd=work, check=True)
        subprocess.run(anomaly + ["score", "holter.edf", "-m", "model", "-o", "scores.csv",
                                  "--html", "report.html"], cwd=work, check=True)
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=browser,
                                                  args=["--no-sandbox"])
            page = chromium.new_page(viewport={"width": 1200, "height": 900})
            page.goto((work / "report.html").as_uri())
            shots = {"report_summary.png": "table.block",
                     "report_strips.png": ".strips img >> nth=0",
                     "report_families.png": "img[alt^='the families of']"}
            for name, selector in shots.items():
                page.locator(selector).screenshot(path=str(DOCS / name))
                print(f"Wrote {DOCS / name} ({(DOCS / name).stat().st_size:,} bytes)")
            chromium.close()


def main() -> int:
    parts = sys.argv[1:] or ["demo", "report"]
    unknown = set(parts) - {"demo", "report"}
    if unknown:
        sys.exit(f"unknown part(s): {', '.join(sorted(unknown))} (demo, report)")
    if "demo" in parts:
        demo_pictures()
    if "report" in parts:
        report_pictures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
