#!/usr/bin/env bash
# pinch main job.
#   ./run.sh            the default end-to-end job, walked as a user walks it: the dense ASR
#                       models the repository holds (bench/sweep/embedded) compressed through
#                       each recipe's --pretrained on the embedded corpus (dense control, one-pass
#                       65% compression, decode, score, pack, deploy), then the TTS recipes (text
#                       encoder to 50%, synthesis, MCD, F0 and ASR-CER by those ASR models), and
#                       side-by-side tables of both toolkits' results
#   ./run.sh main --from_scratch   the same, training the dense ASR models first
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
    shift || true
    held=${root}/bench/sweep/embedded  # the dense models the evidence sweep starts from
    asr=(--pretrained "${held}/espnet_conformer_ctc.zip" --corpus embedded)
    nemo=(--pretrained "${held}/nemo_conformer_ctc.nemo" --corpus embedded)
    espnet_asr=exp/pretrained_espnet_conformer_ctc nemo_asr=../asr/exp/pretrained_nemo_conformer_ctc/model.nemo
    case "${1:-}" in
        "") ;;
        --from_scratch)
            asr=() nemo=() espnet_asr=exp/asr_train_asr_conformer_ctc_raw_bpe50
            nemo_asr=../asr/exp/conformer_ctc_bpe_unigram64/model.nemo ;;
        *) echo "usage: ./run.sh [main [--from_scratch] | test [pytest args] | setup]" >&2; exit 2 ;;
    esac
    # Both recipes append to the shared results table exp/results (results.md / .json).
    # For options (corpus, method, sparsity, stages), run a recipe directly.
    recipes/espnet/asr1/run.sh "${asr[@]}"
    recipes/nemo/asr/run.sh "${nemo[@]}"
    pinch compare --table exp/results --corpus embedded --out exp/results/compare_toolkits.md \
        --plot exp/results/compare_toolkits.png
    # TTS: the ASR recipes' corpus (its TTS view) and their dense ASR models, which score the
    # synthesized speech.
    recipes/espnet/tts1/run.sh --datadir ../asr1/data --asr_model_dir "${espnet_asr}"
    recipes/nemo/tts/run.sh --datadir ../asr/data --asr_model "${nemo_asr}"
    pinch compare --task tts --table exp/results --corpus embedded --out exp/results/compare_toolkits_tts.md
    ;;
  *)
    echo "usage: ./run.sh [main [--from_scratch] | test [pytest args] | setup]" >&2
    exit 2
    ;;
esac
