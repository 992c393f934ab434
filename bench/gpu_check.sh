#!/usr/bin/env bash
# One GPU check of the training pipelines at about 0.5B parameters (bench/gpu_check.py says what it runs).
# Needs only `make install`. Under 10 minutes on one GPU; without a GPU it says so and exits 0.
#   bench/gpu_check.sh            the check
#   bench/gpu_check.sh --tiny     tiny shapes, 2 steps each: the same wiring on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" bench/gpu_check.py "$@"
