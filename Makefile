# PowerTrip: one-command reproduction (see experiments/benchmark_reproduce.py).
#   make reproduce         the README's figures and tables from scratch, copied into docs/figures
#   make reproduce-quick   the same pipeline on a tiny budget (about a minute): checks it runs
#   make benchmark         the benchmark of experiments/configs/benchmark.yaml only
POWERTRIP ?= .venv/bin/powertrip
WORKERS ?= 2

.PHONY: reproduce reproduce-quick benchmark

reproduce:
	$(POWERTRIP) reproduce --workers $(WORKERS) --update-docs --agents

reproduce-quick:
	$(POWERTRIP) reproduce --quick --workers $(WORKERS)

benchmark:
	$(POWERTRIP) benchmark --config experiments/configs/benchmark.yaml --workers $(WORKERS)
