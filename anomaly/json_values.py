"""Checks of values read from JSON, shared by the values a model directory records (the
beat window among them, which :mod:`anomaly.recordings.segment` reads).

In Python ``True`` is an ``int``, but true/false is never a valid count or number here;
and a JSON integer may be too large for a float.
"""

from __future__ import annotations

import math
from typing import Any


def is_finite(number: Any) -> bool:
    """Whether ``number`` is a finite number (a bool is not one)."""
    if isinstance(number, bool):
        return False
    try:
        return math.isfinite(number)
    except (OverflowError, TypeError):
        return False


def is_number(value: Any) -> bool:
    """A finite int or float from JSON."""
    return isinstance(value, (int, float)) and is_finite(value)


def is_count(value: Any, least: int = 1) -> bool:
    """An int (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def is_sha256(text: Any) -> bool:
    """A SHA-256 hex digest, lower case."""
    return (isinstance(text, str) and len(text) == 64
            and all(character in "0123456789abcdef" for character in text))


def check_number(value: Any, name: str) -> float:
    """``value`` as a float, or a ValueError: ``'NAME' has the wrong type (str)`` or
    ``'NAME' is not a finite number``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'{name}' has the wrong type ({type(value).__name__})")
    if not is_finite(value):
        raise ValueError(f"'{name}' is not a finite number")
    return float(value)


def known(values: dict[str, Any]) -> dict[str, Any]:
    """A metadata section without its unknown (None) values: absent keys are read back as
    unknown, so a section records only what is known."""
    return {key: value for key, value in values.items() if value is not None}
