"""Training: losses, the tf.data pipeline, the recipe (loss/optimiser/schedule), checkpoints,
callbacks, the loop, the GAN, and run folders.

    from rockseg.training import train_run, baseline_run, fit

Importing this package does not import TensorFlow; the functions do, when called.
"""
from rockseg.training.checkpoints import WeightAverage, read_state, restore_state
from rockseg.training.fit import fit
from rockseg.training.gan import fit_pix2pix
from rockseg.training.losses import (
    categorical_focal_loss,
    class_weights,
    dice_focal_loss,
    dice_loss,
    weighted_categorical_crossentropy,
)
from rockseg.training.pipeline import Augment, augment_pair, make_dataset
from rockseg.training.recipe import LOSSES, OPTIMIZERS, SCHEDULES, make_loss, make_optimizer, make_schedule, validate_config
from rockseg.training.runs import baseline_run, train_run

__all__ = [
    "LOSSES", "OPTIMIZERS", "SCHEDULES", "Augment", "WeightAverage", "augment_pair", "baseline_run",
    "categorical_focal_loss", "class_weights", "dice_focal_loss", "dice_loss", "fit", "fit_pix2pix",
    "make_dataset", "make_loss", "make_optimizer", "make_schedule", "read_state", "restore_state", "train_run",
    "validate_config", "weighted_categorical_crossentropy",
]
