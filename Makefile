# sseserver: `make run` to chat, `make test` for the whole suite (what CI runs).
# Works on a fresh machine with only Python 3.11+; system packages the tests need
# (Debian's chromium, redis-server and nginx) are installed with apt-get when missing and
# running as root.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-run
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run install test lint lock upgrade system-deps node-deps clean bench bench-quick \
	bench-redis bench-profile bench-memory

# What gets installed is locked (requirements/*.txt, hash-pinned, made by `make lock` from
# pyproject.toml's ranges): `make run` installs the runtime lock only, `make test` adds the
# test lock, `make bench` the bench lock. Only pip is needed, and sseserver itself goes in
# editable with the locked hatchling, never a build backend fetched at install time.
LOCKED := $(PY) -m pip install --quiet --require-hashes --no-deps -r

$(STAMP): requirements/run.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(LOCKED) requirements/run.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

TEST_STAMP := $(VENV)/.installed-test

$(TEST_STAMP): requirements/test.txt $(STAMP)
	$(LOCKED) requirements/test.txt
	touch $(TEST_STAMP)

install: $(STAMP)

# make run ARGS="--web-search 3" passes options through.
run: $(STAMP)
	@echo "Starting sseserver: open http://$(HOST):$(PORT) in your browser (Ctrl+C stops it)"
	$(PY) -m sseserver --host $(HOST) --port $(PORT) $(ARGS)

# System packages for the tests, from Debian (never a downloaded binary): Chromium for the
# browser tests, redis-server and nginx for the scale-out tests (openssl makes the
# certificate nginx serves them), iproute2 (ip, tc) for the half-open test's network
# namespace, curl for the command-line test, Node.js and npm for the AI SDK's own client
# and the bench's Node relay peer.
SYSTEM_DEPS := /usr/bin/chromium:chromium /usr/bin/redis-server:redis-server \
	/usr/bin/redis-cli:redis-tools \
	/usr/sbin/nginx:nginx /usr/bin/openssl:openssl /usr/sbin/tc:iproute2 /usr/bin/curl:curl \
	/usr/bin/node:nodejs /usr/bin/npm:npm

system-deps:
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do \
	  [ -x "$${dep%%:*}" ] || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's$$missing for the tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "note: missing$$missing; those tests cannot run until you run: sudo apt-get install$$missing"; \
	  fi; \
	fi

# The AI SDK at the versions tests/node/package-lock.json pins, from the npm registry only,
# without install scripts (esbuild's binary comes as a package), within five minutes.
NODE_DIR   := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@if command -v npm >/dev/null; then \
	  timeout 300 npm ci --prefix $(NODE_DIR) --ignore-scripts --no-audit --no-fund \
	    --loglevel=error && touch $@; \
	else \
	  echo "note: npm is missing; the AI SDK tests cannot run until you run: sudo apt-get install nodejs npm"; \
	fi

# The bench's Node relay peer's SDK (pinned in bench/peers/node/), into .cache/node by
# bench/node_sdk.py; the peer's test runs it too.
BENCH_NODE_STAMP := .cache/node/.installed

$(BENCH_NODE_STAMP): bench/peers/node/package.json bench/peers/node/package-lock.json $(TEST_STAMP)
	@if command -v npm >/dev/null; then \
	  $(PY) -m bench.node_sdk; \
	else \
	  echo "note: npm is missing; the Node relay peer cannot run until you run: sudo apt-get install nodejs npm"; \
	fi

node-deps: system-deps $(NODE_STAMP) $(BENCH_NODE_STAMP)

test: $(TEST_STAMP) system-deps node-deps
	$(PY) -m pytest

# Performance (docs/performance.md): S1-S5 against sseserver and its peers, server and load pinned
# to separate cores (taskset). `bench` takes ~20 minutes, `bench-quick` ~2.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements/bench.txt $(TEST_STAMP)
	$(LOCKED) requirements/bench.txt
	touch $(BENCH_STAMP)

# bench.node_sdk installs the Node relay peer's SDK unless it is there, or says what is missing.
bench: $(BENCH_STAMP)
	$(PY) -m bench.node_sdk
	$(PY) -m bench.run

bench-quick: $(BENCH_STAMP)
	$(PY) -m bench.node_sdk
	$(PY) -m bench.run --quick

# The Redis stream store beside the in-memory one, same run, same load; then what a lone
# Redis and a 3-master cluster carry with each Redis held to the same CPU (needs root).
bench-redis: $(BENCH_STAMP) system-deps
	$(PY) -m bench.redis_vs_memory
	$(PY) -m bench.redis_capacity

bench-profile: $(BENCH_STAMP)
	$(PY) -m bench.profile run S1
	$(PY) -m bench.profile run S5a

# What one open stream holds, by allocation site (tracemalloc), sseserver beside raw aiohttp.
bench-memory: $(BENCH_STAMP)
	$(PY) -m bench.memory

# TypeScript's checker for the page's JSDoc-typed ES modules (web/jsconfig.json): a dev
# tool from npm, pinned, kept inside the venv; the page itself has no build step.
TSC_VERSION   := 7.0.2
TRUSTED_TYPES := 2.0.7
TSC_DIR       := $(VENV)/tsc
TSC_STAMP     := $(TSC_DIR)/.installed-$(TSC_VERSION)-$(TRUSTED_TYPES)

$(TSC_STAMP):
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; \
	  else echo "npm is missing: run sudo apt-get install npm" >&2; exit 1; fi; }
	rm -rf $(TSC_DIR)
	npm install --prefix $(TSC_DIR) --no-audit --no-fund --save-exact --loglevel=error \
	  typescript@$(TSC_VERSION) @types/trusted-types@$(TRUSTED_TYPES)
	touch $(TSC_STAMP)

# The locks again from pyproject.toml's ranges, keeping every pin they still allow (after an
# edit of pyproject.toml), or at the newest versions they allow (upgrade: then the whole
# suite runs on them). docs/testing.md says when and what to do when it fails.
lock: $(TEST_STAMP)
	$(PY) -m requirements.lock

upgrade: $(TEST_STAMP)
	$(PY) -m requirements.lock --upgrade
	$(LOCKED) requirements/test.txt
	touch $(TEST_STAMP)
	$(MAKE) test

lint: $(TEST_STAMP) $(TSC_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(TSC_DIR)/node_modules/.bin/tsc -p web/jsconfig.json

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts \
	  $(NODE_DIR)/node_modules
