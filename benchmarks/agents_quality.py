"""Trained agents against NSGA-II and the day's optimum on held-out days.

Each controller's weighted day cost and optimality gap (cost - oracle) / (no control - oracle);
see ``experiments/agents_benchmark.py``.

Usage::

    python benchmarks/agents_quality.py [--timesteps 2000000] [--days 2] [--workers 2] [--no-cache]
    python benchmarks/agents_quality.py --weights 0.5,0.5 --lookahead --timesteps 500000 --days 1
    python benchmarks/agents_quality.py --smoke
"""

from __future__ import annotations

import os

# One BLAS and OpenMP thread per process (the pool's workers inherit these): steadier on
# small machines. They must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from experiments.agents_benchmark import main

if __name__ == "__main__":
    main()
