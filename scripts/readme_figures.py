#!/usr/bin/env python
"""Regenerate the README's pictures: two plots ``anomaly demo`` makes on ECG5000.

Runs the demo on ECG5000 in a temporary directory (as ``anomaly demo --workdir TMP``
does) and copies its ``plots/anomalous_beat.png`` and ``plots/score_histogram.png`` to
``docs/demo_anomalous_beat.png`` and ``docs/demo_score_histogram.png``. ECG5000 must be on
this machine (``../shared/data`` or ``$ANOMALY_DATA_DIR``).

Usage::

    python scripts/readme_figures.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
PICTURES = {"anomalous_beat.png": "demo_anomalous_beat.png",
            "score_histogram.png": "demo_score_histogram.png"}


def main() -> int:
    from anomaly.datasets import find_ecg5000
    from anomaly.demo import run_demo

    if find_ecg5000() is None:
        print("ECG5000 not found (../shared/data or $ANOMALY_DATA_DIR): the README's "
              "pictures are of ECG5000", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="anomaly-demo-") as workdir:
        report = run_demo(workdir)
        for made, kept in PICTURES.items():
            shutil.copyfile(Path(workdir) / "plots" / made, DOCS / kept)
            print(f"Wrote {DOCS / kept} ({(DOCS / kept).stat().st_size:,} bytes)")
    metrics = report["metrics"]
    print(f"Held-out ROC-AUC {metrics['roc_auc']:.4f}, F1 {metrics['f1']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
