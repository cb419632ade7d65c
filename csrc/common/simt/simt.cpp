// The SIMT emulator: runs a CUDA kernel compiled for the host against simt.h. Each CUDA thread of a block is a
// fiber with its own stack on the launching OS thread; blocks run one after another. A thread runs until it
// reaches a switch point (__syncthreads, a warp collective, its exit); then a deterministic scheduler resumes the
// next runnable thread (config().schedule). Barriers and collectives complete only when every thread they name has
// arrived at the same call site, so a missing __syncthreads changes the results, and misuse (a collective naming
// a lane that exited or waits elsewhere, a barrier a thread skipped, a deadlock) raises an error naming the kernel,
// block, thread and call sites instead of hanging. A watchdog thread aborts a launch that runs too long (a fiber
// in an endless loop never returns to the scheduler, so nothing else could stop it).
#include "emulator.h"

#include "control.h"

#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define FASTGAN_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FASTGAN_SIMT_ASAN 1
#endif
#endif
#ifdef FASTGAN_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace fastgan::simt {

Coordinates g_coordinates;

namespace {

constexpr int kWarpSize = 32;
constexpr int kMaxBlockThreads = 1024;
constexpr double kDefaultWatchdogSeconds = 120.0;
// The kernels' frames are small (a few KiB with libm's slow paths); AddressSanitizer's redzones need more.
#ifdef FASTGAN_SIMT_ASAN
constexpr size_t kStackBytes = size_t{1} << 20;
#else
constexpr size_t kStackBytes = size_t{128} << 10;
#endif

// ---- Context switch ----
#if defined(__x86_64__)
// swapcontext would cost a sigprocmask system call per switch, and a kernel switches at every shuffle. This saves
// what the SysV ABI has the callee preserve: rbx, rbp, r12-r15, rsp, and the MXCSR and x87 control words.
extern "C" void fastgan_simt_switch(void** save_sp, void* load_sp);
extern "C" void fastgan_simt_trampoline();
asm(R"(
  .text
  .p2align 4
  .globl fastgan_simt_switch
  .hidden fastgan_simt_switch
  .type fastgan_simt_switch, @function
fastgan_simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw 12(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw 12(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size fastgan_simt_switch, .-fastgan_simt_switch

  .p2align 4
  .globl fastgan_simt_trampoline
  .hidden fastgan_simt_trampoline
  .type fastgan_simt_trampoline, @function
fastgan_simt_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size fastgan_simt_trampoline, .-fastgan_simt_trampoline
)");

struct Context {
  void* sp = nullptr;

  // A fresh context that starts entry(arg) on the stack [stack, stack + bytes): the frame fastgan_simt_switch
  // pops, returning into the trampoline with rsp 16-byte aligned (entry then sees the ABI's call alignment).
  void make(char* stack, size_t bytes, void (*entry)(void*), void* arg) {
    auto* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t{15}) - 88);
    uint32_t mxcsr = 0;
    uint16_t fpu_control = 0;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpu_control));
    top[0] = 0;
    std::memcpy(reinterpret_cast<char*>(top) + 8, &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(top) + 12, &fpu_control, 2);
    top[2] = 0;                                   // r15
    top[3] = 0;                                   // r14
    top[4] = reinterpret_cast<uint64_t>(entry);   // r13
    top[5] = reinterpret_cast<uint64_t>(arg);     // r12
    top[6] = 0;                                   // rbx
    top[7] = 0;                                   // rbp: 0 ends frame-pointer walks (AddressSanitizer's reports)
    top[8] = reinterpret_cast<uint64_t>(&fastgan_simt_trampoline);
    sp = top;
  }
  static void swap(Context& from, Context& to) { fastgan_simt_switch(&from.sp, to.sp); }
};
#else
struct Context {
  ucontext_t uc;
  static void start(unsigned int hi, unsigned int lo, unsigned int entry_hi, unsigned int entry_lo) {
    auto* entry = reinterpret_cast<void (*)(void*)>(uintptr_t{entry_hi} << 32 | entry_lo);
    entry(reinterpret_cast<void*>(uintptr_t{hi} << 32 | lo));
  }
  void make(char* stack, size_t bytes, void (*entry)(void*), void* arg) {
    getcontext(&uc);
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = bytes;
    uc.uc_link = nullptr;
    const auto a = reinterpret_cast<uintptr_t>(arg), e = reinterpret_cast<uintptr_t>(entry);
    makecontext(&uc, reinterpret_cast<void (*)()>(&start), 4, unsigned(a >> 32), unsigned(a), unsigned(e >> 32),
                unsigned(e));
  }
  static void swap(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
};
#endif

// AddressSanitizer must be told about every stack switch, or it reports the fibers' frames as overflows.
struct FiberStackNote {
#ifdef FASTGAN_SIMT_ASAN
  static void start(void** fake_stack_save, const void* bottom, size_t size) {
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
  }
  static void finish(void* fake_stack_save, const void** bottom_old, size_t* size_old) {
    __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
  }
  static void fresh(char* stack, size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(stack, bytes); }
#else
  static void start(void**, const void*, size_t) {}
  static void finish(void*, const void**, size_t*) {}
  static void fresh(char*, size_t) {}
#endif
};

// Fiber stacks, each above a guard page (an overflow faults instead of writing into the next stack). Kept for the
// process's life and reused by every block.
class Stacks {
 public:
  char* get(size_t i) {
    while (stacks_.size() <= i) {
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      void* base = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      TORCH_CHECK(base != MAP_FAILED, "fastgan SIMT emulator: could not map a fiber stack");
      TORCH_CHECK(mprotect(base, page, PROT_NONE) == 0, "fastgan SIMT emulator: could not protect a guard page");
      stacks_.push_back(static_cast<char*>(base) + page);
    }
    return stacks_[i];
  }

