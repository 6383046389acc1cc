#!/usr/bin/env bash
# One-pass compression of a NeMo FastPitch's text encoder with pinch, in the stage style of
# the ESPnet TTS recipe (../../espnet/tts1) with NeMo's data conventions (manifests, Hydra
# configs in conf/nemo/tts, .nemo files):
#
#  1 data preparation (Kaldi dirs + NeMo manifests; the corpus's single-voice TTS view)
#  2 supplementary data: the pitch of every train/dev utterance in NeMo's TTSDataset cache
#    layout (WORLD dio, not librosa.pyin during the first epoch) and the train set's pitch
#    mean and std, which the training configs read
#  3 dense FastPitch training (learned alignment, character tokenizer); with --pretrained, the
#    FastPitch .nemo you hold is the dense model (stage 2 places it first: its mel settings are
#    those of the pitch cache and of every pass)
#  4 one-pass compression of the text encoder from the dense .nemo, and the dense control
#    (the same pass without pruning: the reference of the verdicts)
#  5 bake: plain FastPitchModel .nemo per compressed run
#  6 synthesis of the test sentences with plain NeMo (Griffin-Lim, or --vocoder); sentences
#    the tokenizer cannot spell are named in skipped/ and left out
#  7 scoring: MCD and log-F0 RMSE against the recordings, ASR-CER of the synthesized speech
#    by the NeMo ASR recipe's dense model (and of the recordings, for reference), MAPSSWE of
#    each compressed model against the dense model and the dense control, judges not trained on the corpus
#    (pinch.scoring.judges: pocketsphinx's CER with the corpus's words, its MAPSSWE likewise,
#    DNSMOS SIG/BAK/OVRL), RESULTS.md, samples, the results table
#   ./run.sh                                          # embedded corpus, encoder to 50%
#   ./run.sh --datadir ../../espnet/asr1/data         # reuse another recipe's corpus (same stamp)
#   ./run.sh --stage 4 --sweep "0.3 0.5 0.7"
#   ./run.sh --vocoder /models/hifigan.nemo           # a NeMo vocoder instead of Griffin-Lim
#   ./run.sh --corpus ljspeech --ljspeech_dir /data/LJSpeech-1.1 --fs 22050
#   ./run.sh --pretrained /models/fastpitch.nemo --corpus embedded   # compress a FastPitch you hold
# Every stage skips work whose outputs are complete; --overwrite true redoes it.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../../utils/recipe_lib.sh"

# General configuration
stage=1                 # First stage to run.
stop_stage=7            # Last stage to run.
python=python3          # Python with pinch and nemo_toolkit[tts,asr] installed.
overwrite=false         # Redo stages whose results already exist.
datadir=data            # Kaldi-style data dirs with manifest.json per split (TTS uses its TTS view).
dumpdir=dump            # Supplementary data (pitch cache and statistics).
expdir=exp              # Models, synthesized speech, scores, logs.

# Data
corpus=                 # embedded (its single-voice TTS view) | ljspeech (default: embedded; with --pretrained, name it).
ljspeech_dir=           # LJSpeech-1.1 root (metadata.csv, wavs/).
size=default            # Embedded corpus size: default | tiny.
seed=0                  # Embedded corpus generator seed (and training seed).
fs=16000                # Sample rate of the model (the corpus's: LJSpeech is 22050; with --pretrained, the model's).

