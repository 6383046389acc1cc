#!/usr/bin/env bash
# Shell helpers shared by pinch's recipes (the part of Kaldi's utils/ they need, which no
# package ships): logging, --name value option parsing, and the checks of the options
# every recipe has. Source it at the top of a recipe, after defining its option variables.

# Messages name the recipe line that logged them, as egs2's scripts do.
_log_caller() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[2]##*/}:${BASH_LINENO[1]}:${FUNCNAME[2]}) $*" >&2
}
log() { _log_caller "$@"; }
die() { _log_caller "ERROR: $*"; exit 1; }

# recipe_options: the documented options, i.e. the variables a recipe assigns at the top
# of its file (before it calls parse_options), as egs2's scripts list theirs.
recipe_options() {
    awk '/^parse_options/ { exit } /^[a-z][a-z0-9_]*=/ { sub(/=.*/, ""); print }' "$0" \
        | grep -vx help_message
}

# recipe_help: the usage line, then every option with its default and its help: the comment
# on its line, else the comment lines just above it (a section's title, a short comment line
# after a blank one, left out), as asr.sh's --help lists its variables.
recipe_help() {
    echo "${help_message}"
    echo "Options (--name value):"
    awk '/^parse_options/ { exit }
         /^#/ { if (!(blank && NF <= 5 && !/[.:]/)) text = text " " substr($0, 2); blank = 0; next }
         { blank = ($0 ~ /^[ \t]*$/) }
         /^[a-z][a-z0-9_]*=/ && !/^help_message=/ {
             name = $0; sub(/=.*/, "", name)
             value = substr($0, length(name) + 2); help = ""
             if (match(value, /[ \t]+#/)) { help = substr(value, RSTART + RLENGTH); value = substr(value, 1, RSTART - 1) }
             if (help == "") help = text
             gsub(/^[ \t]+|[ \t]+$/, "", help); gsub(/[ \t]+/, " ", help)
             printf "  --%-22s %s\n", name " " (value == "" ? "\"\"" : value), help
         }
         !/^#/ { text = "" }' "$0"
}

parse_options() {
    # --name value for every documented option; anything else (an environment variable
    # such as --PATH included) is an error. The options are kept (recipe_args) for the
    # recipe's own jobs (in_jobs).
    local options
    recipe_args=("$@")
    options=" $(recipe_options | tr '\n' ' ') "
    while [ $# -gt 0 ]; do
        case "$1" in
            --help|-h) recipe_help; exit 0 ;;
            --*=*) die "use '--name value', not '$1'" ;;
            --*)
                local name="${1#--}"
                name="${name//-/_}"
                [ $# -ge 2 ] || die "option $1 needs a value"
                case "${options}" in *" ${name} "*) ;; *) die "unknown option $1 (see --help)" ;; esac
                printf -v "${name}" '%s' "$2"
                shift 2 ;;
            *) die "unexpected argument '$1' (options are --name value)" ;;
        esac
    done
}

# is_count VALUE: a non-negative integer.
is_count() { [[ "$1" =~ ^[0-9]+$ ]]; }

is_bool() { [ "$1" = true ] || [ "$1" = false ]; }

# Checks of overwrite, stage/stop_stage, the target sparsities and the pruning presets;
# sets `targets` (the sweep, or the single target).
check_common_options() {
    is_bool "${overwrite}" || die "--overwrite must be true or false, not '${overwrite}'"
    is_count "${stage}" && is_count "${stop_stage}" || die "--stage/--stop_stage must be integers"
    [ "${stage}" -le "${stop_stage}" ] \
        || die "--stage ${stage} is after --stop_stage ${stop_stage}: no stage would run"
    is_count "${seed}" || die "--seed must be a non-negative integer, not '${seed}'"
    targets="${sweep:-${target_sparsity}}"
    local t m
    for t in ${targets}; do
        # Checked again, with the same rule, by pinch.PruningConfig; failing here saves a stage.
        awk -v t="${t}" 'BEGIN { exit !(t ~ /^[0-9]*\.?[0-9]+$/ && t >= 0 && t < 1) }' \
            || die "target sparsity '${t}' must be a number in [0, 1)"
    done
    case "${granularity}" in
        unstructured|structured) ;;
        *) die "--granularity must be unstructured or structured, not '${granularity}'" ;;
    esac
    for m in ${pruning}; do
        [ -f "${pruning_conf_dir}/${m}.yaml" ] \
            || die "--pruning ${m}: no preset ${pruning_conf_dir}/${m}.yaml (have: $(cd "${pruning_conf_dir}" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' '))"
    done
}

