#!/usr/bin/env bash
# ESPnet FastSpeech2 on the embedded corpus (issue 34, item 1), run after ./run.sh: the main job's
# TTS recipe placed the held Tacotron2 (bench/tts/embedded/espnet_tacotron2.zip) in
# recipes/espnet/tts1/exp/tts_pretrained_espnet_tacotron2, and that model is the teacher whose
# attention under teacher forcing gives the durations (stage 5). The FastSpeech2 trains from
# scratch (stage 6, conf/train_fastspeech2.yaml); its text encoder, and in a second run its whole
# network (decoder and variance predictors too), are compressed to 50% beside a dense control of the
# same length (stage 7), synthesized and judged as the main job's models are (its ASR model, the
# NeMo ASR model as the second judge, pocketsphinx, DNSMOS), into a results table of their own
# (bench/tts/fastspeech2: results.json, results.md, compare.md). Resumable as the recipe is.
# --durations aligner: the durations come from a CTC forced alignment of the recordings instead
# (the TTS recipe's --aligner_model), by a character Conformer CTC model the ASR recipe trains
# first (--token_type char, exp_aligner/); the runs go to exp_fs2_aligner/ and their own table
# (bench/tts/fastspeech2_aligner), so the two sources are compared model for model.
#   bench/tts/fastspeech2.sh [--durations teacher|aligner]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
durations=teacher
case "${1:-}" in
    "") ;;
    --durations) durations=${2:-} ;;
    *) echo "usage: $0 [--durations teacher|aligner]" >&2; exit 1 ;;
esac
export PATH="${PINCH_VENV:-${root}/.venv}/bin:${PATH}"
table=${root}/bench/tts/fastspeech2
case "${durations}" in
    teacher) source=(--teacher_model exp/tts_pretrained_espnet_tacotron2/valid.loss.ave.pth) ;;
    aligner)
        (cd "${root}/recipes/espnet/asr1" && ./run.sh --corpus embedded --token_type char --expdir exp_aligner \
            --pruning none --dense_control false --stop_stage 11)
        source=(--aligner_model ../asr1/exp_aligner/asr_train_asr_conformer_ctc_raw_char/valid.loss.ave.pth
                --expdir exp_fs2_aligner)
        table=${table}_aligner ;;
    *) echo "--durations must be teacher or aligner, not '${durations}'" >&2; exit 1 ;;
esac
fs2=(--corpus embedded --datadir "${root}/recipes/espnet/asr1/data" --train_config conf/train_fastspeech2.yaml
     "${source[@]}"
     --asr_model_dir exp/pretrained_espnet_conformer_ctc
     --cross_asr_model ../../nemo/asr/exp/pretrained_nemo_conformer_ctc/model.nemo
     --results_table "${table}")
cd "${root}/recipes/espnet/tts1"
./run.sh "${fs2[@]}"
./run.sh "${fs2[@]}" --stage 7 --preset "[fastspeech2, fastspeech2_decoder]"
pinch compare --task tts --table "${table}" --corpus embedded --out "${table}/compare.md"
