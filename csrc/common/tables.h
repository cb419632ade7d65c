// The C++ tables that fastgan's Python side checks itself against (tests/test_tables.py, tests/test_softplus.py),
// in plain C++: the module init (csrc/fastgan.cpp) includes this, not the families' ATen headers, so it compiles
// fast. Each function is defined in its family's files.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace fastgan {

// A loss family's flags (losses/loss_ops.cpp: kFamilies).
struct LossFamilyRow {
  std::string name;
  bool smoothable, saturating_form, accepts_probs, paired;
};
std::vector<LossFamilyRow> loss_family_rows();

// A distribution's name, the names of its parameters a and b ("" when unused) and the uniform it reads
// ("closed_low", "open_low", "open") (sampling/sampling.h: FASTGAN_DISTS).
std::vector<std::array<std::string, 4>> distribution_rows();

// The largest error, in float32 ulps, of the float32 softplus and sigmoid (common/math.h: Logistic) against float64
// over every `stride`-th float with bits in [first, last] and its negation, in the CPU ISA in use: the vector
// lanes [0] and the scalar path [1] (the CUDA kernels' arithmetic exactly), with the argument where it occurs
// (losses/losses_cpu_kernel.cpp).
struct SweepError {
  double ulps = 0;
  float at = 0;
};
struct SoftplusSweep {
  SweepError softplus[2], sigmoid[2];
  int64_t count = 0;
  int64_t non_finite_mismatches = 0;  // results that should be finite and are not, or the reverse
};
SoftplusSweep softplus_sweep(uint32_t first, uint32_t last, uint32_t stride);

}  // namespace fastgan