# Checks of the sweep options (--train_nj, --compress_seeds, --compress_epochs) of the ASR recipes.
check_sweep_options() {
    { is_count "${train_nj}" && [ "${train_nj}" -gt 0 ]; } || die "--train_nj must be a positive integer, not '${train_nj}'"
    local s
    for s in ${compress_seeds}; do
        is_count "${s}" || die "--compress_seeds: '${s}' is not a non-negative integer"
    done
    for s in ${compress_epochs}; do
        { is_count "${s}" && [ "${s}" -gt 0 ]; } || die "--compress_epochs: '${s}' is not a positive integer"
    done
}

# failed WHAT LOG: stop, quoting the exception that ended the step: the log's last line,
# skipping the hint about HYDRA_FULL_ERROR with which Hydra ends its logs.
failed() {
    die "$1 failed: $(grep -v -e '^\s*$' -e HYDRA_FULL_ERROR "$2" 2>/dev/null | tail -n 1) (full log: $2)"
}

# attempt_start DIR / attempt_end DIR: a training run's wall time, one line per attempt in
# DIR/wall_time_s (the results table sums them). An attempt that was killed or failed is
# counted, when the next one starts, up to the last write of its DIR/train.log.
attempt_start() {
    if [ -f "$1/.attempt_start" ] && [ -f "$1/train.log" ]; then
        echo $(( $(stat -c %Y "$1/train.log") - $(cat "$1/.attempt_start") )) >> "$1/wall_time_s"
    fi
    date +%s > "$1/.attempt_start"
}
# start_training DIR / train_to_end DIR WHAT COMMAND...: one training attempt into DIR (emptied
# first with --overwrite true): COMMAND logged to DIR/train.log, its wall time added to
# DIR/wall_time_s and, where GNU time is installed, its peak resident memory (kB) to
# DIR/peak_rss_kb (a line per process); a failure stops the recipe quoting the log.
start_training() {
    [ "${overwrite}" = true ] && rm -rf "$1"
    mkdir -p "$1"
    attempt_start "$1"
}
train_to_end() {
    local dir=$1 what=$2
    shift 2
    [ -x /usr/bin/time ] && set -- /usr/bin/time -a -o "${dir}/peak_rss_kb" -f "%M" "$@"
    if [ "$(world_size)" -gt 1 ]; then
        [ -n "${SLURM_JOB_ID:-}" ] || die "${what}: $(world_size) training processes need a Slurm job (--cmd_backend slurm)"
        set -- srun --export=ALL --kill-on-bad-exit=1 --nodes "${num_nodes}" --ntasks "$(world_size)" \
            --ntasks-per-node "${nproc_per_node}" --cpus-per-task "${SLURM_CPUS_PER_TASK:-1}" "$@"
    fi
    "$@" >> "${dir}/train.log" 2>&1 || failed "${what}" "${dir}/train.log"
    attempt_end "${dir}"
}
attempt_end() {
    echo $(( $(date +%s) - $(cat "$1/.attempt_start") )) >> "$1/wall_time_s"
    rm -f "$1/.attempt_start"
}

# score_set STAGE REF_TEXT HYP OUT [NAME:REFERENCE_HYP ...]: sclite scores of HYP into
# OUT/score_wer (and OUT/score_cer/result.txt) and, per reference model, a MAPSSWE test of HYP against its hypotheses into
# OUT/mapsswe_vs_NAME; finished outputs are kept unless --overwrite true.
score_set() {
    local stage=$1 ref=$2 hyp=$3 out=$4 r name
    shift 4
    if ! done_or_redo "${out}/score_wer/result.json" "${stage}"; then
        ${python} -m pinch.scoring score --ref "${ref}" --hyp "${hyp}" --out "${out}/score_wer" \
            > "${out}/score.log" 2>&1 || failed "scoring" "${out}/score.log"
    fi
    # Where egs2's scripts (show_asr_result.sh) read sclite's summaries: score_{wer,cer}/result.txt.
    mkdir -p "${out}/score_cer"
    cp "${out}/score_wer/word.sys" "${out}/score_wer/result.txt"
    cp "${out}/score_wer/char.sys" "${out}/score_cer/result.txt"
    for r in "$@"; do
        name=${r%%:*}
        done_or_redo "${out}/mapsswe_vs_${name}/compare.json" "${stage}" && continue
        ${python} -m pinch.scoring compare --ref "${ref}" --hyp-a "${r#*:}" --hyp-b "${hyp}" \
            --name-a "${name}" --name-b pruned --out "${out}/mapsswe_vs_${name}" \
            > "${out}/compare_${name}.log" 2>&1 || failed "MAPSSWE" "${out}/compare_${name}.log"
    done
}

