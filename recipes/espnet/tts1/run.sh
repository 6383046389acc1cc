#!/usr/bin/env bash
# One-pass compression of an ESPnet TTS model's text encoder with pinch, egs2-style.
#
# Stages keep the numbers of egs2/TEMPLATE/tts1/tts.sh where they match (1 data, 2 format,
# 3 filter, 4 token list, 5 collect stats, 6 training, 7 decoding, 8 scoring) with pinch's
# stages put in after training: 6 dense training (or, with --pretrained, the model you hold: stage 4
# takes its token list, config and statistics from the pack), 7 compression (and the dense control: the
# same pass without pruning), 8 bake (the pass's last epoch), 9 synthesis of the test
# sentences (Griffin-Lim unless --vocoder_file), 10 scoring: MCD and log-F0 RMSE against the
# recordings, and ASR-CER of the synthesized speech by the ASR recipe's dense model, with a
# MAPSSWE test of each compressed model against the dense model and the dense control; and
# judges not trained on the corpus (pinch.scoring.judges): pocketsphinx's CER with the corpus's
# words (MAPSSWE as the ASR-CER's) and DNSMOS SIG/BAK/OVRL, of the recordings and each model.
#   ./run.sh                                   # embedded corpus's TTS view, encoder to 50%
#   ./run.sh --datadir ../asr1/data            # reuse the ASR recipe's corpus (same stamp)
#   ./run.sh --corpus ljspeech --ljspeech_dir /data/LJSpeech-1.1 --train_config my_22k.yaml  # the config's fs
#   ./run.sh --pretrained /models/tts_model.zip --corpus embedded   # compress a model you hold
#   ./run.sh --stage 7 --sweep "0.3 0.5 0.7"
# Every stage skips work whose outputs are complete; --overwrite true redoes it.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../../utils/recipe_lib.sh"

# General configuration
stage=1                 # First stage to run.
stop_stage=10           # Last stage to run.
python=python3          # Python with pinch and espnet installed.
ngpu=0                  # GPUs for training (0: CPU).
overwrite=false         # Redo stages whose results already exist.
datadir=data            # Kaldi-style data dirs (stage 1 writes the whole corpus; TTS uses its TTS view).
token_listdir=data/token_list  # The recipe's token list (stage 4), whatever --datadir.
dumpdir=dump            # Formatted and filtered data.
expdir=exp              # Models, synthesized speech, scores, logs.

# Data
corpus=                 # embedded (its single-voice TTS view) | ljspeech (default: embedded; with --pretrained, name it).
ljspeech_dir=           # LJSpeech-1.1 root (metadata.csv, wavs/).
size=default            # Embedded corpus size: default | tiny.
seed=0                  # Embedded corpus generator seed.
min_wav_duration=0.1    # Stage 3 drops shorter training utterances (seconds).
max_wav_duration=15     # Stage 3 drops longer training utterances (seconds).

