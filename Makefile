# rockseg: `make test` and `make reproduce` each work on a fresh clone in one command.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real datasets beside the checkout, when present (CI has them).
DATA_DIR ?= $(shell test -d ../shared/data && cd ../shared/data && pwd)
export MPLBACKEND := Agg

.PHONY: setup test test-lib test-notebooks reproduce notebooks-meta colab-check book book-env lab benchmarks clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[dev,notebooks]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Unit tests and every notebook, top to bottom, in the smoke profile.
test: setup
	ROCKSEG_PROFILE=smoke ROCKSEG_DATA_DIR=$(DATA_DIR) $(PY) -m pytest

test-lib: setup
	ROCKSEG_PROFILE=smoke ROCKSEG_DATA_DIR=$(DATA_DIR) $(PY) -m pytest tests

# Re-run every notebook in order in the cpu profile into the committed copies (without papermill's
# injected cell, which would pin the profile), record their times, then refresh each header.
PROFILE ?= cpu
reproduce: setup
	MPLBACKEND=module://matplotlib_inline.backend_inline ROCKSEG_DATA_DIR=$(DATA_DIR) $(VENV)/bin/rockseg reproduce --profile $(PROFILE)
	$(PY) -m rockseg.course.notebooks meta

# The badge, install cell and run-time line of every notebook, from pyproject.toml and results/.
notebooks-meta: setup
	$(PY) -m rockseg.course.notebooks meta

# Colab, simulated: a fresh environment with another TensorFlow, a fake google.colab, every
# notebook's install cell run from a copy of this checkout, then notebook 00 in smoke (needs the
# package index; leaves .venv alone).
colab-check: setup
	ROCKSEG_DATA_DIR=$(DATA_DIR) $(PY) tests/colab_simulation.py

# The course as a static site (Jupyter Book, from the committed outputs, no execution) in
# build/book/src/_build/html. Jupyter Book has its own environment: its Sphinx stack pins other
# versions than the project's.
BOOK_VENV := .venv-book
$(BOOK_VENV)/.installed: requirements/book.txt
	test -x $(BOOK_VENV)/bin/python || $(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/python -m pip install -q -r requirements/book.txt
	touch $@

book-env: $(BOOK_VENV)/.installed

book: setup book-env
	$(PY) -m rockseg.course.book build/book --jupyter-book $(BOOK_VENV)/bin/jupyter-book

# JupyterLab on the project's kernel (.venv), the real data beside the checkout when present.
lab: setup
	ROCKSEG_DATA_DIR=$(DATA_DIR) $(VENV)/bin/jupyter lab --notebook-dir=notebooks

benchmarks: setup
	ROCKSEG_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
