# Two commands do everything from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export NVI_DATA_DIR ?= $(CURDIR)/data

.PHONY: install demo test test-fast ui prod-local lint postgres browser benchmark clean

# Every package at the version in constraints.txt (the versions `make test` passed with). pip prints
# errors only (-qq): this machine's pip configuration names local package folders, and pip warns about
# each package missing from them before it takes the package from the index. No version check either.
export PIP_DISABLE_PIP_VERSION_CHECK := 1
PIP := $(BIN)/pip --quiet --quiet

$(BIN)/.installed: pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --constraint constraints.txt pip
	$(PIP) install --constraint constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml

# The instance's storage is created here, once: a daemon and a webserver started together on a folder
# without it would both create it, and SQLite's schema history would end up with two heads.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml $(BIN)/.installed
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@
	$(BIN)/dagster instance migrate > /dev/null

demo: install
	$(BIN)/nvi-batch db upgrade
	$(BIN)/nvi-batch demo

# PostgreSQL on 127.0.0.1:5432 is part of this machine; start it if it has stopped.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@pg_isready -h 127.0.0.1 -p 5432

# Debian's Chromium for the browser test (no browser download from elsewhere).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Two workers, one per core, each taking whole test files (a file's servers and fixtures start once):
# many tests wait on outages, servers and subprocesses, so the suite takes about 5 minutes, not 8.
test: install postgres browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The inner loop: the pure and SQLite tests, no servers, no processes (well under a minute).
test-fast: install
	$(BIN)/python -m pytest -q -x -m "not slow and not browser and not aws and not postgres"

# The production topology on this machine, everything on 127.0.0.1: the instance on PostgreSQL
# (deploy/dagster.yaml), a gRPC code server, dagster-webserver and dagster-daemon as ECS tasks of
# deploy/'s definitions, DynamoDB / S3 / ECS / Batch on moto with a stand-in agent. Ctrl-C stops it.
prod-local: install postgres
	$(BIN)/python -m nvi_batch_tests.topology.prod_local

lint: install
	$(BIN)/ruff check nvi_batch nvi_batch_tests benchmarks

ui: install
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

benchmark: install
	$(BIN)/python benchmarks/refresh_throughput.py

clean:
	rm -rf $(VENV) .dagster_home data test-artifacts .prod-local *.egg-info
