#!/usr/bin/env bash
# One call on the lent GPU machine (one H200, 16 cores, no network; a 15-minute lease, of which starting the machine
# takes a few): build fastgan's CUDA kernels, run the CUDA tests, run the kernels under compute-sanitizer, and time
# the benchmark rows that decide the targets, in at most 9 minutes of wall time.
#
#   scripts/gpu_check.sh [OUT_DIR]                 (or `make gpu-check`)
#   GPU_CHECK_DRY_RUN=1 scripts/gpu_check.sh       here, on the CPU: every step's command at tiny sizes
#
# Results go to OUT_DIR, else $OUT (the device tool's folder, which comes back: at most 8 files), else
# gpu-results/ (git-ignored): summary.txt (one line per step: status, seconds, budget), gpu_check.log (every step's
# output), and the benchmarks' cuda.json / cuda.md / cuda.png (copy them into benchmarks/results/).
#
# Each step runs under its own `timeout`, so a step that hangs or a call that is cut keeps what finished; the budgets
# (seconds) of all but the last two add up to GPU_CHECK_BUDGET_S (540), and a step never runs past what is left:
#   peers 15       the metrics tests' peers from .peer-wheels/ (`make peer-wheels` here, then carry it)
#   build 170      pip install -e . with the CUDA kernels, sm_90 only (TORCH_CUDA_ARCH_LIST=9.0), all cores
#   info 15        build_info, the GPU, the CUDA versions
#   tests 120      pytest -m cuda, in parallel with pytest-xdist (on the image) when it imports
#   memcheck 50    compute-sanitizer --tool memcheck on scripts/gpu_sanitize_driver.py (every kernel family once)
#   racecheck 50   the same under --tool racecheck (shared-memory races)
#   bench_* 110    benchmarks/run.py: the kernels suite (loss kernels at 256, 57,600 and 4M as a fraction of copy_,
#                  MH-GAN's selection, accept_compact), MMD n=16384 d=512, the normal and uniform samplers (16M among
#                  their sizes), MH-GAN selection end to end
#   mmd_* 50       the MMD row again on the tile kernels and with TF32 allowed (3xTF32), if time is left
# A sanitizer that refuses the device (gVisor machines: "Device not supported") is recorded as skipped, not failed.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY="${GPU_CHECK_DRY_RUN:-0}"
out="${1:-${OUT:-gpu-results}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
log="$out/gpu_check.log"
summary="$out/summary.txt"
if [ "$DRY" = 1 ] && [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
PYTHON="${PYTHON:-python3}"
export FASTGAN_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" PYTHONUNBUFFERED=1
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
budget="${GPU_CHECK_BUDGET_S:-540}"
started=$SECONDS
failed=0
: > "$log"
printf '%-16s %-10s %6s %6s  %s\n' step status secs budget note > "$summary"

# step NAME BUDGET_S COMMAND...: run under timeout (the smaller of its budget and what is left), log, summarise.
step() {
  local name="$1" limit="$2"; shift 2
  local left=$((budget - (SECONDS - started)))
  [ "$limit" -le "$left" ] || limit=$left
  if [ "$limit" -le 5 ]; then
    printf '%-16s %-10s %6s %6s  %s\n' "$name" skipped 0 "$2" "no time left of ${budget} s" >> "$summary"
    return 0
  fi
  echo "=== $name (limit ${limit} s): $*" | tee -a "$log"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]} status=ok note=""
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=TIMEOUT; failed=1
  elif [ "$rc" -ne 0 ]; then status=FAILED; note="exit $rc"; failed=1; fi
  echo "=== $name: $status in $((SECONDS - start)) s" | tee -a "$log"
  printf '%-16s %-10s %6s %6s  %s\n' "$name" "$status" $((SECONDS - start)) "$limit" "$note" >> "$summary"
  return "$rc"
}

note() { printf '%-16s %-10s %6s %6s  %s\n' "$1" "$2" 0 0 "$3" >> "$summary"; }

# sanitize TOOL BUDGET: the driver under compute-sanitizer; skipped where there is none or it refuses the device.
sanitize() {
  local tool="$1" limit="$2" sanitizer
  sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
  local cmd=(--tool "$tool" --error-exitcode 3 "$PYTHON" scripts/gpu_sanitize_driver.py --device cuda)
  if [ "$DRY" = 1 ] || [ -z "$sanitizer" ]; then
    # no sanitizer here: show its command, then check the driver itself on the SIMT emulator
    echo "(dry run) would run: ${sanitizer:-compute-sanitizer} ${cmd[*]}" | tee -a "$log"
    note "$tool" skipped "no compute-sanitizer (or dry run); the driver runs on the SIMT emulator instead"
    step "${tool}_driver" "$limit" "$PYTHON" scripts/gpu_sanitize_driver.py --device simt
    return
  fi
  local before=$failed
  step "$tool" "$limit" "$sanitizer" "${cmd[@]}"
  local rc=$?
  if [ "$rc" -ne 0 ] && tail -n 40 "$log" | grep -q -e "Device not supported" -e "error 999"; then
    note "$tool" skipped "the sanitizer refused this device (see gpu_check.log): not a failure"
    failed=$before
  fi
}

