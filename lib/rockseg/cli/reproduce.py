"""``rockseg reproduce``: run the course notebooks in order into their committed copies."""
from __future__ import annotations

from rockseg.cli._options import add_data_dir


def add_parser(subparsers):
    p = subparsers.add_parser(
        "reproduce",
        help="run every course notebook top to bottom and keep its outputs",
        description=(
            "Execute the notebooks of notebooks/ in order (papermill, one kernel each) in the "
            "given profile and write each back without papermill's additions, only when it ran "
            "without error. Prints a line per notebook with its time and records the times in "
            "results/notebook_times.json, from which 'make notebooks-meta' writes each header's "
            "run-time line. Run records go to ../runs/ beside the checkout's notebooks."),
    )
    p.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "full"],
                   help="compute profile passed to every notebook (default cpu, as committed)")
    p.add_argument("--only", nargs="+", metavar="NN", help="only the notebooks whose name starts with these")
    p.add_argument("--out-dir", metavar="DIR",
                   help="write the executed notebooks here instead of over the committed copies")
    add_data_dir(p)
    return p


def run(args) -> int:
    import os

    from rockseg.course.reproduce import reproduce

    from pathlib import Path

    from rockseg.errors import DataError

    if args.data_dir:
        if not Path(args.data_dir).is_dir():
            raise DataError("--data-dir is not a folder", path=args.data_dir)
        os.environ["ROCKSEG_DATA_DIR"] = str(args.data_dir)
    reproduce(args.profile, only=args.only, out_dir=args.out_dir)
    return 0
