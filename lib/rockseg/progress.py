"""rockseg's one progress bar (tqdm on stderr), shared by every stage."""
from __future__ import annotations

__all__ = ["progress_bar"]


def progress_bar(total, desc, progress, unit="tile", leave=False):
    """A tqdm bar on stderr; a no-op unless ``progress``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=leave)
