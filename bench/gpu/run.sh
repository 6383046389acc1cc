#!/usr/bin/env bash
# The GPU measurements of the gates, in one command, on a lent GPU machine that reaches no
# registry and no network (its image has torch with CUDA, transformers, Lightning; not espnet
# or NeMo). Needs bench/gpu/wheels, made by bench/gpu/prepare_wheels.sh where the project's
# environment is and carried with the working tree. In under 8 minutes:
#   1. installs the carried wheels into /tmp/pinch-gpu/site (pinch itself runs from plugin/);
#   2. the suite's CUDA-only tests (pytest -m cuda: NeMo's TDT training step, both gate paths'
#      CUDA kernels, autocast fp16/bf16 on CUDA) -> bench/results/gpu_tests.json;
#   3. bench/gate_overhead.py --device cuda: wav2vec2-base and the recipe's Conformer, batch
#      1 x 10 s and 8 x 10 s, fp32 and bf16, dense vs the gate bank's per-matrix and fused
#      paths -> bench/results/gate_overhead_{wav2vec2,conformer}_gpu.{json,png}.
# Where $OUT is set (the device tool), the results are copied there too.
# Usage: bench/gpu/run.sh            (from anywhere; it works in the repository root)
set -uo pipefail
cd "$(dirname "$0")/../.."
wheels=bench/gpu/wheels
results=bench/results
work=/tmp/pinch-gpu
fail() { echo "bench/gpu/run.sh: $*" >&2; exit 1; }
[ -s $wheels/MANIFEST.txt ] || fail "no wheels in $wheels: run bench/gpu/prepare_wheels.sh where the project's environment is, and carry $wheels"
[ ! -s $wheels/MISSING.txt ] || fail "$wheels/MISSING.txt lists wheels prepare_wheels.sh could not gather: $(tr '\n' ' ' < $wheels/MISSING.txt)(bench/gpu/prepare_wheels.sh --online fetches them)"
python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" || fail "python3's torch sees no CUDA device"
start=$SECONDS
mkdir -p $work $results
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $work/site $wheels/*.whl \
  || fail "installing the carried wheels failed"
export PYTHONPATH=$PWD/plugin:$work/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
tar -xzf $wheels/corpus.tar.gz -C / || fail "unpacking the tests' corpus failed"
export PINCH_TEST_TINY_CORPUS=$work/corpus/data
python3 -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"
echo "installed in $((SECONDS - start)) s"

# CUDA-only tests: every test module that marks one (pytest.ini's marker 'cuda').
timeout 200 python3 -m pytest -p no:cacheprovider -q -m cuda --junitxml=$work/tests.xml \
  $(grep -rl "mark.cuda" tests --include='test_*.py' | sort)
tests_rc=$?
python3 bench/gpu/tests_json.py $work/tests.xml $tests_rc $results
echo "tests done at $((SECONDS - start)) s"

# The benchmark gets what is left of 470 s; wav2vec2 first (the paper's model).
left=$((470 - (SECONDS - start)))
if [ $left -ge 60 ]; then
  timeout $left python3 bench/gate_overhead.py --device cuda --model wav2vec2 conformer \
    --batch 1x10 8x10 --dtype fp32 bf16 --variants per_matrix fused fused_eager --repeats 3 --steps 10 --out $results
  bench_rc=$?
else
  echo "bench/gpu/run.sh: only $left s left of the 8 minutes: benchmark not run" >&2
  bench_rc=1
fi
echo "benchmark done at $((SECONDS - start)) s (exit $bench_rc)"
if [ -n "${OUT:-}" ]; then
  cp $results/gpu_tests.json $results/gate_overhead_*_gpu.json $results/gate_overhead_*_gpu.png "$OUT"/ 2>/dev/null
fi
[ $tests_rc -eq 0 ] && [ $bench_rc -eq 0 ]
