"""Synthetic twins: rockseg's embedded default data, used when no real data is reachable.

* :func:`synthetic_sandstone` - an X-ray micro-CT volume of a sandstone core with exact labels
  (0 pore/air, 1 clay, 2 quartz, 3 pyrite), modelled on the real ``sandstone_versa`` slices.
* :func:`synthetic_sem_qemscan` - a BSE-SEM image and a low-resolution, misregistered
  QEMSCAN colour map of the same many-mineral field.
* :func:`synthetic_thin_section` - an RGB plane-polarised photomicrograph with blue-dye pores.
* :func:`class_grey_stats`, :func:`grey_histograms`, :func:`measure_real_stats` - the
  statistics a twin is fitted to and compared with.

NumPy/SciPy only: importing this package does not import TensorFlow.
"""
from rockseg.data.synth.sandstone import (
    SANDSTONE_CLASSES,
    SANDSTONE_COLOURS,
    SANDSTONE_DEFAULTS,
    synthetic_sandstone,
)
from rockseg.data.synth.sem import SEM_MINERALS, synthetic_sem_qemscan
from rockseg.data.synth.stats import class_grey_stats, grey_histograms, measure_real_stats
from rockseg.data.synth.thinsection import THIN_SECTION_CLASSES, THIN_SECTION_COLOURS, synthetic_thin_section

__all__ = [
    "SANDSTONE_CLASSES", "SANDSTONE_COLOURS", "SANDSTONE_DEFAULTS", "SEM_MINERALS", "THIN_SECTION_CLASSES",
    "THIN_SECTION_COLOURS", "class_grey_stats", "grey_histograms", "measure_real_stats", "synthetic_sandstone",
    "synthetic_sem_qemscan", "synthetic_thin_section",
]