# Training, compression, synthesis
train_config=conf/train_tacotron2.yaml  # espnet2 training config of the dense model (stage 6).
# A pretrained ESPnet TTS model (a zip or directory as espnet_model_zoo packs it, or a dir with
# config.yaml and one .pth): the dense model in place of stage 6's, with its own config, tokens
# (char or phn, its cleaner and g2p), feature statistics and sample rate.
pretrained=
train_args=             # Extra training options (stages 6 and 7).
# Stage 7: the pass that compresses the dense model's encoder while it fine-tunes.
finetune_args="--max_epoch 4"
compress_args=          # Stage 7 only, e.g. "--pruning_conf eta=300".
# Also fine-tune the dense model with finetune_args and no pruning (${dense_dir}_finetune): a
# dense model with as much training as the compressed ones, the reference of their verdicts.
dense_control=true
pruning=sspg            # Method(s): a preset ${pruning_conf_dir}/<method>.yaml each; none: no compression run.
preset=auto             # Layers to gate: auto (the TTS model's encoder), tacotron2, fastspeech2, ...
target_sparsity=0.5     # Share of the gated weights to prune (0..1).
sweep=                  # Several targets, e.g. "0.3 0.5 0.7" (replaces target_sparsity).
granularity=unstructured  # unstructured | structured (whole units, heads, channels).
pruning_conf_dir=../../../conf/pruning  # Folder of the pruning presets (<method>.yaml).
inference_config=conf/decode.yaml  # espnet2 synthesis config (stage 9).
inference_model=valid.loss.ave.pth  # The dense model's checkpoint (stage 6).
# The checkpoint of a stage-7 pass (compression runs and the dense control) that is baked and
# synthesized with: the pass's last epoch. espnet2's average of the best epochs by valid loss
# mixes in an earlier, less pruned epoch (docs/evidence.md, "Evidence sweep").
finetune_model=latest.pth
# FastSpeech and FastSpeech2 (e.g. --train_config conf/train_fastspeech2.yaml) learn from durations,
# as in egs2: tts.sh's --teacher_dumpdir (DIR/<set>/durations of the training and validation sets),
# or --teacher_model, a Tacotron2's weights (its config.yaml beside them, e.g. this recipe's
# exp/tts_train_tacotron2_raw_char/valid.loss.ave.pth), which stage 5 decodes with teacher forcing
# into ${expdir}/teacher_<its dir> (pinch.espnet.bin.teacher_durations), or --aligner_model, an
# ESPnet ASR model with a CTC head over characters (its config.yaml beside it, e.g. the ASR recipe's
# --token_type char model), which stage 5 force-aligns with the recordings into
# ${expdir}/aligner_<its dir> (pinch.espnet.bin.ctc_durations).
teacher_dumpdir=        # DIR/<set>/durations, as tts.sh's --teacher_dumpdir.
teacher_model=          # A Tacotron2's weights whose attention stage 5 turns into durations.
aligner_model=          # A character CTC ASR model's weights whose alignment stage 5 turns into durations.
vocoder_file=           # A trained vocoder (ParallelWaveGAN checkpoint, .pkl: what Text2Speech reads); empty: Griffin-Lim.
vocoder_config=         # Its config, if not beside it.
n_samples=3             # Test sentences copied to ${expdir}/samples, with mel spectrogram plots.

# Scoring: the ASR recipe's dense model transcribes the synthesized speech (ASR-CER).
asr_recipe=../asr1      # The ESPnet ASR recipe whose model scores (run it first).
asr_model_dir=exp/asr_train_asr_conformer_ctc_raw_bpe50  # Relative to ${asr_recipe}.
asr_inference_config=conf/decode_ctc.yaml                # Relative to ${asr_recipe}.
# A second ASR judge from the other toolkit, so that no toolkit grades its speech alone: a NeMo
# ASR .nemo (e.g. the NeMo ASR recipe's dense model); empty: none.
cross_asr_model=
results_table=../../../exp/results  # Shared results table (append-only).

help_message="Usage: $0 [--option value] ...  (every option below; --help lists them)"

parse_options "$@"

# Paths below are relative to the recipe directory.
cd "$(dirname "$0")"

[ "${pruning}" != none ] || pruning=
check_common_options
is_count "${ngpu}" || die "--ngpu must be a non-negative integer, not '${ngpu}'"
is_count "${n_samples}" || die "--n_samples must be a non-negative integer, not '${n_samples}'"
is_bool "${dense_control}" || die "--dense_control must be true or false, not '${dense_control}'"
for v in min_wav_duration max_wav_duration; do
    awk -v x="${!v}" 'BEGIN { exit !(x ~ /^[0-9]*\.?[0-9]+$/) }' || die "--${v} must be a number of seconds, not '${!v}'"
done
[ -f "${train_config}" ] || [ -n "${pretrained}" ] || die "config ${train_config} not found"
[ -f "${inference_config}" ] || die "config ${inference_config} not found"
[ -z "${pretrained}" ] || [ -e "${pretrained}" ] || die "--pretrained ${pretrained}: no such model zip or directory"
if [ -z "${corpus}" ]; then
    [ -z "${pretrained}" ] || die "--pretrained ${pretrained}: name the data to fine-tune and test it on: --corpus embedded (the demo corpus synthesized here) or --corpus ljspeech --ljspeech_dir DIR"
    corpus=embedded
fi
[ -z "${vocoder_file}" ] || [ -f "${vocoder_file}" ] || die "--vocoder_file ${vocoder_file}: no such file"
if [ -n "${vocoder_file}" ]; then
    # espnet2's Text2Speech reads a vocoder through ParallelWaveGAN's loader only (.pkl); anything
    # else would fail at stage 9 after the trainings, deep inside espnet2.
    case "${vocoder_file}" in
        *.pkl) ;;
        *) die "--vocoder_file ${vocoder_file}: espnet2's Text2Speech reads ParallelWaveGAN checkpoints only (.pkl, config.yml beside it or --vocoder_config); leave it out for Griffin-Lim" ;;
    esac
    ${python} -c 'import parallel_wavegan' 2> /dev/null \
        || die "--vocoder_file ${vocoder_file}: espnet2 reads it with the parallel_wavegan package, which ${python} does not have (pip install parallel_wavegan)"
