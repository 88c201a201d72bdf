"""Run every benchmark in turn and print its figures (`make benchmarks`).

Each script is a plain program that prints a table; none asserts anything. Pass
script names to run a subset:  python benchmarks/run_all.py bench_synth bench_pipeline
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# cheapest first; bench_inference's default sizes take ~10 min on 2 cores
ORDER = ["bench_synth", "bench_pipeline", "bench_permeability", "bench_model_throughput", "bench_inference"]
# run only when named (over an hour on 2 cores)
ON_REQUEST = ["bench_sandstone_table", "bench_plan", "bench_pix2pix", "bench_thin_sections", "bench_sem_study"]


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ORDER
    failed = []
    for name in names:
        script = HERE / f"{Path(name).stem}.py"
        if not script.is_file():
            print(f"no benchmark {name!r}; choose from {ORDER + ON_REQUEST}", file=sys.stderr)
            return 2
        print(f"\n=== {script.name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
