"""Times in a recording: ``--from``/``--to`` as seconds or ``[hh:]mm:ss``, and back; and
the time of day by the recorder's clock, where the recording says when it started."""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

from .limits import MAX_RECORDING_SECONDS

_CLOCK = re.compile(r"^(?:([0-9]+):)?([0-9]+):([0-9]+(?:\.[0-9]*)?)$")
#: Seconds as digits 0 to 9 (``float`` alone would take ``1_0``, and digits of any script).
_SECONDS = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def parse_time(text: str) -> float:
    """Seconds from the start of a recording: ``90``, ``90.5``, ``1:30`` or ``1:01:30``.

    Raises ValueError (with the text in its message) for anything else, a negative time,
    minutes/seconds of 60 or more in the clock form, or a time past the longest recording
    read (:data:`.limits.MAX_RECORDING_SECONDS`).
    """
    spec = text.strip()
    if len(spec) > 40:  # int() of 4,301 digits says to raise Python's own limit.
        raise ValueError(f"{text[:40]!r}... is not a time (give seconds, mm:ss or hh:mm:ss)")
    match = _CLOCK.match(spec)
    if match:
        hours, minutes, seconds = match.groups()
        if int(minutes) >= 60 and hours is not None or float(seconds) >= 60:
            raise ValueError(f"{text!r} is not a time: minutes and seconds go up to 59")
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    elif _SECONDS.match(spec):
        seconds = float(spec)
    else:
        raise ValueError(f"{text!r} is not a time (give seconds, mm:ss or hh:mm:ss)")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{text!r} is not a time (it must be a number of seconds >= 0)")
    if seconds > MAX_RECORDING_SECONDS:
        raise ValueError(f"{text!r} is past the end of any recording read (at most "
                         f"{MAX_RECORDING_SECONDS // 86400} days)")
    return seconds


def format_time(seconds: float, *, always_hours: bool = False) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on (as Holter software shows times), or
    always (where hours are counted: ``05:00`` reads as five o'clock)."""
    whole = int(round(seconds))
    hour, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hour}:{minutes:02d}:{secs:02d}" if hour or always_hours else
            f"{minutes:02d}:{secs:02d}")


def clock_span(start_s: float, end_s: float, *, words: bool = False) -> tuple[str, str, str]:
    """A stretch's start, end and duration as a table gives them (:func:`format_time`;
    the duration in words with ``words``, :func:`format_duration`): the duration is that
    of the two times as shown, so that the row adds up (from 0.4 s to 384.3 s is
    ``00:00``, ``06:24``, ``06:24``, where the duration rounded on its own read ``06:23``)."""
    start, end = int(round(start_s)), int(round(end_s))
    return (format_time(start), format_time(end),
            (format_duration if words else format_time)(end - start))


def format_duration(seconds: float) -> str:
    """A length of time in words, ``26 s``, ``24 min 39 s`` or ``2 h 05 min``: ``24:39``
    reads as a time of the recording (or of day), not as how long something lasted."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


#: Seconds in a day: a time of day past it is on the recording's next day.
DAY_SECONDS = 86400


def time_of_day(seconds: float) -> str:
    """``08:14:03`` for ``seconds`` since midnight (the day's, under :data:`DAY_SECONDS`)."""
    return format_time(seconds, always_hours=True).rjust(8, "0")


@dataclass(frozen=True)
class RecordingStart:
    """When a recording began, as its header says: the time of day by the recorder's
    clock (no time zone: the recorder's own) and the date when the header gives it.

    A Holter reader reads an event at a time of day (a patient's diary says "chest pain
    at 14:30"); every time of a report stays a time from the recording's start (as
    ``--from`` and ``--to`` take them), with the time of day beside it when this is known.
    """

    time: datetime.time
    date: datetime.date | None = None

    def clock(self, seconds: float) -> str:
        """The time of day ``seconds`` into the recording: ``08:14:03``; on a later day
        than the start, ``day 2, 08:14:03``. The seconds are rounded as
        :func:`format_time` rounds them (the time from the start beside it then adds up);
        the start is to the second as a clock shows it (23:59:59.5 is on its first day)."""
        day, text = self._day_and_time(seconds)
        return text if day == 0 else f"day {day + 1}, {text}"

    def span(self, start_s: float, end_s: float) -> str:
        """A stretch by the clock, its day said once: ``23:57:10 to 23:57:20``, ``23:58:40
        to day 2, 00:02:00``, ``day 2, 00:00:28 to 00:02:44``."""
        (first_day, _), (last_day, last) = (self._day_and_time(start_s),
                                            self._day_and_time(end_s))
        return f"{self.clock(start_s)} to {last if last_day == first_day else self.clock(end_s)}"

    @property
    def seconds_of_day(self) -> float:
        """The start as seconds since its day's midnight."""
        return (self.time.hour * 3600 + self.time.minute * 60 + self.time.second
                + self.time.microsecond / 1e6)

    def _day_and_time(self, seconds: float) -> tuple[int, str]:
        """The day (0: the start's) and the time of day ``seconds`` into the recording."""
        day, of_day = divmod(math.floor(self.seconds_of_day + round(seconds)), DAY_SECONDS)
        return day, time_of_day(of_day)

    def describe(self) -> str:
        """``08:14:03 on 6 Dec 2026``, or ``08:14:03`` without a date."""
        text = self.clock(0)
        return text if self.date is None else \
            f"{text} on {self.date.day} {self.date:%b %Y}"

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(),
                "date": None if self.date is None else self.date.isoformat()}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "RecordingStart":
        """What :meth:`as_json` wrote. Raises ValueError for a time or date that is none
        (``29:00:00``, ``2026-02-30``)."""
        return cls(datetime.time.fromisoformat(value["time"]),
                   None if value["date"] is None else datetime.date.fromisoformat(value["date"]))
