// The SIMT engine of the samplers: the CUDA kernels and launches of sampling_kernels.cuh, run by the emulator on
// CPU tensors (tests only: fastgan/_simt.py). Every sampler writes all of `out`, which is poisoned first.
#include "../common/simt/runtime.h"
#include "sampling_kernels.cuh"

namespace fastgan::sampling {
namespace {

void fill_random_bits(Tensor& out, uint64_t seed, uint64_t stream, int64_t offset) {
  simt::poison({out});
  kEngine<simt::Runtime>.fill_random_bits(out, seed, stream, offset);
}

void fill_latent(Tensor& out, const LatentSpec& spec, const std::optional<Tensor>& offset_tensor) {
  simt::poison({out});
  kEngine<simt::Runtime>.fill_latent(out, spec, offset_tensor);
}

void sample_cdf(const Tensor& cdf, Tensor& out, uint64_t seed, uint64_t stream, int64_t offset) {
  simt::poison({out});
  kEngine<simt::Runtime>.sample_cdf(cdf, out, seed, stream, offset);
}

const SamplingEngine kSimtEngine{&fill_random_bits, &fill_latent, &sample_cdf};
const bool kRegistered = EngineTable<SamplingEngine>::add_simt(kSimtEngine);

}  // namespace
}  // namespace fastgan::sampling