 private:
  std::vector<char*> stacks_;
};

// ---- The watchdog ----
// Reads what the scheduler publishes (relaxed atomics) and aborts the process when one launch runs too long.
struct Watchdog {
  std::atomic<int64_t> started_ms{0};  // 0: no launch running
  std::atomic<const char*> kernel{nullptr};
  std::atomic<uint32_t> block{0}, thread{0};
  std::once_flag once;

  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void watch() {
    std::call_once(once, [this] { std::thread([this] { loop(); }).detach(); });
  }

  [[noreturn]] void loop() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const int64_t started = started_ms.load(std::memory_order_relaxed);
      const double limit = config().watchdog_seconds;
      if (started == 0 || static_cast<double>(now_ms() - started) < limit * 1e3) continue;
      const char* name = kernel.load(std::memory_order_relaxed);
      std::fprintf(stderr,
                   "fastgan SIMT emulator: watchdog: kernel %s has run for more than %.3g s (block %u, thread %u "
                   "was running); a fiber that never reaches a switch point cannot be interrupted, so the process "
                   "aborts\n",
                   name != nullptr ? name : "?", limit, block.load(std::memory_order_relaxed),
                   thread.load(std::memory_order_relaxed));
      std::fflush(stderr);
      std::abort();
    }
  }
};

Watchdog& watchdog() {
  static auto* w = new Watchdog();  // leaked: its detached thread may outlive static destruction
  return *w;
}

std::string site_text(const std::source_location& site) {
  std::string_view file = site.file_name();
  if (const size_t csrc = file.rfind("csrc/"); csrc != std::string_view::npos) file.remove_prefix(csrc + 5);
  return std::string(file) + ":" + std::to_string(site.line());
}

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::Shfl: return "__shfl_sync";
    case Collective::ShflUp: return "__shfl_up_sync";
    case Collective::ShflDown: return "__shfl_down_sync";
    case Collective::ShflXor: return "__shfl_xor_sync";
    case Collective::Ballot: return "__ballot_sync";
    case Collective::SyncWarp: return "__syncwarp";
  }
  return "?";
}

std::string hex(uint32_t mask) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", mask);
  return text;
}

enum class Wait : uint8_t { Runnable, Barrier, Collective, Exited };

