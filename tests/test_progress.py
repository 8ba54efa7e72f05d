"""Progress on a real terminal (a pseudo-terminal): fit shows its epochs, which of its two
fits, and the loss; score shows rows and rows/s. Silent with --quiet and when not a
terminal, so a cron job's mail holds no control characters."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest


def on_terminal(*args, cwd) -> tuple[int, str]:
    """Run ``anomaly ARGS`` with stdout and stderr on a pseudo-terminal: (exit code, what
    the terminal received)."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "anomaly", *map(str, args)],
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=cwd,
                               env={**os.environ, "TERM": "xterm", "COLUMNS": "160"})
    os.close(slave)
    received, deadline = [], time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the child has closed the terminal.
                break
            if not chunk:
                break
            received.append(chunk)
    finally:
        os.close(master)
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
    return process.wait(timeout=60), b"".join(received).decode(errors="replace")


@pytest.fixture(scope="module")
def terminal_fit(data_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("terminal")
    code, shown = on_terminal("fit", data_dir / "normal.csv", "-m", "model", "--epochs", "3",
                              cwd=directory)
    assert code == 0, shown
    return directory, shown


def test_fit_on_a_terminal_shows_every_fits_epochs_and_loss(terminal_fit):
    _, shown = terminal_fit
    for fit in range(1, 7):  # The five fold models, then the model kept.
        assert f"training (fit {fit}/6)  epoch" in shown, shown[-2000:]
    assert "/3  loss 0." in shown
    assert "Threshold" in shown and "Model saved to model/" in shown


def test_score_on_a_terminal_shows_rows_and_rate(terminal_fit, data_dir):
    directory, _ = terminal_fit
    code, shown = on_terminal("score", data_dir / "batch_nolabel.csv", "-m", "model", "-o", "s.csv",
                              cwd=directory)
    assert code == 0, shown
    assert "rows/s" in shown and "batch_nolabel.csv" in shown


def test_quiet_and_not_a_terminal_draw_no_progress(terminal_fit, data_dir):
    directory, _ = terminal_fit
    one_epoch = ["--epochs", "1", "--threshold-source", "training"]
    code, shown = on_terminal("fit", data_dir / "normal.csv", "-m", "quiet", *one_epoch, "-q",
                              cwd=directory)
    assert code == 0 and shown.strip() == "", shown
    piped = subprocess.run([sys.executable, "-m", "anomaly", "fit", data_dir / "normal.csv",
                            "-m", "piped", *one_epoch], cwd=directory, capture_output=True,
                           text=True, timeout=600)
    assert piped.returncode == 0, piped.stderr
    assert "epoch" not in piped.stderr and "\x1b" not in piped.stderr + piped.stdout
    assert "Model saved to piped/" in piped.stdout
