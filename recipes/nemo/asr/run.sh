#!/usr/bin/env bash
# One-pass compression of a NeMo ASR model with pinch, in the stage style of the ESPnet recipe.
#
#  1 data preparation (Kaldi dirs + NeMo manifests)   5 bake: plain NeMo .nemo per compressed run
#  2 sentencepiece tokenizer (NeMo's builder)          6 transcription with NeMo's transcribe()
#  3 dense training (Conformer-CTC BPE)                7 sclite scoring, MAPSSWE vs dense, results table
#  4 one-pass compression from the dense .nemo          8 ESPnet and NeMo results side by side
#    (and the dense control: the same pass without pruning)
#  9 deploy: ONNX fp32, int8 and static int8 (calibrated on the dev set) of the dense and compressed models
#    (structured runs shrunk; a transducer as sherpa-onnx's encoder, decoder and joiner), decoded
#    by onnxruntime and sherpa-onnx, scored vs the dense model, DEPLOY.md with size and latency
#   ./run.sh                                   # embedded corpus, sspg at 65%
#   ./run.sh --stage 4 --sweep "0.5 0.65 0.8" --pruning "sspg ump"
#   ./run.sh --stage 4 --stop_stage 7 --train_nj 2 --sweep "0.5 0.65 0.8 0.9" \
#       --pruning "sspg sspg_structured ump global_magnitude gmp imp l1"   # the evidence sweep
#   ./run.sh --corpus librispeech --librispeech_dir /data/LibriSpeech
#   ./run.sh --pretrained /models/parakeet-ctc.nemo --train_manifest train.json --val_manifest dev.json \
#       --test_manifests "test_a.json test_b.json"   # compress a model you hold on your data (no stages 2-3)
#   ./run.sh --pretrained /models/parakeet-ctc.nemo --skip_train true --test_manifests "test_a.json"
#                                              # transcribe and score it only, nothing trained
#   ./run.sh --stage 4 --granularity structured     # whole units, heads, conv channels: real speed
# Every stage skips work whose outputs are complete; --overwrite true redoes it.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../../utils/recipe_lib.sh"

# General configuration
stage=1                 # First stage to run.
stop_stage=9            # Last stage to run.
python=python3          # Python with pinch and nemo_toolkit[asr] installed.
overwrite=false         # Redo stages whose results already exist.
datadir=data            # Kaldi-style data dirs with manifest.json per split.
expdir=exp              # Models, transcripts, scores, logs.

# Data: NeMo manifests (JSON lines: audio_filepath, duration, text; an optional offset reads the
# segment [offset, offset + duration) of a longer recording), yours or a corpus's. A relative
# audio_filepath is relative to its manifest's folder, as NeMo reads it; wav, flac, any format
# soundfile reads. A test set's name (decode_<name>, scores, the results row) is its manifest's
# file stem, or its folder's name for a manifest.json. Texts are scored as written.
train_manifest=         # Your training data (dense training, the compression pass).
val_manifest=           # Your validation data.
test_manifests=         # Your test sets, e.g. "test_a.json other/test_b.json".
corpus=                 # Or a corpus whose manifests stage 1 makes: embedded | librispeech
                        # (unset: embedded, unless --pretrained or your manifests are given).
librispeech_dir=        # LibriSpeech root (with train-clean-100/, test-clean/, ...).
size=default            # Embedded corpus size: default | tiny.
seed=0                  # Embedded corpus generator seed (and training seed).

# Tokenizer
vocab_size=64           # 64 learnt faster than 128 on the embedded corpus.
tokenizer_type=unigram  # unigram | bpe (sentencepiece model type)

# Training, compression, transcription
pretrained=             # A NeMo ASR .nemo to compress instead of training one (stages 2-3 skipped;
                        # its own tokenizer is used). Name its data: your manifests or --corpus.
                        # Its pass keeps its own loaders, optimizer and scheduler (keep_model_config,
                        # see --compress_config); each run's finetune_overrides.yaml lists what changed.
skip_train=false        # true (with --pretrained): transcribe and score that model on the test sets;
                        # nothing trained (no dense control, no compression: stages 4, 5 and 9 skipped).
