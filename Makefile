# Two commands on a fresh machine:  make demo   (the main job)   and   make test   (the full check).
# Both create .venv/ in the checkout with an editable install of recon.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test check venv venv-dev chromium fmt lint types pytest bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# base install: recon and its runtime dependencies, pinned by constraints.txt
$(VENV)/.base: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	touch $@

# dev install: tests, linters, notebooks, benchmark peers
$(VENV)/.dev: $(VENV)/.base
	$(PIP) install -c constraints.txt -e '.[dev,bench]'
	touch $@

venv: $(VENV)/.base
venv-dev: $(VENV)/.dev

chromium:
	@bash scripts/ensure-chromium.sh

## make demo: emulators with demo data, pull, match, plan, and the review app
demo: venv
	$(BIN)/recon demo

## make test: format check, lint, types, the whole test suite, a benchmark smoke run
test: venv-dev chromium
	$(BIN)/ruff format --check recon tests bench app.py
	$(BIN)/ruff check recon tests bench app.py
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadgroup
	$(BIN)/python bench/run.py --smoke --out .bench-smoke

check: test

fmt: venv-dev
	$(BIN)/ruff format recon tests bench app.py
	$(BIN)/ruff check --fix recon tests bench app.py

bench: venv-dev
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .bench-smoke .pytest_cache .mypy_cache .ruff_cache
