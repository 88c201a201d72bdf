"""``python -m rockseg.cli ...``: the ``rockseg`` command of this interpreter's own installation
(what a notebook runs as ``!{sys.executable} -m rockseg.cli ...``, whether or not the
environment's ``bin`` folder is on ``PATH``)."""
from rockseg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
