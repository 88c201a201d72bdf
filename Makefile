# rockseg: `make test` and `make reproduce` each work on a fresh clone in one command.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real datasets beside the checkout, when present (CI has them).
DATA_DIR ?= $(shell test -d ../shared/data && cd ../shared/data && pwd)
export MPLBACKEND := Agg

.PHONY: setup test test-lib test-notebooks reproduce benchmarks clean

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

# Re-run every notebook in the cpu profile and keep the outputs (as committed), without papermill's
# injected-parameters cell: it would pin the profile, so CI's nbval run could not use smoke.
reproduce: setup
	@set -e; for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	  echo "== $$nb (profile cpu)"; \
	  MPLBACKEND=module://matplotlib_inline.backend_inline ROCKSEG_PROFILE=cpu ROCKSEG_DATA_DIR=$(DATA_DIR) $(VENV)/bin/papermill --cwd notebooks -k python3 "$$nb" "$$nb.tmp.ipynb" -p profile cpu; \
	  $(PY) -c "import json, sys; p = sys.argv[1]; d = json.load(open(p)); d['cells'] = [c for c in d['cells'] if 'injected-parameters' not in c.get('metadata', {}).get('tags', [])]; open(p, 'w').write(json.dumps(d, indent=1, ensure_ascii=False) + '\n')" "$$nb.tmp.ipynb"; \
	  mv "$$nb.tmp.ipynb" "$$nb"; \
	done

benchmarks: setup
	ROCKSEG_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
