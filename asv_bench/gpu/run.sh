#!/usr/bin/env bash
# The one-call GPU check: the CUDA and cupy tests and the timing study on the GPU, written to
# ONE results file. See docs/backends.md ("Verified where") and asv_bench/gpu/check.py.
#
#   asv_bench/gpu/run.sh              # a GPU machine: README install + cupy (8 minutes at most)
#   asv_bench/gpu/run.sh --dry-run    # anywhere: GPUs hidden, every GPU test skipped with its
#                                     # reason, the timing study on the CPU
#   asv_bench/gpu/run.sh --help       # the options (--out, --budget, --tests, --backend, ...)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python}" asv_bench/gpu/check.py "$@"
