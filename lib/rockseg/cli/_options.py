"""Arguments shared by several ``rockseg`` sub-commands."""
from __future__ import annotations

DATA_DIR_HELP = "offline data folder laid out like shared/data (default: $ROCKSEG_DATA_DIR)"


def add_data_dir(parser, when: str = "") -> None:
    """``--data-dir D``: the offline data folder (``when``: a prefix such as ``"with --recompute: "``)."""
    parser.add_argument("--data-dir", metavar="D", default=None, help=when + DATA_DIR_HELP)


PRECISION_CHOICES = ("auto", "float32", "bfloat16", "float16")


def add_precision(parser, default_help: str) -> None:
    """``--precision P``: float32, bfloat16 (mixed_bfloat16), float16 (mixed_float16, GPUs) or
    auto (bfloat16 where the CPU or GPU computes it natively, else float32)."""
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=None,
                        help="numeric precision: float32, bfloat16, float16 (GPUs) or auto (bfloat16 where "
                             "the CPU (AMX/AVX-512 BF16) or GPU computes it natively, else float32); "
                             f"default: {default_help}")
