// Portable qualifiers: the same math headers compile for the host (g++) and the device (nvcc).
#pragma once

#if defined(__CUDACC__)
#define FASTGAN_HD __host__ __device__ __forceinline__
#else
// always_inline, not plain inline: the CPU kernels are compiled once per ISA (generic, AVX2, AVX-512), and a
// non-inlined copy of a shared inline function could be merged across those objects by the linker and then run
// AVX-512 code on a CPU without it.
#define FASTGAN_HD inline __attribute__((always_inline))
#endif

// Namespace of the per-ISA CPU kernel objects; CMake sets it for each copy (generic, avx2, avx512).
#ifndef FASTGAN_ISA
#define FASTGAN_ISA generic
#endif
