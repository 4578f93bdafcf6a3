# Two commands matter: `make run` (demo line) and `make test` (every test). Both set up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test lint typecheck bench soak conformance clean lock

install: $(STAMP)

# Versions pinned by constraints.txt (`make lock` refreshes it; README "Refreshing the lock").
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The newest versions pyproject.toml allows, installed in a fresh venv and frozen (the project
# itself left out). Dependencies added to pyproject.toml install unpinned until the next lock.
LOCK_VENV := $(VENV)-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev]'
	{ echo "# Pinned versions for make install; regenerate with make lock (do not edit)."; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf $(LOCK_VENV)

# Real programs the tests start by themselves: Mosquitto, PostgreSQL (a throwaway server per run
# unless CARPOOL_TEST_POSTGRES_URL is set), and Debian's Chromium for the dashboard tests
# (Playwright drives /usr/bin/chromium; it never downloads a browser).
APT_PACKAGES := mosquitto postgresql chromium chromium-driver fonts-dejavu-core
system-deps:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing with apt-get:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(BIN)/carpool-line serve --demo

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install system-deps
	$(BIN)/python -m bench

# The fault and fuzz suites, longer: more outages, more waiting riders, more random messages
# (docs/RELIABILITY.md). CARPOOL_SOAK_SCALE=10 make soak for a longer run.
SOAK_TESTS := tests/test_faults.py tests/test_faults_restart.py tests/test_fuzz_mqtt.py \
	tests/test_faults_monitor.py tests/test_broker_security.py
soak: install system-deps
	CARPOOL_SOAK_SCALE=$${CARPOOL_SOAK_SCALE:-5} $(BIN)/pytest -s --timeout 3600 $(SOAK_TESTS)

# Conformance of a demo month of exports to the official files (not in the repository):
# make conformance SPECS=../shared/specs   (DIR with rpc/api-v3.4.yaml and bnlc/schema.json)
conformance: install
	@test -n "$(SPECS)" || { echo "usage: make conformance SPECS=DIR"; exit 2; }
	$(BIN)/python -m tools.conformance $(SPECS)

clean:
	rm -rf $(VENV) $(VENV)-lock var .pytest_cache .mypy_cache .ruff_cache
