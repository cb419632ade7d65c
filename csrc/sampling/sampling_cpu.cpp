// The CPU SamplingEngine.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <limits>

#include "../common/cpu_isa.h"
#include "../common/engine.h"
#include "../common/parallel.h"
#include "sampling_cpu_kernel.h"
#include "sampling_ops.h"

namespace fastgan::sampling {
namespace {

using at::Tensor;

void fill_random_bits(Tensor& out, uint64_t seed, uint64_t stream, int64_t offset) {
  const cpu::WordsParams args{.seed = seed, .stream = stream, .start = offset, .count = out.numel(),
                            .out = out.mutable_data_ptr<int64_t>()};
  FASTGAN_CPU_DISPATCH(cpu, fill_words, args);
}

void fill_latent(Tensor& out, const LatentSpec& spec, const std::optional<Tensor>& offset_tensor) {
  int64_t start = spec.offset;
  const int64_t device_offset = offset_tensor.has_value() ? *offset_tensor->const_data_ptr<int64_t>() : 0;
  if (!philox::device_start(spec.offset, device_offset, out.numel(), start)) {
    // Only offset_tensor can take the draw out of the stream (offset is checked): below 0 or past its end. The CUDA
    // kernel reads it on the device and cannot raise without a host sync, so both devices answer alike: NaN, never
    // a silent partial fill.
    out.fill_(std::numeric_limits<double>::quiet_NaN());
    return;
  }
  const cpu::FillParams args{.dist = spec.dist, .a = spec.params.a, .b = spec.params.b, .c = spec.params.c,
                           .seed = spec.seed, .stream = spec.stream,
                           .start = start, .count = out.numel(),
                           .dtype = fastgan::cpu::kernel_dtype(out.scalar_type(), "fastgan::fill_latent_: out"),
                           .out = out.mutable_data_ptr()};
  FASTGAN_CPU_DISPATCH(cpu, fill, args);
}

void sample_cdf(const Tensor& cdf, Tensor& out, uint64_t seed, uint64_t stream, int64_t offset) {
  const int64_t rows = out.size(0), n = out.size(1), bins = cdf.size(1);
  int64_t* result = out.mutable_data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(cdf.scalar_type(), "sample_cdf", [&] {
    const scalar_t* table = cdf.const_data_ptr<scalar_t>();
    // Row by row (row r draws stream + r) with a word cursor; no division per sample.
    fastgan::parallel_for(0, rows * n, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin / n, e = begin; e < end; ++r) {
        philox::WordCursor word(seed, stream + r);
        const int64_t row_end = std::min(end, (r + 1) * n);
        for (; e < row_end; ++e) {
          const auto u = to_uniform<scalar_t>(word(static_cast<uint64_t>(offset + e - r * n)), UniformKind::ClosedLow);
          result[e] = search_cdf(table + r * bins, bins, u);
        }
      }
    });
  });
}

const SamplingEngine kCpuEngine{&fill_random_bits, &fill_latent, &sample_cdf};
const bool kRegistered = EngineTable<SamplingEngine>::add(c10::DeviceType::CPU, kCpuEngine);

}  // namespace

}  // namespace fastgan::sampling
