"""PicoGPT model library. `PicoGPTConfig` imports without TensorFlow; the Keras model loads on first use."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter

from .config import PicoGPTConfig


def __getattr__(name):
    # Keras/TensorFlow take seconds to import: only pay for them when the model is actually used.
    if name in ("PicoGPT", "count_params"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'tf_model' has no attribute {name!r}")


__all__ = ["PicoGPT", "PicoGPTConfig", "count_params"]
