# sseserver: `make run` to chat, `make test` for the whole suite (what CI runs).
# Works on a fresh machine with only Python 3.11+; system packages the tests need
# (Debian's chromium) are installed with apt-get when missing and running as root.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run install test lint system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "Starting sseserver: open http://$(HOST):$(PORT) in your browser (Ctrl+C stops it)"
	$(PY) -m sseserver --host $(HOST) --port $(PORT)

# Chromium for the browser tests, from Debian's packages (never a downloaded browser);
# iproute2 (ip, tc) for the half-open test's network namespace.
system-deps:
	@if ! command -v tc >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing iproute2 for the half-open test"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2; \
	fi
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

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts
