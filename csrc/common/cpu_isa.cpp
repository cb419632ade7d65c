#include "cpu_isa.h"

#include <ATen/Version.h>

namespace fastgan {

CpuIsa cpu_isa() {
  // at::get_cpu_capability() reports what PyTorch's own dispatch picked: the CPU's best, or ATEN_CPU_CAPABILITY.
  static const CpuIsa isa = [] {
    const std::string capability = at::get_cpu_capability();
#if defined(FASTGAN_HAVE_AVX512) && defined(FASTGAN_HAVE_AVX2)
    if (capability == "AVX512") return CpuIsa::Avx512;
    if (capability == "AVX2") return CpuIsa::Avx2;
#endif
    (void)capability;
    return CpuIsa::Generic;
  }();
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512: return "avx512";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Generic: break;
  }
  return "generic";
}

std::string compiled_cpu_isas() {
#if defined(FASTGAN_HAVE_AVX512) && defined(FASTGAN_HAVE_AVX2)
  return "generic,avx2,avx512";
#else
  return "generic";
#endif
}

}  // namespace fastgan
