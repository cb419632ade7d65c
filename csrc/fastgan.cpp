// fastgan._C: the library's table of contents. Every op's schema is declared here, in one TORCH_LIBRARY block;
// kernels register per dispatch key next to their code (loss_ops.cpp, ...). pybind11 carries build metadata only:
// tensors cross into Python through torch.ops.fastgan.*, never through pybind11.
#include <pybind11/pybind11.h>
#include <torch/library.h>

#include "common/cpu_isa.h"
#include "common/parallel.h"

#ifndef FASTGAN_VERSION
#error "CMake defines FASTGAN_VERSION"
#endif

TORCH_LIBRARY(fastgan, m) {
  // ---- losses (csrc/losses): fused forward with the logged statistics, and the fused backward ----
  // Discriminator: loss(real) + loss(fake), each half reduced over its own elements. Returns (loss, stats):
  // loss is 0-d, or the flat per-element losses [real..., fake...] for reduction='none';
  // stats = [mean loss of the real half, of the fake half, mean D(real), mean D(fake)]: NaN for an empty half,
  // 0 where a statistic does not apply (no real half in a generator step, no halves in the rpgan pair loss).
  m.def("gan_loss(Tensor real, Tensor fake, str loss=\"bce\", float label_smoothing=0.0, "
        "str inputs=\"logits\", str reduction=\"mean\") -> (Tensor, Tensor)");
  m.def("gan_loss_backward(Tensor grad, Tensor real, Tensor fake, str loss, float label_smoothing, "
        "str inputs, str reduction) -> (Tensor, Tensor)");
  // Generator: loss(fake), or the rpgan pairing with real. Returns (loss, stats) as above.
  m.def("generator_loss(Tensor fake, Tensor? real=None, str loss=\"bce\", bool saturating=False, "
        "str inputs=\"logits\", str reduction=\"mean\") -> (Tensor, Tensor)");
  // Returns (grad_fake, grad_real); grad_real has shape [0] when real is None.
  m.def("generator_loss_backward(Tensor grad, Tensor fake, Tensor? real, str loss, bool saturating, "
        "str inputs, str reduction) -> (Tensor, Tensor)");

  // ---- samplers (csrc/sampling): fill `out` from fastgan's counter-based streams (csrc/common/philox.h) ----
  // Element i of out is made from word offset + i of stream (seed, stream); seed and stream are 64-bit patterns.
  // The raw words, as int64 holding the unsigned 32-bit value.
  m.def("fill_random_bits_(Tensor(a!) out, int seed, int offset, int stream) -> ()");
  // A distribution (csrc/sampling/sampling.h) with parameters a, b. offset_tensor, when given, is added to offset
  // on the device (a sampler object keeps its position there, so a captured CUDA graph draws anew on each replay);
  // a total below 0 fills out with NaN on every device (the CUDA kernel cannot raise).
  m.def("fill_latent_(Tensor(a!) out, str dist, float a, float b, int seed, int offset, Tensor? offset_tensor, "
        "int stream) -> ()");
  // Inverse-transform sampling from tabulated CDFs [rows, bins]: out[r, i] = the bin of sample offset + i of row r,
  // drawn from stream (seed, stream + r).
  m.def("sample_cdf_(Tensor cdf, Tensor(a!) out, int seed, int offset, int stream) -> ()");

  // ---- MCMC (csrc/mcmc): chains whose uniforms come from the streams; one launch each ----
  // MH-GAN's independent chain over the K proposals of each of C chains (logits [C, K]); returns the index of
  // each chain's final state (-1: the initial state) and whether any proposal was accepted.
  m.def("mh_select(Tensor logits, Tensor? init_logit, int seed, int offset, int stream) -> (Tensor, Tensor)");
  // One random-walk Metropolis-Hastings step t = step (+ *step_offset, read on the device, when given: a captured
  // CUDA graph replays with a counter there) of C chains (state [C, d]), fused and in place: (1) for t >= 0, where
  // log u < lp' - lp (u: word t C + c of stream + 1) the chain takes the proposal, log_prob its log-density, and
  // accepted counts one more; (2) steps burn_in, burn_in + thin, ... copy the state to samples[:, slot]; (3) the
  // next proposal, state + step_size z, z rows (t + 1) C .. of stream's standard normals. t = -1 only proposes.
  m.def("mh_step_(Tensor(a!) state, Tensor(b!) log_prob, Tensor(c!) proposal, Tensor proposal_log_prob, "
        "Tensor(d!) accepted, Tensor(e!) samples, int step, Tensor? step_offset, int burn_in, int thin, "
        "float step_size, int seed, int stream) -> ()");
  // Rejection sampling's accept test and compaction in one pass: index[:count] holds, ascending, the i where
  // log u_i < log_ratio[i] (u_i: word offset + i); index has log_ratio's numel, its tail is -1.
  m.def("accept_compact(Tensor log_ratio, int seed, int offset, int stream) -> (Tensor index, Tensor count)");

  // ---- direct losses (csrc/mmd): MMD^2 between samples x [n, d] and y [m, d], tiled, memory O((n + m) d) ----
  // (kernel_type, not kernel: Inductor's fallback for custom ops takes a parameter named `kernel` itself)
  // kernel_params: the bandwidths (rbf, laplacian), none (energy), [degree, gamma, coef] (polynomial)
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
    return info;
  });
  // Live values, not build facts: the thread count changes with torch.set_num_threads.
  module.def("parallel_threads", &fastgan::parallel_threads);
  module.def("last_parallel_threads", &fastgan::last_parallel_threads);
}
