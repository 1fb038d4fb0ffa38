# Set-up, demo and tests. `make demo` and `make test` work on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output
DEMO_T_END ?= 20
DEMO_ITERATIONS ?= 5000

.PHONY: install demo test lint clean

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

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
