// The CUDA runtime policy with cub's select pass, for the kernel headers that call R::select_if (mcmc): only
// their .cu files parse cub's and thrust's headers, which nvcc reads once for the host and once per architecture.
#pragma once

#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include "cuda_runtime.cuh"

namespace fastgan::cuda {

struct SelectRuntime : Runtime {
  // cub's single-pass select over the items 0 .. n - 1. A null scratch pointer makes it a size query.
  template <class Pred>
  static void select_if(void* scratch, size_t& scratch_bytes, int64_t* selected, int64_t* selected_count, int64_t n,
                        const Pred& pred, const Stream& stream) {
    const thrust::counting_iterator<int64_t> items(0);
    C10_CUDA_CHECK(
        cub::DeviceSelect::If(scratch, scratch_bytes, items, selected, selected_count, n, pred, stream.stream()));
  }
};

}  // namespace fastgan::cuda