# Training, compression, synthesis
config_dir=../../../conf/nemo/tts  # Folder of the NeMo Hydra configs.
train_config=fastpitch           # Hydra config name (dense training; stage 2 reads its data settings).
# A FastPitch .nemo to compress instead of training one (stage 3 skipped): its network, text
# tokenizer and mel settings; the passes fine-tune it with this recipe's loaders and optimizer,
# on the pitch statistics of the data given (as NeMo's FastPitch fine-tuning does for a new
# voice), every changed key on record in the run's finetune_overrides.yaml.
pretrained=
compress_config=fastpitch_sspg   # Hydra config name (compression).
train_args=             # Extra Hydra overrides of dense training, e.g. "trainer.max_epochs=20".
finetune_args=          # Extra Hydra overrides of the compression pass (and the control), e.g. "trainer.max_epochs=2".
# The dense control: the dense model fine-tuned as long as the compression pass, no pruning
# (the reference of "lossless": the pass trains the dense model further too).
dense_control=true
pruning=sspg            # Method(s): a preset ${pruning_conf_dir}/<method>.yaml each; none: no compression run.
preset=auto             # Layers to gate: auto (FastPitch's text encoder), "[auto,fastpitch_decoder]", ...
target_sparsity=0.5     # Share of the gated weights to prune (0..1).
sweep=                  # Several targets, e.g. "0.3 0.5 0.7" (replaces target_sparsity).
granularity=unstructured  # unstructured | structured (whole units, heads, channels).
pruning_conf_dir=../../../conf/pruning  # Folder of the pruning presets (<method>.yaml).
vocoder=                # A NeMo vocoder .nemo (e.g. HiFi-GAN at ${fs} Hz); empty: Griffin-Lim.
griffin_lim_iters=32    # Griffin-Lim iterations of the synthesis (no vocoder).
n_samples=3             # Test sentences copied to ${expdir}/samples, with mel spectrogram plots.

# Scoring: the NeMo ASR recipe's dense model transcribes the synthesized speech (ASR-CER).
asr_model=../asr/exp/conformer_ctc_bpe_unigram64/model.nemo
batch_size=16           # Transcription batch size.
# A second ASR judge from the other toolkit, so that no toolkit grades its speech alone: an ESPnet
# ASR model dir (config.yaml, valid.loss.ave.pth; e.g. the ESPnet ASR recipe's dense model),
# relative to --cross_asr_recipe; empty: none.
cross_asr_model_dir=
cross_asr_recipe=../../espnet/asr1  # The ESPnet ASR recipe the model dir and config are relative to.
cross_asr_inference_config=conf/decode_ctc.yaml  # Its decoding config (relative to --cross_asr_recipe).
results_table=../../../exp/results  # Shared results table (append-only).

help_message="Usage: $0 [--option value] ...  (every option below; --help lists them)"

parse_options "$@"

# Paths below are relative to the recipe directory.
cd "$(dirname "$0")"
config_dir="$(cd "${config_dir}" 2>/dev/null && pwd)" || die "--config_dir: no such directory"

[ "${pruning}" != none ] || pruning=
check_common_options
is_bool "${dense_control}" || die "--dense_control must be true or false, not '${dense_control}'"
is_count "${fs}" && [ "${fs}" -gt 0 ] || die "--fs must be a sample rate in Hz, not '${fs}'"
is_count "${n_samples}" || die "--n_samples must be a non-negative integer, not '${n_samples}'"
{ is_count "${griffin_lim_iters}" && [ "${griffin_lim_iters}" -gt 0 ]; } \
    || die "--griffin_lim_iters must be a positive integer, not '${griffin_lim_iters}'"
{ is_count "${batch_size}" && [ "${batch_size}" -gt 0 ]; } || die "--batch_size must be a positive integer, not '${batch_size}'"
for c in "${train_config}" "${compress_config}"; do
    [ -f "${config_dir}/${c}.yaml" ] || die "config ${config_dir}/${c}.yaml not found"
done
[ -z "${vocoder}" ] || [ -f "${vocoder}" ] || die "--vocoder ${vocoder}: no such file"
[ -z "${pretrained}" ] || [ -f "${pretrained}" ] || die "--pretrained ${pretrained}: no such .nemo file"
if [ -z "${corpus}" ]; then
    [ -z "${pretrained}" ] || die "--pretrained ${pretrained}: name the data to fine-tune and test it on: --corpus embedded (the demo corpus synthesized here) or --corpus ljspeech --ljspeech_dir DIR"
    corpus=embedded
fi
if run_stage 7 && [ -n "${cross_asr_model_dir}" ]; then
    [ -f "${cross_asr_recipe}/${cross_asr_model_dir}/config.yaml" ] \
        || die "--cross_asr_model_dir ${cross_asr_model_dir}: no config.yaml under --cross_asr_recipe ${cross_asr_recipe} (an ESPnet ASR model dir, e.g. the ESPnet ASR recipe's dense model)"
fi
if run_stage 7; then
    [ -f "${asr_model}" ] || die "--asr_model ${asr_model}: no such file: the ASR model that scores the synthesized speech comes from the NeMo ASR recipe: run it first (cd ../asr && ./run.sh --stop_stage 3), or pass --asr_model MODEL.nemo"
