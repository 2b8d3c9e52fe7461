# sseserver: `make run` to chat, `make test` for the whole suite (what CI runs).
# Works on a fresh machine with only Python 3.11+; system packages the tests need
# (Debian's chromium) are installed with apt-get when missing and running as root.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run install test lint system-deps clean bench bench-quick bench-profile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "Starting sseserver: open http://$(HOST):$(PORT) in your browser (Ctrl+C stops it)"
	$(PY) -m sseserver --host $(HOST) --port $(PORT)

# Chromium for the browser tests, from Debian's packages (never a downloaded browser).
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "note: /usr/bin/chromium is missing; the browser tests will fail until you run: sudo apt-get install chromium"; \
	  fi; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest

# Performance (issue 6): S1-S5 against sseserver and its peers, server and load pinned
# to separate cores (taskset). `bench` takes ~20 minutes, `bench-quick` ~2.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench.run

bench-quick: $(BENCH_STAMP)
	$(PY) -m bench.run --quick

bench-profile: $(BENCH_STAMP)
	$(PY) -m bench.profile run S1
	$(PY) -m bench.profile run S5a

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts
