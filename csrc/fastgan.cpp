// fastgan._C: the library's table of contents. Every op's schema is declared here, in one TORCH_LIBRARY block;
// kernels register per dispatch key next to their code (loss_ops.cpp, ...). pybind11 carries build metadata only:
// tensors cross into Python through torch.ops.fastgan.*, never through pybind11.
#include <pybind11/pybind11.h>
#include <torch/library.h>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/tables.h"
#ifdef FASTGAN_SIMT
#include "common/simt/control.h"
#endif

#ifndef FASTGAN_VERSION
#error "CMake defines FASTGAN_VERSION"
#endif

// One line per op; what each computes is in its family's <family>_ops.h (the engine's contract) and in the Python
// wrapper's docstring. Seeds and streams are 64-bit patterns; word i of stream (seed, stream) is philox.h's.
TORCH_LIBRARY(fastgan, m) {
  // ---- losses (csrc/losses): (loss, stats = [loss real, loss fake, mean D(real), mean D(fake)]) ----
  m.def("gan_loss(Tensor real, Tensor fake, str loss=\"bce\", float label_smoothing=0.0, "
        "str inputs=\"logits\", str reduction=\"mean\") -> (Tensor, Tensor)");  // D: loss(real) + loss(fake)
  m.def("gan_loss_backward(Tensor grad, Tensor real, Tensor fake, str loss, float label_smoothing, "
        "str inputs, str reduction) -> (Tensor, Tensor)");
  m.def("generator_loss(Tensor fake, Tensor? real=None, str loss=\"bce\", bool saturating=False, "
        "str inputs=\"logits\", str reduction=\"mean\") -> (Tensor, Tensor)");  // G: loss(fake), or rpgan's pairs
  m.def("generator_loss_backward(Tensor grad, Tensor fake, Tensor? real, str loss, bool saturating, "
        "str inputs, str reduction) -> (Tensor, Tensor)");  // (grad_fake, grad_real: [0] when real is None)

  // ---- samplers (csrc/sampling): out[i] from word offset + i of stream (seed, stream) ----
  m.def("fill_random_bits_(Tensor(a!) out, int seed, int offset, int stream) -> ()");  // raw words, in int64
  m.def("fill_latent_(Tensor(a!) out, str dist, float a, float b, int seed, int offset, Tensor? offset_tensor, "
        "int stream) -> ()");  // a distribution; offset_tensor is added on the device
  m.def("sample_cdf_(Tensor cdf, Tensor(a!) out, int seed, int offset, int stream) -> ()");  // inverse transform

  // ---- MCMC (csrc/mcmc): chains whose uniforms come from the streams, one launch each ----
  m.def("mh_select(Tensor logits, Tensor? init_logit, int seed, int offset, int stream) -> (Tensor, Tensor)");
  m.def("mh_step_(Tensor(a!) state, Tensor(b!) log_prob, Tensor(c!) proposal, Tensor proposal_log_prob, "
        "Tensor(d!) accepted, Tensor(e!) samples, int step, Tensor? step_offset, int burn_in, int thin, "
        "float step_size, int seed, int stream) -> ()");  // one fused random-walk MH step, in place
  m.def("accept_compact(Tensor log_ratio, int seed, int offset, int stream) -> (Tensor index, Tensor count)");

  // ---- gradient penalties (csrc/penalty): (weight mean_i (|g_i| - centre)^2, norms |g_i|) over rows of grads ----
  m.def("gradient_penalty(Tensor grads, float centre, float weight) -> (Tensor, Tensor)");
  m.def("gradient_penalty_backward(Tensor grad, Tensor grads, Tensor norms, float centre, float weight) -> Tensor");

  // ---- MMD (csrc/mmd): kernel_type, not kernel (Inductor's custom-op fallback takes a `kernel` itself) ----
  m.def("mmd(Tensor x, Tensor y, float[] kernel_params, str kernel_type=\"rbf\", bool unbiased=True) -> Tensor");
  m.def("mmd_backward(Tensor grad, Tensor x, Tensor y, float[] kernel_params, str kernel_type, bool unbiased) "
        "-> (Tensor, Tensor)");
}

namespace py = pybind11;

