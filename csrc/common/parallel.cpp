#include "parallel.h"

#include <atomic>
#include <bit>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef FASTGAN_PARALLEL_BACKEND
#error "CMake defines FASTGAN_PARALLEL_BACKEND (target fastgan_parallel)"
#endif

namespace fastgan {
namespace {
// Bit t: thread t ran a task (threads past 63 share bit 63, which only undercounts).
std::atomic<uint64_t> threads_seen{0};
}  // namespace

namespace parallel_record {
void start() {
  // A loop nested in another's task (a kernel calling a fill) runs inline and belongs to the outer loop's record.
  if (!at::in_parallel_region()) threads_seen.store(0, std::memory_order_relaxed);
}
void task() {
  const int thread = std::min(at::get_thread_num(), 63);
  threads_seen.fetch_or(uint64_t{1} << thread, std::memory_order_relaxed);
}
}  // namespace parallel_record

int last_parallel_threads() { return std::popcount(threads_seen.load(std::memory_order_relaxed)); }

std::string parallel_backend() { return FASTGAN_PARALLEL_BACKEND; }

int parallel_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();  // the runtime fastgan's own `omp parallel` regions use
#else
  return at::get_num_threads();
#endif
}

}  // namespace fastgan
