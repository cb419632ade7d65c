// One dispatch mechanism for every op family (a private DispatchStub). A family's x_ops.cpp registers its entry
// points for both the CPU and the CUDA dispatch keys; each entry point checks the arguments once, allocates the
// outputs and calls the device's engine, a struct of function pointers that the device file (x_cpu.cpp,
// x_cuda.cu) fills and registers at load time. The device files hold kernels only, and a CUDA call in a build
// without CUDA kernels gets the same message from every family.
//
// A third slot holds the SIMT engine (x_simt.cpp: the CUDA kernels run by the emulator on the CPU), in builds with
// FASTGAN_SIMT only. It serves CPU tensors while the test switch (fastgan/_simt.py) is on, and never otherwise:
// the emulator is a test tool, not a fallback.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <map>
#include <string>
#include <string_view>

namespace fastgan {

// The SIMT emulator's test switch. `variant` names a test-only alternate SIMT engine (a planted bug, see
// CMakeLists.txt: fastgan_simt_mutant); "" is the real kernels.
struct SimtSwitch {
  std::atomic<bool> on{false};
  std::string variant;
};

inline SimtSwitch& simt_switch() {
  static SimtSwitch s;
  return s;
}

template <class Engine>
class EngineTable {
 public:
  // Called once per device, from a namespace-scope initialiser of the device file.
  static bool add(c10::DeviceType type, const Engine& engine) {
    slot(type) = &engine;
    return true;
  }

  static bool add_simt(const Engine& engine, std::string_view variant = "") {
    simt_engines()[std::string(variant)] = &engine;
    return true;
  }

  // The engine of a device type; `op` names the caller in the errors. Entry points are registered per dispatch key
  // (CPU, CUDA) and ask for that key's engine before anything else, so a missing one is the first error.
  static const Engine& of(c10::DeviceType type, const char* op) {
    TORCH_CHECK(type == c10::DeviceType::CPU || type == c10::DeviceType::CUDA, op,
                ": fastgan runs on CPU and CUDA tensors, got ", c10::DeviceTypeName(type));
    if (type == c10::DeviceType::CPU && simt_switch().on.load(std::memory_order_relaxed)) return simt(op);
    const Engine* engine = slot(type);
    TORCH_CHECK(engine != nullptr, op, ": this build of fastgan has no ", c10::DeviceTypeName(type),
                " kernels (fastgan.build_info() tells what it was built with); rebuild with FASTGAN_CUDA=1");
    return *engine;
  }

 private:
  static const Engine*& slot(c10::DeviceType type) {
    static const Engine* cpu = nullptr;
    static const Engine* cuda = nullptr;
    return type == c10::DeviceType::CUDA ? cuda : cpu;
  }

  static std::map<std::string, const Engine*>& simt_engines() {
    static std::map<std::string, const Engine*> engines;
    return engines;
  }

  // The switched-on variant where this family has one, else its real SIMT engine.
  static const Engine& simt(const char* op) {
    const auto& engines = simt_engines();
    auto found = engines.find(simt_switch().variant);
    if (found == engines.end()) found = engines.find("");
    TORCH_CHECK(found != engines.end(), op, ": the SIMT emulator is switched on, but this build has no SIMT engine "
                "(build with FASTGAN_SIMT=ON)");
    return *found->second;
  }
};

}  // namespace fastgan