config_dir=../../../conf/nemo/asr  # Folder of the NeMo Hydra configs.
train_config=conformer_ctc_bpe          # Hydra config name (dense training).
compress_config=conformer_ctc_bpe_sspg  # Hydra config name (compression; with --pretrained only its data, lr, pruning, epochs).
                        # With --pretrained the pass runs with keep_model_config=true: the held model's own
                        # train_ds, validation_ds and optim, but the manifests, model.optim.lr (the config's
                        # 1.5e-3; --finetune_args "model.optim.lr=..."), the pruning and trainer.max_epochs.
train_args=             # Extra Hydra overrides of dense training, e.g. "trainer.max_epochs=3".
finetune_args=          # Extra Hydra overrides of the compression pass, dense control included.
compress_args=          # Extra Hydra overrides of the pruned runs only, e.g. "model.pruning.reach_at=0.2".
# Also fine-tune the dense model with the compression config and no pruning
# (${dense_dir}_finetune): "lossless" is then judged against a dense model trained as long.
dense_control=true
pruning=sspg            # Method(s): a preset ${pruning_conf_dir}/<method>.yaml each.
target_sparsity=0.65    # Share of the gated weights to prune (0..1).
sweep=                  # Several targets, e.g. "0.5 0.65 0.8" (replaces target_sparsity).
compress_seeds=         # Seeds of the compression runs, e.g. "1 2" (runs get a _seedN suffix).
compress_epochs=        # Longer compression passes, e.g. "4 8" epochs (runs get an _epN suffix; the
                        # pruning schedules stretch with them): the cost of reaching a WER.
train_nj=1              # Trainings at once (stages 3-4; locally the cores are shared out as torch threads).
nj=1                    # Transcription jobs at once (stage 6).
ngpu=0                  # GPUs per training (0: CPU): trainer.accelerator=gpu, trainer.devices; Slurm jobs get --gpu N; stage 6 decodes on GPU 0.
# structured (sspg): prune whole FFN units, attention heads and conv channels; the runs get a
# _structured suffix, and stage 9 deploys them shrunk (the groups removed). A preset can ask
# for it itself (sspg_structured).
granularity=unstructured
pruning_conf_dir=../../../conf/pruning  # Folder of the pruning presets (<method>.yaml).
batch_size=32           # Transcription batch size.
# Stage 9: runtimes that decode the exported ONNX forms (fp32, int8, static int8) of every model.
deploy_runtimes="onnxruntime sherpa-onnx"
results_table=../../../exp/results  # Shared results table (append-only).

# Jobs (cmd.sh): the trainings of stages 3-4 and the transcriptions of stage 6.
cmd_backend=local       # local: this machine | slurm: sbatch job arrays
slurm_conf=../../../conf/slurm.conf  # Partition, time, memory, CPUs, GPUs per job (slurm).
# Data-parallel training (slurm): each training job gets num_nodes x nproc_per_node processes
# (srun tasks; Lightning's SLURMEnvironment, trainer.num_nodes and trainer.devices set to match).
num_nodes=1
nproc_per_node=1        # Training processes per node (slurm; one GPU each with --ngpu).
job=                    # (Set by the recipe for its own jobs: LIST:N, the work of line N of LIST.)

help_message="Usage: $0 [--option value] ...  (every option below; --help lists them)"

parse_options "$@"

# Paths below are relative to the recipe directory.
cd "$(dirname "$0")"
config_dir="$(cd "${config_dir}" 2>/dev/null && pwd)" || die "--config_dir: no such directory"

check_common_options
{ is_count "${vocab_size}" && [ "${vocab_size}" -gt 0 ]; } || die "--vocab_size must be a positive integer, not '${vocab_size}'"
{ is_count "${batch_size}" && [ "${batch_size}" -gt 0 ]; } || die "--batch_size must be a positive integer, not '${batch_size}'"
is_bool "${dense_control}" || die "--dense_control must be true or false, not '${dense_control}'"
is_bool "${skip_train}" || die "--skip_train must be true or false, not '${skip_train}'"
if [ -n "${pretrained}" ]; then
    [ -f "${pretrained}" ] || die "--pretrained ${pretrained}: no such .nemo file"
