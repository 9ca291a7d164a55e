// The CUDA training backend (see backend/training_backend.hpp): parameters, gradients, Adam moments and
// activations live on the GPU; a training step is one upload of the batch, kernel launches on one
// stream, and one download of the step's losses and correct count.
#pragma once

#include <memory>

#include "backend/training_backend.hpp"

namespace capsnet {

// tf32: cuBLAS may use the tensor cores' TF32 mode for its products (see GpuMatmul, cli/backend_choice.hpp).
std::unique_ptr<TrainingBackend> make_cuda_backend(int device, bool tf32 = false);

}  // namespace capsnet
