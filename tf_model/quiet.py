"""Keep C/C++ library logs (TensorFlow start-up, the TFLite converter, TFLite Micro) off the terminal.

Those libraries write to file descriptor 2 directly, below Python's sys.stderr, so redirecting
sys.stderr does not silence them. What they wrote is kept: callers show it when something fails.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def captured_c_stderr():
    """Capture what C/C++ code writes to file descriptor 2; the text is in `log["value"]` after."""
    log = {"value": ""}
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            try:
                yield log
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                log["value"] = tmp.read().decode(errors="replace")
        finally:
            os.close(saved)


def import_keras():
    """`keras` with the PicoGPT layers registered for loading, TensorFlow's start-up log hidden
    (CUDA probing on machines without a GPU)."""
    with captured_c_stderr():
        import keras

        from . import model as _registers_custom_layers  # noqa: F401

    return keras
