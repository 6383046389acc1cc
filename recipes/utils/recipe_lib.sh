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

parse_options() {
    # --name value for every variable defined above; anything else is an error.
    while [ $# -gt 0 ]; do
        case "$1" in
            --help|-h) echo "${help_message}"; exit 0 ;;
            --*=*) die "use '--name value', not '$1'" ;;
            --*)
                local name="${1#--}"
                name="${name//-/_}"
                [ $# -ge 2 ] || die "option $1 needs a value"
                declare -p "${name}" > /dev/null 2>&1 || die "unknown option $1 (see --help)"
                case "${name}" in help_message|name) die "unknown option $1" ;; esac
                printf -v "${name}" '%s' "$2"
                shift 2 ;;
            *) die "unexpected argument '$1' (options are --name value)" ;;
        esac
    done
}

is_bool() { [ "$1" = true ] || [ "$1" = false ]; }

# Checks of overwrite, stage/stop_stage, the target sparsities and the pruning presets;
# sets `targets` (the sweep, or the single target).
check_common_options() {
    is_bool "${overwrite}" || die "--overwrite must be true or false, not '${overwrite}'"
    [[ "${stage}" =~ ^[0-9]+$ && "${stop_stage}" =~ ^[0-9]+$ ]] || die "--stage/--stop_stage must be integers"
    targets="${sweep:-${target_sparsity}}"
    local t m
    for t in ${targets}; do
        # Checked again, with the same rule, by pinch.PruningConfig; failing here saves a stage.
        awk -v t="${t}" 'BEGIN { exit !(t ~ /^[0-9]*\.?[0-9]+$/ && t >= 0 && t < 1) }' \
            || die "target sparsity '${t}' must be a number in [0, 1)"
    done
    for m in ${pruning}; do
        [ -f "${pruning_conf_dir}/${m}.yaml" ] \
            || die "--pruning ${m}: no preset ${pruning_conf_dir}/${m}.yaml (have: $(cd "${pruning_conf_dir}" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' '))"
    done
}
