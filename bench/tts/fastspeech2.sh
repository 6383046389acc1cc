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
#   bench/tts/fastspeech2.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="${PINCH_VENV:-${root}/.venv}/bin:${PATH}"
fs2=(--corpus embedded --datadir "${root}/recipes/espnet/asr1/data" --train_config conf/train_fastspeech2.yaml
     --teacher_model exp/tts_pretrained_espnet_tacotron2/valid.loss.ave.pth
     --asr_model_dir exp/pretrained_espnet_conformer_ctc
     --cross_asr_model ../../nemo/asr/exp/pretrained_nemo_conformer_ctc/model.nemo
     --results_table "${root}/bench/tts/fastspeech2")
cd "${root}/recipes/espnet/tts1"
./run.sh "${fs2[@]}"
./run.sh "${fs2[@]}" --stage 7 --preset "[fastspeech2, fastspeech2_decoder]"
pinch compare --task tts --table "${root}/bench/tts/fastspeech2" --corpus embedded --out "${root}/bench/tts/fastspeech2/compare.md"
