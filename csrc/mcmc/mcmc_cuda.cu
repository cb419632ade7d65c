// The CUDA engine of MCMC: the kernels and launches of mcmc_kernels.cuh on the CUDA runtime (with cub's select).
#include "../common/cuda_select.cuh"
#include "mcmc_kernels.cuh"

namespace fastgan::mcmc {
namespace {

const bool kRegistered = EngineTable<McmcEngine>::add(c10::DeviceType::CUDA, kEngine<cuda::SelectRuntime>);

}  // namespace
}  // namespace fastgan::mcmc
