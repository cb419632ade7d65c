// The SIMT engine of the losses: the CUDA kernels and launches of losses_kernels.cuh, run by the emulator on CPU
// tensors (tests only: fastgan/_simt.py). Outputs the kernels must write entirely are poisoned first.
#include "../common/simt/runtime.h"
#include "losses_kernels.cuh"

namespace fastgan::losses {
namespace {

void forward(const LossSpec& spec, const Tensor& a, const Tensor& b, Tensor& loss, Tensor& stats) {
  simt::poison({loss, stats});
  kEngine<simt::Runtime>.forward(spec, a, b, loss, stats);
}

void backward(const LossSpec& spec, const Tensor& grad, const Tensor& a, const Tensor& b, Tensor& grad_a,
              Tensor& grad_b) {
  simt::poison({grad_a, grad_b});
  kEngine<simt::Runtime>.backward(spec, grad, a, b, grad_a, grad_b);
}

const LossEngine kSimtEngine{&forward, &backward};
const bool kRegistered = EngineTable<LossEngine>::add_simt(kSimtEngine);

}  // namespace
}  // namespace fastgan::losses