fi
[ -z "${vocoder_config}" ] || [ -f "${vocoder_config}" ] || die "--vocoder_config ${vocoder_config}: no such file"
[ -z "${teacher_model}" ] || [ -z "${aligner_model}" ] || die "--teacher_model and --aligner_model: give one source of durations"
if [ -n "${aligner_model}" ]; then
    [ -f "${aligner_model}" ] || die "--aligner_model ${aligner_model}: no such file (a character CTC ASR model's weights, its config.yaml beside them)"
    [ -f "$(dirname "${aligner_model}")/config.yaml" ] || die "--aligner_model ${aligner_model}: no config.yaml beside it"
    [ -n "${teacher_dumpdir}" ] || teacher_dumpdir="${expdir}/aligner_$(basename "$(dirname "${aligner_model}")")"
elif [ -n "${teacher_model}" ]; then
    [ -f "${teacher_model}" ] || die "--teacher_model ${teacher_model}: no such file (a Tacotron2's weights, its config.yaml beside them)"
    [ -f "$(dirname "${teacher_model}")/config.yaml" ] || die "--teacher_model ${teacher_model}: no config.yaml beside it"
    [ -n "${teacher_dumpdir}" ] || teacher_dumpdir="${expdir}/teacher_$(basename "$(dirname "${teacher_model}")")"
elif [ -n "${teacher_dumpdir}" ]; then
    [ -d "${teacher_dumpdir}" ] || die "--teacher_dumpdir ${teacher_dumpdir}: no such directory"
fi
if run_stage 10 && [ -n "${cross_asr_model}" ]; then
    [ -f "${cross_asr_model}" ] || die "--cross_asr_model ${cross_asr_model}: no such file (a NeMo ASR .nemo, e.g. the NeMo ASR recipe's dense model)"
fi

tts_corpus

token_type=char
token_list="${token_listdir}/${token_type}/tokens.txt"
tts_tag="$(basename "${train_config}" .yaml)_raw_${token_type}"
stats_dir="${expdir}/tts_stats_raw_${token_type}"
dense_dir="${expdir}/tts_${tts_tag}"
if [ -n "${pretrained}" ]; then
    # The model's own token list, config and statistics (stage 4 places them in its dir).
    tts_tag="pretrained_$(basename "${pretrained%/}" .zip)"
    dense_dir="${expdir}/tts_${tts_tag}"
    stats_dir="${expdir}/tts_stats_${tts_tag}"
    train_config="${dense_dir}/config.yaml"
    token_list="${dense_dir}/tokens.txt"
fi
control_dir="${dense_dir}_finetune"
dense_stage=6  # the stage that makes the dense model
[ -z "${pretrained}" ] || dense_stage=4
synth_tag="$(basename "${inference_config}" .yaml)_${inference_model%.pth}"
[ -n "${vocoder_file}" ] && synth_tag+="_$(basename "${vocoder_file%.*}")" || synth_tag+="_griffin_lim"
asr_tag="asr_$(basename "${asr_model_dir}")"
cross_tag=
[ -z "${cross_asr_model}" ] || cross_tag="cross_asr_$(basename "$(dirname "${cross_asr_model}")")"

