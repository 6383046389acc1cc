#!/usr/bin/env bash
# One-pass compression of an ESPnet ASR model with pinch, egs2-style.
#
# Stages keep the numbers of egs2/TEMPLATE/asr1/asr.sh: 1 data, 3 format, 4 filter, 5 token
# list, 10 collect stats, 11 training (the dense model, unless --pretrained; then the
# compression runs, which are trainings, and the dense control; each compression run baked
# into a plain ESPnet model dir), 12 decoding, 13 scoring, 14 packing (espnet2's packer, with a
# model card). 15 deploys the dense and compressed models as ONNX fp32, int8 and static int8
# calibrated on the valid set (structured runs shrunk), decoded by onnxruntime and scored
# (DEPLOY.md); asr.sh's upload stages have no counterpart (nothing here reaches a network).
#   ./run.sh                                   # embedded corpus, sspg at 65%
#   ./run.sh --stage 11 --sweep "0.5 0.65 0.8" --pruning "sspg ump"
#   ./run.sh --stage 11 --stop_stage 13 --train_nj 2 --sweep "0.5 0.65 0.8 0.9" \
#       --pruning "sspg sspg_structured ump global_magnitude gmp imp l1"   # the evidence sweep
#   ./run.sh --stage 12                        # decode again (and score, pack, deploy); nothing trains
#   ./run.sh --corpus librispeech --librispeech_dir /data/LibriSpeech
#   ./run.sh --pretrained /models/asr_model.zip --corpus embedded   # compress a model you hold
#   ./run.sh --pretrained /models/asr_model.zip --train_set my_train --valid_set my_dev \
#       --test_sets "eval1 eval2"                 # ... on your Kaldi dirs data/<set> (stage 1 checks them)
#   ./run.sh --pretrained /models/asr_model.zip --skip_train true --test_sets eval1  # only decode and score it
#   ./run.sh --pruning none --dense_control false --stop_stage 11   # only train the dense model
#   ./run.sh --stage 11 --granularity structured  # whole units, heads, conv channels: real speed
# Every stage skips work whose outputs are complete; --overwrite true redoes it.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../../utils/recipe_lib.sh"

# General configuration
stage=1                 # First stage to run.
stop_stage=15           # Last stage to run.
python=python3          # Python with pinch and espnet installed.
ngpu=0                  # GPUs per training (0: CPU; N > 1: one process per GPU, as asr.sh).
gpu_inference=false     # Decode on a GPU (stage 12: one GPU per decoding job), as asr.sh.
overwrite=false         # Redo stages whose results already exist.
datadir=data            # Kaldi-style data dirs.
dumpdir=dump            # Formatted and filtered data.
expdir=exp              # Models, decodes, scores, logs.

# Data: Kaldi-style dirs ${datadir}/<set> (wav.scp, text, utt2spk; segments optional), as asr.sh's.
# embedded | librispeech: stage 1 makes the corpus's dirs. none: the dirs are yours (--train_set,
# --valid_set, --test_sets); stage 1 checks them. Unset: none where --train_set or --valid_set is
# given (or --pretrained with --skip_train true), an error with --pretrained otherwise (name the
# data to fine-tune it on), else embedded (the corpus synthesized here).
corpus=
librispeech_dir=        # LibriSpeech root (with train-clean-100/, test-clean/, ...).
size=default            # Embedded corpus size: default | tiny.
seed=0                  # Embedded corpus generator seed.
train_set=              # Training set (default: the corpus's: train, train_clean_100).
valid_set=              # Validation set; stage 15 calibrates static int8 on it (default: dev, dev_clean).
test_sets=              # Sets to decode and score (default: all of the corpus's test sets).
min_wav_duration=0.1    # Stage 4 drops shorter training utterances (seconds).
max_wav_duration=20     # Stage 4 drops longer training utterances (seconds).
# true: train nothing: decode and score the dense model (--pretrained, or this recipe's trained
# one) on --test_sets; stages 4, 10, 11, 14 and 15 are skipped, as asr.sh's --skip_train.
skip_train=false

# Features
# utterance_mvn: the embedded corpus mixes voices 11 dB apart and trains with +-12 dB gain;
# with global_mvn the dense model stayed on CTC's blank plateau (docs/corpus.md, corpus v4).
feats_normalize=utterance_mvn  # utterance_mvn | global_mvn (statistics of stage 10)

# Tokens
token_type=bpe          # Token unit of the recipe's own model (stage 5): bpe (sentencepiece) | char (a TTS aligner).
nbpe=50                 # BPE vocabulary size (stage 5).
bpemode=unigram         # sentencepiece model type: unigram | bpe.

