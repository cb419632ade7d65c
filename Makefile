# The two commands of the README, each self-contained on a fresh clone and quick when nothing changed:
#   make bench   set up (venv, torch, build tools, the extension) and run the benchmarks
#   make test    set up and run the tests
# Setup steps are file stamps, so a second run only redoes what its inputs changed.

VENV ?= .venv
PY := $(VENV)/bin/python
# The torch to install into the venv. 2.13.0 is a CPU wheel on this project's build machines; elsewhere pip gets it
# from PyPI. To build against a torch you already have, see the README ("Into your own environment").
TORCH ?= torch==2.13.0
BENCH_ARGS ?=
PYTEST_ARGS ?=

DEPS_STAMP := $(VENV)/.fastgan-deps
BUILD_STAMP := $(VENV)/.fastgan-build
SOURCES := $(shell find csrc -type f) CMakeLists.txt pyproject.toml

.PHONY: setup build test test-matrix fuzz test-asan test-simt-asan bench cuda-check cuda-report gpu-check peer-wheels clean

setup: $(BUILD_STAMP)
build: $(BUILD_STAMP)

# What the build, the tests and the benchmarks need, for `make setup` and for the sanitizer's own venv.
PACKAGES := "$(TORCH)" numpy "scikit-build-core>=0.10" "pybind11>=2.12" ninja "cmake>=3.26" "pytest>=7" \
	"scipy>=1.10" "matplotlib>=3.7" "tqdm>=4.60" "scikit-learn>=1.2" "torchmetrics==1.9.0" "hypothesis>=6.100"
# The peers the metrics are checked against. --no-deps: pytorch-fid requires torchvision, which would replace the
# venv's torch; the tests use only its numpy/scipy function (and prdc needs only numpy and scikit-learn).
PEERS := "prdc==0.2" "pytorch-fid==0.3.0"

$(DEPS_STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PACKAGES)
	$(PY) -m pip install --quiet --no-deps $(PEERS)
	touch $@

# --no-build-isolation: build against the venv's torch; --no-deps: never let pip swap that torch for another.
# FASTGAN_SIMT=ON: this dev build carries the SIMT emulator, so `make test` runs every CUDA kernel on the CPU (a
# plain `pip install .` leaves it out).
$(BUILD_STAMP): $(DEPS_STAMP) $(SOURCES)
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -C cmake.define.FASTGAN_SIMT=ON -e .
	$(PY) -c "import fastgan; print('fastgan', fastgan.build_info())"
	touch $@

# FASTGAN_REQUIRE_PEERS: a peer package (torchmetrics, prdc, pytorch-fid) that failed to install fails its tests
# instead of skipping them.
test: $(BUILD_STAMP)
	FASTGAN_REQUIRE_PEERS=1 $(PY) -m pytest -q $(PYTEST_ARGS)

# The property-based fuzzer (tests/test_fuzz.py) with thousands of examples per property instead of `make test`'s
# bounded count. FUZZ_ARGS narrows it (e.g. FUZZ_ARGS="-k latent").
FUZZ_ARGS ?=
fuzz: $(BUILD_STAMP)
	FASTGAN_FUZZ_PROFILE=fuzz FASTGAN_SOFTPLUS_EXHAUSTIVE=1 $(PY) -m pytest -q tests/test_fuzz.py tests/test_softplus.py $(FUZZ_ARGS)

# The extension built with AddressSanitizer and UndefinedBehaviorSanitizer (its own venv and build folder, so the
# normal build is untouched), then the tests that reach the edges of every argument and the fuzzer under it: a read
# or write outside a tensor, or undefined behaviour, ends the run with a report. Python and torch are not
# instrumented, so the ASan runtime is preloaded, and libstdc++ with it (ASan must find __cxa_throw at start-up to
# intercept C++ exceptions; Python itself does not link libstdc++); leak detection is off (the interpreter's own).
# pytest captures at the Python level only (--capture=sys): a report written to fd 2 as the process halts is shown.
ASAN_VENV ?= .venv-asan
ASAN_PY := $(ASAN_VENV)/bin/python
ASAN_TESTS ?= tests/test_hardening.py tests/test_fuzz.py tests/test_sampling.py tests/test_mcmc.py tests/test_mmd.py
test-asan:
	test -x $(ASAN_PY) || python3 -m venv $(ASAN_VENV)
	$(ASAN_PY) -m pip install --quiet $(PACKAGES)
	$(ASAN_PY) -m pip install --quiet --no-deps $(PEERS)
	$(ASAN_PY) -m pip install --quiet --no-build-isolation --no-deps -e . -C build-dir=build/asan \
		-C cmake.define.FASTGAN_SANITIZE=ON
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	ASAN_OPTIONS=detect_leaks=0:alloc_dealloc_mismatch=0:halt_on_error=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(ASAN_PY) -m pytest -q -p no:cacheprovider --capture=sys $(ASAN_TESTS) $(PYTEST_ARGS)

