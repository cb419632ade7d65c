// Run-time choice among the CPU kernel copies compiled per ISA (CMake builds each *_cpu_kernel.cpp once per ISA,
// in namespace FASTGAN_ISA), the way ATen's DispatchStub does it: AVX-512 where the CPU has it, else AVX2, else
// portable code. ATEN_CPU_CAPABILITY=default|avx2|avx512 narrows the choice, as it does for PyTorch's own kernels.
#pragma once

#include <string>

namespace fastgan {

enum class CpuIsa { Generic, Avx2, Avx512 };

CpuIsa cpu_isa();
const char* cpu_isa_name(CpuIsa isa);
std::string compiled_cpu_isas();  // e.g. "generic,avx2,avx512"

}  // namespace fastgan

// FASTGAN_CPU_DISPATCH(ns, fn, args...) calls ns::<isa>::fn(args...) for the chosen ISA.
#if defined(FASTGAN_HAVE_AVX512) && defined(FASTGAN_HAVE_AVX2)
#define FASTGAN_CPU_DISPATCH(ns, fn, ...)                                    \
  (::fastgan::cpu_isa() == ::fastgan::CpuIsa::Avx512 ? ns::avx512::fn(__VA_ARGS__) \
   : ::fastgan::cpu_isa() == ::fastgan::CpuIsa::Avx2 ? ns::avx2::fn(__VA_ARGS__)   \
                                                      : ns::generic::fn(__VA_ARGS__))
#else
#define FASTGAN_CPU_DISPATCH(ns, fn, ...) ns::generic::fn(__VA_ARGS__)
#endif
