# PostAssist: `make run` serves the API with the bundled model; `make test` checks everything.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# llama.cpp's native build crashes (SIGSEGV in the AMX kernels) on some CPUs; build portable.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# Every install comes from a lock file with hashes (pip-compile's): the exact versions
# tested, whatever PyPI has that day. LOCK holds the extras in EXTRAS; DOCKER_LOCK the
# ones the Dockerfile installs. `make lock` writes both from pyproject.toml's ranges.
EXTRAS ?= local,dev,postgres,redis,sources,broker,otel
DOCKER_EXTRAS ?= local,postgres,redis,broker,otel
LOCK ?= requirements/lock.txt
DOCKER_LOCK ?= requirements/docker.txt
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release pyproject.toml
# allows; LOCK_FLAGS="--upgrade-package NAME" moves one. Plain `make lock` keeps the pins
# that still fit and resolves only what pyproject.toml changed.
LOCK_FLAGS ?=
PIP_TOOLS ?= pip-tools==7.6.2
LOCK_TOOLS := $(VENV)/lock-tools
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: install lock browser js run test lint format schema clean

# Reinstalls when pyproject.toml or the lock changes. The lock's packages first, each
# checked against its hashes (llama-cpp-python builds from its sdist; pip's wheel cache
# keeps the build), then the project itself, editable, which has no hash to check.
$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed ## create .venv and install the locked packages and the project

lock: ## re-resolve requirements/*.txt after changing pyproject.toml (LOCK_FLAGS=--upgrade: all)
	@[ -x $(LOCK_TOOLS)/bin/pip-compile ] || { $(PYTHON) -m venv $(LOCK_TOOLS) \
	  && $(LOCK_TOOLS)/bin/python -m pip install --quiet "$(PIP_TOOLS)"; }
	@mkdir -p $(dir $(LOCK)) $(dir $(DOCKER_LOCK))
	$(PIP_COMPILE) $(LOCK_FLAGS) --extra $(EXTRAS) -o $(LOCK) pyproject.toml
	$(PIP_COMPILE) $(LOCK_FLAGS) --extra $(DOCKER_EXTRAS) -c $(LOCK) -o $(DOCKER_LOCK) pyproject.toml

browser: ## Debian's Chromium and its driver, for the browser tests (apt-get: root or sudo)
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q \
	  && $$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	} || echo "chromium could not be installed: the browser tests skip (CI=true: fail)"

# The JavaScript clients the tests drive (Apollo Client, graphql-sse, graphql-ws, axe-core),
# exactly as tests/js/package-lock.json pins them; again only when the lock changes.
JS = tests/js
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: the JavaScript client tests skip (CI=true: fail)"; exit 0; }; \
	  npm ci --prefix $(JS) --no-audit --no-fund --loglevel=error && touch $@

js: $(JS)/node_modules/.installed ## the JavaScript clients of the tests (npm ci)

run: install ## migrate the SQLite database, start the local model, serve :8000/graphql
	$(BIN)/postassist serve

test: install browser js ## ruff, then the whole test suite (unit, API, WebSocket, browser, end-to-end)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: install ## re-export schema.graphql after changing the GraphQL types
	$(BIN)/postassist export-schema -o schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
