"""The course as a static site: Jupyter Book 1 over the committed notebooks, never executing them.

    python -m rockseg.course.book OUT_DIR [--jupyter-book PATH]      # `make book`

:func:`stage` lays out a book source in ``OUT_DIR/src`` (``_config.yml``, ``_toc.yml``, an
index page holding the notebook table of the README, and copies of the notebooks with
their committed outputs); :func:`build` runs ``jupyter-book build`` on it and returns
``OUT_DIR/src/_build/html/index.html``. Jupyter Book lives in its own environment
(``.venv-book``, made by ``make book``): its Sphinx stack pins versions the project's
environment does not share, and building from committed outputs needs nothing of rockseg.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rockseg.course import notebooks as nbs
from rockseg.errors import OutputExistsError, RocksegError

__all__ = ["build", "stage"]

MARK = "# written by rockseg.course.book"

CONFIG = """# written by rockseg.course.book: edit the generator, not this file
title: "rockseg: segmenting rock images, a course"
author: rockseg
only_build_toc_files: true
execute:
  execute_notebooks: "off"
repository:
  url: {url}
  path_to_book: notebooks
  branch: main
html:
  use_repository_button: true
launch_buttons:
  colab_url: "https://colab.research.google.com"
sphinx:
  config:
    html_show_copyright: false
    suppress_warnings: ["mystnb.unknown_mime_type", "misc.highlighting_failure"]
"""


def stage(out_dir, paths=None) -> Path:
    """Write the book source to ``out_dir/src``; returns that folder. A ``src`` folder that this
    function did not write is refused (``OutputExistsError``), never deleted."""
    src = Path(out_dir) / "src"
    paths = nbs.notebook_paths() if paths is None else list(paths)
    if not paths:
        raise RocksegError("no notebooks to put in the book")
    if src.exists():  # only a folder this function staged before is replaced
        toc = src / "_toc.yml"
        if not (toc.is_file() and toc.read_text().startswith(MARK)):
            raise OutputExistsError(f"{src}: exists and was not staged by rockseg.course.book; "
                                    "choose another OUT_DIR")
        shutil.rmtree(src)
    src.mkdir(parents=True)
    url = nbs.repo_url()
    (src / "_config.yml").write_text(CONFIG.format(url=url))
    table = nbs.readme_table(paths).replace("](notebooks/", "](").replace(".ipynb)", ")")
    (src / "index.md").write_text(
        "# rockseg: segmenting rock images\n\n"
        "A course in notebooks on multi-mineral semantic segmentation of sandstone micro-CT, SEM images "
        "labelled from QEMSCAN maps and petrographic thin sections, and the `rockseg` library behind it. "
        "Every page shows the outputs of one real run of the notebook in the `cpu` profile.\n\n"
        f"{table}\n\nSource, issues and the command-line tool: <{url}>.\n")
    toc = [MARK, "format: jb-book", "root: index", "chapters:"]
    for p in paths:
        shutil.copy2(p, src / p.name)
        toc.append(f"- file: {p.stem}")
    (src / "_toc.yml").write_text("\n".join(toc) + "\n")
    return src


def build(out_dir, *, jupyter_book: str = "jupyter-book", paths=None, quiet: bool = True) -> Path:
    """Stage and build the book; returns the path of its ``index.html``."""
    src = stage(out_dir, paths)
    cmd = [jupyter_book, "build", str(src), "--builder", "html"]
    if quiet:
        cmd.append("--quiet")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise RocksegError(f"{jupyter_book!r} not found: `make book` installs Jupyter Book in .venv-book") from None
    index = src / "_build" / "html" / "index.html"
    if done.returncode or not index.is_file():
        raise RocksegError(f"jupyter-book build failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return index


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Build the course as a static site (Jupyter Book).")
    ap.add_argument("out_dir", help="folder for the book source and its _build/html")
    ap.add_argument("--jupyter-book", default="jupyter-book", help="the jupyter-book executable")
    args = ap.parse_args(argv)
    try:
        index = build(args.out_dir, jupyter_book=args.jupyter_book, quiet=False)
    except RocksegError as exc:
        print(f"book: error: {exc}", file=sys.stderr)
        return 1
    print(f"book: {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
