#!/usr/bin/env bash
# Create .venv (if missing) and install PowerTrip into it.
#   bash scripts/bootstrap.sh          # the package, with the RL extra (torch CPU, SB3)
#   bash scripts/bootstrap.sh --dev    # plus test/lint tools, morl-baselines and Ray
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip
# A CPU build of torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    $PIP install --quiet "torch==2.13.0" || $PIP install --quiet "torch>=2.2"
fi
extras="rl"
if [ "${1:-}" = "--dev" ]; then
    extras="rl,morl,scale,dev"
fi
$PIP install --quiet -e ".[${extras}]"
