#!/usr/bin/env bash
# The evidence sweep (docs/evidence.md: "Evidence sweep"): every method at every target sparsity in both
# recipes, from the dense models committed beside this script, into one results table, then
# the report. Resumable: a run the table holds for the same dense model is not redone (the
# recipes check), so rerunning this after a kill, or in a fresh checkout, continues the sweep.
#   bench/sweep/run.sh                         # both toolkits, every method and target, seeds, cost
#   bench/sweep/run.sh --toolkits espnet --targets "0.8"
#   bench/sweep/run.sh --table DIR --planned "..." ...   # another table from the same dense models
#                                                          # (bench/structured/run.sh: the structured search)
# Runs go target by target (0.8 first: the headline), --train_nj methods per recipe call, so that
# every --train_nj runs are scored and in the table before the next start.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=embedded
toolkits="espnet nemo"
targets="0.8 0.65 0.5 0.9"
methods="sspg sspg_structured ump global_magnitude gmp imp l1"
seeds="1 2"          # the headline repeats: sspg and the best baseline at each of seed_targets
seed_targets="0.8 0.65"  # where the headline lives (issue 32: every verdict there over 3 seeds)
seed_methods=        # the methods repeated there (default: sspg and the best baseline of each target)
cost_epochs="4"      # the cost at equal WER: gmp and imp at 0.8 in passes of these epochs ("4 8": more), seeded too
train_nj=2
table=               # the results table and its REPORT.md (default: beside the dense models)
planned="0.5 0.65 0.8 0.9"  # the targets the report expects (a run missing at one is named)
while [ $# -gt 0 ]; do
    case "$1" in
        --toolkits|--targets|--methods|--seeds|--seed_targets|--seed_methods|--cost_epochs|--train_nj|--table|--planned) v=${1#--}; [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 1; }
            printf -v "$v" '%s' "$2"; shift 2 ;;
        *) echo "usage: $0 [--toolkits \"espnet nemo\"] [--targets \"0.8 ...\"] [--methods \"...\"] [--seeds \"1 2\"] [--seed_targets \"0.8 0.65\"] [--seed_methods \"...\"] [--cost_epochs \"4 8\"] [--train_nj N] [--table DIR] [--planned \"0.5 ...\"]" >&2; exit 1 ;;
    esac
done
held=${root}/bench/sweep/${corpus}  # the dense models every run starts from
table=${table:-${held}}
export PATH="${PINCH_VENV:-${root}/.venv}/bin:${PATH}"

recipe() {  # recipe TOOLKIT OPTION...: the toolkit's ASR recipe, stages up to scoring
    case "$1" in
        espnet) (cd "${root}/recipes/espnet/asr1" && ./run.sh --pretrained "${held}/espnet_conformer_ctc.zip" --corpus "${corpus}" \
                    --stop_stage 13 --results_table "${table}" --train_nj "${train_nj}" "${@:2}") ;;
        nemo) [ -f "${held}/nemo_conformer_ctc.nemo" ] || { echo "${held}/nemo_conformer_ctc.nemo is missing: train it with recipes/nemo/asr/run.sh --stop_stage 3 and copy its exp/conformer_ctc_bpe_unigram64/model.nemo there" >&2; exit 1; }
              (cd "${root}/recipes/nemo/asr" && ./run.sh --pretrained "${held}/nemo_conformer_ctc.nemo" --corpus "${corpus}" \
                    --stop_stage 7 --results_table "${table}" --train_nj "${train_nj}" "${@:2}") ;;
        *) echo "unknown toolkit $1" >&2; exit 1 ;;
    esac
}

report() {  # REPORT.md beside the table, its command with the table's path from the repository root
    (cd "${root}" && python -m pinch.sweep --table "$(realpath --relative-to=. "${table}")" --corpus "${corpus}" \
        --targets "${planned}")
}

read -ra all <<< "${methods}"
for tk in ${toolkits}; do
    for t in ${targets}; do
        for ((i = 0; i < ${#all[@]}; i += train_nj)); do
            recipe "${tk}" --pruning "${all[*]:i:train_nj}" --sweep "${t}"
        done
        report
    done
done
# The headline repeated: sspg and the baseline with the lowest mean WER at each seed target,
# per toolkit, or --seed_methods (--seeds "" skips it).
for tk in ${toolkits}; do
    [ -n "${seeds}" ] || break
    for t in ${seed_targets}; do
        if [ -n "${seed_methods}" ]; then
            recipe "${tk}" --pruning "${seed_methods}" --sweep "${t}" --compress_seeds "${seeds}"
            continue
        fi
        best=$(python - "${table}" "${corpus}" "${tk}" "${t}" <<'PY'
import statistics, sys
from pinch.sweep.table import load
sweep = load(sys.argv[1], sys.argv[2])
runs = [r for r in sweep.runs.get(sys.argv[3], [])
        if r.target == float(sys.argv[4]) and r.seed is None and r.epochs is None and not r.label.startswith("sspg")]
print(min(runs, key=lambda r: statistics.mean(r.row["wer"].values())).row["method"] if runs else "")
PY
)
        [ -n "${best}" ] || continue
        recipe "${tk}" --pruning "sspg ${best}" --sweep "${t}" --compress_seeds "${seeds}"
    done
done
# The cost at equal WER (docs/evidence.md: "Evidence sweep"): the iterative methods in longer passes, to
# find what they need to reach sspg's WER at 0.8 (--cost_epochs "" skips it).
for tk in ${toolkits}; do
    [ -n "${cost_epochs}" ] || break
    recipe "${tk}" --pruning "gmp imp" --sweep 0.8 --compress_epochs "${cost_epochs}"
    # their seeds, so that the cost verdict pairs every seed's time with its WER (issue 32)
    [ -z "${seeds}" ] || recipe "${tk}" --pruning "gmp imp" --sweep 0.8 --compress_epochs "${cost_epochs}" \
        --compress_seeds "${seeds}"
done
report
