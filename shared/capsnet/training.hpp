// One optimisation step and batched evaluation, single-threaded: the reference the fast drivers are held
// to. The native CPU backend (native/cpu/cpu_backend) runs this step split over threads and must equal it
// bit for bit on one thread (tests/test_cpu_backend.cpp); the commands score through a backend
// (cli/evaluation: score_model), the wasm tests and the demo's fine-tuner use these directly.
#pragma once

#include <cstdint>
#include <vector>

#include "capsnet/adam.hpp"
#include "capsnet/model.hpp"

namespace capsnet {

// Buffers reused from step to step so a training loop does not reallocate ~1 GB per batch.
template <class T>
struct TrainWorkspace {
    ForwardState<T> state;
    BackwardState<T> gradients;  // of the activations
    Parameters<T> grads;         // of the parameters
};

// Forward with the labels as decoder mask, loss, backward, Adam update. Returns the batch's losses
// (computed before the update).
template <class T>
Losses<T> train_step(const Config& config, double learning_rate, const Tensor<T, 4>& images,
                     const std::vector<int>& labels, Parameters<T>& params, AdamState<T>& adam,
                     TrainWorkspace<T>& workspace);

struct Evaluation {
    std::size_t correct = 0;
    std::size_t total = 0;
    double accuracy() const { return total ? double(correct) / double(total) : 0.0; }
};

// Classifies samples [first, first + count) of an MNIST-style byte array (no augmentation, no decoder).
template <class T>
Evaluation evaluate(const Config& config, const Parameters<T>& params, const std::vector<std::uint8_t>& pixels,
                    const std::vector<std::uint8_t>& labels, std::size_t first, std::size_t count,
                    std::size_t batch_size);

}  // namespace capsnet
