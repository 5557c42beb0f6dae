# prophecy-jupyter: `make lab` to use it, `make test` to test it (see README.md).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.installed-test
ROOT := $(filter 0,$(shell id -u))
SUDO := $(if $(ROOT),,sudo)
ALLOW_ROOT := $(if $(ROOT),--allow-root,)

export SPARK_LOCAL_IP ?= 127.0.0.1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: lab test demo bench lint system-deps clean

## lab: create .venv, install the project and open the quickstart notebook in JupyterLab
lab: $(INSTALLED)
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) notebooks/quickstart.ipynb

## test: install what the tests need (apt packages too) and run the whole suite
test: system-deps $(TEST_INSTALLED)
	$(VENV)/bin/ruff check prophecy_jupyter tests benchmarks
	$(PY) -m pytest

## demo: run the quickstart notebook headless on the local fabric and print its outputs
demo: $(INSTALLED)
	$(VENV)/bin/jupyter prophecy run notebooks/quickstart.ipynb

## bench: measure against sparkmagic on the same gateway; JSON in benchmarks/results/
bench: system-deps $(TEST_INSTALLED)
	$(PY) benchmarks/run.py

lint: $(TEST_INSTALLED)
	$(VENV)/bin/ruff check prophecy_jupyter tests benchmarks
	$(VENV)/bin/ruff format --check prophecy_jupyter tests benchmarks

# Java runs Spark; libkrb5-dev lets pip build sparkmagic's Kerberos dependency (test extra);
# postgresql serves the shared-store tests.
system-deps:
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	dpkg -s libkrb5-dev >/dev/null 2>&1 || missing="$$missing libkrb5-dev"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "Installing:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $$missing; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(INSTALLED): pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

$(TEST_INSTALLED): pyproject.toml | $(PY)
	$(PIP) install -e ".[test]"
	touch $(INSTALLED) $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache benchmarks/results
