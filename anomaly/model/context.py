"""The contexts a model may predict besides a beat's samples, and how scoring gets them.

A context is a few values per beat that the network does not see but learns to predict
from the beat's shape (see ``AutoencoderDetector``'s ``context``): a beat of normal shape at
an abnormal moment then scores high. Fitting and scoring compute a context's values from
the id columns its beats come with (a recording's beats, or a beats CSV that ``anomaly
beats`` wrote). A new context is one entry in :data:`KNOWN_CONTEXTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..exceptions import InputError, ModelError
from ..recordings.rhythm import RR_COLUMNS, RR_CONTEXT, rr_ratios


@dataclass(frozen=True)
class BeatContext:
    """A context: what it is for people (``description``), its ``names`` (the columns
    after a beat's samples), the id ``columns`` of a beat it is computed from, and
    ``compute``, which maps those columns to the context's values, shape
    ``(n, len(names))``."""

    description: str
    names: tuple[str, ...]
    columns: tuple[str, ...]
    compute: Callable[..., np.ndarray]

    def missing(self, columns: Iterable[str]) -> list[str]:
        """The id columns the context is computed from that are not among ``columns``."""
        present = set(columns)
        return [column for column in self.columns if column not in present]

    def appended(self, values: np.ndarray, ids: dict[str, np.ndarray], source: str) -> np.ndarray:
        """Beats' samples followed by their context, shape ``(n, samples + len(names))``.

        Raises
        ------
        InputError
            When the beats' ids lack a column the context is computed from (naming the
            input ``source``).
        """
        if self.missing(ids):
            raise InputError(f"{source}: the model predicts each beat's {self.description} "
                             f"({', '.join(self.names)}); score a recording, or a beats CSV "
                             f"with the columns "
                             f"{', '.join(self.columns)} (as 'anomaly beats' writes it)")
        return np.hstack([np.asarray(values, dtype=np.float64),
                          self.compute(*(ids[column] for column in self.columns))])


#: The contexts scoring knows, by their names.
KNOWN_CONTEXTS: dict[tuple[str, ...], BeatContext] = {
    RR_CONTEXT: BeatContext("RR context", RR_CONTEXT, RR_COLUMNS, rr_ratios),
}


def beat_context(names: tuple[str, ...]) -> BeatContext | None:
    """The context of a model that predicts ``names`` (None for no context).

    Raises
    ------
    ModelError
        For names no known context has (a model from a newer anomaly, or edited).
    """
    names = tuple(names)
    if not names:
        return None
    if names not in KNOWN_CONTEXTS:
        raise ModelError(f"the model predicts a context anomaly does not know: {list(names)}")
    return KNOWN_CONTEXTS[names]
