"""``rockseg fetch NAME``: download (or verify offline) a dataset and print its folder."""
from __future__ import annotations

from rockseg.cli._options import add_data_dir


def add_parser(subparsers):
    p = subparsers.add_parser(
        "fetch",
        help="download or verify a registered dataset and print its folder",
        description=(
            "Make dataset NAME available and print the folder holding its files. If the "
            "offline data folder (--data-dir or $ROCKSEG_DATA_DIR) holds the dataset, its "
            "files are checked against the registered hashes without using the network; "
            "otherwise they are downloaded into the cache ($ROCKSEG_CACHE_DIR) and checked. "
            "See 'rockseg datasets' for the names."),
    )
    p.add_argument("name", metavar="NAME", help="registered dataset name, e.g. sandstone-versa")
    add_data_dir(p)
    p.add_argument("--progress", action="store_true", help="show download progress bars")
    return p


def run(args) -> int:
    import sys

    from rockseg.data import registry

    spec = registry.get_spec(args.name)
    if not spec.get("folder"):
        print(f"{args.name} is generated on the fly by {spec.get('generator')}; "
              f"nothing to download", file=sys.stderr)
        return 0
    folder = registry.fetch(args.name, args.data_dir, progress=args.progress)
    print(folder)
    return 0