elif [ "${skip_train}" = true ]; then
    die "--skip_train true needs --pretrained MODEL.nemo: the model to transcribe and score"
fi
check_sweep_options
check_job_options
. ./cmd.sh
for c in "${train_config}" "${compress_config}"; do
    [ -f "${config_dir}/${c}.yaml" ] || die "config ${config_dir}/${c}.yaml not found"
done

# The data: your manifests, or a corpus's (stage 1 writes them to ${datadir}/<set>/manifest.json).
if [ -n "${train_manifest}${val_manifest}${test_manifests}" ]; then
    [ -z "${corpus}" ] || die "--corpus ${corpus} with --train_manifest/--val_manifest/--test_manifests: give your manifests or a corpus, not both"
    [ -n "${test_manifests}" ] || die "--test_manifests: missing: your test sets' manifests (\"a.json b.json\"), which every run scores"
    if [ "${skip_train}" = false ]; then
        for opt in train_manifest val_manifest; do
            [ -n "${!opt}" ] || die "--${opt}: missing: training on your data needs --train_manifest, --val_manifest and --test_manifests (with --pretrained, --skip_train true only transcribes --test_manifests)"
        done
    fi
    corpus=manifests
elif [ -z "${corpus}" ] && [ -n "${pretrained}" ]; then
    die "--pretrained ${pretrained}: name its data: --train_manifest TRAIN.json --val_manifest VAL.json --test_manifests \"TEST.json ...\" (your NeMo manifests; --skip_train true needs only --test_manifests), or --corpus embedded (the synthetic demo corpus)"
fi
corpus=${corpus:-embedded}
declare -A test_manifest  # test set name -> its manifest
case "${corpus}" in
    embedded)
        train_set=train; valid_set=dev; test_sets="test_clean test_other" ;;
    librispeech)
        [ -n "${librispeech_dir}" ] || die "--corpus librispeech needs --librispeech_dir DIR"
        [ -d "${librispeech_dir}" ] || die "--librispeech_dir ${librispeech_dir}: no such directory"
        train_set=train_clean_100; valid_set=dev_clean
        test_sets="dev_clean dev_other test_clean test_other" ;;
    manifests) ;;
    *) die "--corpus must be embedded or librispeech, not '${corpus}'" ;;
esac
if [ "${corpus}" = manifests ]; then
    # Checked up front (not again in the recipe's own jobs): each line a JSON object with
    # audio_filepath, duration and text, every audio file there; an error names the line.
    if [ -z "${job}" ]; then
        for opt in train_manifest val_manifest test_manifests; do
            [ -n "${!opt}" ] || continue
            # shellcheck disable=SC2086
            checked=$(${python} -m pinch.data.manifest check ${!opt} 2>&1) \
                || die "--${opt} ${checked#pinch.data.manifest: error: }"
            log "--${opt} ${checked//$'\n'/; }"
        done
    fi
    test_sets=
    for m in ${test_manifests}; do
        dset=$(manifest_set_name "${m}")
        [ -z "${test_manifest[${dset}]:-}" ] \
            || die "--test_manifests: ${test_manifest[${dset}]} and ${m} both name the test set '${dset}': give each its own file stem"
        # Its references go to ${datadir}/<name>/text: never over a corpus's data dir of that name.
        if [ -f "${datadir}/${dset}/wav.scp" ] && ! [ "${m}" -ef "${datadir}/${dset}/manifest.json" ]; then
            die "--test_manifests ${m}: its test set '${dset}' is a data dir of ${datadir} already (${datadir}/${dset}/wav.scp): pass another --datadir"
        fi
        test_manifest[${dset}]=${m}
        test_sets+="${test_sets:+ }${dset}"
    done
    [ -z "${train_manifest}" ] || train_manifest=$(abspath "${train_manifest}")
    [ -z "${val_manifest}" ] || val_manifest=$(abspath "${val_manifest}")
else
    train_manifest="$(abspath "${datadir}")/${train_set}/manifest.json"
    val_manifest="$(abspath "${datadir}")/${valid_set}/manifest.json"
    for dset in ${test_sets}; do test_manifest[${dset}]="${datadir}/${dset}/manifest.json"; done
fi
if [ "${skip_train}" = true ]; then
    dense_control=false  # nothing is trained: the held model alone is transcribed and scored
