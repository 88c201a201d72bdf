"""Other libraries' interfaces, built on rockseg.

* :mod:`rockseg.compat.keras_segmentation` - the interface of keras-segmentation 0.3.0
  (``vgg_unet(...)``, ``model.train(...)``, ``model.predict_segmentation(...)``, ...):
  change the import line and the code runs on rockseg's models, training and records.

Importing this package imports nothing heavy.
"""
