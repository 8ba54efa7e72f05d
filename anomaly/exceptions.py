"""The few error types the command line translates into one line and an exit code."""

from __future__ import annotations

#: Exit codes shared by every command; the README and ``anomaly --help`` list them.
#: EXIT_ANOMALIES_FOUND is reserved for ``score --fail-on-anomaly`` (batch-scoring issue).
EXIT_OK = 0
EXIT_ANOMALIES_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_BAD_MODEL = 3
EXIT_INTERNAL = 4


class AnomalyError(Exception):
    """Base class for errors the CLI reports as one ``Error:`` line."""

    exit_code = EXIT_BAD_INPUT


class InputError(AnomalyError, ValueError):
    """A data file (or a command-line value) is missing, unreadable or malformed."""

    exit_code = EXIT_BAD_INPUT


class ModelError(AnomalyError):
    """A model directory is missing, incomplete, tampered with or from a newer format."""

    exit_code = EXIT_BAD_MODEL


class NotFittedError(AnomalyError, RuntimeError):
    """A detector was used before ``fit`` (or ``load``)."""

    exit_code = EXIT_BAD_MODEL
