"""Options shared by the commands of the command line (Typer; no TensorFlow, no NumPy)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer


def model_dir_option(**checks):
    """``--model-dir/-m``; ``checks`` are Typer's path checks."""
    return typer.Option("--model-dir", "-m", help="Model directory (model.keras + metadata.json).",
                        **checks)


#: A model directory a command writes.
SavedModelDir = Annotated[Path, model_dir_option(file_okay=False)]
#: The model directory 'score' and 'plot' load. Not checked when parsing: loading checks
#: it, so a missing or unusable one (a file, say) exits with the model's code, 3.
ModelDir = Annotated[Path, model_dir_option()]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
LabelColumn = Annotated[
    Optional[str],
    typer.Option(help="Label column: a header name, a 0-based index, 'first' or 'last'. "
                      "Default: no labels."),
]
NormalLabel = Annotated[
    str, typer.Option(help="Label value meaning normal; any other value is an anomaly.")
]
Header = Annotated[
    Optional[bool],
    typer.Option("--header/--no-header",
                 help="Whether the first row is a header. Default: detected."),
]


def input_file(help_text: str):
    """A file argument Typer checks before the command runs."""
    return typer.Argument(help=help_text, exists=True, dir_okay=False, readable=True,
                          show_default=False)


def finite(value: float, option: str, minimum: float | None = None) -> float:
    """Typer callback body: ``value``, or a usage error unless it is a finite number (and
    at least ``minimum``). Typer's own range check would let NaN through to say "not >= 0"."""
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        at_least = "" if minimum is None else f" >= {minimum:g}"
        raise typer.BadParameter(f"{option} must be a finite number{at_least}, got {value}")
    return value
