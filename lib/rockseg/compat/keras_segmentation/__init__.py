"""keras-segmentation 0.3.0's interface (divamgupta/image-segmentation-keras) on rockseg.

Change the import lines and nothing else::

    from rockseg.compat.keras_segmentation.models.unet import vgg_unet
    from rockseg.compat.keras_segmentation.predict import model_from_checkpoint_path, predict_multiple

    model = vgg_unet(n_classes=51, input_height=416, input_width=608)
    model.train(train_images="dataset/images_prepped_train/",
                train_annotations="dataset/annotations_prepped_train/",
                checkpoints_path="weights/vgg_unet_1", epochs=5)
    out = model.predict_segmentation(inp="dataset/images_prepped_test/0016E5_07965.png", out_fname="out.png")

The models come from rockseg's registry (:func:`rockseg.models.build_model`), ``train`` is
a rockseg run (:func:`rockseg.training.fit.fit`, a ``run.json`` in ``<checkpoints_path>_run/``),
prediction is rockseg's sliding-window inference on whole images, and the IoUs come from
:class:`rockseg.evaluation.metrics.ConfusionAccumulator`. What differs from keras-segmentation
and what is not supported: README, "Coming from keras-segmentation".

Submodules: ``models.unet`` (the networks), ``models.all_models`` (``model_from_name``),
``train`` (``train``, ``find_latest_checkpoint``), ``predict`` (``predict``,
``predict_multiple``, ``evaluate``, ``model_from_checkpoint_path``, ``class_colors``).
"""
from __future__ import annotations

import importlib

_SUBMODULES = ("models", "predict", "train")
__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:  # `import ...keras_segmentation as ks; ks.models.unet` as in keras-segmentation
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
