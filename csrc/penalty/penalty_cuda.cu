// The CUDA engine of the gradient penalties: the kernels and launches of penalty_kernels.cuh on the CUDA runtime.
#include "../common/cuda_runtime.cuh"
#include "penalty_kernels.cuh"

namespace fastgan::penalty {
namespace {

const bool kRegistered = EngineTable<PenaltyEngine>::add(c10::DeviceType::CUDA, kEngine<cuda::Runtime>);

}  // namespace
}  // namespace fastgan::penalty
