# Aidline: `make run` starts everything with demo data; `make test` runs every check.
VENV ?= .venv
PYTHON ?= python3
PORT ?= 8000
REDIS_PORT ?= 6390
BIN := $(VENV)/bin
RUNS ?= 3

.PHONY: install redis-server promtool chromium translations translations-update vendor run test test-fast test-under-load lint fmt bench bench-intake bench-import bench-reports bench-drill bench-peers clean

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

install: $(BIN)/.installed redis-server promtool chromium translations

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

# Makes sure Debian's chromium (the console's browser tests drive it) and a CJK font exist, as redis-server.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wenquanyi; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium or fonts-wqy-microhei not found: installing Debian's packages"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null; \
	  else \
	    echo "chromium not found. Install it first: sudo apt-get install -y --no-install-recommends chromium fonts-wqy-microhei"; \
	    exit 1; \
	  fi; }

# The console's message catalogs: compiled .mo files from the .po files (both are committed).
TRANSLATIONS := service/console/translations
translations: $(BIN)/.installed
	@$(BIN)/pybabel compile --statistics -d $(TRANSLATIONS) -D messages

# Re-extract the console's texts into messages.pot and merge them into each language's .po (then translate, compile).
translations-update: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext --no-location --sort-output -o $(TRANSLATIONS)/messages.pot service/console
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -D messages --no-fuzzy-matching --ignore-obsolete

# The console's JavaScript and CSS libraries, refreshed from the npm registry at pinned versions (committed: users
# need no build step). Each keeps its licence file beside it (@alpinejs/csp's package ships none: its MIT licence,
# from the Alpine.js repository, is kept committed in the same folder).
HTMX_VERSION := 2.0.11
ALPINE_VERSION := 3.17.4
LEAFLET_VERSION := 1.9.4
VENDOR := service/console/static/vendor
NPM := https://registry.npmjs.org
vendor:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	fetch() { curl -fsSL "$(NPM)/$$1/-/$$2-$$3.tgz" | tar xz -C "$$tmp" && mv "$$tmp/package" "$$tmp/$$2"; }; \
	fetch htmx.org htmx.org $(HTMX_VERSION); \
	fetch @alpinejs/csp csp $(ALPINE_VERSION); \
	fetch leaflet leaflet $(LEAFLET_VERSION); \
	mkdir -p $(VENDOR)/htmx $(VENDOR)/alpinejs-csp $(VENDOR)/leaflet/images; \
	cp "$$tmp/htmx.org/dist/htmx.min.js" "$$tmp/htmx.org/LICENSE" $(VENDOR)/htmx/; \
	cp "$$tmp/csp/dist/cdn.min.js" $(VENDOR)/alpinejs-csp/; \
	if [ -f "$$tmp/csp/LICENSE" ]; then cp "$$tmp/csp/LICENSE" $(VENDOR)/alpinejs-csp/; fi; \
	cp "$$tmp/leaflet/dist/leaflet.js" "$$tmp/leaflet/dist/leaflet.css" "$$tmp/leaflet/LICENSE" $(VENDOR)/leaflet/; \
	cp "$$tmp/leaflet/dist/images/"*.png $(VENDOR)/leaflet/images/; \
	printf 'htmx.org %s\n@alpinejs/csp %s\nleaflet %s\n' $(HTMX_VERSION) $(ALPINE_VERSION) $(LEAFLET_VERSION) > $(VENDOR)/VERSIONS; \
	echo "vendored into $(VENDOR):"; cat $(VENDOR)/VERSIONS

# The service needs the package, redis-server and the catalogs; not the test tools (promtool, chromium).
run: $(BIN)/.installed redis-server translations
	PORT=$(PORT) $(BIN)/aidline run --redis-port $(REDIS_PORT)

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

# The outage drill's arrivals and answers replayed through simple dispatch policies, against the drill report's optimum (seconds).
bench-drill: install
	$(BIN)/python bench/bench_drill_policies.py

# Aidline beside the PostGIS and Redis one-call references on the peer workload, through bench/peer_adapter.py:
# 1k to 1M volunteers, median of 3 (about 25 minutes). PEERS_DIR: the instrument's folder; PEERS_VENV: its venv
# (its setup.sh builds it). PEERS_ARGS: e.g. --sizes 1000,10000 --reps 1 for a quick look.
PEERS_DIR ?= ../shared/bench-peers
PEERS_VENV ?= $(shell $(PYTHON) -c 'import tempfile; print(tempfile.gettempdir())')/peers-venv
PEERS_ARGS ?= --e2e-needs 5000
bench-peers: install
	@test -f $(PEERS_DIR)/side_by_side.py || { echo "no peer benchmark at $(PEERS_DIR): set PEERS_DIR"; exit 2; }
	@test -x $(PEERS_VENV)/bin/python || { echo "no peers venv at $(PEERS_VENV): run $(PEERS_DIR)/setup.sh, or set PEERS_VENV"; exit 2; }
	AIDLINE_MAIN=$(CURDIR) AIDLINE_PYTHON=$(CURDIR)/$(BIN)/python $(PEERS_VENV)/bin/python $(PEERS_DIR)/side_by_side.py \
	  $(PEERS_ARGS) --out var/peer-results/side-by-side-$$(date -u +%Y%m%dT%H%M%S).json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
