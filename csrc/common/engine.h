// One dispatch mechanism for every op family (a private DispatchStub). A family's x_ops.cpp registers its entry
// points for both the CPU and the CUDA dispatch keys; each entry point checks the arguments once, allocates the
// outputs and calls the device's engine, a struct of function pointers that the device file (x_cpu.cpp,
// x_cuda.cu) fills and registers at load time. The device files hold kernels only, and a CUDA call in a build
// without CUDA kernels gets the same message from every family.
#pragma once

#include <ATen/ATen.h>

namespace fastgan {

template <class Engine>
class EngineTable {
 public:
  // Called once per device, from a namespace-scope initialiser of the device file.
  static bool add(c10::DeviceType type, const Engine& engine) {
    slot(type) = &engine;
    return true;
  }

  // The engine of a device type; `op` names the caller in the errors. Entry points are registered per dispatch key
  // (CPU, CUDA) and ask for that key's engine before anything else, so a missing one is the first error.
  static const Engine& of(c10::DeviceType type, const char* op) {
    TORCH_CHECK(type == c10::DeviceType::CPU || type == c10::DeviceType::CUDA, op,
                ": fastgan runs on CPU and CUDA tensors, got ", c10::DeviceTypeName(type));
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
};

}  // namespace fastgan
