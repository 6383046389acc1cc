#!/usr/bin/env bash
# The structured search (issue 33, docs/structured.md "The structured search"): the largest
# lossless structured share, sspg structured at 30/40/50/65% from the sweep's dense models, in
# four passes per target: as the preset counts a group (group_cost: weights, every weight
# shrink removes), with the count before pinch's deviation (sspg_structured_rows: the gated
# rows only), with a gate on each whole branch (sspg_structured_blocks), and distilled from
# the dense model (sspg_structured_distill). Verdicts against
# the dense model and the dense control, MAPSSWE, both test sets; REPORT.md beside the table,
# with its section "Structured: the largest lossless shrunk share". Resumable as the sweep is.
#   bench/structured/run.sh [--toolkits "espnet nemo"] [--targets "0.3 0.4 0.5 0.65"] [--train_nj N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
targets="0.3 0.4 0.5 0.65"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --targets) [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 1; }; targets=$2; shift 2 ;;
        --toolkits|--train_nj) [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 1; }; args+=("$1" "$2"); shift 2 ;;
        *) echo "usage: $0 [--toolkits \"espnet nemo\"] [--targets \"0.3 0.4 0.5 0.65\"] [--train_nj N]" >&2; exit 1 ;;
    esac
done
passes="sspg_structured sspg_structured_rows sspg_structured_blocks sspg_structured_distill"
exec "${root}/bench/sweep/run.sh" --table "${root}/bench/structured/embedded" --planned "${targets}" \
    --targets "${targets}" --methods "${passes}" --seeds "" --cost_epochs "" "${args[@]}"
