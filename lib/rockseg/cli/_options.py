"""Arguments shared by several ``rockseg`` sub-commands."""
from __future__ import annotations

DATA_DIR_HELP = "offline data folder laid out like shared/data (default: $ROCKSEG_DATA_DIR)"


def add_data_dir(parser, when: str = "") -> None:
    """``--data-dir D``: the offline data folder (``when``: a prefix such as ``"with --recompute: "``)."""
    parser.add_argument("--data-dir", metavar="D", default=None, help=when + DATA_DIR_HELP)
