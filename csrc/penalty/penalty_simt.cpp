// The SIMT engine of the gradient penalties: the CUDA kernels and launches of penalty_kernels.cuh, run by the
// emulator on CPU tensors (tests only: fastgan/_simt.py). Outputs the kernels must write entirely are poisoned first.
#include "../common/simt/runtime.h"
#include "penalty_kernels.cuh"

namespace fastgan::penalty {
namespace {

void forward(const PenaltySpec& spec, const Tensor& grads, Tensor& penalty, Tensor& norms) {
  simt::poison({penalty, norms});
  kEngine<simt::Runtime>.forward(spec, grads, penalty, norms);
}

void backward(const PenaltySpec& spec, const Tensor& grad, const Tensor& grads, const Tensor& norms, Tensor& out) {
  simt::poison({out});
  kEngine<simt::Runtime>.backward(spec, grad, grads, norms, out);
}

const PenaltyEngine kSimtEngine{&forward, &backward};
const bool kRegistered = EngineTable<PenaltyEngine>::add_simt(kSimtEngine);

}  // namespace
}  // namespace fastgan::penalty
