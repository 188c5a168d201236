# complaintcore: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
UV_VERSION := 0.13.9

.PHONY: install run test test-unit test-integration test-e2e test-wheel lint lint-openapi test-client format migrate openapi lock bench profile clean

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(INSTALLED)

install: $(INSTALLED)

run: install ## serve the API on 127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/complaintcore serve

test: install ## the whole suite: unit, integration (real PostgreSQL) and end-to-end
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

test-e2e: install
	$(BIN)/pytest tests/e2e

test-wheel: install ## build the wheel, install it into a fresh venv, migrate and serve from it
	$(BIN)/pytest tests/packaging

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

# The OpenAPI linters, pinned, installed from the npm registry into .lint-tools/ (git-ignored)
LINT_TOOLS := .lint-tools
OPENAPI_LINTERS := @redocly/cli@2.77.0 @stoplight/spectral-cli@6.16.3

lint-openapi: ## openapi.yaml through `redocly lint` and `spectral lint` (spectral:oas): no error
	npm install --silent --no-audit --no-fund --prefix $(LINT_TOOLS) $(OPENAPI_LINTERS)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		$(LINT_TOOLS)/node_modules/.bin/redocly lint openapi.yaml
	$(LINT_TOOLS)/node_modules/.bin/spectral lint openapi.yaml --ruleset .spectral.yaml \
		--fail-severity error

# A client generated from openapi.yaml by openapi-python-client (pinned, in .client-tools/)
CLIENT_TOOLS := .client-tools

test-client: install ## a client generated from openapi.yaml walks a case against `serve`
	python3 -m venv $(CLIENT_TOOLS)
	$(CLIENT_TOOLS)/bin/pip install --quiet --disable-pip-version-check openapi-python-client==0.29.1
	rm -rf $(CLIENT_TOOLS)/generated && mkdir -p $(CLIENT_TOOLS)/generated
	$(CLIENT_TOOLS)/bin/openapi-python-client generate --path openapi.yaml --meta none \
		--output-path $(CLIENT_TOOLS)/generated/complaintcore_client > /dev/null
	COMPLAINTCORE_CLIENT_TOOLS=$(CURDIR)/$(CLIENT_TOOLS) $(BIN)/pytest tests/client -q

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

migrate: install
	$(BIN)/complaintcore migrate

openapi: install ## regenerate openapi.yaml from the app's routes and models
	$(BIN)/python -m complaintcore.api.openapi_export > openapi.yaml.tmp || { rm -f openapi.yaml.tmp; exit 1; }
	mv openapi.yaml.tmp openapi.yaml

lock: install ## re-pin every dependency after a change to pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra bench -c requirements.lock --python-version 3.11 -o requirements-bench.lock

bench: install ## every figure of TARGETS.md against same-run baselines (BENCH_ARGS=--quick for a fast run)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-bench.lock
	$(BIN)/python -m bench.run $(BENCH_ARGS)

profile: install ## py-spy profiles of import, rebuild, commands and replay under bench/results/profiles/
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-bench.lock
	$(BIN)/python -m bench.profiles $(PROFILE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
