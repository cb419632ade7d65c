// The CUDA engine of the samplers: the kernels and launches of sampling_kernels.cuh on the CUDA runtime.
#include "../common/cuda_runtime.cuh"
#include "sampling_kernels.cuh"

namespace fastgan::sampling {
namespace {

const bool kRegistered = EngineTable<SamplingEngine>::add(c10::DeviceType::CUDA, kEngine<cuda::Runtime>);

}  // namespace
}  // namespace fastgan::sampling
