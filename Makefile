# Gatehouse: `make run` starts the app on the embedded default, `make test` runs the suite.
# Both create .venv and install the pinned requirements first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
E2E_PROVIDER := tests/e2e/provider
E2E_NODE_MODULES := $(E2E_PROVIDER)/node_modules/.package-lock.json

.PHONY: run test unit integration e2e e2e-deps lint bench install lock system-packages clean

run: $(INSTALLED)
	$(PY) -m devstack

# The suite mostly waits on servers, so it runs in more pytest-xdist workers than a 2-core machine has
# cores. `--dist loadgroup` keeps the tests sharing a module's deployment on one worker (tests/conftest.py
# `deployment_group`). Four measured faster than three on 2 cores (docs/performance.md, goal 5). `make test
# TEST_WORKERS=2` overrides; pyproject's addopts print the 15 slowest tests.
TEST_WORKERS ?= 4
UNIT_WORKERS ?= 3
XDIST = -n $(TEST_WORKERS) --dist loadgroup

# Python's own default, even where the environment sets PYTHONDONTWRITEBYTECODE: bytecode is cached in
# __pycache__ (ignored by git). Each pytest worker rewrites and compiles every test module, and the suite
# starts hundreds of Python processes (servers, workers, the CLI); without the cache each compiles again
# everything it imports (collecting the unit tests took one pytest process 3.9 s of CPU without it, 2.2 s
# with it).
unexport PYTHONDONTWRITEBYTECODE

# Lint first (ruff, mypy --strict): a red lint fails the run before the servers start.
test: lint system-packages e2e-deps
	$(PY) -m pytest $(XDIST)

# The unit tests' temporary folders hold a SQLite file per test, and each commit there is an fsync: on a
# tmpfs (/dev/shm, where the machine has one) those cost nothing. Only `make unit` does this.
# No unit test uses Hypothesis (tests/reliability does): its pytest plugin would cost each of the
# four pytest processes over a second of imports.
UNIT_TMPDIR ?= $(if $(wildcard /dev/shm),/dev/shm,$(or $(TMPDIR),/tmp))

unit: $(INSTALLED)
	TMPDIR=$(UNIT_TMPDIR) $(PY) -m pytest -n $(UNIT_WORKERS) -p no:hypothesispytest tests/unit

integration: $(INSTALLED) system-packages
	$(PY) -m pytest $(XDIST) tests/integration

# The browser suite: Debian's Chromium against the certified provider (oidc-provider from
# npm), PostgreSQL, and two web processes with two workers. `make test` runs it too.
e2e: $(INSTALLED) system-packages e2e-deps
	$(PY) -m pytest $(XDIST) tests/e2e

e2e-deps: $(E2E_NODE_MODULES)

$(E2E_NODE_MODULES): $(E2E_PROVIDER)/package-lock.json | system-packages
	cd $(E2E_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# mypy (strict) checks the application's packages listed in pyproject.toml's [tool.mypy] files.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Figures for docs/performance.md, printed as tables and JSON lines. Starts its own throwaway
# servers (redis-server, gunicorn) on free ports; not a test, so `make test` does not run it.
# bench.pages loads the servers with wrk (a Debian package, from system-packages).
# bench.signins and bench.storm also start the development provider and an RQ worker.
# bench.persistence also starts a throwaway PostgreSQL cluster (tests/support/postgres.py).
# bench.topologies starts a Redis Cluster and Sentinel groups (tests/support/redis_topology.py).
# bench.signins signs in through the mock provider, Gatehouse beside a typical Authlib + Flask-Login stack.
bench: $(INSTALLED) system-packages
	$(PY) -m bench.sessions
	$(PY) -m bench.pages
	$(PY) -m bench.signins
	$(PY) -m bench.storm
	$(PY) -m bench.persistence
	$(PY) -m bench.worker_cpu
	$(PY) -m bench.topologies

install: $(INSTALLED)

# The whole dependency tree, pinned with hashes: requirements-dev.lock holds the runtime
# packages (requirements.lock) plus the tools. requirements*.txt list what we depend on directly.
$(INSTALLED): requirements.lock requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $(INSTALLED)

# After changing a pin in requirements*.txt (or to take newer indirect dependencies):
# `make lock` rebuilds both lock files with pip-tools, then `make test` installs them.
LOCK := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links --no-header --upgrade

lock: $(INSTALLED)
	$(LOCK) -o requirements.lock requirements.txt
	$(LOCK) -o requirements-dev.lock requirements-dev.txt

system-packages:
	scripts/system-packages.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-artifacts $(E2E_PROVIDER)/node_modules
