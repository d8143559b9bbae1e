"""Keep C/C++ library logs (TensorFlow start-up, the TFLite converter, TFLite Micro) off the terminal.

Those libraries write to file descriptor 2 directly, below Python's sys.stderr, so redirecting
sys.stderr does not silence them. What they wrote is kept: callers show it when something fails.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def captured_c_stderr():
    """Capture what C/C++ code writes to file descriptor 2; the text is in `log["value"]` after."""
    log = {"value": ""}
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            try:
                yield log
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                tmp.seek(0)
                log["value"] = tmp.read().decode(errors="replace")
        finally:
            os.close(saved)


def import_keras(verbose=False):
    """`keras` with the PicoGPT layers registered for loading.

    TensorFlow's start-up log (the oneDNN notice, and on machines without a GPU the CUDA probe's
    "failed call to cuInit" errors) is written from C++ before Python could filter it, twice:
    at import and when the devices are first listed. Both happen here, under a capture, unless
    `verbose`. Scripts call this first with their --verbose; later calls cost nothing.
    """
    if "tf_model.model" in sys.modules:
        import keras

        return keras
    with contextlib.nullcontext({"value": ""}) if verbose else captured_c_stderr() as log:
        try:
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe, while the log is captured

            from . import model as _registers_custom_layers  # noqa: F401
        except ImportError:
            error = sys.exc_info()[1]
        else:
            error = None
    if error is not None:
        sys.stderr.write(log["value"])
        raise error
    return keras
