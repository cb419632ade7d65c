// The SIMT engine of the MMD: the CUDA kernels and launches of mmd_kernels.cuh, run by the emulator on CPU tensors
// (tests only: fastgan/_simt.py). The forward's output is poisoned first (the backward's are zeroed by contract).
#include "../common/simt/runtime.h"
#include "mmd_kernels.cuh"

namespace fastgan::mmd {
namespace {

void forward(const MmdSpec& spec, const Tensor& x, const Tensor& y, Tensor& out) {
  simt::poison({out});
  kEngine<simt::Runtime>.forward(spec, x, y, out);
}

const MmdEngine kSimtEngine{&forward, &backward<simt::Runtime>};
const bool kRegistered = EngineTable<MmdEngine>::add_simt(kSimtEngine);

}  // namespace
}  // namespace fastgan::mmd
