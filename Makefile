# Two commands on a fresh machine with only python3:
#   make demo   set up .venv, then run the registered plan -> analyse -> report on the
#               committed sample (synthetic_data/); the Analysis is saved beside the report
#   make test   set up .venv, then run the whole test suite
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
OUT     ?= demo_output

.PHONY: all install test test-fast lint demo docs bench clean reference

all: test

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

$(STAMP): $(VPY) pyproject.toml requirements/constraints.txt
	$(VPY) -m pip install --quiet -c requirements/constraints.txt -e ".[dev,docx,brief,scale,docs]"
	touch $(STAMP)

install: $(STAMP)

# Two pytest workers on two cores: one BLAS thread each, or they fight over the cores.
test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VPY) -m pytest -n 2 -q tests

# Everyday lane: everything but the slow simulation studies.
test-fast: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VPY) -m pytest -n 2 -q -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check ips_impact tests benchmarks docs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: $(STAMP)
	$(VENV)/bin/ips-impact demo --out $(OUT) --data synthetic_data

docs: $(STAMP)
	$(VPY) docs/build.py

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(VPY) $$f || exit 1; done

# Regenerate the R reference numbers (needs R; the test suite itself does not).
reference:
	bash tests/reference/r/run_all.sh

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
