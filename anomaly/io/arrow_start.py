"""pyarrow without pandas: a scoring run's start-up, kept from paying for pandas.

pyarrow has no supported switch for this (its pandas shim imports pandas, when installed,
the first time it converts from or to NumPy: apache/arrow's ``pandas-shim.pxi``), so the
one question it asks is answered with an import refused for that moment. This is the only
place the tool touches the import system; the command line calls it before scoring.
"""

from __future__ import annotations

import sys


class _NoPandas:
    """An import finder that refuses pandas (see :func:`arrow_without_pandas`)."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not imported by scoring", name=name)
        return None


def arrow_without_pandas() -> None:
    """Keep pyarrow from importing pandas in this process.

    pyarrow imports pandas, when it is installed, on its first conversion from or to
    NumPy, to check whether the object is a pandas one: 0.3 to 0.5 s and 45 MB, a third of
    a small scoring run, for objects scoring never makes. pyarrow asks once per process,
    so pandas is refused for that one question and allowed again after it; whatever
    imports pandas later (the recordings' R-peak detector does) gets it as usual.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pyarrow.array([0.0])
    finally:
        sys.meta_path.remove(finder)