# tag_keys N SCP: SCP's lines, each key prefixed sN-: several sets decoded as one list, by one
# process that loads the toolkit and the model once; untag_keys N (a filter) takes set N's
# lines back out of such a list's outputs, the prefix removed.
tag_keys() { awk -v p="s$1-" '{ print p $0 }' "$2"; }
untag_keys() { awk -v p="s$1-" 'index($1, p) == 1 { print substr($0, length(p) + 1) }'; }

# espnet_transcribe STAGE RECIPE MODEL_DIR CONFIG LOG WAV_SCP OUT [WAV_SCP OUT ...]: an ESPnet ASR
# model's transcripts of each WAV_SCP in its OUT/text, by plain espnet2.bin.asr_inference on the
# CPU, run from RECIPE (the ESPnet ASR recipe: the paths in MODEL_DIR/config.yaml, MODEL_DIR and
# CONFIG are relative to it); MODEL_DIR holds config.yaml and valid.loss.ave.pth. The TTS recipes'
# ASR judges. One process for every set not yet transcribed (espnet2's import alone takes over
# 10 s): their utterances decoded as one list, each id prefixed with its set's number, LOG its log.
espnet_transcribe() {
    local stage=$1 recipe model_dir=$3 config=$4 log_file=$5 work i=0 scp out outs=()
    recipe=$(cd "$2" && pwd)
    shift 5
    work="${log_file%.log}.work"  # beside the log: a rerun starts it afresh
    rm -rf "${work}" && mkdir -p "${work}"
    while [ $# -ge 2 ]; do
        scp=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
        out=$(mkdir -p "$2" && cd "$2" && pwd)
        shift 2
        done_or_redo "${out}/text" "${stage}" && continue
        i=$((i + 1)) && outs+=("${out}")
        tag_keys "${i}" "${scp}" >> "${work}/wav.scp"
    done
    [ ${#outs[@]} -gt 0 ] || { rm -rf "${work}"; return 0; }
    (cd "${recipe}" && ${python} -m pinch.offline espnet2.bin.asr_inference --ngpu 0 \
        --config "${config}" --data_path_and_name_and_type "${work}/wav.scp,speech,sound" \
        --asr_train_config "${model_dir}/config.yaml" --asr_model_file "${model_dir}/valid.loss.ave.pth" \
        --output_dir "${work}/decode") > "${log_file}" 2>&1 || failed "ASR decoding" "${log_file}"
    for i in "${!outs[@]}"; do
        untag_keys $((i + 1)) < "${work}/decode/1best_recog/text" | LC_ALL=C sort > "${outs[i]}/text.tmp"
        mv "${outs[i]}/text.tmp" "${outs[i]}/text"
    done
    rm -rf "${work}"
}

# judge_set STAGE VOCAB_TEXT LM_TEXT WAV_SCP TEXT OUT [NAME:HYP ...]: the TTS judges that did
# not train on the corpus (pinch.scoring judge): pocketsphinx with the words of VOCAB_TEXT (every
# test sentence's) and a language model of LM_TEXT (the training text), and DNSMOS, into
# OUT/judges.json; MAPSSWE of its pocketsphinx hypotheses against each NAME's.
judge_set() {
    local stage=$1 vocab=$2 lm=$3 wav_scp=$4 text=$5 out=$6 compare=() r
    done_or_redo "${out}/judges.json" "${stage}" && return
    for r in "${@:7}"; do compare+=(--compare "${r}"); done
    mkdir -p "${out}"
    ${python} -m pinch.scoring judge --wav-scp "${wav_scp}" --text "${text}" --vocab-text "${vocab}" \
        --lm-text "${lm}" --out "${out}" "${compare[@]}" > "${out}/judge.log" 2>&1 || failed "judges" "${out}/judge.log"
}

# done_or_redo OUTPUT STAGE: true if OUTPUT is complete and must be kept (skip the work).
done_or_redo() {
    if [ -e "$1" ]; then
        if [ "${overwrite}" = true ]; then
            log "Stage $2: --overwrite true: redoing ${1}"
            return 1
        fi
        log "Stage $2: ${1} exists; skipping (pass --overwrite true to redo)"
        return 0
    fi
    return 1
}
# need FILE STAGE: stop with the stage that produces FILE when it is missing.
need() { [ -e "$1" ] || die "$1 is missing: run stage $2 first"; }
run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
stage_time() { log "Stage $1 finished in $(( SECONDS - $2 ))s"; }

# espnet_train DIR MODULE WHAT [OPTION ...]: one espnet2 training run into DIR, logged to
# DIR/train.log, timed in DIR/wall_time_s; --resume true: a killed run continues from its
# last epoch checkpoint, or starts over if the kill cut that checkpoint short (a checkpoint
# cut short is kept aside, not resumed from: espnet2's own entry points do not check).
# Several GPUs in one job (--ngpu N > 1, world_size 1): espnet2 spawns one process per GPU.
# Data-parallel (world_size > 1, each process under srun): espnet2's mode for an external
# launcher (--multiprocessing_distributed false), its rank, local rank and world size from
# Slurm's task variables (espnet2's own --dist_launcher slurm allows one task per node only), one
# GPU per process (nccl) or gloo on CPUs, and the rendezvous in a file of the run dir, as asr.sh's
# multi-node training.
espnet_train() {
    local dir=$1 module=$2 what=$3 launch=() gpus=${ngpu}
    shift 3
    start_training "${dir}"
    ${python} -m pinch.espnet.trainer "${dir}/checkpoint.pth" 2>> "${dir}/train.log"
    if [ "$(world_size)" -gt 1 ]; then
        rm -f "${dir}/.dist_init"  # a killed attempt's rendezvous file
        # shellcheck disable=SC2016
        launch=(bash -c 'RANK=${SLURM_PROCID} LOCAL_RANK=${SLURM_LOCALID} WORLD_SIZE=${SLURM_NTASKS} exec "$@"' rank)
        set -- "$@" --multiprocessing_distributed false \
            --dist_init_method "file://$(abspath "${dir}")/.dist_init"
        if [ "${ngpu}" -gt 0 ]; then gpus=1; else set -- "$@" --dist_backend gloo; fi  # gloo: CPU, as espnet2's launcher
    elif [ "${ngpu}" -gt 1 ]; then
        # One process per GPU, spawned by espnet2 itself, as asr.sh trains (not DataParallel).
        set -- "$@" --multiprocessing_distributed true
    fi
    train_to_end "${dir}" "${what}" "${launch[@]}" ${python} -m pinch.offline "${module}" --ngpu "${gpus}" \
        --resume true --output_dir "${dir}" "$@"
}

# espnet_bake STAGE TASK MODEL [MADE_BY] < RUNS: bake the MODEL (made by stage MADE_BY, default
# STAGE - 1) of every compression run (lines of
# compressed_runs) into RUN/baked, a plain ESPnet model dir, with the sparsity the pass reached:
# nothing is rescaled onto the target (in either toolkit), so a pass that fell short shows it.
# Magnitude methods take the zeros of their final epoch (--mask_from), which matters where MODEL
# is an average of epochs (their averaged weights are non-zero where any epoch's were).
espnet_bake() {
    local stage=$1 task=$2 model=$3 made_by=${4:-$(( $1 - 1 ))} m t dir exact
    while read -r m t dir; do
        [ -n "${dir}" ] || continue
        done_or_redo "${dir}/baked/model.pth" "${stage}" && continue
        need "${dir}/${model}" "${made_by}"
        exact=()
        grep -qE '^method: *sspg' "${pruning_conf_dir}/${m}.yaml" || exact=(--mask_from "${dir}/latest.pth")
        ${python} -m pinch.espnet.bin.bake --task "${task}" --train_config "${dir}/config.yaml" \
            --model_file "${dir}/${model}" --out_dir "${dir}/baked" \
            "${exact[@]}" --overwrite > "${dir}/bake.log" 2>&1 || failed "bake" "${dir}/bake.log"
        tail -n 1 "${dir}/bake.log" >&2
    done
}

# record_overrides CONFIG DIR KEYS: for a pass DIR of a held model (--pretrained) whose config
# is CONFIG, each change of its training settings KEYS (espnet2's names) is written to
# DIR/finetune_overrides.yaml (old -> new), so none goes unseen.
record_overrides() {
    [ -n "${pretrained}" ] || return 0
    # shellcheck disable=SC2086
    ${python} -m pinch.config_changes --old "$1" --new "$2/config.yaml" \
        --out "$2/finetune_overrides.yaml" --under $3 2>&1 | tail -n 1 >&2
}

# compressed_runs: "METHOD TARGET DIR" per compression run: every method, target, (with
# --compress_seeds) seed and (with --compress_epochs) length of the pass. A run is structured when
# --granularity structured asks for it or its preset says so (e.g. sspg_structured.yaml); its dir
# ends in _structured, a seeded one in _seedN, one of a pass of N epochs in _epN. A TTS recipe's
# --preset other than auto marks the dir too (preset_tag), before those.
compressed_runs() {
    local m t s e suffix
    for m in ${pruning}; do
        suffix=$(preset_tag)
        [ "$(preset_granularity "${m}")" = structured ] && suffix+=_structured
        for t in ${targets}; do
            for s in ${compress_seeds:-_}; do
                for e in ${compress_epochs:-_}; do
                    echo "${m} ${t} ${dense_dir}_${m}${t}${suffix}$([ "${s}" = _ ] || echo "_seed${s}")$([ "${e}" = _ ] || echo "_ep${e}")"
                done
            done
        done
    done
}

# preset_tag: the mark of a --preset other than auto (the TTS recipes' layers to gate), so that a
# run of the whole model sits beside the encoder's: "[tacotron2,tacotron2_decoder]" ->
# _tacotron2_tacotron2_decoder. Nothing for auto, or where a recipe has no --preset (ASR).
preset_tag() {
    [ "${preset:-auto}" = auto ] || sed -E -e 's/[^A-Za-z0-9_]+/_/g' -e 's/^_*/_/' -e 's/_+$//' <<< "${preset}"
}

# preset_granularity METHOD: structured if --granularity structured or the preset asks for it.
preset_granularity() {
    if [ "${granularity}" = structured ] \
        || grep -qE '^granularity: *structured' "${pruning_conf_dir}/$1.yaml"; then
        echo structured
    else
        echo unstructured
    fi
}

# run_granularity DIR / run_seed DIR / run_epochs DIR: what compressed_runs encoded in a run's
# dir name (suffixes in its order: _structured, _seedN, _epN).
run_granularity() {
    case "$1" in *_structured|*_structured_*) echo structured ;; *) echo unstructured ;; esac
}
run_seed() { sed -En 's/.*_seed([0-9]+)(_ep[0-9]+)?$/\1/p' <<< "$1"; }
run_epochs() { sed -En 's/.*_ep([0-9]+)$/\1/p' <<< "$1"; }

# pending_runs: the compressed_runs that the results table does not yet hold for this dense
# model (SYSTEM_OF DIR names a run's row): a sweep resumed on another machine, from the same
# dense model, redoes no finished run even where the run dirs are gone. --overwrite true: all.
pending_runs() {
    if [ "${overwrite}" = true ] || [ ! -f "${results_table}/results.json" ]; then
        compressed_runs
        return
    fi
    local m t dir recorded
    recorded=$(compressed_runs | while read -r _ _ dir; do system_of "${dir}"; done \
        | xargs -r ${python} -m pinch.scoring recorded --table "${results_table}" \
            --toolkit "${toolkit}" --dense "${dense_model}") \
        || die "cannot read the results table ${results_table}"
    while read -r m t dir; do
        if grep -qxF "$(system_of "${dir}")" <<< "${recorded}"; then
            log "${dir}: in ${results_table} for this dense model; skipping (pass --overwrite true to redo)"
        else
            echo "${m} ${t} ${dir}"
        fi
    done < <(compressed_runs)
}

# runs_of_stages FIRST LAST: the runs that stages FIRST..LAST (compression to scoring) work on:
# the pending ones where any of those stages runs, else all.
runs_of_stages() {
    if [ "${stage}" -le "$2" ] && [ "${stop_stage}" -ge "$1" ]; then
        pending_runs
    else
        compressed_runs
    fi
}

# in_jobs CMD AT_ONCE STAGE WHAT LINES: stage STAGE's work as jobs of CMD (cmd.sh's train_cmd or
# decode_cmd: on this machine or on Slurm), one per line of LINES, AT_ONCE at a time. Each job reruns
# this recipe with the same options for its line alone (--job LIST:N, answered by the recipe's
# run_job), logging to ${expdir}/logs/stageSTAGE_WHAT.N.log. The launcher prints each job's end
# with an estimate of the time left, and after the last one names every failed job and its log.
in_jobs() {
    local cmd=$1 at_once=$2 stage=$3 what=$4 lines=$5 n list
    n=$(grep -c . <<< "${lines}" || true)
    [ "${n}" -gt 0 ] || return 0
    mkdir -p "${expdir}/logs"
    list="${expdir}/logs/stage${stage}_${what}.list"
    grep . <<< "${lines}" > "${list}"
    log "Stage ${stage}: ${n} ${what} jobs (${cmd%% --*}; ${at_once} at a time; logs: ${expdir}/logs/stage${stage}_${what}.N.log)"
    # shellcheck disable=SC2086
    ${cmd} --max_jobs_run "${at_once}" "JOB=1:${n}" "${expdir}/logs/stage${stage}_${what}.JOB.log" \
        bash "${PWD}/$(basename "$0")" "${recipe_args[@]}" --stage "${stage}" --stop_stage "${stage}" \
        --job "${list}:JOB" || die "Stage ${stage}: ${what} jobs failed (named above)"
}

# pending_trainings STAGE CONTROL_MODEL RUN_MODEL: the lines of a compression stage's training
# jobs: the dense control (--dense_control true) unless CONTROL_MODEL exists, then each of
# ${runs} (METHOD TARGET DIR) whose DIR/RUN_MODEL does not. The control and the runs are
# independent; a finished one is kept (--overwrite true: redone).
pending_trainings() {
    local m t dir
    if [ "${dense_control}" = true ] && ! done_or_redo "$2" "$1"; then
        echo "dense_finetune - ${control_dir}"
    fi
    while read -r m t dir; do
        [ -n "${dir}" ] || continue
        done_or_redo "${dir}/$3" "$1" || echo "${m} ${t} ${dir}"
    done <<< "${runs}"
}

# job_line: the line of its list that this job (--job LIST:N) does.
job_line() {
    local list=${job%:*} n=${job##*:} line
    [ -f "${list}" ] && is_count "${n}" || die "--job ${job}: expected LIST:N with an existing LIST"
    line=$(sed -n "${n}p" "${list}")
    [ -n "${line}" ] || die "--job ${job}: ${list} has no line ${n}"
    echo "${line}"
}

# check_job_options: the values cmd.sh reads, and the processes of a training.
check_job_options() {
    case "${cmd_backend}" in
        local) ;;
        slurm) [ -f "${slurm_conf}" ] || die "--slurm_conf ${slurm_conf}: no such file" ;;
        *) die "--cmd_backend must be local or slurm, not '${cmd_backend}'" ;;
    esac
    local v
    for v in num_nodes nproc_per_node; do
        { is_count "${!v}" && [ "${!v}" -gt 0 ]; } || die "--${v} must be a positive integer, not '${!v}'"
    done
    is_count "${ngpu}" || die "--ngpu must be a non-negative integer, not '${ngpu}'"
    if [ "$(world_size)" -gt 1 ] && [ "${cmd_backend}" != slurm ]; then
        die "--num_nodes ${num_nodes} --nproc_per_node ${nproc_per_node}: data-parallel training runs in Slurm jobs (--cmd_backend slurm); with the local backend a training is one process"
    fi
    [ "${ngpu}" -eq 0 ] || [ "$(world_size)" -eq 1 ] || [ "${ngpu}" -eq "${nproc_per_node}" ] \
        || die "--ngpu ${ngpu} with --nproc_per_node ${nproc_per_node}: data-parallel training runs one process per GPU (--nproc_per_node ${ngpu})"
}

