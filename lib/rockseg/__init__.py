"""rockseg: multi-mineral semantic segmentation of rock images.

Importing the package sets the two environment variables that
``segmentation_models`` 1.0.1 needs (``SM_FRAMEWORK=tf.keras`` and
``TF_USE_LEGACY_KERAS=1``) so every model shares the Keras 2 of ``tf-keras``.
This is the only import-time side effect; TensorFlow itself is imported lazily
by the modules that need it (``rockseg.models``, ``rockseg.losses``, ...).
"""
import os as _os

_os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

__all__ = ["__version__"]
