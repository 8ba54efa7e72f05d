"""Options and option values shared by the command lines (no TensorFlow, no NumPy)."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class ModelFamily(str, Enum):
    """The autoencoder families of :mod:`anomaly.models`."""

    dense = "dense"
    conv = "conv"
    vae = "vae"


def model_dir_option(**checks):
    """``--model-dir/-m``; ``checks`` are Typer's path checks."""
    return typer.Option("--model-dir", "-m", help="Model directory (model.keras + metadata.json).",
                        **checks)


#: A model directory a command writes.
SavedModelDir = Annotated[Path, model_dir_option(file_okay=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def finite(value: float, option: str, minimum: float | None = None) -> float:
    """Typer callback body: ``value``, or a usage error unless it is a finite number (and
    at least ``minimum``). Typer's own range check would let NaN through to say "not >= 0"."""
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        at_least = "" if minimum is None else f" >= {minimum:g}"
        raise typer.BadParameter(f"{option} must be a finite number{at_least}, got {value}")
    return value
