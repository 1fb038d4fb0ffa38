# Set-up, demo and tests. `make demo` and `make test` work on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output
DEMO_T_END ?= 20
DEMO_ITERATIONS ?= 5000
# pytest workers (pytest-xdist); 1 runs the suite in one process
TEST_JOBS ?= 2
# `make notebooks`: which notebooks, and the seconds one cell may take
NOTEBOOKS ?= $(sort $(wildcard notebooks/*.ipynb))
NOTEBOOK_TIMEOUT ?= 3600

.PHONY: install demo test lint notebooks clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: install
	$(VENV)/bin/splitpinn compare hh --methods reference,split-pinn,vanilla-pinn \
		--t-end $(DEMO_T_END) --iterations $(DEMO_ITERATIONS) --out $(DEMO_DIR)
	@echo "figures and metrics in $(DEMO_DIR)/"

lint: install
	$(VENV)/bin/ruff check .
	$(PY) tests/check_layers.py

test: lint
	$(VENV)/bin/pytest -n $(TEST_JOBS)

# Every notebook top to bottom at its full settings (SPLITPINN_SMALL unset), one at a time;
# the executed copies and logs go to a temporary folder, the notebooks stay unchanged.
notebooks: install
	@out=$$(mktemp -d "$${TMPDIR:-/tmp}/splitpinn-notebooks.XXXXXX"); failed=0; \
	for nb in $(NOTEBOOKS); do \
		name=$$(basename "$$nb" .ipynb); start=$$(date +%s); \
		if env -u SPLITPINN_SMALL $(VENV)/bin/jupyter nbconvert --to notebook --execute \
			--ExecutePreprocessor.kernel_name=python3 \
			--ExecutePreprocessor.timeout=$(NOTEBOOK_TIMEOUT) \
			--output-dir "$$out" "$$nb" >"$$out/$$name.log" 2>&1; \
		then result=ok; else result=FAILED; failed=1; tail -n 30 "$$out/$$name.log"; fi; \
		echo "$$nb: $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	echo "executed notebooks and logs in $$out"; exit $$failed

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