fi

tokenizer_dir="${datadir}/tokenizer_spe_${tokenizer_type}_v${vocab_size}"
dense_dir="${expdir}/${train_config}_${tokenizer_type}${vocab_size}"
if [ -n "${pretrained}" ]; then
    dense_dir="${expdir}/pretrained_$(basename "${pretrained}" .nemo)"
fi
control_dir="${dense_dir}_finetune"


# Hydra overrides shared by dense training and compression (each adds its seed).
data_overrides=(
    "model.train_ds.manifest_filepath=${train_manifest}"
    "model.validation_ds.manifest_filepath=${val_manifest}"
)

# What pending_runs needs: a run's row names its dir and descends from dense_model.
toolkit=nemo
dense_model="${dense_dir}/model.nemo"
system_of() { basename "$1"; }
runs=  # --skip_train true: none
[ "${skip_train}" = true ] || runs=$(runs_of_stages 4 7)  # stage 9 deploys every run


# finetune DIR WHAT [OVERRIDE ...]: one pass of the compression config from the dense .nemo
# into DIR (the gated model's or the control's .nemo), logged to DIR/train.log; a run with a
# _seedN suffix trains with seed N, one with an _epN suffix for N epochs. A --pretrained model
# keeps its own training settings (keep_model_config=true); the keys its pass changed are in
# DIR/<the config's name>/finetune_overrides.yaml (exp_manager's log dir).
finetune() {
    local dir=$1 what=$2 run_seed epochs
    shift 2
    need "${dense_dir}/model.nemo" 3
    run_seed=$(run_seed "${dir}")
    epochs=$(run_epochs "${dir}")
    # shellcheck disable=SC2086
    nemo_train "${dir}" "${what}" "${compress_config}" "${data_overrides[@]}" "seed=${run_seed:-${seed}}" \
        "init_from_nemo_model=$(abspath "${dense_dir}")/model.nemo" ${pretrained:+"++keep_model_config=true"} \
        ${finetune_args} ${epochs:+"trainer.max_epochs=${epochs}"} "$@"
}

# compress METHOD TARGET DIR: one compression run (stage 4).
compress() {
    local m=$1 t=$2 dir=$3 t0=${SECONDS}
    finetune "${dir}" "compression ${m} ${t}" \
        "pruning_config=$(abspath "${pruning_conf_dir}")/${m}.yaml" "model.pruning.target_sparsity=${t}" \
        "output_nemo=$(abspath "${dir}")/gated.nemo" "model.pruning.granularity=$(run_granularity "${dir}")" ${compress_args}
    log "Stage 4: ${dir} done in $(( SECONDS - t0 ))s"
}

# transcribe DIR: DIR/model.nemo's transcripts of every test set still missing (stage 6), in one
# process: NeMo's import and the model load are paid once. With --ngpu N > 0 on GPU 0 (the
# job asks for one), else on the CPU; each model with the decoding its config names.
transcribe() {
    local dir=$1 dset sets=()
    for dset in ${test_sets}; do
        done_or_redo "${dir}/decode_${dset}/hyp.txt" 6 && continue
        need "${test_manifest[${dset}]}" 1
        mkdir -p "${dir}/decode_${dset}"
        sets+=(--set "${test_manifest[${dset}]}" "${dir}/decode_${dset}/hyp.txt")
    done
    [ ${#sets[@]} -gt 0 ] || return 0
    ${python} -m pinch.nemo.bin.transcribe --model "${dir}/model.nemo" "${sets[@]}" \
        --batch_size "${batch_size}" --cuda "$([ "${ngpu}" -gt 0 ] && echo 0 || echo -1)" \
        > "${dir}/transcribe.log" 2>&1 \
        || failed "transcription" "${dir}/transcribe.log"
    grep '^pinch.nemo:' "${dir}/transcribe.log" >&2
}

# run_job: one job of stages 3, 4 or 6 (in_jobs): the work of its line, METHOD TARGET DIR.
run_job() {
    local m t dir
    read -r m t dir <<< "$(job_line)"
    case "${m}" in
        # Plain NeMo: the dense model is an ordinary EncDecCTCModelBPE.
        # shellcheck disable=SC2086
        dense) nemo_train "${dense_dir}" "dense training" "${train_config}" "${data_overrides[@]}" "seed=${seed}" \
            "model.tokenizer.dir=$(abspath "${tokenizer_dir}")" "output_nemo=$(abspath "${dense_dir}")/model.nemo" \
            ${train_args} ;;
        dense_finetune) finetune "${control_dir}" "dense control" pruning_config=null \
            "output_nemo=$(abspath "${control_dir}")/model.nemo" ;;
        transcribe) transcribe "${dir}" ;;
        *) compress "${m}" "${t}" "${dir}" ;;
    esac
}

