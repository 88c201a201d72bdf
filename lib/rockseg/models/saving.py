"""Loading a saved ``model.keras`` quickly, whatever its size.

A ``.keras`` file is a zip archive holding ``config.json`` and ``model.weights.h5``. Keras
reads the weights straight out of the archive, and HDF5 jumps back and forth in that file;
on Python 3.11 every backward jump inside a zip member re-reads the member from its start,
so the time grows with the square of the file size: a 24 M-parameter ResNet34 U-Net with
its optimizer state (a 290 MB file) took over a minute and a half on 2 CPU cores, a
2 M-parameter U-Net a second. :func:`load_keras_model` builds the model from the config
and loads the weights from a temporary copy of the ``.h5`` member instead (seconds for
the same file), and gives the same model, weights and outputs as
``keras.models.load_model(path, compile=False)``.
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

__all__ = ["load_keras_model"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"


def load_keras_model(path, *, compile: bool = False):
    """The Keras model saved at ``path`` (a ``.keras`` file), uncompiled unless ``compile``.

    The project's custom layers are registered first. Archives that are not the plain
    config + ``.h5`` weights layout (assets, ``.npz`` weights), and ``compile=True``, go
    through ``keras.models.load_model`` unchanged.
    """
    import rockseg.models.registry  # noqa: F401  (registers the project's custom layers)
    from rockseg._tf import keras

    k = keras()
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        plain = CONFIG_FILE in names and WEIGHTS_FILE in names and names <= {CONFIG_FILE, WEIGHTS_FILE, "metadata.json"}
        if compile or not plain:
            return k.models.load_model(str(path), compile=compile)
        config = json.loads(zf.read(CONFIG_FILE))
        config["compile_config"] = None  # as load_model(compile=False)
        model = k.saving.deserialize_keras_object(config)
        with tempfile.TemporaryDirectory(prefix="rockseg-weights-") as tmp:
            model.load_weights(zf.extract(WEIGHTS_FILE, tmp))
    return model