fi

tts_corpus

dense_dir="${expdir}/${train_config}"
dense_stage=3  # the stage that makes the dense model
if [ -n "${pretrained}" ]; then
    dense_dir="${expdir}/pretrained_$(basename "${pretrained}" .nemo)"
    dense_stage=2
fi
control_dir="${dense_dir}_finetune"
sup_dir="${dumpdir}/sup_data"
# A held model's pitch cache is its own: its hop and sample rate set the frames.
[ -z "${pretrained}" ] || sup_dir="${dumpdir}/sup_data_$(basename "${dense_dir}")"
pitch_stats="${sup_dir}/pitch_stats.json"
synth_tag=synth_griffin_lim
[ -n "${vocoder}" ] && synth_tag="synth_$(basename "${vocoder}" .nemo)"
asr_tag="asr_$(basename "$(dirname "${asr_model}")")"
cross_tag=
[ -z "${cross_asr_model_dir}" ] || cross_tag="cross_asr_$(basename "${cross_asr_model_dir}")"

# set_data_overrides: the Hydra overrides shared by stage 2, dense training and compression: the
# data and its supplementary data, the sample rate (a held model's: all its mel settings, once
# stage 2 has placed it).
set_data_overrides() {
    data_overrides=(
        "model.train_ds.dataset.manifest_filepath=$(abspath "${datadir}")/${splits}${train_set}/manifest.json"
        "model.validation_ds.dataset.manifest_filepath=$(abspath "${datadir}")/${splits}${valid_set}/manifest.json"
        "model.sup_data_path=$(abspath "${sup_dir}")" "model.pitch_stats_path=$(abspath "${pitch_stats}")"
        "seed=${seed}"
    )
    if [ -n "${pretrained}" ] && [ -f "${dense_dir}/audio_overrides" ]; then
        mapfile -t -O "${#data_overrides[@]}" data_overrides < "${dense_dir}/audio_overrides"
    else
        data_overrides+=("model.sample_rate=${fs}")
    fi
}
set_data_overrides

# model_dirs: "DIR STAGE" per model to synthesize with (STAGE writes its model.nemo): the
# dense model, the dense control, then each baked one.
model_dirs() {
    echo "${dense_dir} ${dense_stage}"
    [ "${dense_control}" = true ] && echo "${control_dir} 4"
    while read -r _ _ dir; do echo "${dir} 5"; done < <(compressed_runs)
}


if run_stage 1; then
    t0=${SECONDS}
    log "Stage 1: Data preparation (${corpus}) -> ${datadir}"
    prepare_data
    stage_time 1 "${t0}"
fi

if run_stage 2 && [ -n "${pretrained}" ]; then
    log "Stage 2: Pretrained model ${pretrained} as the dense model -> ${dense_dir}/model.nemo (its mel settings: ${dense_dir}/audio_overrides)"
    if ! done_or_redo "${dense_dir}/model.nemo" 2; then
        mkdir -p "${expdir}/logs"
        rm -f "${dense_dir}/model.nemo"
        ${python} -m pinch.nemo.bin.pretrained --task tts --nemo "${pretrained}" --dense_dir "${dense_dir}" \
            > "${expdir}/logs/pretrained.log" 2>&1 || failed "pretrained model" "${expdir}/logs/pretrained.log"
        grep '^pinch.nemo:' "${expdir}/logs/pretrained.log" >&2
    fi
    set_data_overrides
fi

if run_stage 2; then
    t0=${SECONDS}
    log "Stage 2: Supplementary data: pitch of ${train_set} and ${valid_set} (NeMo's TTSDataset cache layout) -> ${sup_dir}, statistics -> ${pitch_stats}"
    if ! done_or_redo "${pitch_stats}" 2; then
        need "${datadir}/${splits}${train_set}/manifest.json" 1
        need "${datadir}/${splits}${valid_set}/manifest.json" 1
        [ "${overwrite}" = true ] && rm -rf "${sup_dir}"
        mkdir -p "${sup_dir}"
        # The training config as training composes it (its mel and pitch settings name the files).
        # shellcheck disable=SC2086
        ${python} -m pinch.nemo.bin.tts_sup_data --config-path "${config_dir}" --config-name "${train_config}" \
            "${data_overrides[@]}" ${train_args} > "${sup_dir}/sup_data.log" 2>&1 \
            || failed "supplementary data" "${sup_dir}/sup_data.log"
        grep '^pinch.nemo:' "${sup_dir}/sup_data.log" >&2
    fi
    stage_time 2 "${t0}"
