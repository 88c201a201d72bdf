"""``rockseg datasets``: list the registered datasets and where each would load from."""
from __future__ import annotations

import argparse

from rockseg.cli._options import add_data_dir


def add_parser(subparsers):
    p = subparsers.add_parser(
        "datasets",
        help="list registered datasets (classes, licence, offline/cached status)",
        description=(
            "List the registered datasets: name, kind, classes, licence and where each "
            "would load from: 'offline' (the --data-dir / $ROCKSEG_DATA_DIR folder holds it), "
            "'cached' (already downloaded), 'generated' (made on the fly) or 'online' "
            "(downloaded on first use)."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_dir(p)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print each dataset's description, split note and citation")
    return p


def run(args) -> int:
    from rockseg.data import registry

    rows = []
    for row in registry.overview(args.data_dir):
        classes = f"{len(row['classes'])}: " + ", ".join(row["classes"])
        if len(classes) > 48 and not args.verbose:
            classes = classes[:45] + "..."
        rows.append((row["name"], row["kind"], classes, row["licence"],
                     row["status"] + (f" ({row['folder']})" if row["folder"] else ""), row["spec"]))
    header = ("NAME", "KIND", "CLASSES", "LICENCE", "STATUS")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(fmt.format(*header))
    for r in rows:
        print(fmt.format(*r[:5]))
        if args.verbose:
            spec = r[5]
            for key in ("description", "split_note", "citation", "licence_note"):
                if spec.get(key):
                    print(f"    {key.replace('_', ' ')}: {spec[key]}")
    return 0
