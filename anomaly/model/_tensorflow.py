"""Import TensorFlow and Keras without letting their start-up logging reach the terminal.

TensorFlow's C++ runtime writes lines such as "oneDNN custom operations are on" straight to
file descriptor 2 while it is imported, before ``TF_CPP_MIN_LOG_LEVEL`` is honoured. A cron job
mails everything on stderr, so the import runs with descriptor 2 pointed at a temporary file;
with ``ANOMALY_DEBUG=1`` the captured lines are replayed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from types import ModuleType

_keras: ModuleType | None = None


@contextlib.contextmanager
def quietly():
    """Run a block with file descriptor 2 captured (replayed with ``ANOMALY_DEBUG=1``)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if os.environ.get("ANOMALY_DEBUG"):
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))


#: What training imports (:func:`keras`), which a scoring-only installation leaves out.
TRAINING_MODULES = ("tensorflow", "keras")
#: What a command that needs them says without them.
_MISSING = ("this needs TensorFlow, which this installation of anomaly leaves out ({error}); "
            "install the training extra: pip install '.[train]' from the checkout, or "
            "'anomaly[train]'")


def require_tensorflow() -> None:
    """Fail now, without importing them, when :data:`TRAINING_MODULES` are not installed:
    a command that trains says so before it reads its data, not after."""
    import importlib.util

    missing = [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        from ..exceptions import MissingDependencyError

        raise MissingDependencyError(_MISSING.format(
            error=", ".join(f"No module named '{name}'" for name in missing)))


def keras() -> ModuleType:
    """Return the ``keras`` module, importing TensorFlow quietly on first use."""
    global _keras
    if _keras is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        try:
            with quietly():
                import tensorflow as tf
                import keras as keras_module
        except ImportError as error:
            from ..exceptions import MissingDependencyError

            raise MissingDependencyError(_MISSING.format(error=error)) from None
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="keras")
        _keras = keras_module
    return _keras


def versions() -> dict[str, str]:
    """TensorFlow and Keras versions, for model metadata."""
    keras_module = keras()
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras_module.__version__}
