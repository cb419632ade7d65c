"""Prints, ';'-separated, what CMakeLists.txt needs to know about the torch it builds against:
its directory, version, C++ ABI flag, CUDA version ('' for a CPU build), intra-op parallel backend and, for the
OpenMP backend, the OpenMP runtime that importing torch loaded ('' if none was found)."""

import os
import re

import torch

torch_dir = os.path.dirname(torch.__file__)

# The backend is a compile-time property of libtorch, written into ATen/Config.h; reading the header (not
# torch.__config__.parallel_info()'s wording) keeps this independent of torch's version.
with open(os.path.join(torch_dir, "include", "ATen", "Config.h")) as config:
    flags = dict(re.findall(r"#define\s+AT_PARALLEL_(\w+)\s+(\d)", config.read()))
backends = [name for name, on in flags.items() if on == "1"]
backend = backends[0] if len(backends) == 1 else "unknown:" + ",".join(backends)

# The OpenMP runtime libtorch_cpu is linked against, as the dynamic loader resolved it in this process. Linking
# fastgan against that same file keeps one OpenMP runtime (one thread pool, one torch.set_num_threads) per process.
runtime = ""
if backend == "OPENMP" and os.path.exists("/proc/self/maps"):
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            # libgomp.so.1, libomp.so, libiomp5.so, or auditwheel's renamed libgomp-<hash>.so.1
            if re.fullmatch(r"lib(gomp|omp|iomp5)(-[0-9a-f]+)?\.so(\.\d+)*", os.path.basename(path)):
                runtime = path
                break

print(";".join([torch_dir, torch.__version__, str(int(torch._C._GLIBCXX_USE_CXX11_ABI)), torch.version.cuda or "",
                backend, runtime]))
