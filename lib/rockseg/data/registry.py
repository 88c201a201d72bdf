"""Named datasets: where their files come from, how to check them, what the labels mean.

The definitions live in ``registry.json`` (``data/registry.json`` in the
repository, installed inside the package). :func:`fetch` returns a folder that
holds a dataset's files, verified against their registered hashes:

1. an offline data folder (the ``data_dir`` argument or ``$ROCKSEG_DATA_DIR``)
   that holds ``<folder>/`` is used as is, without touching the network;
2. otherwise the files are downloaded with pooch into
   ``rockseg.config.cache_dir()/<folder>/`` (and reused from there next time).

Files are checked by sha256, or by git blob SHA-1 where no sha256 is known.
"""
from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
from importlib import resources
from pathlib import Path

from rockseg import config
from rockseg.errors import DataError, HashMismatchError, RegistryError, RocksegError

__all__ = ["list_datasets", "get_spec", "available_offline", "status", "is_cached", "offline_folder",
           "fetch", "file_hash", "git_blob_sha1", "verify_file"]


@functools.lru_cache(maxsize=1)
def _registry() -> dict:
    """The parsed registry.json (read once)."""
    text = resources.files("rockseg.data").joinpath("registry.json").read_text(encoding="utf-8")
    return json.loads(text)["datasets"]


def list_datasets() -> list[str]:
    """Names of every registered dataset, in registry order."""
    return list(_registry())


def get_spec(name: str) -> dict:
    """A copy of dataset ``name``'s definition (with ``name`` filled in).

    An unknown name raises ``RegistryError`` suggesting the closest names.
    """
    reg = _registry()
    if name not in reg:
        close = difflib.get_close_matches(str(name), list(reg), n=3, cutoff=0.5)
        if not close:  # try ignoring separators: sandstone_versa -> sandstone-versa
            norm = {k.replace("-", "").replace("_", ""): k for k in reg}
            hit = norm.get(str(name).lower().replace("-", "").replace("_", ""))
            close = [hit] if hit else []
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
        raise RegistryError(f"unknown dataset {name!r}{hint} Registered: {', '.join(reg)}")
    spec = copy.deepcopy(reg[name])
    spec["name"] = name
    return spec


# ------------------------------------------------------------------- hashing
_HASH_CACHE: dict[tuple, str] = {}


def git_blob_sha1(path) -> str:
    """Git's blob id of a file: ``sha1(b"blob <size>\\0" + data)``."""
    path = Path(path)
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hash(path, algorithm: str = "sha256") -> str:
    """``sha256`` or ``git_blob_sha1`` of a file, memoised per (path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, algorithm)
    if key not in _HASH_CACHE:
        if algorithm == "sha256":
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            _HASH_CACHE[key] = h.hexdigest()
        elif algorithm == "git_blob_sha1":
            _HASH_CACHE[key] = git_blob_sha1(path)
        else:
            raise ValueError(f"unknown hash algorithm {algorithm!r}")
    return _HASH_CACHE[key]


def _expected(entry: dict) -> tuple[str, str]:
    if entry.get("sha256"):
        return "sha256", entry["sha256"]
    if entry.get("git_blob_sha1"):
        return "git_blob_sha1", entry["git_blob_sha1"]
    raise RegistryError("registry entry has neither sha256 nor git_blob_sha1")


def verify_file(path, entry: dict) -> None:
    """Check one file against its registry entry; ``HashMismatchError`` names both hashes."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    algo, want = _expected(entry)
    size = entry.get("bytes")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise HashMismatchError(
            f"file has {actual_size} bytes, the registry expects {size} "
            f"(expected {algo} {want}); delete or replace it", path=path)
    got = file_hash(path, algo)
    if got != want:
        raise HashMismatchError(
            f"{algo} mismatch: expected {want}, actual {got}; the file is altered or "
            f"a different version; delete or replace it", path=path)


# ---------------------------------------------------------- where the files are
def offline_folder(name: str, data_dir=None) -> Path | None:
    """``<data_dir>/<folder>`` if the offline data folder holds it, else None."""
    spec = get_spec(name)
    root = config.data_dir(data_dir)
    if root is None or not spec.get("folder"):
        return None
    folder = root / spec["folder"]
    return folder if folder.is_dir() else None


def _complete(folder: Path, spec: dict) -> bool:
    for rel, entry in spec["files"].items():
        f = folder / rel
        if not f.is_file():
            return False
        if entry.get("bytes") is not None and f.stat().st_size != entry["bytes"]:
            return False
    return True


