# The two quick-start commands are `make run` and `make test`; everything else is what they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint setup setup-dev browser bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev browser

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: setup
	$(PY) -m streamlit run app.py --server.port $(PORT)

# Two workers share the cores (tests/conftest.py says how the files are grouped); the 20 slowest
# tests are printed at the end, so the next slow one is seen.
TEST_WORKERS ?= 2
test: setup-dev
	$(PY) -m pytest -n $(TEST_WORKERS) --durations=20

# ruff's lint and format check (ruff.toml); CI runs it before the tests.
lint: setup-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup-dev
	$(PY) bench/bench_foundation.py

clean:
	rm -rf $(VENV) .pytest_cache
