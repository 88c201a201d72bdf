"""Scoring thin-section predictions against the grey-bin rule their labels were made with."""
from __future__ import annotations

import numpy as np

from rockseg.errors import DataError
from rockseg.evaluation.metrics import ConfusionAccumulator
from rockseg.preprocess import thinsection as ts

__all__ = ["rule_scores"]


def rule_scores(images, labels, predictions, *, values=(1, 2, 3, 4, 5), epoxy_value: int = 3) -> dict:
    """How a model's label maps compare with grey-bin labels, image by image.

    ``images``: RGB(A) images; ``labels``: their label maps (values ``values``, e.g. 1..5);
    ``predictions``: the model's maps in the same values (anything else counts as wrong).
    Returns ``per_class_iou`` (one per value) and ``miou`` over all images, ``accuracy``,
    and per image ``rule`` (pixel agreement with the published rule, the cuts
    0.25/0.4/0.6/0.75, applied to the image), ``variant`` (agreement with the sibling
    repository's rule, top cut 0.8) and ``porosity_pred``/``porosity_label`` (the
    ``epoxy_value`` fraction).
    """
    values = [int(v) for v in values]
    if not len(images) == len(labels) == len(predictions):
        raise DataError(f"{len(images)} images, {len(labels)} label maps and {len(predictions)} predictions")
    lut = np.zeros(257, np.uint8)  # value -> class 1..n; anything else (index 256 too) -> 0 ("other")

    def classes(a):
        return lut[np.where((a >= 0) & (a <= 255), a, 256)]

    lut[values] = np.arange(1, len(values) + 1)
    acc = ConfusionAccumulator(len(values) + 1, ["other"] + [str(v) for v in values], ignore_index=None)
    rows = []
    for rgb, lab, pred in zip(images, labels, predictions):
        lab = np.asarray(lab).astype(np.int64)
        pred = np.asarray(pred).astype(np.int64)
        acc.update(classes(lab), classes(pred))
        rows.append({"rule": ts.rule_agreement(rgb, pred), "variant": ts.rule_agreement(rgb, pred,
                                                                                        ts.VARIANT_THRESHOLDS),
                     "porosity_pred": ts.epoxy_porosity(pred, epoxy_value),
                     "porosity_label": ts.epoxy_porosity(lab, epoxy_value)})
    iou = [float(v) for v in acc.per_class_iou()[1:]]
    return {"per_class_iou": iou, "miou": float(np.nanmean(iou)), "accuracy": float(acc.pixel_accuracy()),
            "images": rows}
