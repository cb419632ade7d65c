// The SIMT engine of MCMC: the CUDA kernels and launches of mcmc_kernels.cuh, run by the emulator on CPU tensors
// (tests only: fastgan/_simt.py). Outputs the kernels must write entirely are poisoned first (mh_step_ updates its
// tensors in place, and accept_compact fills its index itself).
#include "../common/simt/runtime.h"
#include "mcmc_kernels.cuh"

namespace fastgan::mcmc {
namespace {

void accept_compact(const Tensor& log_ratio, uint64_t seed, uint64_t stream, int64_t offset, Tensor& index,
                    Tensor& count) {
  simt::poison({index, count});
  kEngine<simt::Runtime>.accept_compact(log_ratio, seed, stream, offset, index, count);
}

void mh_select(const Tensor& logits, const Tensor& init, uint64_t seed, uint64_t stream, int64_t offset,
               Tensor& index, Tensor& moved) {
  simt::poison({index, moved});
  kEngine<simt::Runtime>.mh_select(logits, init, seed, stream, offset, index, moved);
}

const McmcEngine kSimtEngine{&accept_compact, &mh_select, &mh_step<simt::Runtime>};
const bool kRegistered = EngineTable<McmcEngine>::add_simt(kSimtEngine);

}  // namespace
}  // namespace fastgan::mcmc