# The suite under every CPU kernel ISA and at 1 and 2 threads: what a user's CPU may pick (issue: a suite tuned on
# one CPU failed on another).
test-matrix: $(BUILD_STAMP)
	set -e; for isa in default avx2 avx512; do for threads in 1 2; do \
		echo "== ATEN_CPU_CAPABILITY=$$isa OMP_NUM_THREADS=$$threads"; \
		FASTGAN_REQUIRE_PEERS=1 ATEN_CPU_CAPABILITY=$$isa OMP_NUM_THREADS=$$threads $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); \
	done; done

# The SIMT emulator's tests under AddressSanitizer: a second build (build/simt-asan, installed into .venv-asan,
# which uses .venv's packages) whose emulator and emulated kernels are instrumented, so a kernel's read or write
# outside its tensors is reported where it happens (tests/test_simt_mutants.py checks that the loss mutant's is).
# RelWithDebInfo: not stripped, so the reports name the kernels. libstdc++ is preloaded too: AddressSanitizer
# intercepts C++ exceptions only if it is there when the runtime starts.
ASAN_VENV := .venv-asan
ASAN_PY := $(ASAN_VENV)/bin/python
purelib = $$($(1) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
test-simt-asan: $(DEPS_STAMP)
	test -x $(ASAN_PY) || python3 -m venv $(ASAN_VENV)
	echo "$(call purelib,$(abspath $(PY)))" > "$(call purelib,$(ASAN_PY))/fastgan-dev-packages.pth"
	$(ASAN_PY) -m pip install --quiet --no-build-isolation --no-deps -C cmake.define.FASTGAN_SIMT=ON \
		-C cmake.define.FASTGAN_SIMT_ASAN=ON -C cmake.build-type=RelWithDebInfo -C build-dir=build/simt-asan -e .
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so.6)" \
		ASAN_OPTIONS=detect_leaks=0:alloc_dealloc_mismatch=0 \
		$(ASAN_PY) -m pytest -q -p no:cacheprovider tests/test_simt.py tests/test_simt_mutants.py $(PYTEST_ARGS)

bench: $(BUILD_STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# Compiles every .cu file with nvcc for sm_80 and sm_90 against the installed torch's headers, without linking:
# catches CUDA breakage on a machine with no GPU (and no CUDA torch).
cuda-check: $(DEPS_STAMP)
	$(PY) -m cmake -S . -B build/cuda-check -G Ninja -DFASTGAN_CUDA_COMPILE_ONLY=ON -DPython_EXECUTABLE=$(abspath $(PY))
	$(PY) -m cmake --build build/cuda-check

# The sm_90 machine code of every .cu, read without a GPU: registers, shared memory, stack and blocks per SM per
# kernel; SASS instructions per element on the hot loops of the loss kernels and the samplers, and the H200
# bandwidth fraction that implies (scripts/cuda_report.py says how). Writes benchmarks/results/cuda-report-sm90.*.
# cuobjdump and nvdisasm come from NVIDIA's wheels: this machine's CUDA toolkit has nvcc and ptxas only.
CUDA_TOOLS_STAMP := $(VENV)/.fastgan-cuda-tools
$(CUDA_TOOLS_STAMP): $(DEPS_STAMP)
	$(PY) -m pip install --quiet "nvidia-cuda-cuobjdump==13.2.78" "nvidia-cuda-nvdisasm==13.2.78"
	touch $@
cuda-report: cuda-check $(CUDA_TOOLS_STAMP)
	$(PY) scripts/cuda_report.py --build-dir build/cuda-check --output benchmarks/results/cuda-report-sm90

# One call on the lent GPU machine (scripts/gpu_check.sh: build, CUDA tests, sanitizers, the deciding benchmarks,
# within 9 minutes); GPU_CHECK_DRY_RUN=1 runs every step's command here at tiny sizes, so a typo fails here.
gpu-check:
	bash scripts/gpu_check.sh

# Wheels of the metrics tests' peers, for a GPU machine without network (scripts/gpu_check.sh installs them).
peer-wheels: $(DEPS_STAMP)
	$(PY) -m pip download --quiet --no-deps -d .peer-wheels "torchmetrics==1.9.0" "lightning-utilities==0.15.3" \
		"prdc==0.2" "pytorch-fid==0.3.0"

clean:
	rm -rf build $(BUILD_STAMP)
