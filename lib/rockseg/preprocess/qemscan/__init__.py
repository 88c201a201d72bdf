"""SEM + QEMSCAN to training masks (``rockseg.preprocess.qemscan``), one module per step.

The five steps of the original SEM/QEMSCAN project, as functions:

1. :func:`rgb_to_classes`: QEMSCAN colour map -> mineral indices, tolerant to
   JPEG-like colour noise; colours not in the palette are reported with counts.
2. :func:`rockseg.preprocess.ct.denoise` denoises the SEM input.
3. :func:`remove_specks`, :func:`fill_holes`, :func:`boundary_band`,
   :func:`apply_ignore_band`: delete label errors, flag class boundaries.
4. :class:`MergeTable` + :func:`merge_classes`: declarative merge of the minerals
   into training classes (e.g. 23 minerals -> pore, quartz, albite,
   clays+accessories), saved as JSON next to the masks.
5. :func:`make_tiles` + :func:`save_tiles`: tiles with their masks, dropping the
   ones with too much unknown/ignored content.

:func:`sem_study_fields` + :func:`save_study` run all of it on a synthetic study set
shaped like the original project's (9 fields, 4 classes) and write it as an
``images/`` + ``masks/`` folder pair for training.

The original project aligned SEM and QEMSCAN by hand; :func:`register_qemscan`
does it by phase correlation. Sign convention: the estimated ``shift`` ``(dy, dx)``
(in SEM pixels) is what to apply to the upsampled QEMSCAN map (``apply_shift``,
``scipy.ndimage.shift`` semantics: content moves by ``+shift``) to align it with
the SEM image.
"""
from __future__ import annotations

from rockseg.errors import RegistrationError
from rockseg.preprocess.qemscan.cleanup import apply_ignore_band, boundary_band, fill_holes, remove_specks
from rockseg.preprocess.qemscan.colours import UNKNOWN, ColourReport, rgb_to_classes
from rockseg.preprocess.qemscan.merge import EXAMPLE_MERGE_TABLE, EXAMPLE_MINERALS_23, MergeTable, merge_classes
from rockseg.preprocess.qemscan.register import (
    RegistrationResult,
    apply_shift,
    label_residual,
    register_qemscan,
    render_labels,
    upsample_labels,
    warp_labels,
)
from rockseg.preprocess.qemscan.study import (
    STUDY_CLASSES,
    SemStudy,
    StudyField,
    save_study,
    sem_study_fields,
    study_merge_table,
)
from rockseg.preprocess.qemscan.tiles import TileReport, make_tiles, save_tiles

__all__ = [
    "UNKNOWN",
    "ColourReport",
    "rgb_to_classes",
    "MergeTable",
    "merge_classes",
    "EXAMPLE_MINERALS_23",
    "EXAMPLE_MERGE_TABLE",
    "RegistrationError",
    "label_residual",
    "RegistrationResult",
    "upsample_labels",
    "render_labels",
    "apply_shift",
    "warp_labels",
    "register_qemscan",
    "remove_specks",
    "fill_holes",
    "boundary_band",
    "apply_ignore_band",
    "TileReport",
    "make_tiles",
    "save_tiles",
    "STUDY_CLASSES",
    "SemStudy",
    "StudyField",
    "sem_study_fields",
    "study_merge_table",
    "save_study",
]
