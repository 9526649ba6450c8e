# Entry points; each installs what it needs first (infra/scripts/setup.sh:
# .venv with infra/requirements.txt, infra/node/node_modules), and reuses it
# on the next run. Pass arguments with ARGS="...".
#
#   make dev     start the local stack on 127.0.0.1 (API on $PORT, default 3000)
#   make test    run every check (infra/scripts/test.sh)
#   make setup   install the tools only (ARGS=--chromium adds Debian's chromium)
#   make bench   run the benchmark against the local stack

SHELL := /bin/bash
ARGS ?=

.PHONY: help dev test setup bench

help:
	@sed -n 's/^#   make /make /p' Makefile

dev:
	@bash infra/scripts/dev.sh $(ARGS)

test:
	@bash infra/scripts/test.sh $(ARGS)

setup:
	@bash infra/scripts/setup.sh $(ARGS)

bench:
	@bash infra/scripts/bench.sh $(ARGS)
