"""Colab, simulated: install rockseg the way every notebook's first cell does, into a fresh Python
that already holds another TensorFlow than the pinned one, then run notebook 00 (smoke).

    python tests/colab_simulation.py [--work DIR] [--tensorflow 2.20.*] [--keep]

Steps (none touches the project's .venv):
1. a new virtual environment in DIR (default: a temporary folder) with what Colab preinstalls
   that matters here: a TensorFlow of another minor version than requirements/constraints.txt
   pins, its tf-keras, Jupyter's kernel and papermill;
2. a fake ``google.colab`` module, imported at interpreter start as Colab does (a ``.pth`` line),
   so the notebooks' ``"google.colab" in sys.modules`` test is true;
3. a copy of the checkout's tracked files stands in for the ``git clone`` (``ROCKSEG_SRC``);
4. each notebook's install cell runs, in order (the first installs, the others find rockseg);
5. notebook 00 runs top to bottom in the smoke profile on that kernel, with the real data when
   ``ROCKSEG_DATA_DIR`` is set.
Exit status 0 when all of this worked; the TensorFlow versions are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def main(argv=None) -> int:
    from rockseg.course import notebooks as nbs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", help="folder for the environment and the copy (default: temporary)")
    ap.add_argument("--tensorflow", default="2.20.*", help="the 'Colab' TensorFlow (not the pinned one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    pinned = next(line.split("==")[1] for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines()
                  if line.startswith("tensorflow=="))
    if args.tensorflow.rstrip(".*") and pinned.startswith(args.tensorflow.rstrip(".*")):
        print(f"--tensorflow {args.tensorflow} is the pinned version {pinned}; choose another", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="rockseg-colab-"))
    venv, src = work / "venv", work / "checkout"  # not "rockseg": the cwd would shadow the package
    py = venv / "bin" / "python"
    try:
        run([sys.executable, "-m", "venv", venv])
        run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([py, "-m", "pip", "install", "-q", f"tensorflow=={args.tensorflow}", f"tf-keras=={args.tensorflow}",
             "ipykernel", "papermill"])
        site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        (site / "google" / "colab").mkdir(parents=True, exist_ok=True)
        (site / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s module."""\n')
        (site / "zz_fake_colab.pth").write_text("import google.colab\n")
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True,
                               text=True).stdout.split("\n")
        for rel in filter(None, files):
            if (ROOT / rel).is_file():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, src / rel)
        env = {**os.environ, "ROCKSEG_SRC": str(src), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        env.pop("VIRTUAL_ENV", None)
        for path in nbs.notebook_paths():
            cell = next(c for c in nbs.read(path)["cells"] if c["cell_type"] == "code")
            source = "".join(cell["source"])
            print(f"# install cell of {path.name}", flush=True)
            run([py, "-c", source], env=env, cwd=work)
        run([py, "-c", "import rockseg, tensorflow as tf, sys; print('rockseg', rockseg.__version__, 'from', "
             "rockseg.__file__, '| TensorFlow', tf.__version__, '| google.colab loaded:', 'google.colab' in sys.modules)"],
            env=env, cwd=work)
        run([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", "colab-sim"], env=env)
        out = work / "00_quickstart.colab.ipynb"
        run([py, "-m", "papermill", "-k", "colab-sim", "--cwd", src / "notebooks",
             src / "notebooks" / "00_quickstart.ipynb", out], env={**env, "ROCKSEG_PROFILE": "smoke",
                                                                   "MPLBACKEND": "Agg"})
        errors = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        print(f"colab simulation: notebook 00 ran in smoke with TensorFlow {args.tensorflow} "
              f"(pinned {pinned}); errors: {len(errors)}")
        return 1 if errors else 0
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