def is_cached(name: str) -> bool:
    """Whether every file of ``name`` is in the download cache (sizes checked, not hashes)."""
    spec = get_spec(name)
    if not spec.get("folder"):
        return False
    return _complete(config.cache_dir() / spec["folder"], spec)


def status(name: str, data_dir=None) -> tuple[str, Path | None]:
    """Where ``name`` would come from: ``("generated", None)``, ``("offline", folder)``,
    ``("cached", folder)`` or ``("online", None)`` (needs a download).

    Files are checked for presence and size here; hashes are checked by :func:`fetch`.
    """
    spec = get_spec(name)
    if not spec.get("folder"):
        return ("generated", None) if spec.get("generator") else ("online", None)
    folder = offline_folder(name, data_dir)
    if folder is not None and _complete(folder, spec):
        return "offline", folder
    if is_cached(name):
        return "cached", config.cache_dir() / spec["folder"]
    return "online", None


def available_offline(name: str, data_dir=None) -> bool:
    """Whether ``name`` loads without the network: generated, or every file present
    (right size) in the offline data folder or the download cache."""
    return status(name, data_dir)[0] != "online"


def fetch(name: str, data_dir=None, *, progress: bool = False) -> Path:
    """Return a folder holding every file of ``name``, each verified by its hash.

    An offline data folder (argument or ``$ROCKSEG_DATA_DIR``) with ``<folder>/``
    is used without touching the network: a missing file raises ``DataError``,
    an altered one ``HashMismatchError``. Otherwise files are downloaded with
    pooch into the cache (kept there for next time). Generated datasets have
    nothing to fetch (``RegistryError``).
    """
    spec = get_spec(name)
    if not spec.get("folder"):
        raise RegistryError(f"dataset {name!r} is generated by {spec.get('generator')}, "
                            f"not downloaded: use rockseg.datasets.load_dataset({name!r})")
    folder = offline_folder(name, data_dir)
    if folder is not None:
        missing = [rel for rel in spec["files"] if not (folder / rel).is_file()]
        if missing:
            raise DataError(
                f"offline folder for {name!r} lacks {len(missing)} file(s): "
                f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}", path=folder)
        for rel, entry in spec["files"].items():
            verify_file(folder / rel, entry)
        return folder
    return _download(spec, progress=progress)


def _download(spec: dict, *, progress: bool) -> Path:
    import pooch

    target = config.cache_dir() / spec["folder"]
    for rel, entry in spec["files"].items():
        dest = target / rel
        algo, want = _expected(entry)
        known = f"sha256:{want}" if algo == "sha256" else None
        try:
            pooch.retrieve(entry["url"], known_hash=known, fname=dest.name,
                           path=dest.parent, progressbar=progress)
        except ValueError as exc:  # pooch: hash of the download does not match
            if "hash" in str(exc).lower():
                raise HashMismatchError(f"download does not match the registered sha256 {want}: "
                                        f"{exc}", path=dest) from exc
            raise RocksegError(_offline_hint(spec, rel, exc)) from exc
        except Exception as exc:  # network: ConnectionError, HTTPError, timeouts, ...
            raise RocksegError(_offline_hint(spec, rel, exc)) from exc
        if algo == "git_blob_sha1":
            got = file_hash(dest, algo)
            if got != want:
                dest.unlink(missing_ok=True)
                raise HashMismatchError(f"git blob SHA-1 mismatch: expected {want}, actual {got}; "
                                        f"the download was deleted", path=dest)
        elif entry.get("bytes") is not None and dest.stat().st_size != entry["bytes"]:
            raise HashMismatchError(f"file has {dest.stat().st_size} bytes, expected "
                                    f"{entry['bytes']}", path=dest)
    return target


def _offline_hint(spec: dict, rel: str, exc: Exception) -> str:
    return (f"cannot download {rel} of dataset {spec['name']!r} ({type(exc).__name__}: {exc}). "
            f"It is not available offline: set {config.DATA_DIR_ENV} (or pass data_dir=) to a "
            f"folder holding {spec['folder']}/ laid out like the registry's files, or connect "
            f"to the internet. Downloads are cached in {config.cache_dir()}.")


def clear_hash_cache() -> None:
    """Forget memoised file hashes (they are keyed by path, size and mtime anyway)."""
    _HASH_CACHE.clear()



def overview(data_dir=None) -> list[dict]:
    """One row per registered dataset: name, kind, classes, licence, status, folder."""
    rows = []
    for name in list_datasets():
        spec = get_spec(name)
        where, folder = status(name, data_dir)
        rows.append({"name": name, "kind": spec.get("kind", ""), "classes": list(spec["class_names"]),
                     "licence": spec.get("licence", "unknown"), "status": where,
                     "folder": str(folder) if folder else "", "spec": spec})
    return rows
