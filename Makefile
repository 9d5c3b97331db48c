# PostAssist: `make run` serves the API with the bundled model; `make test` checks everything.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# llama.cpp's native build crashes (SIGSEGV in the AMX kernels) on some CPUs; build portable.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
EXTRAS ?= local,dev,postgres,redis,sources

.PHONY: install browser run test lint format schema clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(BIN)/.installed ## create .venv and install the project with the local model

browser: ## Debian's Chromium, for the test that opens GraphiQL offline (apt-get: root or sudo)
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends chromium; \
	} || echo "chromium could not be installed: the GraphiQL browser test skips (CI=true: fails)"

run: install ## migrate the SQLite database, start the local model, serve :8000/graphql
	$(BIN)/postassist serve

test: install browser ## ruff, then the whole test suite (unit, API, WebSocket, browser, end-to-end)
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
