"""Messages for people and for log shippers, on stderr.

``text`` prints each message as it is; ``json`` prints one JSON object per line with the
time, level, message and any structured fields, for Airflow, journald or a log shipper.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from .choices import LogFormat
from .exceptions import first_line

LOGGER = logging.getLogger("anomaly")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``message`` and ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:  # A library's error logged with its traceback (uvicorn's).
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, sort_keys=False, default=str)


def printable(text: str) -> str:
    """``text`` a client chose (a request's path), for a message: its control characters
    and backslashes written escaped (``\\n``, ``\\\\``), so that in the text log it cannot
    start a line of its own (the JSON log escapes it anyway)."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c if c.isprintable() and c != "\\" else
                   c.encode("unicode_escape").decode("ascii") for c in text)


class _StandardError(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a message is said (as
    logging's own last-resort handler does), not to the stream it was when configured:
    a caller that redirects stderr (a test, an embedding program) gets the messages."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(log_format: str = LogFormat.text.value, *, quiet: bool = False) -> logging.Logger:
    """Send the ``anomaly`` logger to stderr in ``log_format`` (``text`` or ``json``)."""
    log_format = LogFormat(log_format)
    handler = _StandardError()
    handler.setFormatter(JsonFormatter() if log_format is LogFormat.json
                         else logging.Formatter("%(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False
    return LOGGER


def reset() -> None:
    """The package's logger as a fresh process has it (no handlers of its own): a command
    run in the same process as another (a test, a notebook) starts from it, not from the
    format the last one chose."""
    LOGGER.handlers.clear()
    LOGGER.setLevel(logging.NOTSET)
    LOGGER.propagate = True


def says_json() -> bool:
    """Whether the package's messages go out as JSON lines (:func:`configure`'s
    ``json``): a command's last error is then one of them, not a bare line."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in LOGGER.handlers)


class _Forward(logging.Handler):
    """Hands a record to this package's logger, to whatever handlers it has by then (a
    later :func:`configure` changes them)."""

    def emit(self, record: logging.LogRecord) -> None:
        LOGGER.handle(record)


def adopt(name: str, *, unless: tuple[str, ...] = ()) -> None:
    """Say the warnings and errors of library logger ``name`` (uvicorn's) as this
    package's are said, in the chosen format, with ``event`` the logger's name; the
    messages in ``unless`` not at all (ones the package says better itself)."""
    library = logging.getLogger(name)

    def in_our_format(record: logging.LogRecord) -> bool:
        if record.getMessage() in unless:
            return False
        record.fields = {"event": name}
        return True

    library.handlers[:] = [_Forward()]
    library.filters[:] = [in_our_format]
    library.setLevel(logging.WARNING)
    library.propagate = False


def info(message: str, **fields) -> None:
    LOGGER.info(message, extra={"fields": fields})


def warning(message: str, **fields) -> None:
    LOGGER.warning(message, extra={"fields": fields})


def warning_once(message: str, **fields) -> None:
    """A warning said once per process, however many times its cause is met (a recording
    is opened once to plan a run and once to score it)."""
    if message not in _SAID:
        _SAID.add(message)
        warning(message, **fields)


_SAID: set[str] = set()


def route_warnings() -> None:
    """Say the warnings libraries raise (``warnings.warn``: wfdb, edfio, neurokit2, scipy)
    as one line of the chosen log format, once each, instead of Python's two lines with
    the library's source: a cron job's mail and a log shipper's JSON stay readable."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        warning_once(f"Warning: {first_line(message)} ({category.__name__})")

    warnings.showwarning = show


#: Held while a thread has changed the process's warning filters (:func:`set_aside_warnings`).
_WARNINGS_CHANGED = threading.RLock()


@contextmanager
def set_aside_warnings(*, record: bool = False) -> Iterator[list]:
    """The warnings raised in the block kept from the log: recorded in the list it gives
    (``record``), or ignored.

    ``warnings.catch_warnings`` changes the process's filters and the function that shows
    a warning, and puts back on leaving what it found on entering. Two threads inside it at
    once (the service reads recordings and streams in several) can each put back what the
    other had set: every later warning is then ignored, or recorded in a list no one
    reads. Here one thread at a time is inside; a warning another thread raises meanwhile
    is taken as the block's.
    """
    import warnings

    with _WARNINGS_CHANGED, warnings.catch_warnings(record=record) as caught:
        warnings.simplefilter("always" if record else "ignore")
        yield caught if record else []


def error(message: str, **fields) -> None:
    LOGGER.error(message, extra={"fields": fields})
