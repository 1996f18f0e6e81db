# PowerTrip: checks and one-command reproduction (see experiments/benchmark_reproduce.py).
#   make check             what CI runs after the install: lint, format, types, then the tests
#   make lint / types / test   one of those
#   make reproduce         the README's figures and tables from scratch, copied into docs/figures
#   make reproduce-quick   the same pipeline on a tiny budget (about a minute): checks it runs
#   make benchmark         the benchmark of experiments/configs/benchmark.yaml only
VENV ?= .venv/bin
POWERTRIP ?= $(VENV)/powertrip
WORKERS ?= 2

.PHONY: check lint types test reproduce reproduce-quick benchmark

check: lint types test

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

types:
	$(VENV)/mypy

test:
	$(VENV)/python -m pytest

reproduce:
	$(POWERTRIP) reproduce --workers $(WORKERS) --update-docs --agents

reproduce-quick:
	$(POWERTRIP) reproduce --quick --workers $(WORKERS)

benchmark:
	$(POWERTRIP) benchmark --config experiments/configs/benchmark.yaml --workers $(WORKERS)