# Training, compression, decoding
# A pretrained ESPnet ASR model (a zip or directory as espnet_model_zoo packs it, or a dir with
# config.yaml and one .pth) to compress instead of training one: stage 5 takes its token list,
# BPE model and config; stage 11 trains no dense model.
pretrained=
asr_config=conf/train_asr_conformer_ctc.yaml  # espnet2 training config of the dense model (stage 11).
asr_args=               # Extra training options (every training of stage 11: the same model).
# Stage 11: length and optimizer of the pass that fine-tunes the dense model, for the
# compression runs and the dense control alike.
finetune_args="--max_epoch 2 --optim_conf lr=0.001 --scheduler_conf warmup_steps=50"
# Stage 11, compression runs only: extra options, e.g. "--pruning_conf eta=300".
compress_args=
# Also fine-tune the dense model with finetune_args and no pruning (${dense_dir}_finetune):
# a dense model with as much training as the compressed ones, to test "lossless" against.
dense_control=true
pruning=sspg            # Method(s): a preset ${pruning_conf_dir}/<method>.yaml each; none: no compression run.
target_sparsity=0.65    # Share of the gated weights to prune (0..1).
sweep=                  # Several targets, e.g. "0.5 0.65 0.8" (replaces target_sparsity).
compress_seeds=         # Seeds of the compression runs, e.g. "1 2" (runs get a _seedN suffix).
compress_epochs=        # Longer compression passes, e.g. "4 8" epochs (runs get an _epN suffix; the
                        # pruning schedules stretch with them): the cost of reaching a WER.
train_nj=1              # Trainings at once (stage 11; locally the cores are shared out as torch threads).
# structured (sspg): prune whole FFN units, attention heads and conv channels (runs get a
# _structured suffix; the baked model keeps the zeros, pinch.shrink removes them). A preset
# can ask for it itself (sspg_structured).
granularity=unstructured
pruning_conf_dir=../../../conf/pruning  # Folder of the pruning presets (<method>.yaml).
inference_config=conf/decode_ctc.yaml  # espnet2 decoding config (stage 12), e.g. your model's joint CTC/attention beam search.
inference_args=         # Arguments added to espnet2's asr_inference (stage 12), as asr.sh's, e.g. "--beam_size 5".
inference_asr_model=valid.loss.ave.pth  # The dense model's checkpoint that is decoded.
# The checkpoint of a stage-11 pass (compression runs and the dense control) that is baked,
# decoded and deployed: the pass's last epoch, as NeMo's recipe takes its final weights.
# espnet2's average of the best epochs by valid loss mixes in an earlier, less pruned epoch of
# the methods that prune gradually (docs/evidence.md, "Evidence sweep").
finetune_model=latest.pth
nj=2                    # Parallel jobs: decoding jobs per model (one CPU thread, or GPU, each).
inference_nj=           # Decoding jobs per model, its test sets split over them (default: --nj).
results_table=../../../exp/results  # Shared results table (append-only).

# Jobs (cmd.sh): the trainings of stage 11 and the decoding of stage 12.
cmd_backend=local       # local: this machine | slurm: sbatch job arrays
slurm_conf=../../../conf/slurm.conf  # Partition, time, memory, CPUs, GPUs per job (slurm).
# Data-parallel training (slurm): each training job gets num_nodes x nproc_per_node processes
# (srun tasks, one GPU each when --ngpu N: then nproc_per_node N), as asr.sh's --num_nodes.
num_nodes=1
nproc_per_node=1        # Training processes per node (slurm; one GPU each with --ngpu).
job=                    # (Set by the recipe for its own jobs: LIST:N, the work of line N of LIST.)

help_message="Usage: $0 [--option value] ...  (every option below; --help lists them)"

parse_options "$@"

# Paths below are relative to the recipe directory.
cd "$(dirname "$0")"

[ "${pruning}" != none ] || pruning=
check_common_options
[[ "${nj}" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, not '${nj}'"
inference_nj=${inference_nj:-${nj}}
[[ "${inference_nj}" =~ ^[1-9][0-9]*$ ]] \
    || die "--inference_nj must be a positive integer, not '${inference_nj}'"
is_bool "${gpu_inference}" || die "--gpu_inference must be true or false, not '${gpu_inference}'"
is_bool "${dense_control}" || die "--dense_control must be true or false, not '${dense_control}'"
{ is_count "${nbpe}" && [ "${nbpe}" -gt 0 ]; } || die "--nbpe must be a positive integer, not '${nbpe}'"
case "${token_type}" in bpe|char) ;; *) die "--token_type must be bpe or char, not '${token_type}'" ;; esac
check_sweep_options
check_job_options
. ./cmd.sh
for v in min_wav_duration max_wav_duration; do
    awk -v x="${!v}" 'BEGIN { exit !(x ~ /^[0-9]*\.?[0-9]+$/) }' || die "--${v} must be a number of seconds, not '${!v}'"
done
# A pretrained model brings its own training config (stage 5 writes it).
[ -f "${asr_config}" ] || [ -n "${pretrained}" ] || die "config ${asr_config} not found"
[ -f "${inference_config}" ] || die "config ${inference_config} not found"
[ -z "${pretrained}" ] || [ -e "${pretrained}" ] || die "--pretrained ${pretrained}: no such model zip or directory"

is_bool "${skip_train}" || die "--skip_train must be true or false, not '${skip_train}'"
if [ -z "${corpus}" ]; then
    if [ -n "${train_set}${valid_set}" ] || { [ -n "${pretrained}" ] && [ "${skip_train}" = true ]; }; then
        corpus=none
    elif [ -n "${pretrained}" ]; then
        die "--pretrained ${pretrained}: name the data to fine-tune and test it on: --corpus embedded (the demo corpus synthesized here), or --train_set, --valid_set and --test_sets (your Kaldi dirs under ${datadir}/); --skip_train true --test_sets SETS only decodes and scores it"
    else
        corpus=embedded
    fi