if [ -n "${job}" ]; then
    run_job
    exit 0
fi

if run_stage 1 && [ "${corpus}" = manifests ]; then
    t0=${SECONDS}
    log "Stage 1: Your manifests: the references of the test sets (texts as written) -> ${datadir}/<set>/text"
    for dset in ${test_sets}; do
        m=${test_manifest[${dset}]}
        [ "${m}" -ef "${datadir}/${dset}/manifest.json" ] && [ -f "${datadir}/${dset}/text" ] && continue  # a data dir's own
        mkdir -p "${datadir}/${dset}"
        written=$(${python} -m pinch.data.manifest text "${m}" "${datadir}/${dset}/text" 2>&1) \
            || die "--test_manifests ${written#pinch.data.manifest: error: }"
    done
    stage_time 1 "${t0}"
elif run_stage 1; then
    t0=${SECONDS}
    log "Stage 1: Data preparation (${corpus}) -> ${datadir}"
    prepare_data
    stage_time 1 "${t0}"
fi

if run_stage 2 && [ -n "${pretrained}" ]; then
    log "Stage 2: skipped: --pretrained ${pretrained} brings its own tokenizer"
elif run_stage 2; then
    t0=${SECONDS}
    log "Stage 2: sentencepiece ${tokenizer_type} tokenizer (${vocab_size}) from ${train_manifest} -> ${tokenizer_dir}"
    if ! done_or_redo "${tokenizer_dir}/tokenizer.model" 2; then
        need "${train_manifest}" 1
        mkdir -p "${expdir}/logs"
        ${python} -m pinch.nemo.bin.tokenizer --manifest "${train_manifest}" \
            --out "${tokenizer_dir}" --vocab_size "${vocab_size}" --type "${tokenizer_type}" \
            > "${expdir}/logs/tokenizer.log" 2>&1 || failed "tokenizer" "${expdir}/logs/tokenizer.log"
    fi
    stage_time 2 "${t0}"
fi

if run_stage 3 && [ -n "${pretrained}" ]; then
    t0=${SECONDS}
    log "Stage 3: Pretrained model ${pretrained} as the dense model -> ${dense_dir}/model.nemo"
    if ! done_or_redo "${dense_dir}/model.nemo" 3; then
        mkdir -p "${expdir}/logs"
        ${python} -m pinch.nemo.bin.pretrained --nemo "${pretrained}" --dense_dir "${dense_dir}" \
            > "${expdir}/logs/pretrained.log" 2>&1 || failed "pretrained model" "${expdir}/logs/pretrained.log"
    fi
    stage_time 3 "${t0}"
elif run_stage 3; then
    t0=${SECONDS}
    log "Stage 3: Dense training (${train_config}) -> ${dense_dir}/model.nemo"
    if ! done_or_redo "${dense_dir}/model.nemo" 3; then
        need "${tokenizer_dir}/tokenizer.model" 2
        in_jobs "$(train_jobs)" "${train_nj}" 3 dense_training "dense - ${dense_dir}"
    fi
    stage_time 3 "${t0}"
fi

if run_stage 4 && [ "${skip_train}" = true ]; then
    log "Stage 4: skipped: --skip_train true (nothing trained)"
elif run_stage 4; then
    t0=${SECONDS}
    log "Stage 4: One-pass compression from ${dense_dir}/model.nemo: methods '${pruning}', targets '${targets}'$([ "${dense_control}" = true ] && echo ', and the dense control (the pass without pruning)')"
    need "${dense_dir}/model.nemo" 3
    in_jobs "$(train_jobs)" "${train_nj}" 4 training "$(pending_trainings 4 "${control_dir}/model.nemo" gated.nemo)"
    stage_time 4 "${t0}"
