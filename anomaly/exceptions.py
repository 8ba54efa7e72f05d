"""The few error types the command line translates into one line and an exit code."""

from __future__ import annotations

#: Exit codes shared by every command; the README and ``anomaly --help`` list them.
#: EXIT_ANOMALIES_FOUND is used only by ``score --fail-on-anomaly``.
EXIT_OK = 0
EXIT_ANOMALIES_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_BAD_MODEL = 3
EXIT_INTERNAL = 4
EXIT_LOCKED = 5
#: ``anomaly data fetch``: a server could not be reached or answered with an HTTP error,
#: or a file did not match its pinned SHA-256. Running again may help, unlike after bad
#: usage (2).
EXIT_DOWNLOAD_FAILED = 6
#: Stopped by Ctrl-C (SIGINT) or by SIGTERM, as shells report a death by those signals.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what
    a library's error says, fit for a one-line error of ours."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def shortened(text: str, most: int = 80) -> str:
    """``text`` for a message line: at most ``most`` characters (a hostile file's value,
    a 4,000-digit integer among them, makes no page-long line)."""
    return text if len(text) <= most else text[:most - 3] + "..."


def length_mismatch(expected: int, got: int) -> str:
    """The one wording of a beat whose length is not the model's."""
    return f"expected {expected} samples per beat (the model's input length), got {got}"


class AnomalyError(Exception):
    """Base class for errors the CLI reports as one ``Error:`` line."""

    exit_code = EXIT_BAD_INPUT


class InputError(AnomalyError, ValueError):
    """A data file (or a command-line value) is missing, unreadable or malformed."""

    exit_code = EXIT_BAD_INPUT


class UsageError(InputError):
    """Options that cannot go together, or a value an option cannot take.

    ``option`` names the option at fault (``--output-dir``), for the command line to
    report it as it reports its own usage errors.
    """

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


class MissingDependencyError(AnomalyError):
    """A command needs a package this installation leaves out (TensorFlow in a
    scoring-only install); the message says what to install."""

    exit_code = EXIT_BAD_INPUT


class ModelError(AnomalyError):
    """A model directory is missing, incomplete, tampered with or from a newer format."""

    exit_code = EXIT_BAD_MODEL


class NotFittedError(AnomalyError, RuntimeError, AttributeError):
    """A detector was used before ``fit`` (or ``load``). An AttributeError too, as
    scikit-learn's: ``hasattr(detector, "threshold_")`` is False before fitting."""

    exit_code = EXIT_BAD_MODEL


class OutputLockedError(AnomalyError):
    """Another run holds the lock on an output this run would write."""

    exit_code = EXIT_LOCKED


class DownloadError(AnomalyError):
    """A file could not be downloaded, or did not match its pinned SHA-256 and was refused.
    Nothing of that file is left in the cache."""

    exit_code = EXIT_DOWNLOAD_FAILED


class Terminated(BaseException):
    """SIGTERM arrived (systemd, a scheduler, ``kill``): unwind like Ctrl-C, so that
    temporary files and locks are removed on the way out."""