struct Thread {
  Context context;
  void* fake_stack = nullptr;
  Wait wait = Wait::Runnable;
  std::source_location site;  // where it waits
  Collective kind = Collective::Shfl;
  uint32_t mask = 0;
  int arg = 0, width = kWarpSize;
  uint64_t value = 0, result = 0;
  std::string failure;  // an exception that escaped the kernel
};

bool same_collective(const Thread& a, const Thread& b) {
  return a.kind == b.kind && a.mask == b.mask && same_site(a.site, b.site);
}

struct Warp {
  uint32_t exists = 0, exited = 0, at_barrier = 0, at_collective = 0;
  // The lanes waiting at the same collective as `leader` (a thread index, -1 for none): the common case, every lane
  // of a mask arriving at one call site, is then a few bit operations per arrival instead of a scan of the warp.
  uint32_t with_leader = 0;
  int leader = -1;
};

struct Failure : std::exception {};  // unwinds the scheduler; the message is in Emulator::error_

// One emulated launch at a time (g_mutex): the fibers, the scheduler and the block's state.
class Emulator {
 public:
  void run(std::string_view kernel, dim3 grid, dim3 block, KernelThunk thunk, const void* args);
  const std::string& error() const { return error_; }

  // Called on a fiber: the running thread's requests.
  void barrier(const std::source_location& site) {
    Thread& t = threads_[current_];
    t.wait = Wait::Barrier;
    t.site = site;
    yield();
  }
  uint64_t collective(Collective kind, uint32_t mask, uint64_t bits, int arg, int width,
                      const std::source_location& site) {
    Thread& t = threads_[current_];
    t.wait = Wait::Collective;
    t.kind = kind;
    t.mask = mask;
    t.value = bits;
    t.arg = arg;
    t.width = width;
    t.site = site;
    yield();
    return threads_[current_].result;
  }

 private:
  static void fiber_main(void* self);
  void yield();
  void resume(int i);
  int pick();
  void run_block(uint3 index);
  void set_runnable(int i) { runnable_[i / 64] |= uint64_t{1} << (i % 64); }
  void clear_runnable(int i) { runnable_[i / 64] &= ~(uint64_t{1} << (i % 64)); }
  void on_barrier(int i);
  void on_collective(int i);
  void on_exit(int i);
  void complete(Warp& warp, int first_lane, uint32_t mask);
  [[noreturn]] void fail(int i, const std::string& what);
  std::string thread_text(int i) const;
  std::string wait_text(int i) const;
  std::string deadlock_text() const;

  // the launch
  std::string kernel_;
  dim3 grid_, block_;
  KernelThunk thunk_ = nullptr;
  const void* args_ = nullptr;
  // the block
  uint3 block_index_{};
  int threads_in_block_ = 0;
  std::vector<Thread> threads_;
  std::vector<Warp> warps_;
  uint64_t runnable_[kMaxBlockThreads / 64] = {};
  int live_ = 0, at_barrier_ = 0, first_exited_ = -1, first_at_barrier_ = -1;
  int current_ = -1;
  std::string error_;
  // scheduling
  Context scheduler_;
  void* scheduler_fake_stack_ = nullptr;
  const void* scheduler_stack_bottom_ = nullptr;
  size_t scheduler_stack_size_ = 0;
  Stacks stacks_;
  std::mt19937_64 rng_;
};

std::mutex g_mutex;
Emulator* g_emulator = nullptr;  // the emulator of the running launch (under g_mutex)
std::map<std::string, int64_t> g_launches;

void Emulator::fiber_main(void* self) {
  auto& e = *static_cast<Emulator*>(self);
  FiberStackNote::finish(nullptr, &e.scheduler_stack_bottom_, &e.scheduler_stack_size_);
  try {
    e.thunk_(e.args_);
  } catch (const std::exception& error) {
    e.threads_[e.current_].failure = error.what();
  } catch (...) {
    e.threads_[e.current_].failure = "an exception that is not a std::exception";
  }
  e.threads_[e.current_].wait = Wait::Exited;
  FiberStackNote::start(nullptr, e.scheduler_stack_bottom_, e.scheduler_stack_size_);  // this fiber is done
  Context::swap(e.threads_[e.current_].context, e.scheduler_);
  __builtin_trap();  // an exited fiber is never resumed
}

