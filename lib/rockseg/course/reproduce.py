"""Run the course notebooks top to bottom, in order, into their committed copies.

``rockseg reproduce [--profile P] [--only NN ...]`` and ``make reproduce`` call
:func:`reproduce`: each notebook is executed by papermill in its own folder with the
profile as parameter, cleaned (:func:`rockseg.course.notebooks.clean`) and written back
only when it ran without error, so a failure never replaces a good committed copy. Its
time is printed and recorded in ``results/notebook_times.json`` (the run-time line of each
header comes from there). Then ``results/`` is written from the notebooks' run records
(:func:`rockseg.course.results.write_results`) and the path of ``results/REPORT.md`` printed.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from rockseg.course import notebooks as nbs
from rockseg.errors import RocksegError

__all__ = ["reproduce", "record_time"]


def _machine() -> str:
    return f"{os.cpu_count()} CPU cores"


def record_time(name: str, profile: str, seconds: float, path=None) -> None:
    """Store one notebook's measured run time (seconds, machine) for its header."""
    import json

    path = Path(path) if path else nbs.TIMES_FILE
    times = json.loads(path.read_text()) if path.is_file() else {}
    times.setdefault(name, {})[profile] = {"seconds": round(float(seconds), 1), "machine": _machine(),
                                           "python": platform.python_version()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    tmp.replace(path)


def _select(only, folder=None) -> list[Path]:
    paths = nbs.notebook_paths(folder)
    if not only:
        return paths
    hits = {o: [p for p in paths if p.name.startswith(o)] for o in only}
    unknown = [o for o, found in hits.items() if not found]
    if unknown:
        raise RocksegError(f"no notebook matches {unknown}; the notebooks are "
                           f"{', '.join(p.name for p in paths)}")
    return [p for p in paths if any(p in found for found in hits.values())]


def _say(line: str) -> None:
    print(line, flush=True)


def reproduce(profile: str = "cpu", *, only=None, out_dir=None, kernel: str = "python3",
              log=_say, folder=None, times_file=None) -> dict:
    """Execute the notebooks (all, or those whose name starts with one of ``only``) in order.

    ``out_dir``: write the executed copies there instead of over the committed ones (their
    times are still recorded, per profile). ``folder`` / ``times_file``: other notebooks and
    another times file than the course's. Returns ``{name: seconds}``; raises
    ``RocksegError`` naming the notebook that failed, after recording the ones before it.
    """
    import papermill as pm

    paths = _select(only, folder)
    env = {"ROCKSEG_PROFILE": profile, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    if os.environ.get("ROCKSEG_DATA_DIR"):  # the kernels run in notebooks/: a relative folder would move
        env["ROCKSEG_DATA_DIR"] = str(Path(os.environ["ROCKSEG_DATA_DIR"]).expanduser().resolve())
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    times = {}
    try:
        for i, path in enumerate(paths, 1):
            target = Path(out_dir) / path.name if out_dir else path
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.stem}.running.ipynb")
            log(f"[{i}/{len(paths)}] {path.name} (profile {profile}) ...")
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(str(path), str(tmp), parameters={"profile": profile}, kernel_name=kernel,
                                    cwd=str(path.parent), progress_bar=False)
            except Exception as exc:  # papermill's error names the cell; the committed copy stays
                raise RocksegError(f"{path.name} failed in profile {profile} (partial copy kept at {tmp}): "
                                   f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}") from None
            seconds = time.perf_counter() - t0
            nb = nbs.clean(nbs.read(tmp))
            nbs.write(nb, target)
            tmp.unlink()
            record_time(path.name, profile, seconds, times_file)
            times[path.name] = seconds
            log(f"[{i}/{len(paths)}] {path.name}: {seconds / 60:.1f} min")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    total = sum(times.values())
    log(f"{len(times)} notebook(s) in {total / 60:.1f} min (profile {profile})")
    if out_dir is None and folder is None:
        from rockseg.course.results import write_results

        log(f"report: {write_results(profile=profile)}")
    return times
