# Aidline: `make run` starts everything with demo data; `make test` runs every check.
VENV ?= .venv
PYTHON ?= python3
PORT ?= 8000
BIN := $(VENV)/bin
RUNS ?= 3

.PHONY: install redis-server promtool run test test-fast test-under-load lint fmt bench bench-intake bench-import bench-reports clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || { \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "python3 -m venv failed: installing Debian's python3-venv package"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	    $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "python3 -m venv failed. Install it first: sudo apt-get install python3-venv (Debian/Ubuntu)"; \
	    exit 1; \
	  fi; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed redis-server promtool

# Makes sure redis-server exists: installs Debian's package when running as root, else says what to do.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "redis-server not found: installing Debian's redis-server package"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server not found. Install it first: sudo apt-get install redis-server (Debian/Ubuntu)"; \
	    exit 1; \
	  fi; }

# Makes sure promtool exists (the tests check the alert rules and Prometheus config with it): Debian's prometheus
# package when running as root, else says what to do.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "promtool not found: installing Debian's prometheus package"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "promtool not found. Install it first: sudo apt-get install --no-install-recommends prometheus (Debian/Ubuntu)"; \
	    exit 1; \
	  fi; }

run: install
	PORT=$(PORT) $(BIN)/aidline run

# Formats and fixes what can be fixed by tools; `make lint` then checks the rest.
fmt: $(BIN)/.installed
	$(BIN)/ruff check --fix service worker tests bench
	$(BIN)/ruff format service worker tests bench

lint: $(BIN)/.installed
	$(BIN)/ruff check service worker tests bench
	$(BIN)/ruff format --check service worker tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest

# The inner loop: unit, API and worker tests, no end-to-end tests and nothing marked slow.
test-fast: install
	$(BIN)/pytest -m "not slow" --ignore=tests/e2e

# The whole suite RUNS times (default 3) while every core is kept busy by other processes.
test-under-load: install
	RUNS=$(RUNS) tests/run_under_load.sh $(BIN)/pytest

bench: install
	$(BIN)/python bench/bench_matching.py
	$(BIN)/python bench/bench_batch_intake.py

# 10,000 needs through POST /api/v1/needs/batch against gunicorn and a private redis-server (about a minute).
bench-intake: install
	$(BIN)/python bench/bench_batch_intake.py

# 10,000 volunteers through `aidline import volunteers` (created, unchanged, updated) and back out through export.
bench-import: install
	$(BIN)/python bench/bench_import.py

# A year of report rollups for a million needs, then the summary for the year by each grouping (about a minute).
bench-reports: install
	$(BIN)/python bench/bench_reports.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
