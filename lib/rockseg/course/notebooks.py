"""The course notebooks as files: their generated parts, their clean-up and their conventions.

One source for what every notebook shares (``make notebooks-meta`` writes it):

- the Open-in-Colab badge and the Colab install cell, both from ``[project.urls]
  Repository`` in ``pyproject.toml``;
- the measured run time per profile, from ``results/notebook_times.json`` (written by
  ``rockseg reproduce``), in each header and in the README's notebook table.

:func:`clean` removes what papermill adds (its injected-parameters cell, which would pin
the profile, and per-cell timing metadata). :func:`check` lists every broken convention.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from rockseg.errors import DataError

ROOT = Path(__file__).resolve().parents[3]  # the checkout: lib/rockseg/course/notebooks.py
NOTEBOOKS = ROOT / "notebooks"
TIMES_FILE = ROOT / "results" / "notebook_times.json"
NAME_RE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
INSTALL_MARK = "# Colab only: install rockseg"
RUNTIME_MARK = "**Run time**"
HEADER_FIELDS = ("**What this notebook teaches**", "**Prerequisites**", "**What it needs**", RUNTIME_MARK)
PARAMETERS = ("profile", "dataset", "seed")

__all__ = ["INSTALL_MARK", "check", "clean", "colab_url", "install_cell", "notebook_paths", "read",
           "readme_table", "repo_url", "runtime_line", "update_meta", "update_readme", "write"]


def repo_url(pyproject=None) -> str:
    """``[project.urls] Repository`` of ``pyproject.toml`` (the one place it is written)."""
    path = Path(pyproject) if pyproject else ROOT / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text())["project"]["urls"]["Repository"].rstrip("/")
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"no [project.urls] Repository ({exc})", path=path) from None


def colab_url(name: str, url: str | None = None) -> str:
    """The Open-in-Colab address of ``notebooks/<name>`` on the main branch."""
    url = url or repo_url()
    return url.replace("https://github.com/", "https://colab.research.google.com/github/") + \
        f"/blob/main/notebooks/{name}"


def badge(name: str, url: str | None = None) -> str:
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(name, url)})")


def install_cell(url: str | None = None) -> str:
    """The Colab install cell: clone (failing loudly), then ``course/colab.py`` installs."""
    url = url or repo_url()
    return f'''{INSTALL_MARK} (idempotent; does nothing elsewhere or when it is installed).
# Written by `make notebooks-meta` from [project.urls] in pyproject.toml: edit it there.
import importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("rockseg") is None:
    src = os.environ.get("ROCKSEG_SRC", "/content/rockseg")
    if not os.path.isfile(os.path.join(src, "pyproject.toml")):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "{url}", src], check=True)
    subprocess.run([sys.executable, os.path.join(src, "lib", "rockseg", "course", "colab.py"), src], check=True)
    sys.path.insert(0, os.path.join(src, "lib"))'''


def notebook_paths(folder=None) -> list[Path]:
    """The course notebooks ``NN_name.ipynb``, in order."""
    folder = Path(folder) if folder else NOTEBOOKS
    return sorted(p for p in folder.glob("*.ipynb") if NAME_RE.match(p.name))


def read(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"not a readable notebook ({exc})", path=path) from None


def write(nb: dict, path) -> None:
    """Write as Jupyter does (indent 1, UTF-8, final newline), through a temporary file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def clean(nb: dict) -> dict:
    """Drop papermill's injected-parameters cell and its per-cell and notebook metadata (in place)."""
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in _tags(c)]
    for c in nb["cells"]:
        c.get("metadata", {}).pop("papermill", None)
        c.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("papermill", None)
    return nb


def _fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"


def runtime_line(name: str, times: dict | None = None) -> str:
    """``**Run time** (measured ...): cpu profile X, smoke profile Y`` from the recorded times."""
    times = _times() if times is None else times
    got = times.get(name, {})
    parts = [f"`{p}` profile {_fmt_seconds(got[p]['seconds'])}" for p in ("cpu", "smoke") if p in got]
    if not parts:
        return f"{RUNTIME_MARK}: not measured yet (`rockseg reproduce` records it)."
    where = {got[p].get("machine") for p in ("cpu", "smoke") if p in got} - {None}
    return f"{RUNTIME_MARK} (measured{', ' + ', '.join(sorted(where)) if where else ''}): " + ", ".join(parts) + "."


def _times() -> dict:
    return json.loads(TIMES_FILE.read_text()) if TIMES_FILE.is_file() else {}


def update_meta(path, *, url: str | None = None, times: dict | None = None) -> bool:
    """Rewrite the badge, the run-time line and the install cell of one notebook from their
    sources; returns whether anything changed. Outputs are left as they are."""
    path = Path(path)
    nb = read(path)
    before = json.dumps(nb, sort_keys=True)
    url = url or repo_url()
    head = nb["cells"][0]
    if head["cell_type"] != "markdown":
        raise DataError("the first cell must be the markdown header", path=path)
    lines = _src(head).split("\n")
    lines = [badge(path.name, url) if ln.startswith("[![Open In Colab]") else ln for ln in lines]
    lines = [runtime_line(path.name, times) if ln.startswith(RUNTIME_MARK) else ln for ln in lines]
    head["source"] = "\n".join(lines)
    installs = [c for c in nb["cells"] if c["cell_type"] == "code" and _src(c).startswith(INSTALL_MARK)]
    if len(installs) != 1:
        raise DataError(f"needs exactly one install cell starting {INSTALL_MARK!r}, found {len(installs)}",
                        path=path)
    installs[0]["source"] = install_cell(url)
    changed = json.dumps(nb, sort_keys=True) != before
    if changed:
        write(nb, path)
    return changed


