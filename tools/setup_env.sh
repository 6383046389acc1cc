#!/usr/bin/env bash
# Create (or reuse) pinch's environment: system packages and a virtual environment.
# Usage: tools/setup_env.sh [VENV]   (default: $PINCH_VENV or ./.venv)
# A second run finds the stamp of the same requirement files and returns at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${PINCH_VENV:-$root/.venv}}
log() { echo "[pinch setup] $*" >&2; }

# --- system packages: espeak-ng, flite and festival (with three voices) synthesize the
# default corpus, sctk scores it (sclite), GNU time measures peak memory, Slurm runs jobs
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v flite >/dev/null 2>&1 || missing+=(flite)
command -v text2wave >/dev/null 2>&1 || missing+=(festival)
festvox=/usr/share/festival/voices
[ -d $festvox/english/kal_diphone ] || missing+=(festvox-kallpc16k)
[ -d $festvox/english/ked_diphone ] || missing+=(festvox-kdlpc16k)
[ -d $festvox/us/cmu_us_slt_arctic_hts ] || missing+=(festvox-us-slt-hts)
[ -x /usr/lib/sctk/bin/sclite ] || command -v sclite >/dev/null 2>&1 || missing+=(sctk)
# GNU time: the recipes' peak memory of each training run (the sweep's cost columns)
[ -x /usr/bin/time ] || missing+=(time)
# strace and iproute2: the test that no pinch step reaches the network watches every process
# in a network namespace of its own (tests/core/test_no_network.py)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# Slurm (client, controller, node daemon) and munge: the recipes' slurm job backend, and the
# single-node cluster the tests start on localhost
command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
[ -x /usr/sbin/slurmctld ] || missing+=(slurmctld)
[ -x /usr/sbin/slurmd ] || missing+=(slurmd)
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || missing+=(munge)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "error: ${missing[*]} missing and no apt-get to install them; install them by hand"; exit 1
  fi
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; } \
    || { log "error: apt-get could not install ${missing[*]}"; exit 1; }
fi

# --- Python environment
stamp="$venv/.pinch-stamp"
want=$(cat "$root/tools/constraints.txt" "$root/tools/espnet-requirements.txt" "$root/setup.py" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
log "building the Python environment in $venv (first run: several minutes, torch is ~6 GB)"
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
con=(-c "$root/tools/constraints.txt")
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" install -q "${con[@]}" "setuptools<81" wheel torch torchaudio
"${pip[@]}" install -q "${con[@]}" "nemo_toolkit[asr]" -r "$root/tools/espnet-requirements.txt" \
  jiwer safetensors pytest pytest-xdist matplotlib tqdm transformers soundfile pysptk pyroomacoustics uv \
  onnx onnxruntime sherpa-onnx pocketsphinx speechmos
# espnet pins setuptools<74, which torch 2.11 cannot live with: its own requirements
# (minus that pin) were installed above; --no-deps keeps pip from backtracking to an
# ancient espnet release that lacks the pin.
"${pip[@]}" install -q "${con[@]}" --no-deps espnet
# ci_sdr (imported by espnet2.bin.asr_inference) declares a git URL in an extra, which
# pip refuses even with --no-deps; uv installs the same release without its extras.
"$venv/bin/uv" pip install -q --python "$venv/bin/python" --no-deps "ci_sdr==0.0.2"
"${pip[@]}" install -q --no-deps --no-build-isolation -e "$root"
# pip check may report only espnet's setuptools pin.
"${pip[@]}" check 2>&1 | grep -v -e "setuptools" -e "^No broken" && log "warning: pip check reports the lines above" || true
echo "$want" > "$stamp"
log "environment ready"
