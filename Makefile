# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help run run-ha chaos stop status test lint test-unit test-integration test-e2e gen docs lock bench demo replay-dlq token logs traces grpcurl certs backup restore clean

help:
	@echo "make run     start the whole stack (embedded PostgreSQL/Redis/NATS unless *_URL are set), print the URL"
	@echo "make test    the whole suite: unit, integration, e2e through a real Envoy"
	@echo "make run-ha  the same, each service twice behind Envoy, three NATS nodes, a PostgreSQL replica"
	@echo "make chaos   the chaos test for longer (CHAOS_SECONDS=120): kill replicas and a NATS node under load"
	@echo "make stop    stop what 'make run' started (from another shell)"
	@echo "make status  one line per process of 'make run'"
	@echo "make lint    ruff, mypy and the import-linter contracts (make test runs it first)"
	@echo "make gen     regenerate gen/ from proto/"
	@echo "make docs    regenerate docs/CONFIGURATION.md from common/settings.py"
	@echo "make lock    re-pin requirements.lock from requirements.in"
	@echo "make logs    follow every log of make run as readable lines (service, level, trace, message)"
	@echo "make traces  the last checkout's span tree with timings (make traces TRACE=<trace id> for another)"
	@echo "make token   a dev bearer token on stdout: make token [ROLE=admin] [USER=<uuid, e-mail or name>]"
	@echo "make grpcurl call a service with the developer certificate: make grpcurl ARGS=\"127.0.0.1:50051 list\""
	@echo "make backup  a base backup of make run's PostgreSQL (its WAL is archived continuously)"
	@echo "make restore point-in-time recovery into a new data directory: make restore TARGET_TIME=2026-12-03T10:45:00Z"

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if (3, 11) <= v[:2] <= (3, 12) else "Python 3.11 or 3.12 is required (pgserver ships wheels up to 3.12); set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack run

run-ha: $(STAMP)  ## make run with every service twice, a NATS cluster and a PostgreSQL replica (devstack/ha.py)
	$(PY) -m devstack run --ha

chaos: $(STAMP)  ## tests/e2e/test_chaos.py under load for CHAOS_SECONDS (default 120)
	CHAOS_SECONDS=$${CHAOS_SECONDS:-120} $(PY) -m pytest -s tests/e2e/test_chaos.py

stop: $(STAMP)
	$(PY) -m devstack stop

status: $(STAMP)
	$(PY) -m devstack status

test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

gen: $(STAMP)
	$(PY) tools/gen_protos.py gen

docs: $(STAMP)
	$(PY) -m tools.config_docs > docs/CONFIGURATION.md

lock:  ## re-pin both locks in a scratch virtualenv: runtime first, then development on top of it
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -r requirements.in && .lockvenv/bin/pip freeze > requirements.lock
	.lockvenv/bin/pip install --quiet -r requirements-dev.in
	.lockvenv/bin/pip freeze | grep -vxFf requirements.lock > requirements-dev.lock
	rm -rf .lockvenv

demo: $(STAMP)  ## with `make run` going: one whole checkout over REST, each step with its timing
	$(PY) -m tools.demo

# USER is in every shell's environment: only a USER given on make's command line counts
token: $(STAMP)  ## make token [ROLE=admin] [USER=<uuid, e-mail or name>]: a dev bearer token on stdout
	@$(PY) -m tools.dev_token $(if $(ROLE),--role "$(ROLE)") $(if $(filter command line,$(origin USER)),--user "$(USER)")

logs: $(STAMP)  ## follow every log of `make run` as readable lines (the files stay JSON)
	@$(PY) -m tools.logs

traces: $(STAMP)  ## make traces [TRACE=<trace id>]: a span tree from .run/traces (default: the last checkout)
	@$(PY) -m tools.traces $(TRACE)

CERTS := .run/certs
certs: $(STAMP)  ## the development CA and certificates make run issues (made or renewed as needed)
	@$(PY) -m devstack certs

# mutual TLS as spiffe://interns/developer: health, reflection and the public API (with a bearer
# token); never the internal RPCs, webhooks or admin RPCs (common/callers.py)
grpcurl: $(STAMP)  ## make grpcurl ARGS="[-d '{…}'] [-H 'authorization: Bearer …'] 127.0.0.1:50051 list|<method>"
	@test -f $(CERTS)/developer.pem || $(PY) -m devstack certs
	@$(VENV)/bin/grpcurl -cacert $(CERTS)/ca.pem -cert $(CERTS)/developer.pem -key $(CERTS)/developer-key.pem $(ARGS)

replay-dlq: $(STAMP)  ## make replay-dlq [SERVICE=enrollment] [ID=<dead letter id>]: replay one parked event, or all
	$(PY) -m $(if $(SERVICE),$(SERVICE),enrollment)_svc.replay_dlq $(if $(ID),$(ID),--all)

# docs/OPERATIONS.md "Backups and point-in-time recovery"; DATABASE_URL set: that server instead
backup: $(STAMP)  ## make backup [KEEP=<n>] [WAL_ARCHIVE=<dir> for an external server]
	$(PY) -m devstack backup $(if $(KEEP),--keep $(KEEP)) $(if $(WAL_ARCHIVE),--wal-archive "$(WAL_ARCHIVE)")

restore: $(STAMP)  ## make restore TARGET_TIME=<ISO 8601, UTC without an offset> [PORT=55433; 0: only prepare it]
	@test -n "$(TARGET_TIME)" || { echo "make restore TARGET_TIME=2026-12-03T10:45:00Z [PORT=55433]" >&2; exit 2; }
	$(PY) -m devstack restore --target-time "$(TARGET_TIME)" $(if $(PORT),--port $(PORT)) $(if $(WAL_ARCHIVE),--wal-archive "$(WAL_ARCHIVE)")

clean:
	rm -rf .run