fi
case "${corpus}" in
    embedded)
        corpus_sets="train dev test_clean test_other"
        : "${train_set:=train}" "${valid_set:=dev}" "${test_sets:=test_clean test_other}" ;;
    librispeech)
        [ -n "${librispeech_dir}" ] || die "--corpus librispeech needs --librispeech_dir DIR"
        [ -d "${librispeech_dir}" ] || die "--librispeech_dir ${librispeech_dir}: no such directory"
        corpus_sets="train_clean_100 dev_clean dev_other test_clean test_other"
        : "${train_set:=train_clean_100}" "${valid_set:=dev_clean}" "${test_sets:=dev_clean dev_other test_clean test_other}" ;;
    none)
        corpus_sets=
        [ -n "${test_sets}" ] || die "--corpus none (your own data dirs): name the sets to decode and score with --test_sets (dirs under ${datadir}/)"
        if [ "${skip_train}" = false ]; then
            [ -n "${train_set}" ] || die "--corpus none (your own data dirs): name the training set with --train_set (a dir under ${datadir}/)"
            [ -n "${valid_set}" ] || die "--corpus none (your own data dirs): name the validation set with --valid_set (a dir under ${datadir}/)"
        fi ;;
    *) die "--corpus must be embedded, librispeech or none, not '${corpus}'" ;;
esac
# set_roles: "OPTION SET" per data set a stage works on (the training and validation sets
# only where something is trained).
set_roles() {
    local dset
    if [ "${skip_train}" = false ]; then
        echo "--train_set ${train_set}"
        echo "--valid_set ${valid_set}"
    fi
    for dset in ${test_sets}; do echo "--test_sets ${dset}"; done
}
# data_sets: "SET DUMP SCORED" per data set, once each: stage 3 formats the training and
# validation sets into ${dumpdir}/raw/org (stage 4 filters them into ${dumpdir}/raw), the
# test sets into ${dumpdir}/raw; SCORED: a test set (its transcripts are scored).
data_sets() {
    local dset dst scored
    for dset in $(set_roles | awk '!seen[$2]++ { print $2 }'); do
        dst="${dumpdir}/raw/${dset}"
        if [ "${skip_train}" = false ] && { [ "${dset}" = "${train_set}" ] || [ "${dset}" = "${valid_set}" ]; }; then
            dst="${dumpdir}/raw/org/${dset}"
        fi
        scored=false
        case " ${test_sets} " in *" ${dset} "*) scored=true ;; esac
        echo "${dset} ${dst} ${scored}"
    done
}
while read -r option dset; do
    [ "$(wc -w <<< "${dset}")" -le 1 ] || die "${option}: one set, not '${dset}'"
    [[ "${dset}" =~ ^[A-Za-z0-9_.+-]+$ ]] && [[ "${dset}" != .* ]] \
        || die "${option} '${dset}': a set is a directory name under ${datadir}/ (letters, digits, _ . + -)"
    case "${dset}" in org|token_list) die "${option} ${dset}: the recipe's own name (${dumpdir}/raw/org, ${datadir}/token_list); rename that dir" ;; esac
    if [ "${corpus}" != none ]; then
        case " ${corpus_sets} " in
            *" ${dset} "*) ;;
            *) die "${option}: ${corpus} has no set '${dset}' (sets: ${corpus_sets}); your own dirs: --corpus none" ;;
        esac
    elif run_stage 1 || run_stage 3; then  # the stages that read ${datadir}
        [ -d "${datadir}/${dset}" ] || die "${option} ${dset}: no data dir ${datadir}/${dset} (a Kaldi dir with wav.scp, text, utt2spk)"
        for f in wav.scp text utt2spk; do
            [ -f "${datadir}/${dset}/${f}" ] || die "${option} ${dset}: ${datadir}/${dset} has no ${f} (a data dir needs wav.scp, text, utt2spk; segments is optional)"
        done
    fi
done < <(set_roles)

token_dir="${datadir}/token_list/${token_type}_${bpemode}${nbpe}"
bpemodel="${token_dir}/bpe.model"
tokens_tag=${token_type}${nbpe}
if [ "${token_type}" = char ]; then  # as asr.sh names them: data/token_list/char, asr_stats_raw_char
    token_dir="${datadir}/token_list/char" bpemodel=none tokens_tag=char
fi
token_list="${token_dir}/tokens.txt"
stats_dir="${expdir}/asr_stats_raw_${tokens_tag}"
asr_tag="$(basename "${asr_config}" .yaml)_raw_${tokens_tag}"
dense_dir="${expdir}/asr_${asr_tag}"
if [ -n "${pretrained}" ]; then
    # The model's own tokens, BPE model and config (network, frontend, normalisation).
    asr_tag="pretrained_$(basename "${pretrained%/}" .zip)"
    dense_dir="${expdir}/${asr_tag}"
    token_dir="${dense_dir}"
    bpemodel="${dense_dir}/bpe.model"
    token_list="${dense_dir}/tokens.txt"
    stats_dir="${expdir}/asr_stats_${asr_tag}"
    asr_config="${dense_dir}/config.yaml"
fi
control_dir="${dense_dir}_finetune"
dense_stage=11  # the stage that makes the dense model
[ -z "${pretrained}" ] || dense_stage=5
if [ "${skip_train}" = true ]; then
    # Nothing trained: the dense model alone is decoded and scored (no control, no compression).
    [ -n "${pretrained}" ] || [ -f "${dense_dir}/${inference_asr_model}" ] \
        || die "--skip_train true: no dense model ${dense_dir}/${inference_asr_model} to decode; give --pretrained MODEL, or train one first (without --skip_train)"
    dense_control=false
