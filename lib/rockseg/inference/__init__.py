"""Inference on images and volumes of any size: the run's model, sliding window, TTA, 2.5D, chunks.

    from rockseg.inference import load_predictor, predict_volume, sliding_window_predict
"""
from rockseg.inference.predictor import (
    Predictor,
    as_predictor,
    keras_predictor,
    load_generator_predictor,
    load_predictor,
    size_multiple,
)
from rockseg.inference.tiling import BLENDS, UNCERTAINTIES, entropy, sliding_window_predict, tta_predict
from rockseg.inference.volume import (
    ChunkResult,
    VolumePrediction,
    default_chunk,
    predict_volume,
    predict_volume_chunked,
)

__all__ = [
    "BLENDS", "UNCERTAINTIES", "ChunkResult", "Predictor", "VolumePrediction", "as_predictor", "default_chunk",
    "entropy", "keras_predictor", "load_generator_predictor", "load_predictor", "predict_volume",
    "predict_volume_chunked", "size_multiple", "sliding_window_predict", "tta_predict",
]