fi

if run_stage 3 && [ -n "${pretrained}" ]; then
    log "Stage 3: the dense model is --pretrained ${pretrained} (${dense_dir}, stage 2); no dense training"
elif run_stage 3; then
    t0=${SECONDS}
    log "Stage 3: Dense training (${train_config}) -> ${dense_dir}/model.nemo"
    if ! done_or_redo "${dense_dir}/model.nemo" 3; then
        need "${pitch_stats}" 2
        # Plain NeMo: the dense model is an ordinary FastPitchModel.
        # shellcheck disable=SC2086
        nemo_train "${dense_dir}" "dense training" "${train_config}" "${data_overrides[@]}" \
            "output_nemo=$(abspath "${dense_dir}")/model.nemo" ${train_args}
    fi
    stage_time 3 "${t0}"
fi

if run_stage 4; then
    log "Stage 4: One-pass compression of the text encoder of ${dense_dir}/model.nemo: methods '${pruning}', targets '${targets}', preset '${preset}'$([ "${dense_control}" = true ] && echo ', and the dense control (the pass without pruning)')"
    if [ "${dense_control}" = true ] && ! done_or_redo "${control_dir}/model.nemo" 4; then
        t0=${SECONDS}
        need "${dense_dir}/model.nemo" "${dense_stage}"
        need "${pitch_stats}" 2
        # shellcheck disable=SC2086
        nemo_train "${control_dir}" "dense control" "${compress_config}" "${data_overrides[@]}" \
            "init_from_nemo_model=$(abspath "${dense_dir}")/model.nemo" pruning_config=null model.pruning.preset=null \
            "output_nemo=$(abspath "${control_dir}")/model.nemo" ${finetune_args}
        log "Stage 4: ${control_dir} done in $(( SECONDS - t0 ))s"
    fi
    while read -r m t dir; do
        t0=${SECONDS}
        done_or_redo "${dir}/gated.nemo" 4 && continue
        need "${dense_dir}/model.nemo" "${dense_stage}"
        need "${pitch_stats}" 2
        # shellcheck disable=SC2086
        nemo_train "${dir}" "compression ${m} ${t}" "${compress_config}" "${data_overrides[@]}" \
            "init_from_nemo_model=$(abspath "${dense_dir}")/model.nemo" \
            "pruning_config=$(abspath "${pruning_conf_dir}")/${m}.yaml" "model.pruning.target_sparsity=${t}" \
            "model.pruning.preset=${preset}" "model.pruning.granularity=${granularity}" \
            "output_nemo=$(abspath "${dir}")/gated.nemo" ${finetune_args}
        log "Stage 4: ${dir} done in $(( SECONDS - t0 ))s"
    done < <(compressed_runs)
fi

if run_stage 5; then
    t0=${SECONDS}
    log "Stage 5: Bake: masks into weights, plain FastPitchModel .nemo files"
    nemo_bake 5 < <(compressed_runs)
    stage_time 5 "${t0}"
fi