void Emulator::yield() {
  Thread& t = threads_[current_];
  FiberStackNote::start(&t.fake_stack, scheduler_stack_bottom_, scheduler_stack_size_);
  Context::swap(t.context, scheduler_);
  FiberStackNote::finish(t.fake_stack, nullptr, nullptr);
}

void Emulator::resume(int i) {
  current_ = i;
  const int x = i % static_cast<int>(block_.x), yz = i / static_cast<int>(block_.x);
  g_coordinates.thread = uint3{static_cast<unsigned>(x), static_cast<unsigned>(yz % static_cast<int>(block_.y)),
                               static_cast<unsigned>(yz / static_cast<int>(block_.y))};
  watchdog().thread.store(static_cast<uint32_t>(i), std::memory_order_relaxed);
  FiberStackNote::start(&scheduler_fake_stack_, stacks_.get(static_cast<size_t>(i)), kStackBytes);
  Context::swap(scheduler_, threads_[i].context);
  FiberStackNote::finish(scheduler_fake_stack_, nullptr, nullptr);
}

int Emulator::pick() {
  constexpr int kWords = kMaxBlockThreads / 64;
  switch (config().schedule) {
    case Schedule::LowestFirst:
      for (int w = 0; w < kWords; ++w) {
        if (runnable_[w] != 0) return w * 64 + __builtin_ctzll(runnable_[w]);
      }
      return -1;
    case Schedule::HighestFirst:
      for (int w = kWords - 1; w >= 0; --w) {
        if (runnable_[w] != 0) return w * 64 + 63 - __builtin_clzll(runnable_[w]);
      }
      return -1;
    case Schedule::Random: {
      int count = 0;
      for (uint64_t word : runnable_) count += __builtin_popcountll(word);
      if (count == 0) return -1;
      int k = static_cast<int>(rng_() % static_cast<uint64_t>(count));
      for (int w = 0; w < kWords; ++w) {
        const int here = __builtin_popcountll(runnable_[w]);
        if (k < here) {
          uint64_t word = runnable_[w];
          for (; k > 0; --k) word &= word - 1;
          return w * 64 + __builtin_ctzll(word);
        }
        k -= here;
      }
      return -1;
    }
  }
  return -1;
}

std::string Emulator::thread_text(int i) const {
  std::string text = "thread " + std::to_string(i);
  if (block_.y > 1 || block_.z > 1) {
    const int x = i % static_cast<int>(block_.x), yz = i / static_cast<int>(block_.x);
    text += " (" + std::to_string(x) + ", " + std::to_string(yz % static_cast<int>(block_.y)) + ", " +
            std::to_string(yz / static_cast<int>(block_.y)) + ")";
  }
  return text + " (warp " + std::to_string(i / kWarpSize) + ", lane " + std::to_string(i % kWarpSize) + ")";
}

std::string Emulator::wait_text(int i) const {
  const Thread& t = threads_[i];
  switch (t.wait) {
    case Wait::Barrier: return "__syncthreads at " + site_text(t.site);
    case Wait::Collective:
      return std::string(collective_name(t.kind)) + " at " + site_text(t.site) + " (mask " + hex(t.mask) + ")";
    case Wait::Exited: return "exited";
    case Wait::Runnable: return "running";
  }
  return "?";
}

void Emulator::fail(int i, const std::string& what) {
  std::ostringstream text;
  text << "fastgan SIMT emulator: kernel " << kernel_ << " (grid " << grid_.x << "x" << grid_.y << "x" << grid_.z
       << ", block " << block_.x << "x" << block_.y << "x" << block_.z << "), block " << block_index_.x;
  if (grid_.y > 1 || grid_.z > 1) {
    text << " (" << block_index_.x << ", " << block_index_.y << ", " << block_index_.z << ")";
  }
  text << ", " << (i >= 0 ? thread_text(i) : std::string("no thread")) << ": " << what;
  error_ = text.str();
  throw Failure();
}

// A barrier completes when every thread of the block waits at it: one call site, and no thread has exited (CUDA
// asks every thread of the block to reach each __syncthreads).
void Emulator::on_barrier(int i) {
  const Thread& t = threads_[i];
  if (first_exited_ >= 0) {
    fail(i, "waits at __syncthreads at " + site_text(t.site) + ", which " + thread_text(first_exited_) +
                " can never reach: it has exited");
  }
  if (at_barrier_ > 0 && !same_site(threads_[first_at_barrier_].site, t.site)) {
    fail(i, "waits at __syncthreads at " + site_text(t.site) + " while " + thread_text(first_at_barrier_) +
                " waits at another __syncthreads, at " + site_text(threads_[first_at_barrier_].site) +
                ": the threads of a block must reach the same barrier");
  }
  Warp& warp = warps_[i / kWarpSize];
  const uint32_t bit = 1u << (i % kWarpSize);
  for (uint32_t waiting = warp.at_collective; waiting != 0; waiting &= waiting - 1) {
    const int j = (i / kWarpSize) * kWarpSize + __builtin_ctz(waiting);
    if (threads_[j].mask & bit) {
      fail(i, "waits at __syncthreads at " + site_text(t.site) + " while " + thread_text(j) + " waits for it at " +
                  wait_text(j));
    }
  }
  warp.at_barrier |= bit;
  if (at_barrier_++ == 0) first_at_barrier_ = i;
  if (at_barrier_ < live_) return;
  for (int j = 0; j < threads_in_block_; ++j) {
    if (threads_[j].wait == Wait::Barrier) {
      threads_[j].wait = Wait::Runnable;
      set_runnable(j);
    }
  }
  for (Warp& w : warps_) w.at_barrier = 0;
  at_barrier_ = 0;
  first_at_barrier_ = -1;
}

void Emulator::on_exit(int i) {
  const Thread& t = threads_[i];
  if (!t.failure.empty()) fail(i, "the kernel threw: " + t.failure);
  --live_;
  if (first_exited_ < 0) first_exited_ = i;
  Warp& warp = warps_[i / kWarpSize];
  const uint32_t bit = 1u << (i % kWarpSize);
  warp.exited |= bit;
  if (at_barrier_ > 0) {
    fail(i, "exited while " + thread_text(first_at_barrier_) + " waits at __syncthreads at " +
                site_text(threads_[first_at_barrier_].site) + ": every thread of the block must reach it");
  }
  for (uint32_t waiting = warp.at_collective; waiting != 0; waiting &= waiting - 1) {
    const int j = (i / kWarpSize) * kWarpSize + __builtin_ctz(waiting);
    if (threads_[j].mask & bit) {
      fail(j, "waits at " + wait_text(j) + " for lane " + std::to_string(i % kWarpSize) + ", which has exited");
    }
  }
}