# Data-parallel training (--num_nodes x --nproc_per_node processes, Slurm jobs only): the
# training job asks for that many tasks (sbatch --nodes, --ntasks-per-node) and starts its
# training with srun, one process per task; each toolkit takes its rank from Slurm (Lightning's
# SLURMEnvironment; espnet2's distributed options, see espnet_train).
world_size() { echo $(( ${num_nodes:-1} * ${nproc_per_node:-1} )); }
# train_jobs: cmd.sh's command for the training jobs: cuda_cmd --gpu N with --ngpu N (GPUs per
# node), with the nodes and tasks of a data-parallel training.
train_jobs() {
    local cmd=${train_cmd}
    [ "${ngpu}" -eq 0 ] || cmd="${cuda_cmd} --gpu ${ngpu}"
    [ "$(world_size)" -eq 1 ] || cmd+=" --num_nodes ${num_nodes} --nproc_per_node ${nproc_per_node}"
    echo "${cmd}"
}

# Stage 1 of every recipe: pinch.data prepare into ${datadir}. The stamp names the corpus
# and, for the embedded one, the generator version, so a datadir is neither reused for
# another corpus nor trusted after the generator changed; the embedded corpus's stamp is the
# same in every recipe, so a TTS recipe reuses an ASR recipe's data dir.
prepare_data() {
    local stamp source
    case "${corpus}" in
        embedded|librispeech)
            stamp="corpus=${corpus} size=${size} seed=${seed} librispeech_dir=${librispeech_dir:-}" ;;
        ljspeech) stamp="corpus=ljspeech ljspeech_dir=${ljspeech_dir}" ;;
    esac
    [ "${corpus}" = embedded ] \
        && stamp+=" generator=$(${python} -c 'import pinch.data; print(pinch.data.GENERATOR_VERSION)')"
    if [ -f "${datadir}/.prepared" ] && [ "$(cat "${datadir}/.prepared")" = "${stamp}" ] \
        && [ "${overwrite}" = false ]; then
        log "Stage 1: ${datadir} already holds ${stamp}; skipping"
        return
    fi
    if [ -f "${datadir}/.prepared" ] && [ "${overwrite}" = false ]; then
        die "${datadir} holds '$(cat "${datadir}/.prepared")', not '${stamp}': pass --overwrite true or another --datadir"
    fi
    mkdir -p "${expdir}/logs"
    case "${corpus}" in
        embedded) source=(--corpus embedded --size "${size}" --seed "${seed}") ;;
        librispeech) source=(--corpus librispeech --src "${librispeech_dir}") ;;
        ljspeech) source=(--corpus ljspeech --src "${ljspeech_dir}") ;;
    esac
    ${python} -m pinch.data prepare "${source[@]}" --out "${datadir}" > "${expdir}/logs/data_prep.log" 2>&1 \
        || failed "data preparation" "${expdir}/logs/data_prep.log"
    echo "${stamp}" > "${datadir}/.prepared"
}