fi
# espnet2's own entry points, unless the model uses an encoder that pinch registers. They run
# under pinch.offline, which only refuses the downloads some imports attempt (g2p_en's NLTK data).
train_module=espnet2.bin.asr_train
inference_module=espnet2.bin.asr_inference
if grep -qs "^encoder: *hf_ssl" "${asr_config}"; then
    train_module=pinch.espnet.bin.asr_train
    inference_module=pinch.espnet.bin.asr_inference
fi
# tag_of CHECKPOINT: a decode dir's name, as asr.sh's inference_tag: the decoding config, the
# inference_args and the checkpoint decoded (a compressed run's baked model is its ${finetune_model}, baked).
tag_of() {
    echo "$(basename "${inference_config}" .yaml)$(sed -e 's/--/_/g' -e 's/[ |=/]//g' <<< "${inference_args}")_asr_model_$(basename "$1" .pth)"
}
dense_tag=$(tag_of "${inference_asr_model}")
finetune_tag=$(tag_of "${finetune_model}")

# What pending_runs needs: a run's row names its baked dir and descends from dense_model.
toolkit=espnet
dense_model="${dense_dir}/${inference_asr_model}"
system_of() { echo "$1/baked"; }
runs=  # stage 15 deploys every run
[ "${skip_train}" = true ] || runs=$(runs_of_stages 11 13)


train_data_opts=(
    --use_preprocessor true --token_type "${token_type}" --bpemodel "${bpemodel}"
    --token_list "${token_list}" --non_linguistic_symbols none --cleaner none --g2p none
    --train_data_path_and_name_and_type "${dumpdir}/raw/${train_set}/wav.scp,speech,sound"
    --train_data_path_and_name_and_type "${dumpdir}/raw/${train_set}/text,text,text"
    --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/wav.scp,speech,sound"
    --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/text,text,text"
)
shape_opts=(
    --train_shape_file "${stats_dir}/train/speech_shape"
    --train_shape_file "${stats_dir}/train/text_shape.${token_type}"
    --valid_shape_file "${stats_dir}/valid/speech_shape"
    --valid_shape_file "${stats_dir}/valid/text_shape.${token_type}"
    --fold_length 80000 --fold_length 150
)
if [ -z "${pretrained}" ]; then  # a pretrained model keeps its config's normalisation
    shape_opts+=(--normalize "${feats_normalize}")
    [ "${feats_normalize}" = global_mvn ] \
        && shape_opts+=(--normalize_conf "stats_file=${stats_dir}/train/feats_stats.npz")
fi

# train_asr DIR MODULE WHAT [OPTION ...]: one espnet2 training run on the recipe's data.
train_asr() {
    espnet_train "$1" "$2" "$3" "${train_data_opts[@]}" "${shape_opts[@]}" --config "${asr_config}" "${@:4}"
}


# The training settings of a held model (--pretrained) that a pass may change (record_overrides).
training_keys="optim optim_conf scheduler scheduler_conf max_epoch batch_type batch_size batch_bins
    accum_grad grad_clip num_workers patience keep_nbest_models seed use_amp specaug specaug_conf
    frontend_conf normalize normalize_conf"

# compress METHOD TARGET DIR: one compression run (stage 11).
compress() {
    local m=$1 t=$2 dir=$3 seed epochs t0=${SECONDS}
    need "${dense_dir}/${inference_asr_model}" "${dense_stage}"
    seed=$(run_seed "${dir}")
    epochs=$(run_epochs "${dir}")
    # shellcheck disable=SC2086
    train_asr "${dir}" pinch.espnet.bin.asr_train "compression ${m} ${t}" \
        --init_param "${dense_dir}/${inference_asr_model}" \
        --pruning_config "${pruning_conf_dir}/${m}.yaml" --pruning_conf "target_sparsity=${t}" \
        --pruning_conf "granularity=$(run_granularity "${dir}")" ${asr_args} ${finetune_args} ${compress_args} \
        ${seed:+--seed "${seed}"} ${epochs:+--max_epoch "${epochs}"}
    record_overrides "${asr_config}" "${dir}" "${training_keys}"
    log "Stage 11: ${dir} done in $(( SECONDS - t0 ))s"
}

# run_job: one job of stage 11 (in_jobs): the training of its line, METHOD TARGET DIR.
run_job() {
    local m t dir
    read -r m t dir <<< "$(job_line)"
    case "${m}" in
        # Plain espnet2: the dense model is an ordinary ESPnet model.
        # shellcheck disable=SC2086
        dense) train_asr "${dense_dir}" "${train_module}" "dense training" ${asr_args} ;;
        # shellcheck disable=SC2086
        dense_finetune) train_asr "${control_dir}" "${train_module}" "dense control" \
            --init_param "${dense_dir}/${inference_asr_model}" ${asr_args} ${finetune_args}
            record_overrides "${asr_config}" "${control_dir}" "${training_keys}" ;;
        *) compress "${m}" "${t}" "${dir}" ;;
    esac
}

if [ -n "${job}" ]; then
    run_job
    exit 0
fi

