#!/usr/bin/env bash
# Gather into bench/gpu/wheels/ (git-ignored) what bench/gpu/run.sh needs on a lent GPU machine,
# which reaches no package registry. Run here, where the project's environment is
# (tools/setup_env.sh); then carry bench/gpu/wheels with the working tree.
# Usage: bench/gpu/prepare_wheels.sh [--online]
#   default   local sources only, no network: pip's file:// registries and find-links folders,
#             and wheels repacked from the pure-Python packages installed in the venv
#   --online  also pip's configured index, for the compiled packages (cp312) no local source has
# Writes wheels/*.whl, MANIFEST.txt (each wheel and its source), MISSING.txt (what is still
# missing: run.sh refuses to start while it lists anything) and corpus.tar.gz (the tests' tiny
# corpus, which needs speech synthesizers the GPU machine lacks).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${PINCH_VENV:-$root/.venv}/bin/python
out=$root/bench/gpu/wheels
corpus=/tmp/pinch-gpu/corpus/data   # run.sh unpacks it to the same path: its manifests name it
budget=$((64 * 1024 * 1024))        # what one device call carries: working tree and carried paths
[ -x "$py" ] || { echo "prepare_wheels.sh: no Python at $py: run tools/setup_env.sh first" >&2; exit 1; }

mkdir -p "$out"
"$py" -c "from pathlib import Path; from pinch.data.embedded import prepare_embedded; \
prepare_embedded(Path('$corpus'), seed=0, size='tiny', progress=False)"
status=0
PINCH_TEST_TINY_CORPUS=$corpus "$py" "$root/bench/gpu/wheels.py" gather --out "$out" "$@" || status=$?
tar -czf "$out/corpus.tar.gz" -C / "${corpus#/}"

tree=$(cd "$root" && { git ls-files; git ls-files --others --exclude-standard; } | sort -u \
       | while read -r f; do [ -f "$f" ] && stat -c %s "$f"; done | awk '{s += $1} END {print s + 0}')
carried=$(du -sb "$out" | cut -f1)
echo "prepare_wheels.sh: $(ls "$out"/*.whl 2>/dev/null | wc -l) wheels, $((carried / 1024 / 1024)) MiB in $out;" \
     "with the working tree $(((tree + carried) / 1024 / 1024)) of $((budget / 1024 / 1024)) MiB a device call carries"
[ $((tree + carried)) -le $budget ] || { echo "prepare_wheels.sh: over the limit of a device call" >&2; status=1; }
if [ -s "$out/MISSING.txt" ]; then
  echo "prepare_wheels.sh: missing (no local wheel for Python 3.12; --online fetches them):" \
       "$(tr '\n' ' ' < "$out/MISSING.txt")" >&2
fi
exit $status