PYBIND11_MODULE(_C, module) {
  module.doc() = "fastgan's compiled kernels; the ops live under torch.ops.fastgan";
  module.def("build_info", [] {
    py::dict info;
    info["version"] = FASTGAN_VERSION;
    info["torch_version"] = FASTGAN_TORCH_VERSION;
#ifdef FASTGAN_WITH_CUDA
    info["cuda"] = true;
    info["cuda_archs"] = FASTGAN_CUDA_ARCHS;
    info["cuda_compiler"] = FASTGAN_CUDA_COMPILER;
#else
    info["cuda"] = false;
    info["cuda_archs"] = "";
    info["cuda_compiler"] = "";
#endif
    info["compiler"] = FASTGAN_CXX_COMPILER;
    info["cpu_isas"] = fastgan::compiled_cpu_isas();
    info["cpu_isa"] = fastgan::cpu_isa_name(fastgan::cpu_isa());
    info["parallel_backend"] = fastgan::parallel_backend();
#ifdef FASTGAN_SIMT
    info["simt"] = true;  // the emulator is compiled in (it runs only under fastgan/_simt.py's test switch)
#else
    info["simt"] = false;
#endif
#ifdef FASTGAN_SIMT_ASAN
    info["simt_asan"] = true;  // its objects are built with AddressSanitizer (make test-simt-asan)
#else
    info["simt_asan"] = false;
#endif
    return info;
  });
  // The C++ tables that fastgan's Python tables must agree with (tests/test_tables.py).
  module.def("loss_families", [] {
    py::list rows;
    for (const auto& f : fastgan::loss_family_rows()) {
      py::dict row;
      row["name"] = f.name;
      row["smoothable"] = f.smoothable;
      row["saturating_form"] = f.saturating_form;
      row["accepts_probs"] = f.accepts_probs;
      row["paired"] = f.paired;
      rows.append(row);
    }
    return rows;
  });
  module.def("distributions", [] {
    py::list rows;
    for (const auto& [name, a, b, uniform] : fastgan::distribution_rows()) {
      rows.append(py::make_tuple(name, a, b, uniform));
    }
    return rows;
  });
  // The float32 softplus and sigmoid against float64 (tests/test_softplus.py), in the CPU ISA in use.
  module.def("softplus_sweep", [](uint32_t first, uint32_t last, uint32_t stride) {
    const auto r = fastgan::softplus_sweep(first, last, stride);
    py::dict out;
    const char* paths[2] = {"vector", "scalar"};
    for (int p = 0; p < 2; ++p) {
      out[py::str(std::string("softplus_") + paths[p])] = py::make_tuple(r.softplus[p].ulps, r.softplus[p].at);
      out[py::str(std::string("sigmoid_") + paths[p])] = py::make_tuple(r.sigmoid[p].ulps, r.sigmoid[p].at);
    }
    out["count"] = r.count;
    out["non_finite_mismatches"] = r.non_finite_mismatches;
    return out;
  });
  // Live values, not build facts: the thread count changes with torch.set_num_threads.
  module.def("parallel_threads", &fastgan::parallel_threads);
  module.def("last_parallel_threads", &fastgan::last_parallel_threads);
#ifdef FASTGAN_SIMT
  // The SIMT emulator's test switches (fastgan/_simt.py is their only user). Its errors are c10::Errors, whose
  // what() carries a C++ backtrace: Python gets the message, as from torch's own bindings.
  py::register_local_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });
  module.def("_simt_get", [] {
    const fastgan::simt::Settings s = fastgan::simt::settings();
    py::dict state;
    state["on"] = s.on;
    state["variant"] = s.variant;
    state["schedule"] = s.schedule;
    state["seed"] = s.seed;
    state["sms"] = s.sms;
    state["blocks_per_sm"] = s.blocks_per_sm;
    state["watchdog_seconds"] = s.watchdog_seconds;
    return state;
  });
  module.def("_simt_set", [](const py::dict& state) {
    fastgan::simt::apply({state["on"].cast<bool>(), state["variant"].cast<std::string>(),
                          state["schedule"].cast<std::string>(), state["seed"].cast<uint64_t>(),
                          state["sms"].cast<int>(), state["blocks_per_sm"].cast<int>(),
                          state["watchdog_seconds"].cast<double>()});
  });
  module.def("_simt_launches", [] {
    py::dict counts;
    for (const auto& [kernel, count] : fastgan::simt::launches()) counts[py::str(kernel)] = count;
    return counts;
  });
  module.def("_simt_reset_launches", &fastgan::simt::reset_launches);
  module.def("_simt_selftest", [](const std::string& name, int64_t address, int64_t count) {
    fastgan::simt::selftest(name, reinterpret_cast<int32_t*>(address), count);
  });
#endif
}