# config_value KEY [SUBKEY]: the dense model's training config's value (none if unset).
config_value() {
    ${python} -c 'import sys, yaml
v = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
for k in sys.argv[2:]: v = v.get(k) if isinstance(v, dict) else None
print("none" if v is None else v)' "${train_config}" "$@"
}
# needs_durations: the dense model's config is a FastSpeech or FastSpeech2, which learn from durations
# (read once, where the config exists: a held model's from stage 4 on).
needs_durations() {
    if [ -z "${duration_model:-}" ]; then
        case "$(config_value tts)" in fastspeech|fastspeech2) duration_model=yes ;; *) duration_model=no ;; esac
    fi
    [ "${duration_model}" = yes ]
}
# check_durations: a model that learns from durations has a teacher to take them from.
check_durations() {
    needs_durations || return 0
    [ -n "${teacher_dumpdir}" ] || die "${train_config}: tts $(config_value tts) trains on durations: pass --teacher_model (a Tacotron2's weights, e.g. exp/tts_train_tacotron2_raw_char/valid.loss.ave.pth), --aligner_model (a character CTC ASR model's weights) or --teacher_dumpdir DIR (DIR/<set>/durations, as tts.sh's)"
}
# set_data_opts: the options of the recipe's data, tokenized as the dense model's config says
# (a held model's token type, cleaner and g2p; the recipe's own: characters, no cleaner, no g2p).
# Called where a stage needs them: a held model's config exists from stage 4 on.
set_data_opts() {
    local cleaner=none g2p=none
    need "${train_config}" 4
    if [ -n "${pretrained}" ]; then
        token_type=$(config_value token_type) cleaner=$(config_value cleaner) g2p=$(config_value g2p)
    fi
    data_opts=(
        --use_preprocessor true --token_type "${token_type}" --token_list "${token_list}"
        --cleaner "${cleaner}" --g2p "${g2p}" --non_linguistic_symbols none
        --train_data_path_and_name_and_type "${dumpdir}/raw/${train_set}/text,text,text"
        --train_data_path_and_name_and_type "${dumpdir}/raw/${train_set}/wav.scp,speech,sound"
        --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/text,text,text"
        --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/wav.scp,speech,sound"
    )
    if needs_durations; then
        check_durations
        need "${teacher_dumpdir}/${train_set}/durations" 5
        need "${teacher_dumpdir}/${valid_set}/durations" 5
        data_opts+=(
            --train_data_path_and_name_and_type "${teacher_dumpdir}/${train_set}/durations,durations,text_int"
            --valid_data_path_and_name_and_type "${teacher_dumpdir}/${valid_set}/durations,durations,text_int"
        )
    fi
    shape_opts=(
        --train_shape_file "${stats_dir}/train/text_shape.${token_type}"
        --train_shape_file "${stats_dir}/train/speech_shape"
        --valid_shape_file "${stats_dir}/valid/text_shape.${token_type}"
        --valid_shape_file "${stats_dir}/valid/speech_shape"
    )
    # A held model keeps its config's normalisation (its own statistics).
    [ -n "${pretrained}" ] && return
    shape_opts+=(--normalize_conf "stats_file=${stats_dir}/train/feats_stats.npz")
    local v
    for v in pitch energy; do  # a FastSpeech2's, as tts.sh passes them
        [ "$(config_value "${v}_normalize")" = none ] \
            || shape_opts+=(--"${v}_normalize_conf" "stats_file=${stats_dir}/train/${v}_stats.npz")
    done
}

# The training settings of a held model that a pass may change (record_overrides).
training_keys="optim optim_conf scheduler scheduler_conf max_epoch batch_type batch_size batch_bins
    accum_grad grad_clip num_workers patience keep_nbest_models seed use_amp normalize normalize_conf"

# train_tts DIR MODULE WHAT [OPTION ...]: one espnet2 training run on the recipe's data.
train_tts() {
    espnet_train "$1" "$2" "$3" "${data_opts[@]}" "${shape_opts[@]}" --config "${train_config}" "${@:4}"
}

# model_dirs: "DIR CONFIG MODEL STAGE" per model to synthesize with: dense, the dense control
# (made by stage 7), then each baked one (stage 8).
model_dirs() {
    echo "${dense_dir} ${dense_dir}/config.yaml ${dense_dir}/${inference_model} ${dense_stage}"
    [ "${dense_control}" = true ] && echo "${control_dir} ${control_dir}/config.yaml ${control_dir}/${finetune_model} 7"
    while read -r _ _ dir; do
        echo "${dir}/baked ${dir}/baked/config.yaml ${dir}/baked/model.pth 8"
    done < <(compressed_runs)
}

# A held model's config is known from stage 4 (checked at stage 5); the recipe's own, now. A
# duration model's statistics hold its pitch and energy too: a dir of its own, beside a Tacotron2's.
if [ -z "${pretrained}" ] && needs_durations; then
    check_durations
    stats_dir="${expdir}/tts_stats_${tts_tag}"
fi

if run_stage 1; then
    t0=${SECONDS}
    log "Stage 1: Data preparation (${corpus}) -> ${datadir}"
    prepare_data
    stage_time 1 "${t0}"
fi

if run_stage 2; then
    t0=${SECONDS}
    log "Stage 2: Format wav.scp: ${datadir}/${splits} -> ${dumpdir}/raw/"
    espnet_format 2 "${datadir}/${splits}" "${test_set}"
    stage_time 2 "${t0}"