// A collective completes when every lane of its mask waits at it: the same call site and the same mask.
void Emulator::on_collective(int i) {
  const Thread& t = threads_[i];
  const int first_lane = (i / kWarpSize) * kWarpSize;
  const int lane = i % kWarpSize;
  const uint32_t bit = 1u << lane;
  Warp& warp = warps_[i / kWarpSize];
  auto call = [&] {  // for the messages only: a kernel reaches collectives millions of times
    return std::string(collective_name(t.kind)) + " at " + site_text(t.site) + " with mask " + hex(t.mask);
  };
  if ((t.mask & bit) == 0) fail(i, "calls " + call() + ", which does not include its own lane " + std::to_string(lane));
  if (t.width <= 0 || t.width > kWarpSize || (t.width & (t.width - 1)) != 0) {
    fail(i, "calls " + call() + " with width " + std::to_string(t.width) + ": it must be a power of 2 up to 32");
  }
  if (const uint32_t missing = t.mask & ~warp.exists; missing != 0) {
    fail(i, "calls " + call() + ", but lane " + std::to_string(__builtin_ctz(missing)) +
                " does not exist (the block has " + std::to_string(threads_in_block_) + " threads)");
  }
  if (const uint32_t gone = t.mask & warp.exited; gone != 0) {
    fail(i, "calls " + call() + ", but lane " + std::to_string(__builtin_ctz(gone)) +
                " has exited: every lane of the mask must reach the same collective");
  }
  if (const uint32_t elsewhere = t.mask & warp.at_barrier; elsewhere != 0) {
    const int j = first_lane + __builtin_ctz(elsewhere);
    fail(i, "calls " + call() + ", but lane " + std::to_string(j % kWarpSize) + " waits at " + wait_text(j));
  }
  const bool joins_leader = warp.with_leader != 0 && same_collective(threads_[warp.leader], t) &&
                            (t.mask & warp.at_collective & ~warp.with_leader) == 0;
  if (!joins_leader) {
    for (uint32_t waiting = t.mask & warp.at_collective; waiting != 0; waiting &= waiting - 1) {
      const int j = first_lane + __builtin_ctz(waiting);
      const Thread& other = threads_[j];
      const bool same = same_site(other.site, t.site) && other.kind == t.kind;
      if (same && other.mask != t.mask) {
        fail(i, "calls " + call() + ", but lane " + std::to_string(j % kWarpSize) + " reached it with mask " +
                    hex(other.mask) + ": the lanes of a collective must name the same mask");
      }
      if (!same && (other.mask & bit) != 0) {
        fail(i, "calls " + call() + ", but lane " + std::to_string(j % kWarpSize) + " waits at " + wait_text(j) +
                    ": the lanes of a mask must reach the same collective");
      }
    }
  }
  warp.at_collective |= bit;
  if (joins_leader) {
    warp.with_leader |= bit;
  } else if (warp.with_leader == 0) {  // a new leader, joined by the lanes already waiting at its collective
    warp.leader = i;
    for (uint32_t waiting = warp.at_collective; waiting != 0; waiting &= waiting - 1) {
      const int j = first_lane + __builtin_ctz(waiting);
      if (same_collective(threads_[j], t)) warp.with_leader |= 1u << (j % kWarpSize);
    }
  } else {  // a collective other than the leader's (divergent lanes): scan for completion
    if ((warp.at_collective & t.mask) != t.mask) return;
    for (uint32_t lanes = t.mask; lanes != 0; lanes &= lanes - 1) {
      if (!same_collective(threads_[first_lane + __builtin_ctz(lanes)], t)) return;  // it waits for other lanes
    }
    complete(warp, first_lane, t.mask);
    return;
  }
  if ((warp.with_leader & t.mask) == t.mask) complete(warp, first_lane, t.mask);
}

void Emulator::complete(Warp& warp, int first_lane, uint32_t mask) {
  uint64_t ballot = 0;
  for (uint32_t lanes = mask; lanes != 0; lanes &= lanes - 1) {
    const int lane = __builtin_ctz(lanes);
    if (threads_[first_lane + lane].value != 0) ballot |= uint64_t{1} << lane;
  }
  for (uint32_t lanes = mask; lanes != 0; lanes &= lanes - 1) {
    const int lane = __builtin_ctz(lanes);
    Thread& t = threads_[first_lane + lane];
    const int segment = lane & ~(t.width - 1), end = segment + t.width;
    int source = lane;
    switch (t.kind) {
      case Collective::Shfl: source = segment + (t.arg & (t.width - 1)); break;
      case Collective::ShflUp: source = lane - t.arg >= segment ? lane - t.arg : lane; break;
      case Collective::ShflDown: source = lane + t.arg < end ? lane + t.arg : lane; break;
      case Collective::ShflXor: source = (lane ^ t.arg) < end ? (lane ^ t.arg) : lane; break;
      case Collective::Ballot:
      case Collective::SyncWarp: break;
    }
    if (source < 0 || source >= kWarpSize || ((mask >> source) & 1u) == 0) {
      fail(first_lane + lane, std::string(collective_name(t.kind)) + " at " + site_text(t.site) + " reads lane " +
                                  std::to_string(source) + ", which is not in its mask " + hex(mask));
    }
  }
  for (uint32_t lanes = mask; lanes != 0; lanes &= lanes - 1) {
    const int i = first_lane + __builtin_ctz(lanes);
    Thread& t = threads_[i];
    const int lane = i % kWarpSize, segment = lane & ~(t.width - 1), end = segment + t.width;
    switch (t.kind) {
      case Collective::Shfl: t.result = threads_[first_lane + segment + (t.arg & (t.width - 1))].value; break;
      case Collective::ShflUp: t.result = threads_[lane - t.arg >= segment ? i - t.arg : i].value; break;
      case Collective::ShflDown: t.result = threads_[lane + t.arg < end ? i + t.arg : i].value; break;
      case Collective::ShflXor:
        t.result = threads_[(lane ^ t.arg) < end ? first_lane + (lane ^ t.arg) : i].value;
        break;
      case Collective::Ballot: t.result = ballot; break;
      case Collective::SyncWarp: t.result = 0; break;
    }
  }
  for (uint32_t lanes = mask; lanes != 0; lanes &= lanes - 1) {
    const int i = first_lane + __builtin_ctz(lanes);
    threads_[i].wait = Wait::Runnable;
    set_runnable(i);
  }
  warp.at_collective &= ~mask;
  warp.with_leader &= ~mask;
}

