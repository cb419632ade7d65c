// fastgan's one door to intra-op parallelism: at::parallel_for (torch's thread pool and thread count), plus a
// record of which threads ran the most recent loop's tasks. The record is how the tests prove that a build really
// runs in parallel (a build without the right OpenMP flags silently runs every loop on one thread).
#pragma once

#include <ATen/Parallel.h>

#include <cstdint>
#include <string>

namespace fastgan {

namespace parallel_record {
void start();  // a loop begins: forget the last one's threads
void task();   // the calling thread runs a task of it
}  // namespace parallel_record

// at::parallel_for(begin, end, grain, f), recorded. Same partition, same semantics.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  parallel_record::start();
  at::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
    parallel_record::task();
    f(b, e);
  });
}

// Distinct threads that ran tasks of the most recent fastgan::parallel_for (process-wide; for tests).
int last_parallel_threads();
// "OpenMP" or "native": the backend fastgan's loops were compiled for (always torch's own, see CMakeLists.txt).
std::string parallel_backend();
// The threads fastgan's next parallel loop may use, as its own backend sees it: equals torch.get_num_threads()
// when fastgan shares torch's thread pool, as it must.
int parallel_threads();

}  // namespace fastgan
