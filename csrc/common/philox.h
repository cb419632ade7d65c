// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC'11), for host and
// device. fastgan's random streams (docs/DESIGN.md section 4): word w of stream (seed, stream) is word w % 4 of
// philox4x32_10(counter, key) with j = w / 4, counter = (lo32(j), hi32(j), lo32(stream), hi32(stream)) and
// key = (lo32(seed), hi32(seed)). It depends on nothing else, so every device and thread count draws the same words.
// Known answer: seed 0, stream 0, words 0..3 = 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
#pragma once

#include <cstdint>

#include "macros.h"

namespace fastgan::philox {

struct Words {
  uint32_t w[4];
  // Word k (0..3) by selects: indexing w with a run-time k would put the array in local memory on CUDA.
  FASTGAN_HD uint32_t at(uint32_t k) const {
    const uint32_t even = (k & 2u) ? w[2] : w[0], odd = (k & 2u) ? w[3] : w[1];
    return (k & 1u) ? odd : even;
  }
};

FASTGAN_HD void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments

// The 4 words of block j of stream (seed, stream).
FASTGAN_HD Words block(uint64_t seed, uint64_t stream, uint64_t j) {
  uint32_t c0 = static_cast<uint32_t>(j), c1 = static_cast<uint32_t>(j >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c0, hi0, lo0);
    mulhilo(kM1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return Words{{c0, c1, c2, c3}};
}

// A stream's word indices are the int64 offsets 0 .. 2^63 - 1 (offsets come from int64 op arguments). Philox's
// counter would allow 2^66 words; fastgan uses the first 2^63, so a word index never overflows int64 and a draw
// either lies wholly inside the stream or is refused (checks.h: check_stream_range). No draw wraps around.
constexpr uint64_t kStreamWords = uint64_t{1} << 63;

// Whether words first .. first + count - 1 lie in the stream (first + count <= 2^63, without computing the sum).
FASTGAN_HD bool fits_stream(int64_t first, int64_t count) {
  return first >= 0 && count >= 0 && static_cast<uint64_t>(count) <= kStreamWords - static_cast<uint64_t>(first);
}

// The first word of a draw whose start is split between the host (offset, checked >= 0) and the device (a sampler's
// position tensor, read in the kernel), in `first`: false when the sum is negative or the draw of `count` words
// would run past the stream's end. No signed overflow: a negative device part cannot overflow a non-negative offset,
// and a non-negative one is added in uint64, where two values below 2^63 sum exactly.
FASTGAN_HD bool device_start(int64_t offset, int64_t device_offset, int64_t count, int64_t& first) {
  if (device_offset < 0) {
    first = offset + device_offset;
  } else {
    const uint64_t sum = static_cast<uint64_t>(offset) + static_cast<uint64_t>(device_offset);
    first = sum < kStreamWords ? static_cast<int64_t>(sum) : -1;
  }
  return fits_stream(first, count);
}

// Reads words of one stream in increasing order, computing each block once for its 4 words (a sequential CPU
// loop that called block() per word would do the work 4 times).
struct WordCursor {
  uint64_t seed, stream;
  uint64_t current = ~uint64_t{0};
  Words words{};

  FASTGAN_HD WordCursor(uint64_t seed_, uint64_t stream_) : seed(seed_), stream(stream_) {}

  FASTGAN_HD uint32_t operator()(uint64_t w) {
    if (w / 4 != current) {
      current = w / 4;
      words = block(seed, stream, current);
    }
    return words.at(static_cast<uint32_t>(w & 3u));
  }
};

// Word -> float mappings, the same on every device and exact (every value is representable, nothing rounds):
// [0, 1) on the 2^-24 grid; (0, 1] on the same grid, for logs; and (0, 1) at the midpoints of the 2^-23 grid,
// symmetric about 1/2, for inverse CDFs (a midpoint of the 2^-24 grid would need 25 bits: near 1 it would round,
// and 1 - u, the whole information in a tail, would be lost).
FASTGAN_HD float uniform(uint32_t w) { return static_cast<float>(w >> 8) * 0x1.0p-24f; }
FASTGAN_HD float uniform_open_low(uint32_t w) { return static_cast<float>((w >> 8) + 1u) * 0x1.0p-24f; }
FASTGAN_HD float uniform_open(uint32_t w) { return (static_cast<float>(w >> 9) + 0.5f) * 0x1.0p-23f; }
// [0, 1) with 32 bits, as double (for float64 outputs).
FASTGAN_HD double uniform64(uint32_t w) { return static_cast<double>(w) * 0x1.0p-32; }
FASTGAN_HD double uniform64_open_low(uint32_t w) { return (static_cast<double>(w) + 1.0) * 0x1.0p-32; }
FASTGAN_HD double uniform64_open(uint32_t w) { return (static_cast<double>(w) + 0.5) * 0x1.0p-32; }

}  // namespace fastgan::philox