// Nothing runnable and threads still waiting: say who waits where, one line per run of threads with the same wait.
std::string Emulator::deadlock_text() const {
  std::string text = "deadlock: every thread that has not exited waits, and none of the barriers or collectives can "
                     "complete:";
  for (int i = 0; i < threads_in_block_;) {
    int j = i + 1;
    while (j < threads_in_block_ && wait_text(j) == wait_text(i)) ++j;
    text += "\n  thread" + (j == i + 1 ? " " : "s " + std::to_string(i) + "-") + std::to_string(j - 1) + ": " +
            wait_text(i);
    i = j;
  }
  return text;
}

void Emulator::run_block(uint3 index) {
  block_index_ = index;
  g_coordinates.block = index;
  watchdog().block.store(index.x, std::memory_order_relaxed);
  std::fill(std::begin(runnable_), std::end(runnable_), 0);
  for (int i = 0; i < threads_in_block_; ++i) {
    Thread& t = threads_[i];
    t.wait = Wait::Runnable;
    t.fake_stack = nullptr;
    t.failure.clear();
    char* stack = stacks_.get(static_cast<size_t>(i));
    FiberStackNote::fresh(stack, kStackBytes);  // an abandoned fiber may have left poisoned frames
    t.context.make(stack, kStackBytes, &Emulator::fiber_main, this);
    set_runnable(i);
  }
  for (size_t w = 0; w < warps_.size(); ++w) {
    const int lanes = std::min(kWarpSize, threads_in_block_ - static_cast<int>(w) * kWarpSize);
    warps_[w] = Warp{};
    warps_[w].exists = lanes == kWarpSize ? ~0u : (1u << lanes) - 1u;
  }
  live_ = threads_in_block_;
  at_barrier_ = 0;
  first_exited_ = first_at_barrier_ = -1;
  for (;;) {
    const int i = pick();
    if (i < 0) {
      if (live_ == 0) return;
      fail(-1, deadlock_text());
    }
    clear_runnable(i);
    resume(i);
    switch (threads_[i].wait) {
      case Wait::Barrier: on_barrier(i); break;
      case Wait::Collective: on_collective(i); break;
      case Wait::Exited: on_exit(i); break;
      case Wait::Runnable: fail(i, "returned to the scheduler without a request (emulator bug)");
    }
  }
}

