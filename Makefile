# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help run stop status test test-unit test-integration test-e2e gen check-gen lock bench demo replay-dlq clean

help:
	@echo "make run     start the whole stack (embedded PostgreSQL/Redis/NATS unless *_URL are set), print the URL"
	@echo "make test    the whole suite: unit, integration, e2e through a real Envoy"
	@echo "make stop    stop what 'make run' started (from another shell)"
	@echo "make status  one line per process of 'make run'"
	@echo "make gen     regenerate gen/ from proto/"
	@echo "make lock    re-pin requirements.lock from requirements.in"

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if (3, 11) <= v[:2] <= (3, 12) else "Python 3.11 or 3.12 is required (pgserver ships wheels up to 3.12); set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) tools/write_pth.py
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack run

stop: $(STAMP)
	$(PY) -m devstack stop

status: $(STAMP)
	$(PY) -m devstack status

test: $(STAMP)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

gen: $(STAMP)
	$(PY) tools/gen_protos.py gen

lock: $(STAMP)
	$(PY) -m pip install --quiet -r requirements.in
	$(PY) -m pip freeze --exclude-editable > requirements.lock

demo: $(STAMP)  ## with `make run` going: one whole checkout over REST, each step with its timing
	$(PY) tools/demo.py

replay-dlq: $(STAMP)  ## make replay-dlq [ID=<dead letter id>]: replay one parked enrollment event, or all
	$(PY) -m enrollment_svc.replay_dlq $(if $(ID),$(ID),--all)

clean:
	rm -rf .run
