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

.PHONY: lab test ui-test demo bench lint system-deps clean

## lab: create .venv, install the project and open the quickstart notebook in JupyterLab
lab: $(INSTALLED)
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) notebooks/quickstart.ipynb

HUB_PROXY := $(VENV)/hub-proxy/node_modules/.bin/configurable-http-proxy
AIRFLOW_VENV := .venv-airflow
AIRFLOW_INSTALLED := $(AIRFLOW_VENV)/.installed

## test: install what the tests need (apt packages too) and run the whole suite, browser tests included
test: system-deps $(TEST_INSTALLED) $(HUB_PROXY) $(AIRFLOW_INSTALLED)
	$(VENV)/bin/ruff check prophecy_jupyter tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m pytest
	$(MAKE) ui-test

## ui-test: the labextension's Jest tests, then the sidebar in JupyterLab on Chromium (galata)
ui-test: system-deps $(TEST_INSTALLED)
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm jest
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jupyter labextension develop --overwrite .
	cd ui-tests && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 jlpm install
	cd ui-tests && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 jlpm playwright test

## demo: run the quickstart notebook headless on the local fabric and print its outputs
demo: $(INSTALLED)
	$(VENV)/bin/jupyter prophecy run notebooks/quickstart.ipynb

JUPYSQL_VENV := .venv-jupysql
JUPYSQL_INSTALLED := $(JUPYSQL_VENV)/.installed
CONNECT_VENV := .venv-connect
CONNECT_INSTALLED := $(CONNECT_VENV)/.installed

## bench: measure against sparkmagic, jupysql, Spark Connect and the bare clients; JSON in benchmarks/results/
bench: system-deps $(TEST_INSTALLED) $(JUPYSQL_INSTALLED) $(CONNECT_INSTALLED)
	$(PY) benchmarks/run.py

$(JUPYSQL_INSTALLED): benchmarks/jupysql-requirements.txt
	$(PYTHON) -m venv $(JUPYSQL_VENV)
	$(JUPYSQL_VENV)/bin/python -m pip install -r benchmarks/jupysql-requirements.txt
	touch $@

# Spark Connect's Python client (pyspark[connect]), apart from .venv as its users have it: benchmark 8
# sends a pandas DataFrame through it to a Spark Connect server started from .venv's pyspark.
$(CONNECT_INSTALLED): benchmarks/connect-requirements.txt
	$(PYTHON) -m venv $(CONNECT_VENV)
	$(CONNECT_VENV)/bin/python -m pip install -r benchmarks/connect-requirements.txt
	touch $@

# Airflow 3 with the Livy and Databricks providers, apart from .venv (it brings pandas 3): the tests
# import generated DAGs with its DagBag, run their Livy tasks, and start its API server, scheduler
# and DAG processor to deploy and operate jobs on (tests/test_airflow_jobs.py, tests/servers/airflow.py).
$(AIRFLOW_INSTALLED): tests/airflow-requirements.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q -r tests/airflow-requirements.txt
	touch $@

lint: $(TEST_INSTALLED)
	$(VENV)/bin/ruff check prophecy_jupyter tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff format --check prophecy_jupyter tests benchmarks

# Java runs Spark; libkrb5-dev lets pip build sparkmagic's Kerberos dependency (test extra);
# postgresql serves the shared-store tests; python3 (Debian's) runs the hub test's users' servers
# (the venv's own interpreter may live where only root can enter); node builds the labextension
# and runs JupyterHub's proxy; Chromium runs the browser tests (never a browser downloaded by
# Playwright).
system-deps:
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium fonts-dejavu-core"; \
	dpkg -s libkrb5-dev >/dev/null 2>&1 || missing="$$missing libkrb5-dev"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	/usr/bin/python3 -c 'import venv' >/dev/null 2>&1 || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
		echo "Installing:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $$missing; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The editable install builds the labextension with jlpm (from jupyterlab, in pip's build env).
$(INSTALLED): pyproject.toml labextension/package.json | $(PY)
	$(PIP) install -e .
	touch $@

# JupyterHub's proxy, for the tests that run a real hub (tests/servers/jupyterhub.py).
$(HUB_PROXY): | $(PY)
	npm install --prefix $(VENV)/hub-proxy --no-audit --no-fund -q configurable-http-proxy@5

$(TEST_INSTALLED): pyproject.toml labextension/package.json | $(PY)
	$(PIP) install -e ".[test]"
	touch $(INSTALLED) $@

clean:
	rm -rf $(VENV) $(JUPYSQL_VENV) $(CONNECT_VENV) $(AIRFLOW_VENV) .pytest_cache .ruff_cache benchmarks/results prophecy_jupyter/labextension \
		labextension/lib labextension/node_modules ui-tests/node_modules