# Hydra runs in the experiment's folder: every path handed to it must be absolute.
abspath() { case "$1" in /*) echo "$1" ;; *) echo "${PWD}/$1" ;; esac; }

# espnet_format STAGE SRC EVAL_SET...: SRC<set> into dump/raw with utt2num_samples, as asr.sh's
# and tts.sh's format stage; train and dev go to dump/raw/org for the filter stage.
espnet_format() {
    local stage=$1 src=$2 dset dst
    shift 2
    for dset in "${train_set}" "${valid_set}" "$@"; do
        case " ${train_set} ${valid_set} " in
            *" ${dset} "*) dst="${dumpdir}/raw/org/${dset}" ;;
            *) dst="${dumpdir}/raw/${dset}" ;;
        esac
        done_or_redo "${dst}" "${stage}" && continue
        need "${src}${dset}/wav.scp" 1
        ${python} local/format_data.py --src "${src}${dset}" --dst "${dst}"
    done
}

# espnet_filter STAGE: drop short, long and empty train and dev utterances (dump/raw/org -> dump/raw).
espnet_filter() {
    local stage=$1 dset
    for dset in "${train_set}" "${valid_set}"; do
        done_or_redo "${dumpdir}/raw/${dset}" "${stage}" && continue
        need "${dumpdir}/raw/org/${dset}/utt2num_samples" $(( stage - 1 ))
        ${python} local/filter_data.py --src "${dumpdir}/raw/org/${dset}" --dst "${dumpdir}/raw/${dset}" \
            --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}"
    done
}

# tts_corpus: the TTS recipes' splits: the embedded corpus's TTS view (data/tts/), or LJSpeech.
tts_corpus() {
    case "${corpus}" in
        embedded) splits=tts/ ;;
        ljspeech)
            [ -n "${ljspeech_dir}" ] || die "--corpus ljspeech needs --ljspeech_dir DIR"
            [ -d "${ljspeech_dir}" ] || die "--ljspeech_dir ${ljspeech_dir}: no such directory"
            splits= ;;
        *) die "--corpus must be embedded or ljspeech, not '${corpus}'" ;;
    esac
    train_set=train; valid_set=dev; test_set=test
}

# espnet_collect_stats MODULE SHAPE_SOURCE [OPTION ...]: espnet2's --collect_stats run into
# ${stats_dir}, with the key lists of dump/raw/<set>/SHAPE_SOURCE; as asr.sh and tts.sh, text
# shapes then carry the vocabulary size for the batch sampler.
espnet_collect_stats() {
    local module=$1 shape=$2 tmp="${stats_dir}.tmp" s
    shift 2
    rm -rf "${tmp}" && mkdir -p "${expdir}/logs"
    ${python} -m pinch.offline "${module}" --collect_stats true --ngpu 0 "$@" \
        --train_shape_file "${dumpdir}/raw/${train_set}/${shape}" \
        --valid_shape_file "${dumpdir}/raw/${valid_set}/${shape}" \
        --output_dir "${tmp}" > "${expdir}/logs/collect_stats.log" 2>&1 \
        || failed "collect stats" "${expdir}/logs/collect_stats.log"
    for s in train valid; do
        awk -v N="$(wc -l < "${token_list}")" '{ print $0 "," N }' \
            "${tmp}/${s}/text_shape" > "${tmp}/${s}/text_shape.${token_type}"
    done
    rm -rf "${stats_dir}" && mv "${tmp}" "${stats_dir}"
}

# nemo_train DIR WHAT CONFIG [OVERRIDE ...]: one pinch.nemo.bin.train run of Hydra config
# CONFIG (in ${config_dir}) into DIR, logged to DIR/train.log, timed in DIR/wall_time_s; a
# killed run continues from its last whole checkpoint (the configs' exp_manager resume_if_exists).
# Temporary files go to DIR/tmp, emptied at each attempt's start: Lightning writes a checkpoint
# there first, so that moving it into place is a rename (a copy from another file system can be
# cut short by a kill), and the file of a save a kill interrupted goes with the next attempt.
nemo_train() {
    local dir=$1 what=$2 config=$3
    shift 3
    start_training "${dir}"
    rm -rf "${dir}/tmp" && mkdir "${dir}/tmp"
    [ "${ngpu:-0}" -eq 0 ] || set -- "$@" trainer.accelerator=gpu "trainer.devices=${ngpu}"
    [ "$(world_size)" -eq 1 ] || set -- "$@" "trainer.num_nodes=${num_nodes}" "trainer.devices=${nproc_per_node}" \
        trainer.strategy=ddp
    train_to_end "${dir}" "${what}" env "TMPDIR=$(abspath "${dir}")/tmp" ${python} -m pinch.nemo.bin.train \
        --config-path "${config_dir}" --config-name "${config}" "exp_manager.exp_dir=$(abspath "${dir}")" "$@"
}

# nemo_bake STAGE < RUNS: bake the gated.nemo of every compression run (lines of
# compressed_runs) into a plain NeMo model.nemo.
nemo_bake() {
    local stage=$1 dir
    while read -r _ _ dir; do
        [ -n "${dir}" ] || continue
        done_or_redo "${dir}/model.nemo" "${stage}" && continue
        need "${dir}/gated.nemo" $(( stage - 1 ))
        ${python} -m pinch.nemo.bin.bake --in "${dir}/gated.nemo" --out "${dir}/model.nemo" \
            > "${dir}/bake.log" 2>&1 || failed "bake" "${dir}/bake.log"
        tail -n 1 "${dir}/bake.log" >&2
    done
}

# manifest_set_name MANIFEST: the name of a test set given as a NeMo manifest: its file stem
# (test_a.json: test_a), or its folder's name for a manifest.json (data/test_clean/manifest.json:
# test_clean), as pinch.data.manifest.set_name. The manifest must exist.
manifest_set_name() {
    local base
    base=$(basename "$1")
    base=${base%.*}
    if [ "${base}" = manifest ]; then
        base=$(basename "$(cd "$(dirname "$1")" && pwd -P)") || die "$1: no such manifest"
    fi
    [ -n "${base}" ] || die "$1: no test set name in this path"
    echo "${base}"
}
