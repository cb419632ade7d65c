// The CUDA engine of the losses: the kernels and launches of losses_kernels.cuh on the CUDA runtime.
#include "../common/cuda_runtime.cuh"
#include "losses_kernels.cuh"

namespace fastgan::losses {
namespace {

const bool kRegistered = EngineTable<LossEngine>::add(c10::DeviceType::CUDA, kEngine<cuda::Runtime>);

}  // namespace
}  // namespace fastgan::losses
