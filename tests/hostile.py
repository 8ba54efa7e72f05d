"""What the hostile-input tests share: run ``anomaly`` in a real process and measure its
peak memory, picture a directory before and after, check a refusal."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

from anomaly.exceptions import EXIT_BAD_INPUT

from conftest import assert_one_line_error

ANOMALY = [sys.executable, "-m", "anomaly"]
#: A small process that runs a command and writes its peak RSS (KB) to the file argv[1].
MEASURE = ("import os, sys\n"
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    os.execv(sys.argv[2], sys.argv[2:])\n"
           "_, status, usage = os.wait4(pid, 0)\n"
           "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
           "sys.exit(os.waitstatus_to_exitcode(status) % 256)\n")
#: The streaming budget every hostile input must stay under (peak RSS of the process).
MEMORY_BUDGET_MB = 1500


class Finished:
    """A finished ``anomaly`` process: exit code, output, and peak RSS in MB."""

    def __init__(self, code: int, stdout: str, stderr: str, peak_mb: float):
        self.code, self.stdout, self.stderr, self.peak_mb = code, stdout, stderr, peak_mb


def anomaly(*args, cwd: Path, stdin=None, preexec_fn=None, timeout: float = 300) -> Finished:
    """Run ``anomaly ARGS`` in a new process and measure its peak RSS.

    Through a small launcher (:data:`MEASURE`), not ``os.wait4`` on a child of this
    process: Linux charges a child the memory its parent had when it forked, until the
    new program starts, and this process holds TensorFlow.
    """
    out, err, rss = cwd / ".out.txt", cwd / ".err.txt", cwd / ".rss.txt"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        completed = subprocess.run([sys.executable, "-c", MEASURE, str(rss), *ANOMALY,
                                    *(str(arg) for arg in args)], cwd=cwd,
                                   stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, preexec_fn=preexec_fn,
                                   timeout=timeout)
    peak_kb = int(rss.read_text())
    finished = Finished(completed.returncode, out.read_text(errors="replace"),
                        err.read_text(errors="replace"), peak_kb / 1024)
    for path in (out, err, rss):
        path.unlink()
    return finished


def snapshot(directory: Path) -> dict[str, object]:
    """What every entry below ``directory`` is: a file's SHA-256, a link's target, a
    device or FIFO's kind. Files of the runner itself (``.out.txt``) are left out."""
    found: dict[str, object] = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if name in (".out.txt", ".err.txt", ".rss.txt"):
            continue
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[name] = stat.S_IFMT(info.st_mode)
    return found


def refused(finished: Finished, *fragments: str, code: int = EXIT_BAD_INPUT) -> None:
    assert finished.code == code, finished.stderr
    assert_one_line_error(finished.stderr, *fragments)