fi

if run_stage 3; then
    t0=${SECONDS}
    log "Stage 3: Remove long/short data: ${dumpdir}/raw/org -> ${dumpdir}/raw"
    espnet_filter 3
    stage_time 3 "${t0}"
fi

if run_stage 4 && [ -n "${pretrained}" ]; then
    t0=${SECONDS}
    log "Stage 4: Token list, config and statistics of --pretrained ${pretrained} -> ${dense_dir}"
    if ! done_or_redo "${dense_dir}/${inference_model}" 4; then
        mkdir -p "${expdir}/logs"
        ${python} -m pinch.espnet.bin.pretrained --task tts --pretrained "${pretrained}" --out_dir "${dense_dir}" \
            --model_name "${inference_model}" > "${expdir}/logs/pretrained.log" 2>&1 \
            || failed "pretrained model" "${expdir}/logs/pretrained.log"
        tail -n 1 "${expdir}/logs/pretrained.log" >&2
    fi
    stage_time 4 "${t0}"
elif run_stage 4; then
    t0=${SECONDS}
    log "Stage 4: Generate character token_list from ${dumpdir}/raw/${train_set}/text"
    if ! done_or_redo "${token_list}" 4; then
        need "${dumpdir}/raw/${train_set}/text" 3
        mkdir -p "$(dirname "${token_list}")"
        # As tts.sh: <blank> and <unk> first, <sos/eos> last; no cleaner and no g2p, so
        # nothing is downloaded.
        ${python} -m pinch.offline espnet2.bin.tokenize_text --token_type "${token_type}" \
            --input "${dumpdir}/raw/${train_set}/text" --output "${token_list}.tmp" --field 2- \
            --cleaner none --g2p none --write_vocabulary true \
            --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
        mv "${token_list}.tmp" "${token_list}"
    fi
    stage_time 4 "${t0}"
fi

# durations_by MODULE SOURCE [OPTION ...]: stage 5's durations of the training and validation
# sets into ${teacher_dumpdir}, by MODULE (pinch.espnet.bin.teacher_durations or ctc_durations)
# for the student ${train_config}; its log: ${expdir}/logs/<module>.log.
durations_by() {
    local module=$1 source=$2 log_file
    shift 2
    log_file="${expdir}/logs/${module##*.}.log"
    log "Stage 5: Durations of ${train_set} and ${valid_set} from ${source} -> ${teacher_dumpdir}"
    done_or_redo "${teacher_dumpdir}/${valid_set}/durations" 5 && return 0
    need "${dumpdir}/raw/${valid_set}/wav.scp" 3
    mkdir -p "${expdir}/logs"
    ${python} -m "${module}" "$@" --student_config "${train_config}" --token_list "${token_list}" \
        --set "${dumpdir}/raw/${train_set}" "${teacher_dumpdir}/${train_set}" \
        --set "${dumpdir}/raw/${valid_set}" "${teacher_dumpdir}/${valid_set}" \
        > "${log_file}" 2>&1 || failed "durations" "${log_file}"
    grep -v '^pinch' "${log_file}" | tail -n 2 >&2
}

if run_stage 5; then
    t0=${SECONDS}
    need "${train_config}" 4
    check_durations
    if [ -n "${teacher_model}" ] && needs_durations; then
        durations_by pinch.espnet.bin.teacher_durations "${teacher_model}'s attention (teacher forcing)" \
            --train_config "$(dirname "${teacher_model}")/config.yaml" --model_file "${teacher_model}"
    elif [ -n "${aligner_model}" ] && needs_durations; then
        durations_by pinch.espnet.bin.ctc_durations "${aligner_model}'s CTC alignment of the recordings" \
            --asr_train_config "$(dirname "${aligner_model}")/config.yaml" --asr_model_file "${aligner_model}" \
            --cleaner "$([ -n "${pretrained}" ] && config_value cleaner || echo none)"
    fi
    log "Stage 5: TTS collect stats: ${dumpdir}/raw/${train_set} -> ${stats_dir}"
    set_data_opts
    # The features are computed at the config's fs, whatever the audio's rate: a mismatch would
    # train on speech at the wrong pitch and speed, so it stops here.
    fs=$(config_value feats_extract_conf fs)
    [ "${fs}" != none ] || die "${train_config}: feats_extract_conf has no fs"
    need "${dumpdir}/raw/${train_set}/wav.scp" 3
    rate=$(${python} -c 'import sys, soundfile; print(soundfile.info(open(sys.argv[1]).readline().split(maxsplit=1)[1].strip()).samplerate)' \
        "${dumpdir}/raw/${train_set}/wav.scp")
    [ "${rate}" = "${fs}" ] || die "${dumpdir}/raw/${train_set}: audio at ${rate} Hz, but ${train_config} computes its features at ${fs} Hz (feats_extract_conf.fs): the recipe does not resample; give data at ${fs} Hz"
    if ! done_or_redo "${stats_dir}/train/feats_stats.npz" 5; then
        need "${token_list}" 4
        extra=()  # a FastSpeech2's pitch and energy are collected unnormalized, as the features
        for v in pitch energy; do [ "$(config_value "${v}_normalize")" = none ] || extra+=(--"${v}_normalize" none); done
        espnet_collect_stats espnet2.bin.tts_train text "${data_opts[@]}" --config "${train_config}" --normalize none \
            "${extra[@]}"
    fi
    stage_time 5 "${t0}"
