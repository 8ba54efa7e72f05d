"""``anomaly data ...``: download the public data sets into the cache, checksums verified.

Like the main command line, this module imports nothing heavy at module level (no
TensorFlow, NumPy or pandas; pooch only once a download starts).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..exceptions import EXIT_BAD_INPUT, EXIT_DOWNLOAD_FAILED, EXIT_OK
from ..datasets import DatasetName
from ..fetch import MIRROR_VARIABLE
from .options import Quiet

FETCH_EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} success (every file in the cache, matching its pinned SHA-256); "
    f"{EXIT_BAD_INPUT} bad usage (an unknown record, say); {EXIT_DOWNLOAD_FAILED} a download "
    "failed (server unreachable, HTTP error, or a file that did not match its SHA-256 and "
    "was refused), or the cache holds something it never stores (a symbolic link, FIFO, "
    "device or directory where a data set's directory or file belongs), left as it is."
)

app = typer.Typer(
    name="data",
    help="Public ECG data sets: download them into a per-user cache, checksums verified.",
    no_args_is_help=True,
)


@app.command(epilog=FETCH_EXIT_CODES_HELP)
def fetch(
    dataset: Annotated[DatasetName, typer.Argument(
        help="ecg5000: ECG5000 as in the TensorFlow autoencoder tutorial (one CSV, 7.9 MB). "
             "mitdb: the MIT-BIH Arrhythmia Database (48 records, about 100 MB).",
        metavar="DATASET", show_default=False)],
    records: Annotated[Optional[list[str]], typer.Argument(
        help="mitdb only: the records to download (100 ... 234). Default: all 48, and "
             "then RECORDS, their list.",
        metavar="[RECORD]...", show_default=False)] = None,
    mirror: Annotated[Optional[str], typer.Option(
        metavar="URL",
        help="Download from this HTTP server instead of the public ones: it serves files "
             "laid out like the cache (URL/ecg5000/ecg5000.csv, URL/mitdb/100.dat), such as "
             f"another machine's cache. Default: ${MIRROR_VARIABLE} when set.",
        show_default=False)] = None,
    quiet: Quiet = False,
) -> None:
    """Download a data set into the cache, each file checked against its pinned SHA-256.

    Files already in the cache that match their SHA-256 are not downloaded again; a
    download that does not match is refused and not kept. Files are written with the
    umask's mode (0644 under 022). The cache is $ANOMALY_CACHE_DIR when set, else the
    per-user cache (~/.cache/anomaly on Linux); that path is followed as given, but no
    symbolic link inside it is. 'anomaly demo' uses the ECG5000 found there, checked again
    each time.
    """
    from ..fetch import fetch_dataset

    def say(message: str) -> None:
        if not quiet:
            typer.echo(message)

    result = fetch_dataset(dataset, records or (), mirror=mirror, echo=say)
    count = len(result.files)
    say(f"{dataset.value}: {count} file{'s' if count > 1 else ''} in {result.directory}, "
        f"SHA-256 verified ({result.downloaded} downloaded, {count - result.downloaded} "
        "already cached).")
