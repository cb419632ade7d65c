// The CUDA engine of MCMC: the kernels and launches of mcmc_kernels.cuh on the CUDA runtime.
#include "../common/cuda_runtime.cuh"
#include "mcmc_kernels.cuh"

namespace fastgan::mcmc {
namespace {

const bool kRegistered = EngineTable<McmcEngine>::add(c10::DeviceType::CUDA, kEngine<cuda::Runtime>);

}  // namespace
}  // namespace fastgan::mcmc