if run_stage 1 && [ "${corpus}" = none ]; then
    t0=${SECONDS}
    log "Stage 1: Your data dirs: checking $(data_sets | awk '{ printf "%s ", $1 }')under ${datadir}/"
    while read -r dset _ scored; do
        # One line naming the file at fault, and the option that named the set.
        msg=$(${python} local/check_data.py --dir "${datadir}/${dset}" --scored "${scored}" 2>&1) \
            || die "$(set_roles | awk -v s="${dset}" '$2 == s { print $1; exit }') ${dset}: ${msg#check_data: }"
        log "Stage 1: ${msg#check_data: }"
    done < <(data_sets)
    stage_time 1 "${t0}"
elif run_stage 1; then
    t0=${SECONDS}
    log "Stage 1: Data preparation (${corpus}) -> ${datadir}"
    prepare_data
    stage_time 1 "${t0}"
fi

if run_stage 3; then
    t0=${SECONDS}
    log "Stage 3: Format wav.scp: ${datadir}/ -> ${dumpdir}/raw/ (segments cut, commands run, into flac files)"
    while read -r dset dst scored; do
        done_or_redo "${dst}" 3 && continue
        need "${datadir}/${dset}/wav.scp" 1
        ${python} local/format_data.py --src "${datadir}/${dset}" --dst "${dst}" --scored "${scored}"
    done < <(data_sets)
    stage_time 3 "${t0}"
fi

if run_stage 4 && [ "${skip_train}" = true ]; then
    log "Stage 4: skipped: --skip_train true (nothing is trained)"
elif run_stage 4; then
    t0=${SECONDS}
    log "Stage 4: Remove long/short data: ${dumpdir}/raw/org -> ${dumpdir}/raw"
    espnet_filter 4
    stage_time 4 "${t0}"
fi

if run_stage 5 && [ -n "${pretrained}" ]; then
    t0=${SECONDS}
    log "Stage 5: Token list, BPE model and config of --pretrained ${pretrained} -> ${dense_dir}"
    if ! done_or_redo "${dense_dir}/${inference_asr_model}" 5; then
        mkdir -p "${expdir}/logs"
        ${python} -m pinch.espnet.bin.pretrained --pretrained "${pretrained}" --out_dir "${dense_dir}" \
            --model_name "${inference_asr_model}" > "${expdir}/logs/pretrained.log" 2>&1 \
            || failed "pretrained model" "${expdir}/logs/pretrained.log"
        tail -n 1 "${expdir}/logs/pretrained.log" >&2
    fi
    stage_time 5 "${t0}"
elif run_stage 5 && [ "${skip_train}" = true ]; then
    log "Stage 5: skipped: --skip_train true (the dense model's token list: ${token_list})"
elif run_stage 5; then
    t0=${SECONDS}
    log "Stage 5: Generate token_list from ${dumpdir}/raw/${train_set}/text using $([ "${token_type}" = char ] && echo characters || echo "${bpemode} (${nbpe})")"
    if [ "${token_type}" = char ] && ! done_or_redo "${token_list}" 5; then
        need "${dumpdir}/raw/${train_set}/text" 4
        tmp="${token_dir}.tmp"
        rm -rf "${tmp}" && mkdir -p "${tmp}"
        cut -f 2- -d " " "${dumpdir}/raw/${train_set}/text" > "${tmp}/train.txt"
        # As asr.sh: <blank> first (CTC blank id 0), <unk> second, <sos/eos> last; spaces as <space>.
        ${python} -m pinch.offline espnet2.bin.tokenize_text --token_type char \
            --input "${tmp}/train.txt" --output "${tmp}/tokens.txt" --write_vocabulary true \
            --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
        rm -rf "${token_dir}" && mv "${tmp}" "${token_dir}"
    elif ! done_or_redo "${token_list}" 5; then
        need "${dumpdir}/raw/${train_set}/text" 4
        tmp="${token_dir}.tmp"
        rm -rf "${tmp}" && mkdir -p "${tmp}"
        cut -f 2- -d " " "${dumpdir}/raw/${train_set}/text" > "${tmp}/train.txt"
        # From inside the dir: sentencepiece keeps its input and prefix paths in the model,
        # which a packed model (stage 14) must not carry.
        (cd "${tmp}" && ${python} -c 'import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], vocab_size=int(sys.argv[2]),
    model_type=sys.argv[3], model_prefix=sys.argv[4], character_coverage=1.0,
    input_sentence_size=100000000, minloglevel=2)' \
            train.txt "${nbpe}" "${bpemode}" bpe)
        # As asr.sh: <blank> first (CTC blank id 0), <unk> second, <sos/eos> last.
        ${python} -m pinch.offline espnet2.bin.tokenize_text --token_type bpe --bpemodel "${tmp}/bpe.model" \
            --input "${tmp}/train.txt" --output "${tmp}/tokens.txt" --write_vocabulary true \
            --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
        rm -rf "${token_dir}" && mv "${tmp}" "${token_dir}"
    fi
    stage_time 5 "${t0}"
fi

# skipped_stage STAGE: true (and says so) where --skip_train true leaves STAGE out.
skipped_stage() {
    run_stage "$1" && [ "${skip_train}" = true ] && log "Stage $1: skipped: --skip_train true (nothing is trained)"
}

if skipped_stage 10; then
    :
