# orders_etl: every target installs what it needs, so each works from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARCHIVED := $(VENV)/.archived
WAREHOUSE ?= ./warehouse
DELTA_ARTIFACT := io.delta:delta-spark_4.2_2.13:4.4.0
PYTEST_ARGS ?=
# pytest-xdist workers: each is one Spark session; a test file stays whole on one worker, and
# the workers take the files slowest first (tests/conftest.py SLOWEST_FIRST), not most tests first.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.DEFAULT_GOAL := help
.PHONY: help setup test test-fast test-faults lint typecheck check demo bench soak dist clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# First Spark start: Spark's own resolver fetches the Delta jars from Maven Central.
	@# If it cannot, Maven fills ~/.m2, which Spark's resolver also reads, and we try again.
	$(PY) -m orders_etl.session || { \
	  mvn -q dependency:get -Dartifact=$(DELTA_ARTIFACT) && $(PY) -m orders_etl.session; }
	touch $(STAMP)

# A JVM class archive of a small demo run: later local starts map it (never fatal). It costs
# about 90 s once and saves about 6 s a start, so test-fast (two JVMs) goes without it.
$(ARCHIVED): $(STAMP)
	$(PY) -m orders_etl.class_archive
	touch $(ARCHIVED)

setup: $(ARCHIVED) ## create .venv, install the package and dev tools, cache the Delta jars, write the class archive

test: setup ## run the whole test suite (what CI runs), slowest tests listed at the end
	$(PY) -m pytest $(XDIST) --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP) ## what to run on every change: no subprocess JVMs, no slow marks, no class archive needed
	$(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

test-faults: setup ## the fault tests with the full 5 random SIGKILLs per writing command
	ORDERS_ETL_KILLS_PER_COMMAND=5 $(PY) -m pytest --durations=25 \
	  tests/test_faults_kill.py tests/test_faults_concurrent.py $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy --strict
	$(VENV)/bin/mypy

check: lint typecheck test ## lint, typecheck and test

demo: setup ## generate a week of late-arriving batches and run the pipeline on $(WAREHOUSE)
	$(VENV)/bin/orders-etl demo --warehouse $(WAREHOUSE)

bench: setup ## benchmark: incremental vs full refresh, each command's fixed cost, warm hourly, landing (writes bench/results.md)
	$(PY) bench/run.py
	$(PY) bench/fixed_cost.py
	$(PY) bench/warm_hourly.py
	$(PY) bench/landing.py

SOAK_ARGS ?=
soak: setup ## soak: 14 simulated days of hourly runs with and without maintain (writes bench/soak.md, bench/soak.png)
	$(PY) bench/soak.py $(SOAK_ARGS)

dist: $(STAMP) ## build a wheel and a zip for spark-submit --py-files into dist/
	rm -rf dist build
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .
	$(PY) -c "import pathlib, zipfile; z = zipfile.ZipFile('dist/orders_etl.zip', 'w'); \
	  [z.write(p) for p in sorted(pathlib.Path('orders_etl').rglob('*.py'))]; z.close()"
	@ls -1 dist

clean: ## remove the venv, build output and the local warehouse
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(WAREHOUSE)
