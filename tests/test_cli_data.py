"""``rockseg datasets`` and ``rockseg fetch``."""
from __future__ import annotations

import shutil

import pytest

from rockseg.data import registry
from rockseg.cli import main


@pytest.fixture
def no_data_env(tmp_path, monkeypatch):
    monkeypatch.delenv("ROCKSEG_DATA_DIR", raising=False)
    monkeypatch.setenv("ROCKSEG_CACHE_DIR", str(tmp_path / "cache"))


def _rows(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines()[1:] if line.strip() and not line.startswith(" ")}


@pytest.mark.parametrize("command", ["datasets", "fetch"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "--data-dir" in capsys.readouterr().out


def test_datasets_lists_everything_without_data(no_data_env, capsys):
    assert main(["datasets"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(rows) == set(registry.list_datasets())
    assert rows["sandstone-versa"].rstrip().endswith("online")
    assert "4: pore, clay, quartz, pyrite" in rows["sandstone-versa"] and " MIT " in rows["sandstone-versa"]
    assert rows["synthetic-sandstone"].rstrip().endswith("generated")


@pytest.mark.real_data
def test_datasets_shows_offline_folder(data_dir, no_data_env, capsys):
    assert main(["datasets", "--data-dir", str(data_dir), "--verbose"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert f"offline ({data_dir / 'sandstone_versa'})" in rows["sandstone-versa"]
    assert rows["sandstone-256-digitalsreeni"].rstrip().endswith("online")
    assert "citation: Bhattiprolu" in out


@pytest.mark.real_data
def test_fetch_prints_verified_folder(data_dir, no_data_env, capsys):
    assert main(["fetch", "thin-sections-philliec459", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(data_dir / "thin_sections_philliec459")


@pytest.mark.real_data
def test_fetch_reports_hash_mismatch(data_dir, tmp_path, no_data_env, capsys):
    src = data_dir / "thin_sections_philliec459"
    root = tmp_path / "data"
    for rel in registry.get_spec("thin-sections-philliec459")["files"]:
        dest = root / "thin_sections_philliec459" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel == "ClasticThinSectionsLabels/7.png":
            shutil.copyfile(src / rel, dest)
            data = bytearray(dest.read_bytes())
            data[100] ^= 1
            dest.write_bytes(bytes(data))
        else:
            dest.symlink_to(src / rel)
    assert main(["fetch", "thin-sections-philliec459", "--data-dir", str(root)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "rockseg fetch: error:" in captured.err and "ClasticThinSectionsLabels/7.png" in captured.err
    assert "sha256 mismatch" in captured.err


def test_fetch_unknown_name(no_data_env, capsys):
    assert main(["fetch", "sandstone_versa"]) == 1
    assert "did you mean 'sandstone-versa'" in capsys.readouterr().err


def test_fetch_generated(no_data_env, capsys):
    assert main(["fetch", "synthetic-sandstone"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "generated on the fly" in captured.err