fi

if run_stage 6; then
    t0=${SECONDS}
    if [ -n "${pretrained}" ]; then
        log "Stage 6: the dense model is --pretrained ${pretrained} (${dense_dir}, stage 4); no dense training"
    else
        log "Stage 6: TTS Training (dense): ${dense_dir}"
    fi
    if [ -z "${pretrained}" ] && ! done_or_redo "${dense_dir}/${inference_model}" 6; then
        set_data_opts
        need "${stats_dir}/train/feats_stats.npz" 5
        # shellcheck disable=SC2086
        train_tts "${dense_dir}" espnet2.bin.tts_train "dense training" ${train_args}
    fi
    stage_time 6 "${t0}"
fi

if run_stage 7; then
    set_data_opts
    log "Stage 7: One-pass compression of the encoder of ${dense_dir}/${inference_model}: methods '${pruning}', targets '${targets}', preset '${preset}'$([ "${dense_control}" = true ] && echo ', and the dense control (fine-tuned without pruning)')"
    if [ "${dense_control}" = true ] && ! done_or_redo "${control_dir}/${finetune_model}" 7; then
        t0=${SECONDS}
        need "${dense_dir}/${inference_model}" "${dense_stage}"
        # shellcheck disable=SC2086
        train_tts "${control_dir}" espnet2.bin.tts_train "dense control" \
            --init_param "${dense_dir}/${inference_model}" ${train_args} ${finetune_args}
        record_overrides "${train_config}" "${control_dir}" "${training_keys}"
        log "Stage 7: ${control_dir} done in $(( SECONDS - t0 ))s"
    fi
    while read -r m t dir; do
        t0=${SECONDS}
        done_or_redo "${dir}/${finetune_model}" 7 && continue
        need "${dense_dir}/${inference_model}" "${dense_stage}"
        # shellcheck disable=SC2086
        train_tts "${dir}" pinch.espnet.bin.tts_train "compression ${m} ${t}" \
            --init_param "${dense_dir}/${inference_model}" \
            --pruning_config "${pruning_conf_dir}/${m}.yaml" --pruning_conf "preset=${preset}" \
            --pruning_conf "target_sparsity=${t}" --pruning_conf "granularity=${granularity}" \
            ${train_args} ${finetune_args} ${compress_args}
        record_overrides "${train_config}" "${dir}" "${training_keys}"
        log "Stage 7: ${dir} done in $(( SECONDS - t0 ))s"
    done < <(compressed_runs)
fi

if run_stage 8; then
    t0=${SECONDS}
    log "Stage 8: Bake: masks into weights (${finetune_model}), plain ESPnet TTS model dirs"
    espnet_bake 8 tts "${finetune_model}" < <(compressed_runs)
    stage_time 8 "${t0}"
fi

