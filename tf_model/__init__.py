"""PicoGPT model library. `PicoGPTConfig` imports without TensorFlow; the Keras model loads on first use.

`import tf_model` is enough for `keras.models.load_model("out-tf-pico-shakespeare-char/model.keras")`:
the PicoGPT layers register with Keras as soon as Keras is imported (or at once if it already is),
without making `import tf_model` itself import TensorFlow.
"""

import importlib.abc
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter

from .config import PicoGPTConfig


def __getattr__(name):
    # Keras/TensorFlow take seconds to import: only pay for them when the model is actually used.
    if name in ("PicoGPT", "count_params"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'tf_model' has no attribute {name!r}")


class _RegisterLayersWithKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `keras` is first imported, it lets the normal finders locate
    it and registers the PicoGPT layers right after Keras' own module has run. Keras resolves
    a saved model's class names ("pico_gpt>PicoGPT") in its registry and imports no module
    outside Keras' own packages, so the layers must be registered before load_model."""

    _searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._searching:
            return None
        self._searching = True  # the lookup below asks every finder again, this one included
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self._searching = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_keras = spec.loader.exec_module

        def exec_module(module):
            run_keras(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            importlib.import_module("tf_model.model")  # registers PicoGPT and its layers

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    from . import model as _registers_custom_layers  # noqa: F401 (Keras is loaded: cheap)
elif not any(isinstance(f, _RegisterLayersWithKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterLayersWithKeras())

__all__ = ["PicoGPT", "PicoGPTConfig", "count_params"]
