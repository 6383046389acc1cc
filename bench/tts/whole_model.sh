#!/usr/bin/env bash
# Whole-model compression of the held TTS models (bench/tts/embedded), beside the main job's
# encoder-only runs (issue 34, item 4): run after ./run.sh, in the same experiment dirs, so the
# dense model, the dense control and their synthesis and scores are the main job's and the new
# rows join its results table (exp/results). The preset gates the text encoder and the decoder:
#   ESPnet Tacotron2: [tacotron2, tacotron2_decoder] (encoder convs and BLSTM; decoder attention,
#                     LSTM cells, prenet, postnet)
#   NeMo FastPitch:   [fastpitch, fastpitch_decoder] (the encoder's and the decoder's FFT blocks)
# to the main job's TTS target (50% of the gated weights); the share of all parameters each gates
# is in the results (params, gated_params). Both are judged by the other toolkit's ASR model too
# (stage 10 / 7 then scores the main job's dense model and control with it as well). Resumable
# as the recipes are.
#   bench/tts/whole_model.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="${PINCH_VENV:-${root}/.venv}/bin:${PATH}"
held=${root}/bench/tts/embedded
data=${root}/recipes/espnet/asr1/data
(cd "${root}/recipes/espnet/tts1" && ./run.sh --pretrained "${held}/espnet_tacotron2.zip" --corpus embedded \
    --datadir "${data}" --asr_model_dir exp/pretrained_espnet_conformer_ctc --stage 7 \
    --cross_asr_model ../../nemo/asr/exp/pretrained_nemo_conformer_ctc/model.nemo \
    --preset "[tacotron2, tacotron2_decoder]")
(cd "${root}/recipes/nemo/tts" && ./run.sh --pretrained "${held}/nemo_fastpitch.nemo" --corpus embedded \
    --datadir "${data}" --asr_model ../asr/exp/pretrained_nemo_conformer_ctc/model.nemo --stage 4 \
    --cross_asr_recipe ../../espnet/asr1 --cross_asr_model_dir exp/pretrained_espnet_conformer_ctc \
    --preset "[fastpitch,fastpitch_decoder]")
cd "${root}" && pinch compare --task tts --table exp/results --corpus embedded --out exp/results/compare_toolkits_tts.md