elif run_stage 10; then
    t0=${SECONDS}
    log "Stage 10: ASR collect stats: ${dumpdir}/raw/${train_set} -> ${stats_dir}"
    if ! done_or_redo "${stats_dir}/train/feats_stats.npz" 10; then
        need "${token_list}" 5
        need "${dumpdir}/raw/${valid_set}/wav.scp" 4
        espnet_collect_stats "${train_module}" wav.scp "${train_data_opts[@]}" --config "${asr_config}"
    fi
    stage_time 10 "${t0}"
fi

if skipped_stage 11; then
    :
elif run_stage 11; then
    t0=${SECONDS}
    if [ -n "${pretrained}" ]; then
        log "Stage 11: the dense model is --pretrained ${pretrained} (${dense_dir}, stage 5); no dense training"
    else
        log "Stage 11: ASR Training (dense): ${dense_dir}"
        if ! done_or_redo "${dense_dir}/${inference_asr_model}" 11; then
            need "${stats_dir}/train/feats_stats.npz" 10
            in_jobs "$(train_jobs)" "${train_nj}" 11 dense_training "dense - ${dense_dir}"
        fi
    fi
    # Compression is a training: one pass from the dense model per run (and the dense control).
    if [ -n "${runs}" ] || [ "${dense_control}" = true ]; then
        log "Stage 11: One-pass compression from ${dense_dir}/${inference_asr_model}: methods '${pruning}', targets '${targets}'$([ "${dense_control}" = true ] && echo ', and the dense control (fine-tuned without pruning)')"
        need "${dense_dir}/${inference_asr_model}" "${dense_stage}"
        in_jobs "$(train_jobs)" "${train_nj}" 11 training \
            "$(pending_trainings 11 "${control_dir}/${inference_asr_model}" "${inference_asr_model}")"  # written last
        log "Stage 11: Bake: masks into weights, plain ESPnet model dirs"
        espnet_bake 11 asr "${finetune_model}" 11 <<< "${runs}"
    fi
    stage_time 11 "${t0}"
fi

# model_dirs RUNS: "ROLE DIR CONFIG MODEL TAG" per model to decode: the dense model (ROLE
# dense), the dense control if asked for (dense_finetune), then the baked one of each of RUNS
# (compressed); TAG names its decode dirs.
model_dirs() {
    echo "dense ${dense_dir} ${dense_dir}/config.yaml ${dense_dir}/${inference_asr_model} ${dense_tag}"
    [ "${dense_control}" = true ] \
        && echo "dense_finetune ${control_dir} ${control_dir}/config.yaml ${control_dir}/${finetune_model} ${finetune_tag}"
    while read -r _ _ dir; do
        [ -z "${dir}" ] || echo "compressed ${dir}/baked ${dir}/baked/config.yaml ${dir}/baked/model.pth ${finetune_tag}"
    done <<< "$1"
}
# made_by ROLE: the stage that makes a model of model_dirs.
made_by() { if [ "$1" = dense ]; then echo "${dense_stage}"; else echo 11; fi; }

# As asr.sh: GPU decoding takes one GPU per job from cuda_cmd, CPU decoding one thread.
dec_cmd="${decode_cmd} --num_threads 1" dec_ngpu=0
[ "${gpu_inference}" = false ] || dec_cmd="${cuda_cmd} --gpu 1" dec_ngpu=1

