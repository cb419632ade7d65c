// The CUDA engine of the MMD: the kernels and launches of mmd_kernels.cuh on the CUDA runtime.
#include "../common/cuda_runtime.cuh"
#include "mmd_kernels.cuh"

namespace fastgan::mmd {
namespace {

const bool kRegistered = EngineTable<MmdEngine>::add(c10::DeviceType::CUDA, kEngine<cuda::Runtime>);

}  // namespace
}  // namespace fastgan::mmd
