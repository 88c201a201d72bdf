"""The session every course notebook starts with: profile, seeds, figure defaults, one line."""
from __future__ import annotations

import os
import platform
import random

import numpy as np

from rockseg import __version__
from rockseg.config import data_dir, get_profile


def setup(profile: str | None = None, seed: int = 0, *, quiet: bool = False, **overrides) -> dict:
    """Resolve the profile, seed Python and NumPy, set figure defaults, print one line.

    TensorFlow is seeded too, but only if the notebook has already imported it.
    Returns the profile settings (a dict) for the notebook to read.
    """
    prof = get_profile(profile, **overrides)
    prof["seed"] = seed
    random.seed(seed)
    np.random.seed(seed)
    if "tensorflow" in __import__("sys").modules:
        from rockseg._tf import set_seed

        set_seed(seed)
    try:
        import matplotlib as mpl

        # readable from the back of a lecture room: nothing under 10 pt
        mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "image.interpolation": "nearest",
                             "font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12,
                             "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11})
    except ImportError:  # pragma: no cover
        pass
    if not quiet:
        dd = data_dir()
        print(
            f"rockseg {__version__} | profile {prof['name']} ({prof['description']}) | seed {seed} | "
            f"data dir {dd if dd else 'none (download cache / synthetic twin)'} | "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
        )
    return prof
