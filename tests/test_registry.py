"""rockseg.data.registry: dataset definitions, hash checks, offline folders and downloads."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rockseg.data import registry
from rockseg.errors import DataError, HashMismatchError, RegistryError, RocksegError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_data_env(tmp_path, monkeypatch):
    """No offline data folder and an empty download cache."""
    monkeypatch.delenv("ROCKSEG_DATA_DIR", raising=False)
    monkeypatch.setenv("ROCKSEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_package_registry_is_data_registry():
    packaged = json.loads((ROOT / "lib" / "rockseg" / "data" / "registry.json").read_text())
    assert packaged == json.loads((ROOT / "data" / "registry.json").read_text())
    assert set(registry.list_datasets()) >= {
        "sandstone-versa", "thin-sections-philliec459", "thin-sections-philliec459-semseg",
        "sandstone-256-digitalsreeni", "synthetic-sandstone"}


@pytest.mark.parametrize("name", registry.list_datasets())
def test_every_spec_is_complete(name):
    spec = registry.get_spec(name)
    for key in ("description", "kind", "class_names", "class_colours", "mask_encoding",
                "licence", "citation", "files"):
        assert spec.get(key) is not None, f"{name} lacks {key}"
    assert len(set(spec["class_names"])) == len(spec["class_names"]), "class names must be unique"
    assert len(spec["class_colours"]) == len(spec["class_names"])
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in spec["class_colours"])
    for rel, entry in spec["files"].items():
        assert entry["url"].startswith("https://"), rel
        assert entry.get("sha256") or entry.get("git_blob_sha1"), rel
    if "samples" in spec:
        ids = [s["id"] for s in spec["samples"]]
        assert len(set(ids)) == len(ids)
        for s in spec["samples"]:
            assert s["image"] in spec["files"] and s["mask"] in spec["files"]
        grouped = [i for members in spec["split"].values() for i in members]
        assert sorted(map(str, grouped)) == sorted(map(str, ids)), "every sample in exactly one split"
    else:
        fr = spec["split_z_fractions"]
        spans = sorted(fr.values())
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "z slabs must not overlap"


def test_sandstone_versa_definition():
    spec = registry.get_spec("sandstone-versa")
    assert spec["class_names"] == ["pore", "clay", "quartz", "pyrite"]
    assert spec["class_colours"] == [[0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 0]]
    assert spec["split"] == {"train": [0, 50, 100, 150, 200, 250], "val": [300],
                             "test": [350, 400], "extra": [180]}
    assert spec["excluded_by_default"] == ["extra"]
    assert len(spec["files"]) == 20
    z180 = next(s for s in spec["samples"] if s["id"] == 180)
    assert z180["mask_encoding"]["values"] == {"33": 0, "201": 1, "231": 2, "65": 3}


def test_thin_section_labels_shifted_to_zero():
    for name in ("thin-sections-philliec459", "thin-sections-philliec459-semseg"):
        spec = registry.get_spec(name)
        assert spec["mask_encoding"]["values"] == {str(v): v - 1 for v in range(1, 6)}
        assert len(spec["samples"]) == 12
    variant = registry.get_spec("thin-sections-philliec459-semseg")
    assert all(s["mask"].startswith("variant_semseg_repo/") for s in variant["samples"])


def test_online_only_volume_uses_git_blob_ids():
    spec = registry.get_spec("sandstone-256-digitalsreeni")
    blobs = {rel: e["git_blob_sha1"] for rel, e in spec["files"].items()}
    assert blobs == {"images_256_256_256.tif": "7ed31a3546c0f9e1169a509069a0a08f8fc8d368",
                     "masks_256_256_256.tif": "3f62cbc8ec19bdd0722151cc54cedd87f9651ba6"}
    assert all("984203a81337ef8750dd6fbc01e5576a3be21c7f" in e["url"] for e in spec["files"].values())


def test_unknown_name_suggests_close_names():
    with pytest.raises(RegistryError, match=r"unknown dataset 'sandstone_versa'; did you mean 'sandstone-versa'"):
        registry.get_spec("sandstone_versa")
    with pytest.raises(RegistryError, match=r"unknown dataset 'granite'\. Registered: sandstone-versa"):
        registry.get_spec("granite")


def test_git_blob_sha1_matches_git(tmp_path):
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello\n")  # `git hash-object hello.txt`
    assert registry.git_blob_sha1(f) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert registry.file_hash(f, "git_blob_sha1") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_hash_memo_notices_changes(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"one")
    first = registry.file_hash(f)
    f.write_bytes(b"two!")
    os.utime(f, ns=(1, 1))
    assert registry.file_hash(f) != first


def test_generated_dataset_has_nothing_to_fetch(no_data_env):
    assert registry.status("synthetic-sandstone") == ("generated", None)
    assert registry.available_offline("synthetic-sandstone")
    with pytest.raises(RegistryError, match="generated by rockseg.data.synth.synthetic_sandstone"):
        registry.fetch("synthetic-sandstone")


def test_status_without_data(no_data_env, tmp_path):
    assert registry.status("sandstone-versa", tmp_path / "empty") == ("online", None)
    assert not registry.available_offline("sandstone-versa")


# ------------------------------------------------------------- real offline folder
@pytest.mark.real_data
def test_offline_fetch_verifies_hashes(data_dir, no_data_env):
    registry.clear_hash_cache()
    folder = registry.fetch("sandstone-versa", data_dir)
    assert folder == data_dir / "sandstone_versa"
    assert registry.status("sandstone-versa", data_dir) == ("offline", folder)
    spec = registry.get_spec("sandstone-versa")
    hashed = {Path(k[0]).name for k in registry._HASH_CACHE}
    assert {Path(rel).name for rel in spec["files"]} <= hashed  # every file was hashed
    assert registry.fetch("thin-sections-philliec459-semseg", data_dir) == data_dir / "thin_sections_philliec459"
    assert not list(no_data_env.parent.glob("cache/*")), "offline fetch must not download"


def _mirror(data_dir: Path, tmp_path: Path, altered: str | None = None) -> Path:
    """Symlink the real sandstone files into tmp_path, with one altered copy."""
    src = data_dir / "sandstone_versa"
    root = tmp_path / "data"
    for rel in registry.get_spec("sandstone-versa")["files"]:
        dest = root / "sandstone_versa" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel == altered:
            shutil.copyfile(src / rel, dest)
            data = bytearray(dest.read_bytes())
            data[len(data) // 2] ^= 0xFF
            dest.write_bytes(bytes(data))
        else:
            dest.symlink_to(src / rel)
    return root


@pytest.mark.real_data
def test_offline_hash_mismatch(data_dir, tmp_path, no_data_env):
    rel = "Train_masks/Sandstone_Versa0300.tif"
    root = _mirror(data_dir, tmp_path, altered=rel)
    want = registry.get_spec("sandstone-versa")["files"][rel]["sha256"]
    with pytest.raises(HashMismatchError) as err:
        registry.fetch("sandstone-versa", root)
    msg = str(err.value)
    assert rel in msg and f"expected {want}" in msg and "actual " in msg
    assert err.value.path.endswith(rel)
    assert not (no_data_env).exists(), "a bad offline file must not trigger a download"


@pytest.mark.real_data
def test_offline_missing_and_truncated_file(data_dir, tmp_path, no_data_env):
    root = _mirror(data_dir, tmp_path)
    rel = "Train_images/Sandstone_Versa0050.tif"
    (root / "sandstone_versa" / rel).unlink()
    assert registry.status("sandstone-versa", root)[0] == "online"
    with pytest.raises(DataError, match=r"lacks 1 file\(s\): Train_images/Sandstone_Versa0050\.tif"):
        registry.fetch("sandstone-versa", root)
    data = (data_dir / "sandstone_versa" / rel).read_bytes()
    (root / "sandstone_versa" / rel).write_bytes(data[:1000])
    with pytest.raises(HashMismatchError, match=r"Sandstone_Versa0050\.tif: file has 1000 bytes, the registry expects 1020116"):
        registry.fetch("sandstone-versa", root)


# ----------------------------------------------------------- downloads (no network)
@pytest.fixture
def fake_dataset(monkeypatch):
    content = b"pretend TIFF bytes\n"
    import hashlib

    blob = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    spec = {"description": "fake", "kind": "volume", "folder": "fake_ds", "class_names": ["a"],
            "class_colours": [[0, 0, 0]], "mask_encoding": {"type": "index"}, "licence": "MIT",
            "citation": "none",
            "files": {"sub/vol.tif": {"url": "https://example.invalid/vol.tif",
                                      "git_blob_sha1": blob, "bytes": None}}}
    real = registry._registry()
    monkeypatch.setattr(registry, "_registry", lambda: {**real, "fake-ds": spec})
    return content


def _fake_retrieve(payload):
    def retrieve(url, known_hash, fname, path, progressbar=False):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / fname).write_bytes(payload)
        return str(Path(path) / fname)
    return retrieve


def test_download_verifies_git_blob(fake_dataset, no_data_env, monkeypatch):
    import pooch

    monkeypatch.setattr(pooch, "retrieve", _fake_retrieve(fake_dataset))
    folder = registry.fetch("fake-ds")
    assert folder == no_data_env / "fake_ds"
    assert (folder / "sub" / "vol.tif").read_bytes() == fake_dataset
    assert registry.status("fake-ds") == ("cached", folder)


def test_download_with_wrong_blob_is_deleted(fake_dataset, no_data_env, monkeypatch):
    import pooch

    monkeypatch.setattr(pooch, "retrieve", _fake_retrieve(b"something else"))
    with pytest.raises(HashMismatchError, match=r"vol\.tif: git blob SHA-1 mismatch: expected [0-9a-f]{40}, actual"):
        registry.fetch("fake-ds")
    assert not (no_data_env / "fake_ds" / "sub" / "vol.tif").exists()


def test_network_failure_explains_offline_setup(fake_dataset, no_data_env, monkeypatch):
    import pooch
    import requests

    def offline(*a, **k):
        raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(RocksegError) as err:
        registry.fetch("fake-ds")
    msg = str(err.value)
    assert "cannot download sub/vol.tif of dataset 'fake-ds'" in msg
    assert "not available offline" in msg and "ROCKSEG_DATA_DIR" in msg and "fake_ds/" in msg