# decode_model STAGE CONFIG MODEL DECODING_CONFIG DIR [ARG ...]: the test sets not yet decoded
# into DIR/<set>/ by espnet2 as asr.sh decodes them (the keys split into --inference_nj parts,
# one decoding job each by decode_cmd, outputs merged: single-threaded jobs use the cores better
# than one threaded job), but every set in the same jobs, their keys prefixed sN- and split
# apart after: a job loads espnet2 and the model once, not once per set (about 12 s of imports
# each). Its logs: DIR/logdir/asr_inference.JOB.log. ARGs go to espnet2's inference (--inference_args).
decode_model() {
    local stage=$1 config=$2 model=$3 decoding=$4 dir=$5 logdir=$5/logdir dset i=0 n_utts nj_dec job f outs=()
    shift 5
    for dset in ${test_sets}; do
        done_or_redo "${dir}/${dset}/text" "${stage}" || outs+=("${dset}")
    done
    [ ${#outs[@]} -gt 0 ] || return 0
    rm -rf "${logdir}" && mkdir -p "${logdir}"
    for dset in "${outs[@]}"; do
        need "${dumpdir}/raw/${dset}/wav.scp" 3
        rm -rf "${dir:?}/${dset}"  # a decode redone: its old scores go with it
        i=$((i + 1)) && tag_keys "${i}" "${dumpdir}/raw/${dset}/wav.scp" >> "${logdir}/wav.scp"
    done
    n_utts=$(wc -l < "${logdir}/wav.scp")
    nj_dec=$(( inference_nj < n_utts ? inference_nj : n_utts ))
    split -n "l/${nj_dec}" --numeric-suffixes=1 -a 3 "${logdir}/wav.scp" "${logdir}/keys."
    for job in $(seq 1 "${nj_dec}"); do
        mv "${logdir}/keys.$(printf %03d "${job}")" "${logdir}/keys.${job}.scp"
    done
    # shellcheck disable=SC2086
    ${dec_cmd} "JOB=1:${nj_dec}" "${logdir}/asr_inference.JOB.log" \
        ${python} -m pinch.offline "${inference_module}" --ngpu "${dec_ngpu}" --config "${decoding}" \
        --data_path_and_name_and_type "${logdir}/wav.scp,speech,sound" \
        --key_file "${logdir}/keys.JOB.scp" --asr_train_config "${config}" --asr_model_file "${model}" \
        --output_dir "${logdir}/output.JOB" "$@" || die "Stage ${stage}: decoding into ${dir} failed (named above)"
    for i in "${!outs[@]}"; do
        mkdir -p "${dir}/${outs[i]}"
        for f in token token_int score text; do
            for job in $(seq 1 "${nj_dec}"); do
                cat "${logdir}/output.${job}/1best_recog/${f}"
            done | untag_keys $((i + 1)) | LC_ALL=C sort -k1,1 > "${dir}/${outs[i]}/${f}.tmp"
        done
        for f in token token_int score text; do mv "${dir}/${outs[i]}/${f}.tmp" "${dir}/${outs[i]}/${f}"; done
        log "Stage ${stage}: ${dir}/${outs[i]}/text"
    done
}

if run_stage 12; then
    t0=${SECONDS}
    log "Stage 12: Decoding with unmodified ${inference_module} (${inference_config}${inference_args:+ ${inference_args}}, $([ "${dec_ngpu}" = 1 ] && echo GPU || echo CPU))"
    while read -r role dir config model tag; do
        need "${model}" "$(made_by "${role}")"
        # shellcheck disable=SC2086
        decode_model 12 "${config}" "${model}" "${inference_config}" "${dir}/${tag}" ${inference_args}
    done < <(model_dirs "${runs}")
    stage_time 12 "${t0}"
fi

if run_stage 13; then
    t0=${SECONDS}
    log "Stage 13: Scoring (sclite), MAPSSWE vs the dense model, RESULTS.md, results table"
    # The data, for the results table (corpus=NAME: what pinch compare --corpus selects by).
    data_notes="corpus=${corpus}"
    if [ "${corpus}" = none ]; then
        data_notes="corpus=own, data ${datadir}/"
        [ "${skip_train}" = true ] || data_notes+=", train ${train_set}, valid ${valid_set}"
    fi
    [ "${skip_train}" = false ] || data_notes+=", nothing trained (--skip_train true)"
    # References of the MAPSSWE test: NAME:DECODE_DIR each.
    references=("dense:${dense_dir}/${dense_tag}")
    [ "${dense_control}" = true ] && references+=("dense_finetune:${control_dir}/${finetune_tag}")
    while read -r role dir config model tag; do
        for dset in ${test_sets}; do
            out="${dir}/${tag}/${dset}"
            need "${out}/text" 12
            tests=()  # compressed models only: MAPSSWE against each reference
            if [ "${role}" = compressed ]; then
                for ref in "${references[@]}"; do
                    need "${ref#*:}/${dset}/text" 12
                    tests+=("${ref%%:*}:${ref#*:}/${dset}/text")
                done
            fi
            score_set 13 "${dumpdir}/raw/${dset}/text" "${out}/text" "${out}" "${tests[@]}"
        done
        # RESULTS.md is refreshed when the scores add something (a later --dense_control
        # adds its reference); the results table row is appended only once per model dir.
        method=dense notes="${data_notes}" seed= epochs=
        [ "${role}" = compressed ] && seed=$(run_seed "${dir%/baked}") epochs=$(run_epochs "${dir%/baked}")
        # the model by its file name (a machine's path does not belong in a results table)
        [ "${role}" = dense ] && [ -n "${pretrained}" ] && notes+=", pretrained $(basename "${pretrained}")"
        [ "${role}" = dense_finetune ] && method=dense_finetune notes+=", ${finetune_args}"
        ${python} local/show_asr_result.py --model_dir "${dir}" --inference_tag "${tag}" \
            --test_sets "${test_sets}" --config "${config}" --model_file "${model}" \
            --results_table "${results_table}" --overwrite "${overwrite}" \
            --method "${method}" --notes "${notes}" --dense_model "${dense_model}" --data_dir "${dumpdir}/raw" \
            ${seed:+--seed "${seed}"} ${epochs:+--epochs "${epochs}"}
    done < <(model_dirs "${runs}")
    # The recipe-level RESULTS.md: every model of this recipe scored so far (a sweep's earlier calls too).
    scored=()
    while read -r _ dir _; do [ ! -f "${dir}/RESULTS.md" ] || scored+=("${dir}"); done < <(model_dirs "$(compressed_runs)")
    ${python} local/collect_results.py --out "${expdir}/RESULTS.md" "${scored[@]}" >&2
    stage_time 13 "${t0}"
fi

if skipped_stage 14; then
    :
elif run_stage 14; then
    t0=${SECONDS}
    log "Stage 14: Packing: each compressed model with espnet2's packer, in espnet_model_zoo's layout, with a model card"
    command="./run.sh$(printf ' %q' "${recipe_args[@]}")"  # for the card (the packer strips machine paths)
    deploy=()
    [ ! -f "${expdir}/DEPLOY.json" ] || deploy=(--deploy_json "${expdir}/DEPLOY.json")
    while read -r role dir config model tag; do
        [ "${role}" = compressed ] || continue  # the dense model and the control are references
        zip="${dir}/packed/$(basename "${dir%/baked}").zip"
        done_or_redo "${zip}" 14 && continue
        need "${model}" 11
        need "${dir}/${tag}/${test_sets%% *}/score_wer/result.json" 13
        # shellcheck disable=SC2086
        ${python} -m pinch.espnet.bin.pack --asr_train_config "${config}" --asr_model_file "${model}" \
            --inference_config "${inference_config}" --inference_tag "${tag}" --test_sets ${test_sets} \
            --command "${command}" "${deploy[@]}" --outpath "${zip}" > "${dir}/pack.log" 2>&1 \
            || failed "packing" "${dir}/pack.log"
        # What a user downloads: the same members deflated (espnet2's packer stores them), which
        # espnet2's unpack reads as it is; it shrinks with the zeros.
        ${python} -m pinch.deploy.download --out "${dir}/packed/download/$(basename "${zip}")" "${zip}" \
            >> "${dir}/pack.log" 2>&1 || failed "download form" "${dir}/pack.log"
        log "Stage 14: ${zip} ($(du -k "${zip}" | cut -f1) kB; deflated for download: $(du -k "${dir}/packed/download/$(basename "${zip}")" | cut -f1) kB)"
    done < <(model_dirs "${runs}")
    stage_time 14 "${t0}"
fi

if skipped_stage 15; then
    :
elif run_stage 15; then
    t0=${SECONDS}
    # The forms decode the encoder + CTC by espnet2's CTC prefix search, beam 1
    # (conf/decode_ctc.yaml): they are scored against the dense PyTorch model decoded by that
    # same rule, stage 12's decode where it is the rule, else one made here.
    deploy_decoding=conf/decode_ctc.yaml deploy_ref=${dense_tag}
    if [ -n "${inference_args}" ] || ! cmp -s "${inference_config}" "${deploy_decoding}"; then
        deploy_ref="$(basename "${deploy_decoding}" .yaml)_asr_model_$(basename "${inference_asr_model}" .pth)"
    fi
    log "Stage 15: Deploy: ONNX fp32, int8 and static int8 (calibrated on ${valid_set}) of the encoder + CTC of the dense and compressed models, decoded by onnxruntime, scored vs the dense PyTorch model decoded the same way (${dense_dir}/${deploy_ref})"
    need "${dense_model}" "${dense_stage}"
    decode_model 15 "${dense_dir}/config.yaml" "${dense_model}" "${deploy_decoding}" "${dense_dir}/${deploy_ref}"
    deployed=()
    mkdir -p "${expdir}/logs"
    while read -r role dir config model _; do
        [ "${role}" = dense_finetune ] && continue  # a training reference, not a deployed model
        onnx="${dir}/onnx"
        if ! done_or_redo "${onnx}/model.int8_static.onnx" 15; then
            # A structured run deploys shrunk (from its gated checkpoint), every other as decoded.
            if [ "${role}" = compressed ] && [ "$(run_granularity "${dir%/baked}")" = structured ]; then
                run_dir=${dir%/baked}
                src=(--asr_train_config "${run_dir}/config.yaml" --asr_model_file "${run_dir}/${finetune_model}" --shrink)
            else
                src=(--asr_train_config "${config}" --asr_model_file "${model}")
            fi
            need "${src[3]}" "$(made_by "${role}")"
            mkdir -p "${onnx}"
            ${python} -m pinch.espnet.bin.export_onnx "${src[@]}" --out_dir "${onnx}" \
                --calibration_scp "${dumpdir}/raw/${valid_set}/wav.scp" > "${onnx}/export.log" 2>&1 \
                || failed "ONNX export" "${onnx}/export.log"
            grep '^pinch.espnet:' "${onnx}/export.log" >&2
        fi
        # One process per model decodes every form and set still missing.
        jobs=()
        for form in fp32 int8 int8_static; do
            file="${onnx}/model.${form}.onnx"
            [ "${form}" = fp32 ] && file="${onnx}/model.onnx"
            for dset in ${test_sets}; do
                text="${onnx}/${form}_onnxruntime/decode_${dset}/text"
                done_or_redo "${text}" 15 || jobs+=(--decode "${file}" "${dumpdir}/raw/${dset}/wav.scp" "${text}")
            done
        done
        if [ ${#jobs[@]} -gt 0 ]; then
            ${python} -m pinch.espnet.bin.onnx_decode --tokens "${onnx}/tokens.txt" "${jobs[@]}" \
                > "${onnx}/decode.log" 2>&1 || failed "onnxruntime decoding" "${onnx}/decode.log"
        fi
        for form in fp32 int8 int8_static; do
            for dset in ${test_sets}; do
                out="${onnx}/${form}_onnxruntime/decode_${dset}"
                score_set 15 "${dumpdir}/raw/${dset}/text" "${out}/text" "${out}" \
                    "dense:${dense_dir}/${deploy_ref}/${dset}/text"
            done
        done
        deployed+=("${dir}")
    done < <(model_dirs "$(compressed_runs)")
    ${python} -m pinch.deploy.report --model_dirs "${deployed[@]}" --runtimes onnxruntime \
        --test_sets ${test_sets} --out "${expdir}/DEPLOY.md" \
        --reference "the dense PyTorch model decoded as the forms are, by espnet2's CTC prefix search with beam 1 (${deploy_ref})" \
        > "${expdir}/logs/deploy_results.log" 2>&1 \
        || failed "deployment table" "${expdir}/logs/deploy_results.log"
    log "Stage 15: deployment table -> ${expdir}/DEPLOY.md"
    stage_time 15 "${t0}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
