"""A beat's RR context as the detector's context columns.

A premature beat of normal shape (an S beat) looks normal to a network that sees one
beat's samples: what is abnormal is when it comes. Two ratios say it, whatever the
patient's heart rate: ``rr_prev_ratio``, the interval from the previous R peak over the
local mean RR interval (below 1: early), and ``rr_next_ratio``, the interval to the next
R peak over the same mean (above 1: a pause follows, as after most premature beats).

A model fitted with :data:`RR_CONTEXT` (``anomaly fit`` of a recording, or of a beats CSV
with the :data:`RR_COLUMNS`, unless ``--no-rr-context``) gets these two columns after each
beat's samples, computed from the beat's :data:`RR_COLUMNS` (see
:mod:`anomaly.model.context`); it predicts them from the beat's shape without seeing them
(see ``AutoencoderDetector``'s ``context``).
"""

from __future__ import annotations

import numpy as np

#: The context columns, in the order they follow a beat's samples.
RR_CONTEXT = ("rr_prev_ratio", "rr_next_ratio")
#: The RR columns of a recording's beats (and of ``anomaly beats``'s CSV) they come from.
RR_COLUMNS = ("rr_prev_s", "rr_next_s", "rr_local_mean_s")


def rr_ratios(rr_prev: np.ndarray, rr_next: np.ndarray, rr_local_mean: np.ndarray) -> np.ndarray:
    """The RR context of beats, shape ``(n, 2)``: ``rr_prev / rr_local_mean`` and
    ``rr_next / rr_local_mean``.

    Where a neighbouring peak is missing (the first beat of a recording has no previous
    one, the last no next one), or an interval is not a positive number (a hand-edited
    beats CSV), the ratio is 1, a beat on time: it is scored on its shape.
    """
    local_mean = np.asarray(rr_local_mean, dtype=np.float64)[:, None]
    intervals = np.column_stack([np.asarray(rr_prev, dtype=np.float64),
                                 np.asarray(rr_next, dtype=np.float64)])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratios = intervals / local_mean
    known = np.isfinite(ratios) & (intervals > 0) & (local_mean > 0)
    return np.where(known, ratios, 1.0)