fi

if run_stage 5 && [ "${skip_train}" = true ]; then
    log "Stage 5: skipped: --skip_train true (nothing to bake)"
elif run_stage 5; then
    t0=${SECONDS}
    log "Stage 5: Bake: masks into weights, plain NeMo .nemo files"
    nemo_bake 5 <<< "${runs}"
    stage_time 5 "${t0}"
fi

# model_dirs RUNS: "DIR STAGE" per model to transcribe (STAGE writes its model.nemo): the dense
# model, the dense control if asked for, then the baked one of each of RUNS.
model_dirs() {
    echo "${dense_dir} 3"
    [ "${dense_control}" = true ] && echo "${control_dir} 4"
    while read -r _ _ dir; do [ -z "${dir}" ] || echo "${dir} 5"; done <<< "$1"
}

if run_stage 6; then
    t0=${SECONDS}
    log "Stage 6: Transcription of ${test_sets} with NeMo's ASRModel.restore_from + transcribe()"
    transcriptions=()
    while read -r dir made_by; do
        need "${dir}/model.nemo" "${made_by}"
        for dset in ${test_sets}; do
            if ! done_or_redo "${dir}/decode_${dset}/hyp.txt" 6; then
                transcriptions+=("transcribe - ${dir}")
                break
            fi
        done
    done < <(model_dirs "${runs}")
    decode_jobs=${decode_cmd}
    [ "${ngpu}" -eq 0 ] || decode_jobs="${cuda_cmd} --gpu 1"
    in_jobs "${decode_jobs}" "${nj}" 6 transcription "$(printf '%s\n' "${transcriptions[@]}")"
    stage_time 6 "${t0}"
fi

if run_stage 7; then
    t0=${SECONDS}
    log "Stage 7: Scoring (sclite), MAPSSWE vs the dense model and control, RESULTS.md, results table"
    # References of the MAPSSWE test: NAME:DIR each.
    references=("dense:${dense_dir}")
    [ "${dense_control}" = true ] && references+=("dense_finetune:${control_dir}")
    while read -r dir made_by; do
        for dset in ${test_sets}; do
            out="${dir}/decode_${dset}"
            need "${out}/hyp.txt" 6
            tests=()  # compressed models only: MAPSSWE against each reference
            if [ "${made_by}" = 5 ]; then
                for ref in "${references[@]}"; do
                    need "${ref#*:}/decode_${dset}/hyp.txt" 6
                    tests+=("${ref%%:*}:${ref#*:}/decode_${dset}/hyp.txt")
                done
            fi
            score_set 7 "${datadir}/${dset}/text" "${out}/hyp.txt" "${out}" "${tests[@]}"
        done
        method=dense notes= seed= epochs=
        [ "${made_by}" = 5 ] && seed=$(run_seed "${dir}") epochs=$(run_epochs "${dir}")
        # the model by its file name (a machine's path does not belong in a results table); its
        # weights by the row's dense_fingerprint
        [ "${made_by}" = 3 ] && [ -n "${pretrained}" ] && notes="pretrained $(basename "${pretrained}")"
        [ "${made_by}" = 4 ] && method=dense_finetune notes="the compression pass without pruning"
        ${python} local/show_results.py --model_dir "${dir}" --test_sets ${test_sets} \
            --corpus "${corpus}" --results_table "${results_table}" --overwrite "${overwrite}" \
            --method "${method}" --notes "${notes}" --dense_model "${dense_model}" \
            --data_dir "${datadir}" ${seed:+--seed "${seed}"} ${epochs:+--epochs "${epochs}"}
    done < <(model_dirs "${runs}")
    stage_time 7 "${t0}"
fi

if run_stage 8; then
    log "Stage 8: ESPnet and NeMo results of corpus ${corpus} side by side -> ${expdir}/compare_toolkits.md"
    ${python} -m pinch.scoring.side_by_side --table "${results_table}" --corpus "${corpus}" \
        --out "${expdir}/compare_toolkits.md" || die "side-by-side table failed"
fi

