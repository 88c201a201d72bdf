"""Root pytest configuration: skip the notebooks that pyproject.toml lists as slow."""
import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent
_SLOW = set(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["rockseg"]["notebooks"]["slow"]
)


def pytest_ignore_collect(collection_path, config):
    if os.environ.get("ROCKSEG_RUN_SLOW"):
        return None
    rel = collection_path.relative_to(ROOT).as_posix() if collection_path.is_relative_to(ROOT) else ""
    return True if rel in _SLOW else None
