"""Run-wide settings: where data lives, and the smoke/cpu/full profiles.

``ROCKSEG_DATA_DIR`` (or a ``data_dir`` argument) names an offline folder laid out
like ``shared/data`` (one sub-folder per dataset); ``ROCKSEG_CACHE_DIR`` overrides
the download cache; ``ROCKSEG_PROFILE`` picks the default profile.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

PROFILE_ENV = "ROCKSEG_PROFILE"
DATASET_ENV = "ROCKSEG_DATASET"
DATA_DIR_ENV = "ROCKSEG_DATA_DIR"
CACHE_DIR_ENV = "ROCKSEG_CACHE_DIR"

DEFAULT_PROFILE = "cpu"

# Every default that depends on the compute budget. Modules read their own keys;
# callers override any of them by keyword.
PROFILES: dict[str, dict] = {
    "smoke": {
        "description": "seconds, for CI: tiny shapes, one epoch",
        "synth_shape": (48, 96, 96),
        "notebook_slices": 2,
    },
    "cpu": {
        "description": "minutes on 2 CPU cores, real results",
        "synth_shape": (128, 256, 256),
        "notebook_slices": 9,
    },
    "full": {
        "description": "GPU-scale epochs and patch counts, as in the original projects",
        "synth_shape": (256, 256, 256),
        "notebook_slices": 9,
    },
}


def profile_name(name: str | None = None) -> str:
    """Resolve a profile name: the argument, else ``$ROCKSEG_PROFILE``, else ``cpu``."""
    name = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return name


def get_profile(name: str | None = None, **overrides) -> dict:
    """Return a copy of a profile's settings with ``overrides`` applied."""
    resolved = profile_name(name)
    prof = copy.deepcopy(PROFILES[resolved])
    prof["name"] = resolved
    prof.update({k: v for k, v in overrides.items() if v is not None})
    return prof


def data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The offline data folder: the argument, else ``$ROCKSEG_DATA_DIR``, else None."""
    path = path or os.environ.get(DATA_DIR_ENV)
    return Path(path).expanduser() if path else None


def cache_dir() -> Path:
    """Where downloads are cached (``$ROCKSEG_CACHE_DIR`` or the user cache)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("rockseg"))
