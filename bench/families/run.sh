#!/usr/bin/env bash
# The model families users hold, dense vs 65% with each model's own decoder, on the embedded
# corpus (issue 31, "What must be shown"): one recipe run each, from training the dense model to
# deployment, into one results table.
#   ESPnet: E-Branchformer CTC/attention (conf/train_asr_e_branchformer_ctc_attention.yaml),
#           decoded by joint CTC/attention beam search (conf/decode_asr_ctc_attention.yaml),
#           preset auto (e_branchformer: the encoder; the attention decoder stays dense).
#   NeMo:   hybrid RNNT-CTC Conformer (conf/nemo/asr/conformer_hybrid_rnnt_ctc_bpe.yaml),
#           transcribed by its transducer (greedy), deployed in sherpa-onnx's transducer layout
#           (fp32 and int8, onnxruntime and sherpa-onnx). TDT's loss runs on CUDA only in
#           nemo_toolkit 3.0, so on this CPU the transducer is RNN-T's.
# Resumable: the recipes skip what they finished, so a rerun after a kill, or in a later
# session, goes on where this stopped. Results: bench/families/embedded/results.{json,md}
# (MAPSSWE against the dense model and the dense control), compare.md (the two side by side,
# by `pinch compare`), and each run's DEPLOY.json under the recipes' exp_families/.
#   bench/families/run.sh [--toolkits "espnet nemo"] [--train_nj N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
toolkits="espnet nemo"
train_nj=2   # the dense control and the compression pass at once, a core each
while [ $# -gt 0 ]; do
    case "$1" in
        --toolkits|--train_nj) v=${1#--}; [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 1; }
            printf -v "$v" '%s' "$2"; shift 2 ;;
        *) echo "usage: $0 [--toolkits \"espnet nemo\"] [--train_nj N]" >&2; exit 1 ;;
    esac
done
table=${root}/bench/families/embedded
export PATH="${PINCH_VENV:-${root}/.venv}/bin:${PATH}"
common=(--corpus embedded --expdir exp_families --results_table "${table}" --target_sparsity 0.65
        --train_nj "${train_nj}")
for tk in ${toolkits}; do
    case "${tk}" in
        espnet) (cd "${root}/recipes/espnet/asr1" && ./run.sh "${common[@]}" \
                    --asr_config conf/train_asr_e_branchformer_ctc_attention.yaml \
                    --inference_config conf/decode_asr_ctc_attention.yaml --inference_asr_model valid.acc.ave.pth \
                    --compress_args "--pruning_conf preset=auto") ;;
        nemo) (cd "${root}/recipes/nemo/asr" && ./run.sh "${common[@]}" --train_config conformer_hybrid_rnnt_ctc_bpe) ;;
        *) echo "unknown toolkit ${tk}" >&2; exit 1 ;;
    esac
done
pinch compare --table "${table}" --corpus embedded --out "${table}/compare.md" --plot "${table}/compare.png"
