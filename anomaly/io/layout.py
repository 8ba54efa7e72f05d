"""What sniffing a CSV file of beats finds (:class:`CsvLayout`), and how a cell is read as
a number (:func:`parse_number`), as pyarrow reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: What may surround a number in a cell, as pyarrow allows it.
PADDING = " \t"
#: Header names of the columns that say which beat a row is rather than hold its samples
#: (as ``anomaly beats`` writes them): kept out of the samples, carried into the scores.
#: Each is read as text (``record``), an integer (``beat``, ``sample``) or a number, empty
#: meaning unknown (NaN: the first beat has no previous RR interval). ``unreadable`` says
#: why a beat's window cannot be read (empty when it can; see
#: :mod:`anomaly.recordings.quality`): such a beat is scored but never flagged, nor trained on.
ID_COLUMN_TYPES = {"record": "text", "beat": "integer", "sample": "integer",
                   "time_s": "number", "rr_prev_s": "number", "rr_next_s": "number",
                   "rr_local_mean_s": "number", "unreadable": "text"}
ID_COLUMNS = tuple(ID_COLUMN_TYPES)
#: With id columns in the header (a file ``anomaly beats`` wrote), a column of this name
#: is the label column unless another is chosen: its text is carried into the scores.
BEATS_LABEL_COLUMN = "label"
#: Header names that say a column holds labels, not samples (compared in lower case).
#: Without ``--label-column`` such a column is refused rather than read as one more
#: sample: a model trained on the label as its 141st sample scores every beat wrongly.
LABEL_LIKE_COLUMNS = ("label", "labels", "class", "target", "y", "annotation", "category",
                      "diagnosis", "truth", "ground_truth")


@dataclass(frozen=True)
class CsvLayout:
    """What sniffing the head of a CSV file found.

    ``header_line`` is the header's line number in the file (after any leading blank
    lines), 0 without a header. ``normal_label``: the label value meaning normal; with it
    (and a label column) every row's label is turned into 0 (normal) or 1 (anomaly) as the
    row is parsed. When it is a number, labels compare as numbers (``1`` equals ``1.0``)
    and a row whose label is not a number is a bad row. ``value_range``: ``(low, high)``,
    the samples a model can score; a row with a sample outside it is a bad row.
    ``id_indices``: the columns named in :data:`ID_COLUMNS` (with a header), read by
    :data:`ID_COLUMN_TYPES`.
    """

    delimiter: str
    has_header: bool
    column_names: tuple[str, ...]
    label_index: int | None
    header_line: int = 0
    normal_label: str | None = None
    value_range: tuple[float, float] | None = None
    id_indices: tuple[int, ...] = ()

    @property
    def n_columns(self) -> int:
        return len(self.column_names)

    @property
    def sample_indices(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_columns)
                     if i != self.label_index and i not in self.id_indices)

    @property
    def id_names(self) -> tuple[str, ...]:
        return tuple(self.column_names[i] for i in self.id_indices)

    @property
    def label_name(self) -> str | None:
        """The label column's name in the file (its index as text without a header)."""
        return None if self.label_index is None else self.column_names[self.label_index]

    @property
    def label_header(self) -> str | None:
        """The label column's name in outputs: its header name, or ``label``."""
        if self.label_index is None:
            return None
        return self.label_name if self.has_header else "label"

    @property
    def decides_labels(self) -> bool:
        """Whether rows' labels are turned into 0/1 truth as they are parsed."""
        return self.label_index is not None and self.normal_label is not None

    @property
    def normal_number(self) -> float | None:
        """The normal label as a number, when labels are compared as numbers."""
        if not self.decides_labels:
            return None
        return parse_number(self.normal_label.strip())


#: The most digits a count is written with: no count of a file is 10^18 or more, and
#: ``int`` refuses a string of over 4,300 digits with an error of its own.
MAX_COUNT_DIGITS = 18


def parse_count(text: str, *, signed: bool = False) -> int | None:
    """``text`` as an integer written in ASCII digits (with a leading minus when
    ``signed``), at most :data:`MAX_COUNT_DIGITS` of them, else None. ``str.isdigit``
    alone also takes ``²`` and ``٢``, which ``int`` then refuses or reads as another
    number."""
    digits = text[1:] if signed and text.startswith("-") else text
    if not digits or len(digits) > MAX_COUNT_DIGITS or not digits.isascii() \
            or not digits.isdigit():
        return None
    return int(text)


def parse_positive(text: str) -> float | None:
    """``text`` as a positive finite number (``360``, ``0.5``), else None (``nan``,
    ``inf``, ``-1``, ``abc``)."""
    number = parse_number(text)
    return number if number is not None and math.isfinite(number) and number > 0 else None


def parse_number(text: str) -> float | None:
    """Parse a CSV cell as pyarrow does for float64 columns, or return None.

    Spaces and tabs around the number are allowed; the number itself must be plain ASCII.
    Python's ``float`` alone would also take underscores (``1_0``), other whitespace and
    non-ASCII digits (``٢``), all of which pyarrow rejects.
    """
    text = text.strip(PADDING)
    if not text or not text.isascii() or "_" in text or any(c.isspace() for c in text):
        return None
    try:
        return float(text)
    except ValueError:
        return None
