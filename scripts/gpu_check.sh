#!/usr/bin/env bash
# One call on a GPU machine: build fastgan with its CUDA kernels against the installed (CUDA) torch, run the whole
# test suite (CUDA tests included), run the benchmarks, and leave logs and results in the directory given:
#
#   bash scripts/gpu_check.sh OUT_DIR [extra benchmark arguments...]
#
# OUT_DIR/gpu_check.log            the build, build_info, the test run and the benchmark tables
# OUT_DIR/<gpu name>.{json,md,png}  the GPU's benchmark results (copy them into benchmarks/results/ and commit)
# OUT_DIR/cpu-<model>.{json,md,png} the thread scaling of the large CPU ops on that machine's cores
# With no benchmark arguments it benchmarks the GPU only (--device cuda), in three merged parts (kernels, metrics,
# training): the CPU results are measured on the CI machine, and the lent GPU machine runs one command for at most
# 10 minutes (build ~2-3 min, tests ~2 min), so a later call can rerun a missing part with explicit arguments.
# The GPU machine has no network: the metrics tests' peer packages (torchmetrics, prdc, pytorch-fid) come from
# .peer-wheels/ when the call carries it (`make peer-wheels` here, then run(carry=[".peer-wheels"])); without it
# those tests are skipped, and say why.
set -uo pipefail
out="${1:?usage: scripts/gpu_check.sh OUT_DIR [benchmark args]}"
shift
mkdir -p "$out"
log="$out/gpu_check.log"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export FASTGAN_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" PYTHONUNBUFFERED=1
status=0
step() {  # step NAME COMMAND...: run, log, remember a failure, keep going
  local name="$1"; shift
  echo "=== $name: $*" | tee -a "$log"
  local start=$SECONDS
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc in $((SECONDS - start)) s" | tee -a "$log"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}
: > "$log"
nvidia-smi 2>&1 | head -15 >> "$log"
if [ -d .peer-wheels ]; then
  step peers "$PYTHON" -m pip install --quiet --no-index --no-deps .peer-wheels/*.whl
fi
step build "$PYTHON" -m pip install --no-build-isolation --no-deps -v -e . || { echo "build failed"; exit 1; }
step build_info "$PYTHON" -c "import fastgan, torch; print(fastgan.build_info(), torch.cuda.get_device_name())"
step tests "$PYTHON" -m pytest -q -p no:cacheprovider -p no:logging -ra tests
if [ "$#" -eq 0 ]; then
  # In parts, most telling first, each merged into the same results file: a call cut short by the machine's
  # 10-minute limit keeps every part that finished.
  step bench_kernels "$PYTHON" benchmarks/run.py --output "$out" --device cuda --suites ops,samplers,mmd,mh,kernels
  step bench_metrics "$PYTHON" benchmarks/run.py --output "$out" --device cuda --suites metrics
  step bench_training "$PYTHON" benchmarks/run.py --output "$out" --device cuda --suites training
else
  step benchmarks "$PYTHON" benchmarks/run.py --output "$out" "$@"
fi
# The machine's CPU cores give the thread-scaling table at 1, 4, 8 and 16 threads (cpu-<model>-<n>-threads.*).
step cpu_scaling "$PYTHON" benchmarks/run.py --device cpu --suites scaling --output "$out"
exit $status
