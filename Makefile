# Classmap — set-up, serve, test, benchmark.  Everything installs into .venv.
#   make serve   create .venv, install, start the dashboard on the embedded default
#   make test    create .venv, install with test extras, run the whole suite
#   make bench   run every benchmark script (prints markdown tables)
#   make wheel   build dist/classmap-<version>-py3-none-any.whl (assets and vendored scripts inside)
# System tools the install uses when present: npm (the vendored browser scripts).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8050
# pytest workers: 2 matches the 2-core machines this is built for.
WORKERS ?= 2
PIP_LOG := $(VENV)/pip.log

.PHONY: install install-test browser-scripts wheel serve test test-fast bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml changes (the stamp files record it).
$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	@echo "installing classmap into $(VENV) (torch 2.14.1 + torchvision 0.29.1; a few minutes the first time)"
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(PIP_LOG) 2>&1 || (cat $(PIP_LOG); exit 1)
	@$(BIN)/python -m pip install --quiet -e . >> $(PIP_LOG) 2>&1 || (tail -n 40 $(PIP_LOG); exit 1)
	@touch $@

$(VENV)/.installed-test: pyproject.toml setup.py $(VENV)/.installed
	@$(BIN)/python -m pip install --quiet -e '.[test]' >> $(PIP_LOG) 2>&1 || (tail -n 40 $(PIP_LOG); exit 1)
	@touch $@

# The dashboard's vendored scripts: a partial plotly.js bundle of the traces it draws
# (built with npm and esbuild) and the regenerator runtime (see app/browser_scripts.py). A no-op when they are current; without npm
# the dashboard sends Dash's stock scripts instead (full plotly.js, babel polyfill).
browser-scripts: $(VENV)/.installed
	@$(BIN)/python -m classmap.app.browser_scripts --optional

install: $(VENV)/.installed browser-scripts

install-test: $(VENV)/.installed-test browser-scripts

# The wheel (dist/), with the vendored scripts made by browser-scripts inside it.
wheel: install
	@rm -rf dist build
	@$(BIN)/python -m pip install --quiet 'setuptools>=70.1'
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

serve: install
	$(BIN)/classmap serve --host $(HOST) --port $(PORT)

# The service tests (redis-server, Celery workers, gunicorn: processes of their own) run
# after the rest, alone, so they do not compete with the browser tests for the 2 cores.
test: install-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile -q -m "not service"
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m service

test-fast: install-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not e2e and not slow"

bench: install-test
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; HF_HUB_OFFLINE=1 $(BIN)/python $$script || exit 1; done

lint: install-test
	$(BIN)/ruff check analysis app tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts dist build
