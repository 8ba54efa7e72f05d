"""A WFDB annotation file's rhythm episodes: each rhythm change (annotation ``+``) names
the rhythm that starts there in its aux note (``(N``, ``(AFIB``, ``(B``, ``(VT``, ...),
and lasts to the next change or the end of the record. They are what the episodes this
package finds are measured against (``scripts/benchmark_rhythm.py``)."""

from __future__ import annotations

import os

from .episodes import Episode

#: The aux notes of MIT-BIH's atrial fibrillation and flutter episodes.
ATRIAL_FIBRILLATION_RHYTHMS = ("(AFIB", "(AFL")


def reference_rhythms(base: str | os.PathLike, extension: str = "atr") -> dict[str, list[Episode]]:
    """The rhythm episodes of the annotation file ``base.extension`` of the WFDB record
    ``base``, by rhythm (its aux note, as ``(AFIB``), in seconds."""
    import wfdb

    annotation = wfdb.rdann(str(base), extension)
    header = wfdb.rdheader(str(base))
    fs = float(header.fs)
    changes = [(int(sample), note.rstrip("\x00").strip()) for sample, symbol, note in
               zip(annotation.sample, annotation.symbol, annotation.aux_note) if symbol == "+"]
    episodes: dict[str, list[Episode]] = {}
    for index, (sample, rhythm) in enumerate(changes):
        end = changes[index + 1][0] if index + 1 < len(changes) else header.sig_len
        episodes.setdefault(rhythm, []).append(Episode(rhythm, sample / fs, end / fs))
    return episodes
