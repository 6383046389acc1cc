#!/usr/bin/env bash
# pinch main job.
#   ./run.sh            the default end-to-end job, walked as a user walks it: the dense ASR
#                       models the repository holds (bench/sweep/embedded) compressed through
#                       each recipe's --pretrained on the embedded corpus (dense control, one-pass
#                       65% compression, decode, score, pack, deploy), then the TTS recipes on the
#                       dense TTS models it holds (bench/tts/embedded; text encoder to 50%,
#                       synthesis, MCD, F0 and ASR-CER by those ASR models), and side-by-side
#                       tables of both toolkits' results
#   ./run.sh main --from_scratch   the same, training the dense ASR and TTS models first
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
    held_tts=${root}/bench/tts/embedded
    espnet_tts=(--pretrained "${held_tts}/espnet_tacotron2.zip" --corpus embedded)
    nemo_tts=(--pretrained "${held_tts}/nemo_fastpitch.nemo" --corpus embedded)
    case "${1:-}" in
        "") ;;
        --from_scratch)
            asr=() nemo=() espnet_tts=() nemo_tts=() espnet_asr=exp/asr_train_asr_conformer_ctc_raw_bpe50
            nemo_asr=../asr/exp/conformer_ctc_bpe_unigram64/model.nemo ;;
        *) echo "usage: ./run.sh [main [--from_scratch] | test [pytest args] | setup]" >&2; exit 2 ;;
    esac
    # Both recipes append to the shared results table exp/results (results.md / .json).
    # For options (corpus, method, sparsity, stages), run a recipe directly.
    # One corpus for all four recipes: the ESPnet recipe synthesizes it, the others read its
    # data dirs (each holds NeMo's manifest.json and the TTS view too).
    data=${root}/recipes/espnet/asr1/data
    recipes/espnet/asr1/run.sh "${asr[@]}"
    recipes/nemo/asr/run.sh "${nemo[@]}" --datadir "${data}"
    pinch compare --table exp/results --corpus embedded --out exp/results/compare_toolkits.md \
        --plot exp/results/compare_toolkits.png
    # TTS: the corpus's TTS view, and the dense ASR models, which score the synthesized speech.
    # Each is judged by its own toolkit's ASR model and by the other's (--cross_asr_*).
    recipes/espnet/tts1/run.sh "${espnet_tts[@]}" --datadir "${data}" --asr_model_dir "${espnet_asr}" \
        --cross_asr_model "../../nemo/${nemo_asr#../}"
    recipes/nemo/tts/run.sh "${nemo_tts[@]}" --datadir "${data}" --asr_model "${nemo_asr}" \
        --cross_asr_recipe ../../espnet/asr1 --cross_asr_model_dir "${espnet_asr}"
    pinch compare --task tts --table exp/results --corpus embedded --out exp/results/compare_toolkits_tts.md
    ;;
  *)
    echo "usage: ./run.sh [main [--from_scratch] | test [pytest args] | setup]" >&2
    exit 2
    ;;
esac
