"""Tables of rows (pyarrow) appended to one binary file as CSV or Parquet, streamed.

What scores files and beats files are written with: the header once, then each table's
rows as they come (a label holding a delimiter or a quote is quoted), or Parquet row
groups.
"""

from __future__ import annotations

import csv
import io
from typing import IO

from ..choices import OutputFormat


class TableWriter:
    """Appends tables to a binary file as CSV (header first) or Parquet (``format``)."""

    def __init__(self, file: IO[bytes], format: str):
        self.file, self.format = file, format
        self._parquet = None
        self._header_written = False

    def write(self, table) -> None:
        """Append a ``pyarrow.Table``'s rows (the first one written sets the columns)."""
        if self.format == OutputFormat.parquet.value:
            import pyarrow.parquet as pq

            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.file, table.schema)
            self._parquet.write_table(table)
            return
        if not self._header_written:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(table.column_names)
            self.file.write(text.getvalue().encode())
            self._header_written = True
        self.file.write(_csv_bytes(table))

    def close(self) -> None:
        """Finish the file (Parquet's footer); the file itself is the caller's to close."""
        if self._parquet is not None:
            self._parquet.close()


def _csv_bytes(table) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    buffer = io.BytesIO()
    try:
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False,
                                                            quoting_style="none"))
    except pa.ArrowInvalid:  # A label holds a delimiter or a quote: quote the text.
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False,
                                                            quoting_style="needed"))
    return buffer.getvalue()
