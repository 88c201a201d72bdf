"""`make book`: the course builds as a static site, and a headless browser shows its pages.

The test sets up what it needs when absent: Jupyter Book in .venv-book (`make book-env`, from
the package index) and Chromium (Debian's package). It is skipped, saying why, only when
neither can be had on this machine.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rockseg.course import book
from rockseg.course import notebooks as nbs

pytestmark = pytest.mark.slow
ROOT = nbs.ROOT


def _jupyter_book() -> str:
    exe = ROOT / ".venv-book" / "bin" / "jupyter-book"
    if not exe.is_file():
        done = subprocess.run(["make", "-s", "book-env"], cwd=ROOT, capture_output=True, text=True)
        if done.returncode or not exe.is_file():
            pytest.skip(f"Jupyter Book could not be installed: {(done.stdout + done.stderr)[-300:]}")
    return str(exe)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, text=True)
        found = shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium and it could not be installed (apt-get install chromium)")
    return found


def _dom(chromium: str, page: Path) -> str:
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]
    return done.stdout


def test_the_book_builds_and_its_pages_show_figures_without_errors(tmp_path):
    exe, chromium = _jupyter_book(), _chromium()
    index = book.build(tmp_path / "book", jupyter_book=exe)
    html = index.parent
    dom = _dom(chromium, index)
    for path in nbs.notebook_paths():  # the index is the notebook table, one link per notebook
        assert f'href="{path.stem}.html"' in dom, path.stem
    page = html / "01_data.html"
    dom = _dom(chromium, page)
    assert "Data: real sandstone micro-CT" in dom
    figures = re.findall(r'<img[^>]+src="(_images/[^"]+\.png)"', dom)
    assert figures, "no figure on the page"
    for rel in figures:
        data = (html / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, rel
    assert "traceback" not in dom.lower() and 'class="output error"' not in dom


def test_staging_refuses_an_empty_course(tmp_path):
    from rockseg.errors import RocksegError

    with pytest.raises(RocksegError, match="no notebooks"):
        book.stage(tmp_path, paths=[])


def test_staging_never_deletes_a_folder_it_did_not_write(tmp_path):
    from rockseg.errors import OutputExistsError

    mine = tmp_path / "src"
    mine.mkdir()
    (mine / "notes.md").write_text("mine")
    with pytest.raises(OutputExistsError, match="not staged by rockseg.course.book"):
        book.stage(tmp_path)
    assert (mine / "notes.md").read_text() == "mine"
    other = tmp_path / "b"
    book.stage(other)
    assert book.stage(other) == other / "src"  # its own staging is replaced