void Emulator::run(std::string_view kernel, dim3 grid, dim3 block, KernelThunk thunk, const void* args) {
  kernel_ = std::string(kernel);
  grid_ = grid;
  block_ = block;
  thunk_ = thunk;
  args_ = args;
  error_.clear();
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  // CUDA's launch checks ("invalid configuration argument")
  TORCH_CHECK(threads >= 1 && threads <= kMaxBlockThreads && block.z <= 64, "fastgan SIMT emulator: kernel ", kernel_,
              " launched with a block of ", block.x, "x", block.y, "x", block.z,
              " threads: CUDA needs 1 to 1024 (and z <= 64)");
  TORCH_CHECK(blocks >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 && grid.z <= 65535,
              "fastgan SIMT emulator: kernel ", kernel_, " launched with a grid of ", grid.x, "x", grid.y, "x",
              grid.z, " blocks: CUDA needs at least one, x < 2^31, y and z <= 65535");
  threads_in_block_ = static_cast<int>(threads);
  threads_.resize(static_cast<size_t>(threads_in_block_));
  warps_.assign(static_cast<size_t>((threads_in_block_ + kWarpSize - 1) / kWarpSize), Warp{});
  g_coordinates.block_dim = block;
  g_coordinates.grid_dim = grid;
  rng_.seed(config().seed);
  // The block order follows the schedule too: the last block to take grid_sum's ticket is a different one.
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), uint64_t{0});
  if (config().schedule == Schedule::HighestFirst) std::reverse(order.begin(), order.end());
  if (config().schedule == Schedule::Random) std::shuffle(order.begin(), order.end(), rng_);
  for (uint64_t b : order) {
    const uint64_t yz = b / grid.x;
    run_block(uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>(yz % grid.y),
                    static_cast<unsigned>(yz / grid.y)});
  }
}

}  // namespace

Config& config() {
  static Config c = [] {
    Config fresh;
    const char* env = std::getenv("FASTGAN_SIMT_WATCHDOG_S");
    fresh.watchdog_seconds = env != nullptr ? std::atof(env) : kDefaultWatchdogSeconds;
    return fresh;
  }();
  return c;
}

void syncthreads(const std::source_location& site) { g_emulator->barrier(site); }

uint64_t warp_collective(Collective kind, unsigned int mask, uint64_t bits, int arg, int width,
                         const std::source_location& site) {
  return g_emulator->collective(kind, mask, bits, arg, width, site);
}

void launch(std::string_view kernel, dim3 grid, dim3 block, KernelThunk thunk, const void* args) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  static auto* emulator = new Emulator();  // leaked with its stacks: reused by every launch
  static auto* names = new std::set<std::string>();  // stable strings for the watchdog, which may read late
  const char* name = names->emplace(kernel).first->c_str();
  std::string_view base = kernel.substr(0, kernel.find('<'));
  if (const size_t colon = base.rfind("::"); colon != std::string_view::npos) base.remove_prefix(colon + 2);
  ++g_launches[std::string(base)];
  Watchdog& dog = watchdog();
  dog.watch();
  struct Running {  // publishes the launch to the watchdog, and clears it on every exit path
    Running(Watchdog& w, const char* name) : w_(w) {
      w_.kernel.store(name, std::memory_order_relaxed);
      w_.started_ms.store(Watchdog::now_ms(), std::memory_order_relaxed);
    }
    ~Running() {
      w_.started_ms.store(0, std::memory_order_relaxed);
      g_emulator = nullptr;
    }
    Watchdog& w_;
  } running(dog, name);
  g_emulator = emulator;
  try {
    emulator->run(kernel, grid, block, thunk, args);
  } catch (const Failure&) {
    *stream_ticket() = 0;  // the next launch starts clean
    TORCH_CHECK(false, emulator->error());
  }
  const unsigned int left = std::exchange(*stream_ticket(), 0u);
  TORCH_CHECK(left == 0, "fastgan SIMT emulator: kernel ", kernel, " left the stream's grid ticket at ", left,
              ": the last block must reset it to 0, or the next launch on the stream counts its blocks wrong");
}

unsigned int* stream_ticket() {
  static unsigned int ticket = 0;
  return &ticket;
}

std::map<std::string, int64_t> launches() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_launches;
}

void reset_launches() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  g_launches.clear();
}

std::string kernel_name_from_signature(std::string_view signature) {
  constexpr std::string_view kKey = "kKernel = ";
  const size_t start = signature.find(kKey);
  if (start == std::string_view::npos) return std::string(signature);
  std::string_view name = signature.substr(start + kKey.size());
  if (!name.empty() && name.front() == '&') name.remove_prefix(1);  // Clang prints the address
  int depth = 0;  // the name ends at the first ';', ',' or ']' outside its template argument list
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (depth == 0 && (c == ';' || c == ',' || c == ']')) return std::string(name.substr(0, i));
  }
  return std::string(name);
}

}  // namespace fastgan::simt
