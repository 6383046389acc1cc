#!/usr/bin/env bash
# The A/Bs of issue 33 (docs/structured.md "Distillation", docs/method.md "A mask that settles"):
# each option against the same pass without it, same data, epochs and dense model (the evidence
# sweep's), three compression seeds per cell, both toolkits, into bench/ab/embedded (results,
# REPORT.md with its section "Variants against their method"):
#   - a mask that settles (sspg_settle: settle_at 0.5) against sspg, at 65% and 80%;
#   - distillation from the dense model, unstructured (sspg_distill) at 80%, and structured
#     (sspg_structured_distill) against sspg_structured at 50%.
# Resumable as the sweep is: a finished run is not redone.
#   bench/ab/run.sh [--toolkits "espnet nemo"] [--train_nj N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --toolkits|--train_nj) [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 1; }; args+=("$1" "$2"); shift 2 ;;
        *) echo "usage: $0 [--toolkits \"espnet nemo\"] [--train_nj N]" >&2; exit 1 ;;
    esac
done
ab() {  # ab "METHODS" "TARGETS": each method at each target, seeds 0, 1 and 2
    "${root}/bench/sweep/run.sh" --table "${root}/bench/ab/embedded" --planned "0.5 0.65 0.8" --methods "$1" \
        --targets "$2" --seed_targets "$2" --seed_methods "$1" --seeds "1 2" --cost_epochs "" "${args[@]}"
}
ab "sspg sspg_settle" "0.8 0.65"
ab "sspg_distill" "0.8"
ab "sspg_structured sspg_structured_distill" "0.5"