if run_stage 9 && [ "${skip_train}" = true ]; then
    log "Stage 9: skipped: --skip_train true (transcription and scoring only)"
elif run_stage 9; then
    t0=${SECONDS}
    log "Stage 9: Deploy: ONNX fp32, int8 and static int8 (calibrated on ${val_manifest}) of the dense and compressed models, decoded by ${deploy_runtimes}, scored vs the dense model"
    for rt in ${deploy_runtimes}; do
        case "${rt}" in onnxruntime|sherpa-onnx) ;; *) die "--deploy_runtimes: unknown runtime '${rt}'" ;; esac
    done
    deployed=()
    mkdir -p "${expdir}/logs"
    while read -r dir made_by; do
        [ "${made_by}" = 4 ] && continue  # the dense control is a training reference, not a deployed model
        onnx="${dir}/onnx"
        # A CTC model deploys as model*.onnx; a transducer (RNNT, TDT, a hybrid's RNNT head) as
        # encoder*.onnx with its decoder and joiner beside it, which onnx_transcribe finds.
        if ! done_or_redo "${onnx}/model.int8_static.onnx" 9 && ! done_or_redo "${onnx}/encoder.int8_static.onnx" 9; then
            # A structured run deploys shrunk (from its gated model), every other as saved.
            if [ "${made_by}" = 5 ] && [ "$(run_granularity "${dir}")" = structured ]; then
                need "${dir}/gated.nemo" 4
                src=(--model "${dir}/gated.nemo" --shrink)
            else
                need "${dir}/model.nemo" "${made_by}"
                src=(--model "${dir}/model.nemo")
            fi
            mkdir -p "${onnx}"
            ${python} -m pinch.nemo.bin.export_onnx "${src[@]}" --out_dir "${onnx}" \
                --calibration_dir "${val_manifest}" > "${onnx}/export.log" 2>&1 \
                || failed "ONNX export" "${onnx}/export.log"
            grep '^pinch.nemo:' "${onnx}/export.log" >&2
        fi
        if [ -f "${onnx}/encoder.onnx" ]; then graph=encoder; else graph=model; fi
        # One process per model decodes every form, runtime and set still missing.
        jobs=()
        for form in fp32 int8 int8_static; do
            file="${onnx}/${graph}.${form}.onnx"
            [ "${form}" = fp32 ] && file="${onnx}/${graph}.onnx"
            for rt in ${deploy_runtimes}; do
                for dset in ${test_sets}; do
                    hyp="${onnx}/${form}_${rt}/decode_${dset}/hyp.txt"
                    done_or_redo "${hyp}" 9 || jobs+=(--decode "${file}" "${rt}" "${test_manifest[${dset}]}" "${hyp}")
                done
            done
        done
        if [ ${#jobs[@]} -gt 0 ]; then
            ${python} -m pinch.nemo.bin.onnx_transcribe --tokens "${onnx}/tokens.txt" "${jobs[@]}" \
                > "${onnx}/transcribe.log" 2>&1 || failed "ONNX transcription" "${onnx}/transcribe.log"
        fi
        for form in fp32 int8 int8_static; do
            for rt in ${deploy_runtimes}; do
                for dset in ${test_sets}; do
                    out="${onnx}/${form}_${rt}/decode_${dset}"
                    need "${dense_dir}/decode_${dset}/hyp.txt" 6
                    score_set 9 "${datadir}/${dset}/text" "${out}/hyp.txt" "${out}" \
                        "dense:${dense_dir}/decode_${dset}/hyp.txt"
                done
            done
        done
        deployed+=("${dir}")
    done < <(model_dirs "$(compressed_runs)")
    ${python} -m pinch.deploy.report --model_dirs "${deployed[@]}" --runtimes ${deploy_runtimes} \
        --test_sets ${test_sets} --out "${expdir}/DEPLOY.md" \
        --reference "the dense model as stage 6 transcribed it in NeMo (its own decoding; the forms decode greedily)" \
        > "${expdir}/logs/deploy_results.log" 2>&1 || failed "deployment table" "${expdir}/logs/deploy_results.log"
    log "Stage 9: deployment table -> ${expdir}/DEPLOY.md"
    stage_time 9 "${t0}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