{ nvidia-smi 2>&1 | head -15; "$PYTHON" --version; } >> "$log" 2>&1

# (a) peers and the build
if [ -d .peer-wheels ]; then
  if [ "$DRY" = 1 ]; then
    step peers 15 "$PYTHON" -m pip install --dry-run --quiet --no-index --no-deps .peer-wheels/*.whl
  else
    step peers 15 "$PYTHON" -m pip install --quiet --no-index --no-deps .peer-wheels/*.whl
  fi
else
  note peers skipped "no .peer-wheels/: the metrics tests that need them skip"
fi
if [ "$DRY" = 1 ]; then
  # pip checks the flags and reads the project's metadata without building (this machine's build is make build's)
  step build 170 "$PYTHON" -m pip install --dry-run --no-build-isolation --no-deps -e .
else
  step build 170 "$PYTHON" -m pip install --no-build-isolation --no-deps -v -e . || {
    echo "build failed: nothing else can run" | tee -a "$log"; cat "$summary"; exit 1; }
fi
step info 15 "$PYTHON" -c "import fastgan, torch; print(fastgan.build_info()); print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

# (b) the CUDA tests, in parallel where pytest-xdist imports
parallel=()
if "$PYTHON" -c "import xdist" 2>/dev/null; then parallel=(-n 8); fi
if [ "$DRY" = 1 ]; then
  step tests 120 "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda --collect-only "${parallel[@]}" tests
else
  step tests 120 "$PYTHON" -m pytest -q -p no:cacheprovider -p no:logging -ra -m cuda "${parallel[@]}" tests
fi

# (c) the sanitizers
sanitize memcheck 50
sanitize racecheck 50

# (d) the benchmark rows that decide the targets, merged into one result file (cuda.json, .md, .png)
bench() {
  local name="$1" limit="$2"; shift 2
  if [ "$DRY" = 1 ]; then
    step "$name" "$limit" "$PYTHON" benchmarks/run.py --output "$out" --device cpu --min-run-time 0.01 "$@"
  else
    step "$name" "$limit" "$PYTHON" benchmarks/run.py --output "$out" --device cuda "$@"
  fi
}
if [ "$DRY" = 1 ]; then
  # two shared cores time the eager references slowly: longer limits, still inside the total
  bench bench_kernels 60 --suites kernels   # CUDA only: plans no task on the CPU, still parses
  bench bench_mmd 60 --suites mmd --mmd-sizes 64 --mmd-dims 8
  bench bench_samplers 60 --suites samplers --samplers normal,uniform --quick
  bench bench_mh 180 --suites mh --quick  # 3 tasks of ~30 s each on two cores
else
  bench bench_kernels 40 --suites kernels
  bench bench_mmd 30 --suites mmd --mmd-sizes 16384 --mmd-dims 512
  bench bench_samplers 30 --suites samplers --samplers normal,uniform
  bench bench_mh 20 --suites mh --quick
fi

# (e) the MMD row's A/B, last (the budget skips them when nothing is left): the same row on the tile kernels
# (FASTGAN_MMD_GEMM_MIN_D past d: decides the CUDA GEMM path's threshold, csrc/mmd/mmd_gemm.cuh), and with TF32
# allowed (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1: the GEMM path's 3xTF32 on tensor cores). JSON only: the device tool
# returns at most 8 files.
mmd_ab() {
  local name="$1" limit="$2" setting="$3" dir="$out/$1" sizes=(--mmd-sizes 16384 --mmd-dims 512) device=cuda
  if [ "$DRY" = 1 ]; then sizes=(--mmd-sizes 64 --mmd-dims 8 --min-run-time 0.01); device=cpu; fi
  mkdir -p "$dir"
  step "$name" "$limit" env "$setting" "$PYTHON" benchmarks/run.py --output "$dir" --device "$device" --suites mmd \
    "${sizes[@]}"
  rm -f "$dir"/*.md "$dir"/*.png
}
mmd_ab mmd_tile_kernels 25 FASTGAN_MMD_GEMM_MIN_D=1000000000
mmd_ab mmd_3xtf32 25 TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1

echo "total: $((SECONDS - started)) s of ${budget} s" | tee -a "$log" >> "$summary"
cat "$summary"
exit "$failed"
