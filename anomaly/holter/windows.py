"""Parts of a beat's window: which of its resampled values lie between two times around
its R peak."""

from __future__ import annotations


def values_per_second(before_s: float, after_s: float, samples: int) -> float:
    """How many of a beat window's ``samples`` values a second holds."""
    return samples / (before_s + after_s)


def window_slice(before_s: float, after_s: float, samples: int, *, start_s: float,
                 stop_s: float, what: str) -> slice:
    """Which of a beat window's ``samples`` values (``before_s`` before the R peak to
    ``after_s`` after) lie from ``start_s`` to ``stop_s`` (negative: before the peak);
    ValueError naming ``what`` when the window does not hold them."""
    per_second = values_per_second(before_s, after_s, samples)
    start = int(round((before_s + start_s) * per_second))
    stop = int(round((before_s + stop_s) * per_second))
    if start < 0 or stop > samples or stop - start < 2:
        raise ValueError(f"a beat window of {before_s:g} s before and {after_s:g} s after "
                         f"the R peak does not hold {what} ({-start_s:g} s before to "
                         f"{stop_s:g} s after)")
    return slice(start, stop)
