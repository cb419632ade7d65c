// The sampler ops' entry points for every device: checks here, the fills in the device's SamplingEngine
// (sampling_cpu.cpp, sampling_cuda.cu).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/dtype.h"
#include "../common/engine.h"
#include "../common/tables.h"
#include "sampling_ops.h"

namespace fastgan::sampling {
namespace {

using at::Tensor;

template <c10::DeviceType kDevice>
void fill_random_bits(Tensor& out, int64_t seed, int64_t offset, int64_t stream) {
  constexpr const char* op = "fastgan::fill_random_bits_";
  const SamplingEngine& engine = EngineTable<SamplingEngine>::of(kDevice, op);
  check_fill(out, offset, std::nullopt, op);
  TORCH_CHECK_TYPE(out.scalar_type() == at::kLong, op, ": out must be int64");
  if (out.numel() == 0) return;
  engine.fill_random_bits(out, static_cast<uint64_t>(seed), static_cast<uint64_t>(stream), offset);
}

template <c10::DeviceType kDevice>
void fill_latent(Tensor& out, c10::string_view dist, double a, double b, int64_t seed, int64_t offset,
                 const std::optional<Tensor>& offset_tensor, int64_t stream) {
  constexpr const char* op = "fastgan::fill_latent_";
  const SamplingEngine& engine = EngineTable<SamplingEngine>::of(kDevice, op);
  check_fill(out, offset, offset_tensor, op);
  cpu::kernel_dtype(out.scalar_type(), "fastgan::fill_latent_: out");  // the one dtype message of the fills
  const Dist parsed = parse_dist(dist);
  const LatentSpec spec{.dist = parsed, .params = check_dist_params(parsed, a, b, out.scalar_type()),
                        .seed = static_cast<uint64_t>(seed), .stream = static_cast<uint64_t>(stream),
                        .offset = offset};
  if (out.numel() == 0) return;
  engine.fill_latent(out, spec, offset_tensor);
}

template <c10::DeviceType kDevice>
void sample_cdf(const Tensor& cdf, Tensor& out, int64_t seed, int64_t offset, int64_t stream) {
  constexpr const char* op = "fastgan::sample_cdf_";
  const SamplingEngine& engine = EngineTable<SamplingEngine>::of(kDevice, op);
  check_sample_cdf(cdf, out);
  check_stream_range(offset, out.size(1), op, "offset");
  if (out.numel() == 0) return;
  engine.sample_cdf(cdf, out, static_cast<uint64_t>(seed), static_cast<uint64_t>(stream), offset);
}

template <c10::DeviceType kDevice>
void register_sampling_ops(torch::Library& m) {
  m.impl("sample_cdf_", &sample_cdf<kDevice>);
  m.impl("fill_random_bits_", &fill_random_bits<kDevice>);
  m.impl("fill_latent_", &fill_latent<kDevice>);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) { register_sampling_ops<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(fastgan, CUDA, m) { register_sampling_ops<c10::DeviceType::CUDA>(m); }

}  // namespace fastgan::sampling

std::vector<std::array<std::string, 4>> fastgan::distribution_rows() {
  constexpr const char* kUniforms[] = {"closed_low", "open_low", "open"};
  std::vector<std::array<std::string, 4>> rows;
  for (const sampling::DistInfo& info : sampling::kDistInfo) {
    rows.push_back({std::string(info.name), std::string(info.a.name), std::string(info.b.name),
                    kUniforms[static_cast<int>(info.uniform)]});
  }
  return rows;
}
