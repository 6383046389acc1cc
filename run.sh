#!/usr/bin/env bash
# pinch main job.
#   ./run.sh            the default end-to-end job: ESPnet and NeMo ASR recipes on the
#                       embedded corpus (dense, one-pass 65% compression, decode, score),
#                       then one side-by-side table of both toolkits' results
#   ./run.sh test       the test suite on two workers, one per core (extra arguments go
#                       to pytest; PINCH_TEST_WORKERS=0 runs it in one process)
#   ./run.sh setup      only build the environment
# The environment (.venv, or $PINCH_VENV) and the system packages are created on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"
export PINCH_VENV=${PINCH_VENV:-$root/.venv}
tools/setup_env.sh "$PINCH_VENV"
export PATH="$PINCH_VENV/bin:$PATH"

case "${1:-main}" in
  setup) ;;
  test)
    shift
    # Whole files per worker (a module's recipe run is its fixture), in the suite's own
    # order: the two recipe modules first (tests/conftest.py), so both workers end together.
    exec python -m pytest -n "${PINCH_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder tests "$@"
    ;;
  main)
    # Both recipes append to the shared results table exp/results (results.md / .json).
    # For options (corpus, method, sparsity, stages), run a recipe directly.
    recipes/espnet/asr1/run.sh
    recipes/nemo/asr/run.sh
    pinch compare --table exp/results --corpus embedded --out exp/results/compare_toolkits.md \
        --plot exp/results/compare_toolkits.png
    ;;
  *)
    echo "usage: ./run.sh [test [pytest args] | setup]" >&2
    exit 2
    ;;
esac
