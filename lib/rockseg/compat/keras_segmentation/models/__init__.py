"""keras-segmentation's ``models`` package: ``models.unet`` and ``models.all_models.model_from_name``."""
from __future__ import annotations

from rockseg.compat.keras_segmentation.models import all_models, unet
from rockseg.compat.keras_segmentation.models.all_models import model_from_name

__all__ = ["all_models", "model_from_name", "unet"]
