// The interface every training device implements, so the `capsnet` command's loop (epochs, checkpoints,
// logging) is written once: the CPU backend (native/cpu), the CUDA backend (native/cuda), and the
// data-parallel wrapper over processes (native/distributed). Which one a command gets is the CLI's
// choice (cli/backend_choice.hpp); nothing here depends on the backends.
// A backend owns the parameters and the optimiser state while it trains; the driver reads them back
// (parameters(), adam_state()) to checkpoint or evaluate on the host.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "capsnet/adam.hpp"
#include "capsnet/model.hpp"

namespace capsnet {

// What one training step reports: the batch's mean losses and how many samples the longest capsule got
// right (on the augmented training images, before the update).
struct StepReport {
    double margin_loss = 0;
    double reconstruction_loss = 0;
    int correct = 0;
};

class TrainingBackend {
public:
    virtual ~TrainingBackend() = default;
    virtual std::string description() const = 0;  // e.g. "cpu (2 threads, openblas+xsimd GEMM)"

    // Takes the model and optimiser state to train from (fresh, or out of a checkpoint).
    virtual void load(const Config& config, const Parameters<float>& params, const AdamState<float>& adam) = 0;
    virtual StepReport train_step(double learning_rate, const Tensor<float, 4>& images,
                                  const std::vector<int>& labels) = 0;
    // Capsule lengths [B, 10] of a batch, no decoder: evaluation.
    virtual Tensor<float, 2> capsule_lengths(const Tensor<float, 4>& images) = 0;

    virtual const Config& config() const = 0;
    virtual const Parameters<float>& parameters() = 0;
    virtual const AdamState<float>& adam_state() = 0;

    // A run over several processes (native/distributed): from now on every train_step hands `combine` the
    // gradient of this process's images, flat, in a layout that every process of the run shares; combine
    // replaces it, in place, with the gradient of the whole batch, which the optimiser then applies. The
    // gradient handed over is the mean over this process's images (its shards already summed).
    using GradientCombiner = std::function<void(float* gradient, std::size_t count)>;
    virtual void combine_gradients_with(GradientCombiner combine) = 0;
};

}  // namespace capsnet
