// The CUDA vocabulary of a kernel header (<family>_kernels.cuh, reduce.cuh): nvcc's own, or the SIMT emulator's
// host shims (simt/simt.h) when the host compiler builds the same header for the emulator.
#pragma once

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#include <math_constants.h>
#else
#include "simt/simt.h"
#endif
