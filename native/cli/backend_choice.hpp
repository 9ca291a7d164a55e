// The choice of training backend for the commands: --device parsed into the CPU or a CUDA backend. It
// lives with the CLI, above the backends it creates, so the interface (backend/training_backend.hpp)
// depends on none of them.
#pragma once

#include <memory>
#include <string>

#include "backend/training_backend.hpp"

namespace capsnet {

// How the CUDA backend's cuBLAS products round. float32: what the CPU computes (the default, and what
// every CPU-parity test holds it to). tf32: the tensor cores' TF32 mode on Ampere and later (inputs
// rounded to 10 mantissa bits, float32 accumulation): several times the matmul rate, at a relative error
// near 3e-4 per product.
enum class GpuMatmul { float32, tf32 };

// Where to train, as the --device option spells it: "cpu", "cuda", "cuda:N" or "auto" (CUDA when this
// build has it and a GPU is present, else the CPU). `threads` applies to the CPU (0: every core),
// `matmul` to a CUDA device (asking for tf32 on the CPU is an error, not silently ignored). "cuda" and
// "auto" take the machine's usable GPU number `gpu_choice` (modulo their count): 0, the first, for one
// process; the process's rank among those on its machine in a run over several (one GPU each).
// Throws Error for an unknown name, or for a CUDA device this build or machine cannot provide.
std::unique_ptr<TrainingBackend> make_training_backend(const std::string& device, int threads,
                                                       GpuMatmul matmul = GpuMatmul::float32, int gpu_choice = 0);

}  // namespace capsnet
