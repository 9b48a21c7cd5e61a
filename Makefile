# Gatehouse: `make run` starts the app on the embedded default, `make test` runs the suite.
# Both create .venv and install the pinned requirements first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test unit integration lint install system-packages clean

run: $(INSTALLED)
	$(PY) -m devstack

test: $(INSTALLED) system-packages
	$(PY) -m pytest

unit: $(INSTALLED)
	$(PY) -m pytest tests/unit

integration: $(INSTALLED) system-packages
	$(PY) -m pytest tests/integration

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

install: $(INSTALLED)

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

system-packages:
	scripts/system-packages.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
