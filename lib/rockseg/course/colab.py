"""Install rockseg from a checkout into a running Colab (or any other ready-made) Python.

    python lib/rockseg/course/colab.py CHECKOUT

Run by every notebook's install cell before rockseg can be imported, so it uses the
standard library only. It keeps what the environment already has (Colab's TensorFlow,
NumPy, ...) and pins everything it adds to ``requirements/constraints.txt``, the versions
CI tests: the pins of already-installed distributions are left out of the constraints
given to pip, so pip moves them only where rockseg's own version ranges demand it.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """``{normalised distribution name: version}`` of this Python."""
    return {_norm(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def constraints_for(src: Path, have: dict[str, str]) -> tuple[list[str], list[str]]:
    """``(constraint lines to apply, names kept as installed)`` from the checkout's pins."""
    pins = Path(src) / "requirements" / "constraints.txt"
    keep, kept = [], []
    for line in pins.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==", line)
        if not m:
            continue
        if _norm(m.group(1)) in have:
            kept.append(f"{m.group(1)} {have[_norm(m.group(1))]}")
        else:
            keep.append(line.strip())
    return keep, kept


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / "pyproject.toml").is_file():
        print("usage: colab.py CHECKOUT (a folder holding rockseg's pyproject.toml)", file=sys.stderr)
        return 2
    src = Path(argv[0]).resolve()
    lines, kept = constraints_for(src, installed())
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
    tf = next((k for k in kept if k.lower().startswith("tensorflow ")), None)
    print(f"rockseg: installing from {src}; keeping {len(kept)} installed packages"
          f"{' (' + tf + ')' if tf else ''}, pinning {len(lines)} others", flush=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-c", fh.name, "-e", str(src)]
    done = subprocess.run(cmd)
    Path(fh.name).unlink(missing_ok=True)
    if done.returncode:
        print(f"rockseg: pip failed (exit {done.returncode}): {' '.join(cmd)}", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
