"""The ``anomaly`` command line (:mod:`anomaly.cli.commands`; ``anomaly mnist`` in
:mod:`anomaly.cli.mnist`). A thin layer: each command parses options, calls the library
and turns its errors into one line and an exit code. Nothing below imports it."""

from .commands import app, main, run

__all__ = ["app", "main", "run"]