if run_stage 6; then
    t0=${SECONDS}
    log "Stage 6: Synthesis of ${test_set} with plain NeMo (FastPitchModel.restore_from, ${synth_tag})"
    text="${datadir}/${splits}${test_set}/text"
    todo=()
    tokens=()
    while read -r dir made_by; do
        out="${dir}/${synth_tag}/${test_set}"
        done_or_redo "${out}/wav.scp" 6 && continue
        need "${dir}/model.nemo" "${made_by}"
        need "${text}" 1
        rm -rf "${out}" && mkdir -p "${out}"
        todo+=("${dir}")
        tokens+=(--write_tokens "${dir}/model.nemo" "${out}/tokens.txt")
    done < <(model_dirs)
    if [ ${#todo[@]} -gt 0 ]; then
        mkdir -p "${expdir}/logs"
        # The characters each model's tokenizer can speak: the token list of the text check.
        ${python} -m pinch.nemo.bin.synthesize "${tokens[@]}" > "${expdir}/logs/tokens.log" 2>&1 \
            || failed "token lists" "${expdir}/logs/tokens.log"
        sets=()
        for dir in "${todo[@]}"; do
            out="${dir}/${synth_tag}/${test_set}"
            # Sentences the tokenizer cannot spell (NeMo would drop the characters with a warning)
            # are named and left out; the rest are spoken.
            ${python} -m pinch.data check-text --text "${text}" --token-list "${out}/tokens.txt" \
                --out-text "${out}/text" --bad "${out}/skipped" --space "<space>" \
                2> "${out}/check_text.log" || failed "text check" "${out}/check_text.log"
            [ -s "${out}/skipped" ] && log "Stage 6: $(wc -l < "${out}/skipped") sentence(s) skipped: ${out}/skipped"
            sets+=(--set "${dir}/model.nemo" "${out}/text" "${out}")
        done
        vocoder_opts=()
        [ -n "${vocoder}" ] && vocoder_opts=(--vocoder "${vocoder}")
        # One process for every model: NeMo's import (and the vocoder) loaded once.
        ${python} -m pinch.nemo.bin.synthesize "${sets[@]}" "${vocoder_opts[@]}" \
            --griffin_lim_iters "${griffin_lim_iters}" > "${expdir}/logs/synthesize.log" 2>&1 \
            || failed "synthesis" "${expdir}/logs/synthesize.log"
        grep '^pinch.nemo:' "${expdir}/logs/synthesize.log" >&2
        for dir in "${todo[@]}"; do
            out="${dir}/${synth_tag}/${test_set}"
            [ -s "${out}/skipped" ] && log "Stage 6: $(wc -l < "${out}/skipped") sentence(s) skipped in all: ${out}/skipped"
            log "Stage 6: $(wc -l < "${out}/wav.scp") waveforms in ${out}"
        done
    fi
    stage_time 6 "${t0}"
fi

if run_stage 7; then
    t0=${SECONDS}
    log "Stage 7: Scoring: MCD and log-F0 RMSE vs the recordings, ASR-CER by ${asr_model}, MAPSSWE vs the dense model and the dense control, pocketsphinx CER and DNSMOS"
    ref_dir="${datadir}/${splits}${test_set}"
    # The ASR model's own CER on the recordings: what the synthesized speech is measured against.
    ref_out="${expdir}/${asr_tag}/${test_set}"
    sets=()
    done_or_redo "${ref_out}/hyp.txt" 7 || sets+=(--set "${ref_dir}" "${ref_out}/hyp.txt")
    while read -r dir made_by; do
        out="${dir}/${synth_tag}/${test_set}"
        need "${out}/wav.scp" 6
        done_or_redo "${out}/${asr_tag}/hyp.txt" 7 || sets+=(--set "${out}" "${out}/${asr_tag}/hyp.txt")
    done < <(model_dirs)
    mkdir -p "${expdir}/logs" "${ref_out}"
    if [ ${#sets[@]} -gt 0 ]; then
        # One process: the ASR model (plain NeMo transcribe()) loaded once for every set.
        ${python} -m pinch.nemo.bin.transcribe --model "${asr_model}" "${sets[@]}" --batch_size "${batch_size}" \
            > "${expdir}/logs/transcribe.log" 2>&1 || failed "ASR transcription" "${expdir}/logs/transcribe.log"
        grep '^pinch.nemo:' "${expdir}/logs/transcribe.log" >&2
    fi
    score_set 7 "${ref_dir}/text" "${ref_out}/hyp.txt" "${ref_out}"
    # judge WAV_SCP TEXT OUT [NAME:HYP ...]: judge_set with the corpus's words and training text.
    judge() {
        need "${datadir}/${splits}${train_set}/text" 1
        judge_set 7 "${ref_dir}/text" "${datadir}/${splits}${train_set}/text" "$@"
    }
    judge "${ref_dir}/wav.scp" "${ref_dir}/text" "${expdir}/judges/${test_set}"
    while read -r dir made_by; do
        out="${dir}/${synth_tag}/${test_set}"
        if ! done_or_redo "${out}/tts_metrics/tts_metrics.json" 7; then
            # The recordings of the sentences synthesized (stage 6 skips those it cannot spell).
            awk 'NR == FNR { keep[$1]; next } $1 in keep' "${out}/text" "${ref_dir}/wav.scp" > "${out}/ref_wav.scp"
            ${python} -m pinch.scoring tts --ref-scp "${out}/ref_wav.scp" \
                --syn-scp "${out}/wav.scp" --out "${out}/tts_metrics" > "${out}/tts_metrics.log" 2>&1 \
                || failed "MCD / F0 scoring" "${out}/tts_metrics.log"
        fi
        tests=()
        [ "${made_by}" = 5 ] && tests=("dense:${dense_dir}/${synth_tag}/${test_set}/${asr_tag}/hyp.txt")
        [ "${made_by}" = 5 ] && [ "${dense_control}" = true ] \
            && tests+=("dense_finetune:${control_dir}/${synth_tag}/${test_set}/${asr_tag}/hyp.txt")
        # The reference text of the sentences that were synthesized.
        score_set 7 "${out}/text" "${out}/${asr_tag}/hyp.txt" "${out}/${asr_tag}" "${tests[@]}"
        # The same references, their pocketsphinx hypotheses in place of the ASR model's.
        judge "${out}/wav.scp" "${out}/text" "${out}/judges" "${tests[@]/%\/${asr_tag}\/hyp.txt//judges/pocketsphinx/hyp}"
    done < <(model_dirs)
    cross=()
    if [ -n "${cross_asr_model_dir}" ]; then
        # The other toolkit's ASR model hears the recordings and every model's speech (one
        # process), scored and tested as the ASR judge's hypotheses are.
        cross_ref="${expdir}/${cross_tag}/${test_set}"
        sets=("${ref_dir}/wav.scp" "${cross_ref}")
        while read -r dir _; do
            sets+=("${dir}/${synth_tag}/${test_set}/wav.scp" "${dir}/${synth_tag}/${test_set}/${cross_tag}")
        done < <(model_dirs)
        espnet_transcribe 7 "${cross_asr_recipe}" "${cross_asr_model_dir}" "${cross_asr_inference_config}" \
            "${expdir}/logs/cross_asr_inference.log" "${sets[@]}"
        score_set 7 "${ref_dir}/text" "${cross_ref}/text" "${cross_ref}"
        while read -r dir made_by; do
            out="${dir}/${synth_tag}/${test_set}"
            tests=()
            [ "${made_by}" = 5 ] && tests=("dense:${dense_dir}/${synth_tag}/${test_set}/${cross_tag}/text")
            [ "${made_by}" = 5 ] && [ "${dense_control}" = true ] \
                && tests+=("dense_finetune:${control_dir}/${synth_tag}/${test_set}/${cross_tag}/text")
            score_set 7 "${out}/text" "${out}/${cross_tag}/text" "${out}/${cross_tag}" "${tests[@]}"
        done < <(model_dirs)
        cross=(--cross_asr_tag "${cross_tag}" --cross_reference_cer "${cross_ref}/score_wer/result.json")
    fi
    models=() control=()
    while read -r dir made_by; do
        if [ "${made_by}" = 4 ]; then control=(--control "${dir}:${dir}/model.nemo"); else models+=("${dir}:${dir}/model.nemo"); fi
    done < <(model_dirs)
    ${python} -m pinch.nemo.bin.tts_results --models "${models[@]}" "${control[@]}" --synth_tag "${synth_tag}" \
        --test_set "${test_set}" --asr_tag "${asr_tag}" --reference_cer "${ref_out}/score_wer/result.json" \
        --reference_judges "${expdir}/judges/${test_set}/judges.json" "${cross[@]}" \
        --ref_scp "${ref_dir}/wav.scp" --n_samples "${n_samples}" \
        --samples_dir "${expdir}/samples" --results_md "${expdir}/RESULTS.md" \
        --results_table "${results_table}" --overwrite "${overwrite}" \
        --notes "corpus=${corpus}${pretrained:+, pretrained $(basename "${pretrained}")}" \
        > "${expdir}/logs/tts_results.log" 2>&1 || failed "results" "${expdir}/logs/tts_results.log"
    sed -n '/^<!-- Generated/,$p' "${expdir}/logs/tts_results.log" >&2
    stage_time 7 "${t0}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
