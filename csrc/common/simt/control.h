// The SIMT emulator's test controls, as the module's bindings see them (csrc/fastgan.cpp; fastgan/_simt.py is
// their only user): the switch and its settings, the launch record, the self-test kernels. Plain C++, so the
// module init compiles without the emulator's headers; implemented in control.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace fastgan::simt {

struct Settings {
  bool on;              // ops on CPU tensors run the SIMT engine
  std::string variant;  // a planted bug's engine (CMakeLists.txt: fastgan_simt_mutant), "" for the real kernels
  std::string schedule; // "lowest", "highest" or "random"
  uint64_t seed;
  int sms, blocks_per_sm;
  double watchdog_seconds;
};
Settings settings();
void apply(const Settings& settings);  // checks the values (c10::Error, a Python RuntimeError)

// Launches per kernel (the base name, e.g. "loss_forward_kernel") since the last reset.
std::map<std::string, int64_t> launches();
void reset_launches();

// Runs one of the emulator's own test kernels (selftest.cpp; tests/test_simt.py) on `out` [count] int32.
void selftest(const std::string& name, int32_t* out, int64_t count);

}  // namespace fastgan::simt
