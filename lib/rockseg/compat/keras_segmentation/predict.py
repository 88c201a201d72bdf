"""keras-segmentation's ``predict`` module on rockseg's sliding-window inference and metrics.

``predict``, ``predict_multiple`` and ``evaluate`` take ``model=`` or ``checkpoints_path=``
(:func:`model_from_checkpoint_path`) as keras-segmentation does; the model methods
``predict_segmentation``, ``predict_multiple`` and ``evaluate_segmentation`` are the same
functions bound to the model. ``class_colors`` are keras-segmentation's (BGR, as OpenCV
wrote them).
"""
from __future__ import annotations

from rockseg.compat.keras_segmentation import _core
from rockseg.compat.keras_segmentation._build import model_from_checkpoint_path
from rockseg.errors import RocksegError

__all__ = ["class_colors", "evaluate", "model_from_checkpoint_path", "predict", "predict_multiple"]

class_colors = _core.CLASS_COLORS


def _model(model, checkpoints_path):
    if model is None:
        if checkpoints_path is None:
            raise RocksegError("give model= or checkpoints_path=")
        model = model_from_checkpoint_path(checkpoints_path)
    return model


def predict(model=None, inp=None, out_fname=None, checkpoints_path=None, overlay_img=False, class_names=None,
            show_legends=False, colors=class_colors, prediction_width=None, prediction_height=None,
            read_image_type=1):
    """Class indices ``(H, W)`` of one image; the coloured segmentation to ``out_fname``."""
    return _core.predict_segmentation(_model(model, checkpoints_path), inp, out_fname, overlay_img=overlay_img,
                                      class_names=class_names, show_legends=show_legends, colors=colors,
                                      prediction_width=prediction_width, prediction_height=prediction_height)


def predict_multiple(model=None, inps=None, inp_dir=None, out_dir=None, checkpoints_path=None, overlay_img=False,
                     class_names=None, show_legends=False, colors=class_colors, prediction_width=None,
                     prediction_height=None, read_image_type=1):
    """:func:`predict` for a list of inputs or every image in ``inp_dir``; returns the list of labels."""
    return _core.predict_multiple(_model(model, checkpoints_path), inps, inp_dir, out_dir,
                                  overlay_img=overlay_img, class_names=class_names, show_legends=show_legends,
                                  colors=colors, prediction_width=prediction_width,
                                  prediction_height=prediction_height)


def evaluate(model=None, inp_images=None, annotations=None, inp_images_dir=None, annotations_dir=None,
             checkpoints_path=None, read_image_type=1):
    """``{"frequency_weighted_IU", "mean_IU", "class_wise_IU", "confusion"}`` on whole images."""
    return _core.evaluate_segmentation(_model(model, checkpoints_path), inp_images, annotations, inp_images_dir,
                                       annotations_dir)
