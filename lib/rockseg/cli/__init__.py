"""The ``rockseg`` command. Each sub-command lives in its own module of this
package and exposes ``add_parser(subparsers)`` and ``run(args) -> int``."""
from __future__ import annotations

import argparse
import importlib
import sys

from rockseg import __version__
from rockseg.errors import RocksegError

# sub-command name -> module in rockseg.cli (imported only when needed)
COMMANDS = {
    "datasets": "datasets",
    "fetch": "fetch",
    "evaluate": "evaluate",
    "train": "train",
    "baseline": "baseline",
    "ensemble": "ensemble",
    "synth": "synth",
    "predict": "predict",
    "analyze": "analyze",
    "reproduce": "reproduce",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rockseg",
        description="Multi-mineral semantic segmentation of rock images.",
    )
    parser.add_argument("--version", action="version", version=f"rockseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"rockseg.cli.{module}")
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except RocksegError as exc:
        print(f"rockseg {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
