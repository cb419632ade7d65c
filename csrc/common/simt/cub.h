// Host shims for the cub and thrust pieces fastgan's kernels call, with cub's contract: thrust's counting_iterator,
// and cub::DeviceSelect::If's two-phase call (a null scratch pointer asks for the scratch size; the second call
// writes the selected items in input order and their count).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "emulator.h"

namespace fastgan::simt {

template <class T>
struct CountingIterator {
  T first;
  T operator[](int64_t i) const { return first + static_cast<T>(i); }
};

enum class SelectStatus { Success, InvalidValue };

struct DeviceSelect {
  // cub's select pass: tiles of kTileThreads threads x kItemsPerThread consecutive items (a blocked arrangement),
  // each thread testing its items in order with its own copy of the predicate (a stateful predicate keeps state per
  // thread, not per call). The threads and tiles run in the emulator's schedule order, so a predicate whose answer
  // depended on the call order would show it.
  static constexpr int64_t kTileThreads = 128, kItemsPerThread = 8, kTileItems = kTileThreads * kItemsPerThread;

  static size_t scratch_bytes(int64_t n) {
    const int64_t tiles = (n + kTileItems - 1) / kTileItems;
    return static_cast<size_t>(tiles) * sizeof(int64_t) + 256;  // each tile's count, and some headroom as cub has
  }

  template <class Items, class Out, class Count, class Pred>
  static SelectStatus If(void* scratch, size_t& bytes, Items items, Out selected, Count count, int64_t n,
                         const Pred& pred) {
    if (scratch == nullptr) {
      bytes = scratch_bytes(n);
      return SelectStatus::Success;
    }
    if (bytes < scratch_bytes(n) || n < 0) return SelectStatus::InvalidValue;
    const int64_t tiles = (n + kTileItems - 1) / kTileItems;
    auto* tile_counts = static_cast<int64_t*>(scratch);  // written: an undersized allocation would be caught
    std::vector<uint8_t> flags(static_cast<size_t>(n));
    auto order = [](int64_t count) {
      std::vector<int64_t> ids(static_cast<size_t>(count));
      std::iota(ids.begin(), ids.end(), int64_t{0});
      if (config().schedule == Schedule::HighestFirst) std::reverse(ids.begin(), ids.end());
      if (config().schedule == Schedule::Random) std::shuffle(ids.begin(), ids.end(), std::mt19937_64(config().seed));
      return ids;
    };
    for (int64_t tile : order(tiles)) {
      tile_counts[tile] = 0;
      for (int64_t thread : order(kTileThreads)) {
        Pred own = pred;
        const int64_t first = tile * kTileItems + thread * kItemsPerThread;
        for (int64_t i = first; i < std::min(n, first + kItemsPerThread); ++i) {
          flags[static_cast<size_t>(i)] = own(items[i]) ? 1 : 0;
          tile_counts[tile] += flags[static_cast<size_t>(i)];
        }
      }
    }
    int64_t out = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (flags[static_cast<size_t>(i)]) selected[out++] = items[i];
    }
    int64_t total = 0;
    for (int64_t tile = 0; tile < tiles; ++tile) total += tile_counts[tile];
    if (total != out) return SelectStatus::InvalidValue;
    *count = out;
    return SelectStatus::Success;
  }
};

}  // namespace fastgan::simt