if run_stage 9; then
    t0=${SECONDS}
    log "Stage 9: Synthesis of ${test_set} with unmodified espnet2.bin.tts_inference (${synth_tag})"
    vocoder=()
    [ -n "${vocoder_file}" ] && vocoder=(--vocoder_file "${vocoder_file}")
    [ -n "${vocoder_config}" ] && vocoder+=(--vocoder_config "${vocoder_config}")
    while read -r dir config model made_by; do
        out="${dir}/${synth_tag}/${test_set}"
        done_or_redo "${out}/wav.scp" 9 && continue
        need "${model}" "${made_by}"
        need "${dumpdir}/raw/${test_set}/text" 2
        rm -rf "${out}" && mkdir -p "${out}"
        # Sentences the token list cannot spell are named and left out; the rest are spoken.
        ${python} -m pinch.data check-text --text "${dumpdir}/raw/${test_set}/text" \
            --token-list "${token_list}" --out-text "${out}/text" --bad "${out}/skipped" \
            2> "${out}/check_text.log" || failed "text check" "${out}/check_text.log"
        [ -s "${out}/skipped" ] && log "Stage 9: $(wc -l < "${out}/skipped") sentence(s) skipped: ${out}/skipped"
        ${python} -m pinch.offline espnet2.bin.tts_inference --ngpu 0 --config "${inference_config}" \
            --data_path_and_name_and_type "${out}/text,text,text" \
            --train_config "${config}" --model_file "${model}" "${vocoder[@]}" \
            --output_dir "${out}/synth" > "${out}/tts_inference.log" 2>&1 \
            || failed "synthesis" "${out}/tts_inference.log"
        [ -d "${out}/synth/wav" ] || die "synthesis wrote no waveforms (${out}/tts_inference.log): the model's config has no feats_extract for Griffin-Lim; pass --vocoder_file"
        wav_dir=$(cd "${out}/synth/wav" && pwd)
        for f in "${wav_dir}"/*.wav; do
            u=$(basename "${f}" .wav); echo "${u} ${f}"
        done | LC_ALL=C sort > "${out}/wav.scp.tmp"
        mv "${out}/wav.scp.tmp" "${out}/wav.scp"
        log "Stage 9: $(wc -l < "${out}/wav.scp") waveforms in ${out}"
    done < <(model_dirs)
    stage_time 9 "${t0}"
fi

if run_stage 10; then
    t0=${SECONDS}
    log "Stage 10: Scoring: MCD and log-F0 RMSE vs the recordings, ASR-CER by ${asr_recipe}/${asr_model_dir}, MAPSSWE vs the dense model and the dense control, pocketsphinx CER and DNSMOS"
    asr_dir="${asr_recipe}/${asr_model_dir}"
    [ -f "${asr_dir}/config.yaml" ] \
        || die "${asr_dir}/config.yaml is missing: run ${asr_recipe}/run.sh first, or pass --asr_recipe/--asr_model_dir"
    # judge WAV_SCP TEXT OUT [NAME:HYP ...]: judge_set with the corpus's words and training text.
    judge() {
        need "${dumpdir}/raw/${train_set}/text" 3
        judge_set 10 "${dumpdir}/raw/${test_set}/text" "${dumpdir}/raw/${train_set}/text" "$@"
    }
    # The ASR model's own CER on the recordings: what the synthesized speech is measured against.
    ref_out="${expdir}/${asr_tag}/${test_set}"
    # The ASR recipe's model decodes the recordings and every model's speech (one process).
    sets=("${dumpdir}/raw/${test_set}/wav.scp" "${ref_out}")
    while read -r dir _ _ _; do
        out="${dir}/${synth_tag}/${test_set}"
        need "${out}/wav.scp" 9
        sets+=("${out}/wav.scp" "${out}/${asr_tag}")
    done < <(model_dirs)
    mkdir -p "${expdir}/logs"
    espnet_transcribe 10 "${asr_recipe}" "${asr_model_dir}" "${asr_inference_config}" \
        "${expdir}/logs/asr_inference.log" "${sets[@]}"
    score_set 10 "${dumpdir}/raw/${test_set}/text" "${ref_out}/text" "${ref_out}"
    judge "${dumpdir}/raw/${test_set}/wav.scp" "${dumpdir}/raw/${test_set}/text" "${expdir}/judges/${test_set}"
    while read -r dir config model made_by; do
        out="${dir}/${synth_tag}/${test_set}"
        if ! done_or_redo "${out}/tts_metrics/tts_metrics.json" 10; then
            # The recordings of the sentences synthesized (stage 9 skips those it cannot spell).
            awk 'NR == FNR { keep[$1]; next } $1 in keep' "${out}/text" "${dumpdir}/raw/${test_set}/wav.scp" \
                > "${out}/ref_wav.scp"
            ${python} -m pinch.scoring tts --ref-scp "${out}/ref_wav.scp" \
                --syn-scp "${out}/wav.scp" --out "${out}/tts_metrics" > "${out}/tts_metrics.log" 2>&1 \
                || failed "MCD / F0 scoring" "${out}/tts_metrics.log"
        fi
        tests=()
        [ "${made_by}" = 8 ] && tests=("dense:${dense_dir}/${synth_tag}/${test_set}/${asr_tag}/text")
        [ "${made_by}" = 8 ] && [ "${dense_control}" = true ] \
            && tests+=("dense_finetune:${control_dir}/${synth_tag}/${test_set}/${asr_tag}/text")
        # The reference text of the sentences that were synthesized.
        score_set 10 "${out}/text" "${out}/${asr_tag}/text" "${out}/${asr_tag}" "${tests[@]}"
        # The same references, their pocketsphinx hypotheses in place of the ASR model's.
        judge "${out}/wav.scp" "${out}/text" "${out}/judges" "${tests[@]/%\/${asr_tag}\/text//judges/pocketsphinx/hyp}"
    done < <(model_dirs)
    cross=()
    if [ -n "${cross_asr_model}" ]; then
        # The other toolkit's ASR model hears the recordings and every model's speech (one NeMo
        # process for all of them), scored and tested as the ASR judge's hypotheses are.
        cross_ref="${expdir}/${cross_tag}/${test_set}"
        sets=()
        # cross_set DIR HYP: DIR (wav.scp, text) to transcribe into HYP, its NeMo manifest written.
        cross_set() {
            done_or_redo "$2" 10 && return
            mkdir -p "$(dirname "$2")"
            [ -f "$1/manifest.json" ] || ${python} -m pinch.data.manifest from-kaldi "$1" > /dev/null
            sets+=(--set "$1" "$2")
        }
        cross_set "${dumpdir}/raw/${test_set}" "${cross_ref}/hyp.txt"
        while read -r dir _ _ _; do
            out="${dir}/${synth_tag}/${test_set}"
            cross_set "${out}" "${out}/${cross_tag}/hyp.txt"
        done < <(model_dirs)
        if [ ${#sets[@]} -gt 0 ]; then
            ${python} -m pinch.nemo.bin.transcribe --model "${cross_asr_model}" "${sets[@]}" \
                > "${expdir}/logs/cross_transcribe.log" 2>&1 || failed "cross ASR transcription" "${expdir}/logs/cross_transcribe.log"
        fi
        score_set 10 "${dumpdir}/raw/${test_set}/text" "${cross_ref}/hyp.txt" "${cross_ref}"
        while read -r dir _ _ made_by; do
            out="${dir}/${synth_tag}/${test_set}"
            tests=()
            [ "${made_by}" = 8 ] && tests=("dense:${dense_dir}/${synth_tag}/${test_set}/${cross_tag}/hyp.txt")
            [ "${made_by}" = 8 ] && [ "${dense_control}" = true ] \
                && tests+=("dense_finetune:${control_dir}/${synth_tag}/${test_set}/${cross_tag}/hyp.txt")
            score_set 10 "${out}/text" "${out}/${cross_tag}/hyp.txt" "${out}/${cross_tag}" "${tests[@]}"
        done < <(model_dirs)
        cross=(--cross_asr_tag "${cross_tag}" --cross_reference_cer "${cross_ref}/score_wer/result.json")
    fi
    models=() control=()
    while read -r dir _ model made_by; do
        if [ "${made_by}" = 7 ]; then control=(--control "${dir}:${model}"); else models+=("${dir}:${model}"); fi
    done < <(model_dirs)
    ${python} -m pinch.espnet.bin.tts_results --models "${models[@]}" "${control[@]}" --synth_tag "${synth_tag}" \
        --test_set "${test_set}" --asr_tag "${asr_tag}" --reference_cer "${ref_out}/score_wer/result.json" \
        --reference_judges "${expdir}/judges/${test_set}/judges.json" "${cross[@]}" \
        --ref_scp "${dumpdir}/raw/${test_set}/wav.scp" --n_samples "${n_samples}" \
        --samples_dir "${expdir}/samples" --results_md "${expdir}/RESULTS.md" \
        --results_table "${results_table}" --overwrite "${overwrite}" \
        --notes "corpus=${corpus}${pretrained:+, pretrained $(basename "${pretrained%/}")}" \
        > "${expdir}/logs/tts_results.log" 2>&1 || failed "results" "${expdir}/logs/tts_results.log"
    cat "${expdir}/logs/tts_results.log" >&2
    stage_time 10 "${t0}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