README_START, README_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"


def readme_table(paths=None, *, url: str | None = None, times: dict | None = None) -> str:
    """The README's notebook table: title (from each header), Colab link, measured times."""
    url = url or repo_url()
    times = _times() if times is None else times
    lines = ["| notebook | what it teaches | Colab | `cpu` | `smoke` |", "|---|---|---|---|---|"]
    for path in paths or notebook_paths():
        title = _src(read(path)["cells"][0]).split("\n", 1)[0].split("—", 1)[-1].strip()
        t = times.get(path.name, {})
        cpu, smoke = (_fmt_seconds(t[p]["seconds"]) if p in t else "–" for p in ("cpu", "smoke"))
        lines.append(f"| [`{path.stem}`](notebooks/{path.name}) | {title} | [open]({colab_url(path.name, url)}) "
                     f"| {cpu} | {smoke} |")
    return "\n".join(lines)


def replace_block(path, start: str, end: str, body: str) -> bool:
    """Replace what lies between the markers ``start`` and ``end`` of a text file with ``body``;
    returns whether the file changed."""
    path = Path(path)
    text = path.read_text()
    if start not in text or end not in text:
        raise DataError(f"lacks the markers {start} ... {end}", path=path)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{body}\n{end}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def update_readme(readme=None, **kwargs) -> bool:
    """Replace the table between the README's notebook markers; returns whether it changed."""
    return replace_block(Path(readme) if readme else ROOT / "README.md", README_START, README_END,
                         readme_table(**kwargs))


def check(path, *, url: str | None = None, outputs: bool = True) -> list[str]:
    """Every broken course convention of one notebook, as sentences (empty: all kept).

    Header with its four fields and the badge to this notebook's Colab address; the
    generated install cell; a ``parameters`` cell setting ``profile``, ``dataset`` and
    ``seed``, with the first two read from ``ROCKSEG_PROFILE`` / ``ROCKSEG_DATASET``; no
    papermill cell or metadata; exercises at the end; and, with ``outputs``, committed
    outputs in every code cell after the parameters but none of them an error.
    """
    path = Path(path)
    nb = read(path)
    url = url or repo_url()
    problems = []
    if not NAME_RE.match(path.name):
        problems.append("name is not NN_name.ipynb")
    cells = nb.get("cells", [])
    if not cells or cells[0]["cell_type"] != "markdown" or not _src(cells[0]).startswith(f"# {path.name[:2]} "):
        problems.append(f"first cell is not a markdown header '# {path.name[:2]} — title'")
        return problems
    head = _src(cells[0])
    problems += [f"header lacks {f}" for f in HEADER_FIELDS if f not in head]
    if colab_url(path.name, url) not in head:
        problems.append(f"header lacks the badge to {colab_url(path.name, url)}")
    code = [c for c in cells if c["cell_type"] == "code"]
    if not code or _src(code[0]) != install_cell(url):
        problems.append("first code cell is not the generated install cell (run `make notebooks-meta`)")
    params = [c for c in code if "parameters" in _tags(c)]
    if len(params) != 1:
        problems.append(f"needs one cell tagged 'parameters', has {len(params)}")
    else:
        src = _src(params[0])
        missing = [p for p in PARAMETERS if not re.search(rf"^{p}\s*=", src, re.M)]
        if missing:
            problems.append(f"parameters cell does not set {missing}")
        for var, env in (("profile", "ROCKSEG_PROFILE"), ("dataset", "ROCKSEG_DATASET")):
            if not re.search(rf"^{var}\s*=.*{env}", src, re.M):
                problems.append(f"parameters cell: {var} does not default to ${env}")
    if any("injected-parameters" in _tags(c) for c in cells) or "papermill" in nb.get("metadata", {}):
        problems.append("holds papermill's injected cell or metadata (run `rockseg.course.notebooks.clean`)")
    tail = "\n".join(_src(c) for c in cells[-2:] if c["cell_type"] == "markdown")
    if "## Exercises" not in tail:
        problems.append("does not end with an '## Exercises' section")
    for i, c in enumerate(code):
        if any(o.get("output_type") == "error" for o in c.get("outputs", [])):
            problems.append(f"code cell {i} has an error output")
    if outputs:
        after = code[code.index(params[0]) + 1:] if len(params) == 1 else []
        empty = [i for i, c in enumerate(code) if c in after and _src(c).strip() and not c.get("outputs")]
        # a cell may legitimately print nothing: only a notebook without any output is unexecuted
        if after and len(empty) == len(after):
            problems.append("has no committed outputs (run `rockseg reproduce`)")
    return problems


def main(argv=None) -> int:
    """``python -m rockseg.course.notebooks meta|check [NOTEBOOK ...]``."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("meta", "check"):
        print("usage: python -m rockseg.course.notebooks meta|check [NOTEBOOK ...]", file=sys.stderr)
        return 2
    paths = [Path(p) for p in argv[1:]] or notebook_paths()
    bad = 0
    if argv[0] == "meta" and not argv[1:]:
        print(f"README.md: {'updated' if update_readme() else 'up to date'}")
    for path in paths:
        if argv[0] == "meta":
            print(f"{path.name}: {'updated' if update_meta(path) else 'up to date'}")
        else:
            problems = check(path)
            bad += bool(problems)
            print(f"{path.name}: " + ("ok" if not problems else "; ".join(problems)))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
