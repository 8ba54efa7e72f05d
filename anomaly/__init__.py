"""Find abnormal heartbeats in ECG traces with autoencoders.

>>> from anomaly import AutoencoderDetector, read_beats
>>> beats = read_beats("normal.csv")
>>> detector = AutoencoderDetector().fit(beats.values)
>>> detector.predict(read_beats("batch.csv", label_column="label").values)

Importing the package is cheap: TensorFlow loads only when a detector is fitted or loaded.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# onnxruntime's Linux wheels (since 1.29) keep a device ID under ~/.cache/Microsoft, queue
# telemetry there and in $TMPDIR/.ses, and send it to Microsoft's collector. A tool that
# reads health data makes no connection it was not asked for: off in this process and
# those it starts (Dask's workers, which import this package too), unless the user set
# the variable (to something: onnxruntime reads an empty value as unset).
if not os.environ.get("ORT_DISABLE_TELEMETRY"):
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__all__ = ["AutoencoderDetector", "Beats", "InputError", "ModelError", "read_beats", "__version__"]

_LAZY = {
    "AutoencoderDetector": "anomaly.model",
    "Beats": "anomaly.io.beats",
    "read_beats": "anomaly.io.readers",
    "InputError": "anomaly.exceptions",
    "ModelError": "anomaly.exceptions",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'anomaly' has no attribute {name!r}")
