# Two commands matter: `make demo` and `make test`. Both set themselves up from nothing:
# a virtualenv in .venv, the pinned requirements, and a project-local Airflow home with
# a SQLite metadata DB. Override any of the variables below from the environment.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export MLOPS_DATA_DIR ?= $(CURDIR)/data
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__EXECUTOR ?= LocalExecutor
# 2-core machines: 32 default worker slots cost ~1 GB for nothing.
export AIRFLOW__CORE__PARALLELISM ?= 4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION ?= True
export AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR ?= True
# Telemetry and progress bars off: nothing here may call out, and logs stay readable.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export GX_ANALYTICS_ENABLED := false
export TQDM_DISABLE := 1
export PYTHONWARNINGS ?= ignore
# Ports of the local services; every URL (Airflow's base and Execution API URLs, the MLflow
# links on the tasks) is derived from them (include/mlops_lifecycle/config.py).
export AIRFLOW__API__PORT ?= 8080
export MLFLOW_UI_PORT ?= 5000

STAMP := $(VENV)/.installed
# The venv's commands first: `airflow standalone` starts its services by name.
export PATH := $(BIN):$(PATH)

.PHONY: help venv db demo test lint format airflow mlflow-ui check bench new-model env clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/python -m pip install --quiet --no-deps -e . 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	@touch $@

venv: $(STAMP)  ## Create .venv with the pinned requirements

db: $(STAMP)  ## Migrate the Airflow metadata DB under $AIRFLOW_HOME (SQLite by default)
	@mkdir -p $(AIRFLOW_HOME)
	@$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || { cat $(AIRFLOW_HOME)/db-migrate.log; exit 1; }

demo: db  ## Replay 30 days of the example model through the real DAGs
	$(BIN)/mlops demo

test: $(STAMP)  ## Lint and run every test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

check: $(STAMP)  ## Validate every spec, print each problem with file and field (WRITE_SUITES=1: renew the suites)
	$(BIN)/mlops check $(if $(filter 1 yes true,$(WRITE_SUITES)),--write-suites)

airflow: db  ## Start a local Airflow (UI on http://localhost:$AIRFLOW__API__PORT, default 8080); Ctrl-C stops it all
	$(BIN)/mlops airflow-standalone

mlflow-ui: $(STAMP)  ## Start the MLflow UI (http://localhost:$MLFLOW_UI_PORT, default 5000) on the demo's store
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(MLOPS_DATA_DIR)/mlflow/mlflow.db}" --host 127.0.0.1 --port $(MLFLOW_UI_PORT)

bench: $(STAMP)  ## Run the benchmark suite (prints one JSON line per figure)
	$(BIN)/python -m bench.run

comma := ,
new-model: $(STAMP)  ## Scaffold a spec: make new-model NAME=x SAMPLE=file.csv TARGET=col [TIME=col] [EXCLUDE=a,b]
	$(BIN)/mlops new-model --name "$(NAME)" --sample "$(SAMPLE)" --target "$(TARGET)" $(if $(TIME),--time "$(TIME)") \
	  $(foreach column,$(subst $(comma), ,$(EXCLUDE)),--exclude "$(column)")

env:  ## Print this project's environment for a shell: eval "$$(make -s env)", then airflow/mlops work as here
	@for v in AIRFLOW_HOME MLOPS_DATA_DIR AIRFLOW__CORE__DAGS_FOLDER AIRFLOW__CORE__PLUGINS_FOLDER \
	  AIRFLOW__CORE__LOAD_EXAMPLES AIRFLOW__CORE__EXECUTOR AIRFLOW__CORE__PARALLELISM \
	  AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR \
	  AIRFLOW__API__PORT MLFLOW_UI_PORT \
	  MLFLOW_DISABLE_TELEMETRY DO_NOT_TRACK GX_ANALYTICS_ENABLED TQDM_DISABLE PATH; do \
	  printf "export %s=%q\n" "$$v" "$${!v}"; done

clean:  ## Remove the local stores (.airflow, data); keeps .venv
	rm -rf $(AIRFLOW_HOME) $(MLOPS_DATA_DIR)
