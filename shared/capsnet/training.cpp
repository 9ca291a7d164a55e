// Training step and evaluation loop.
#include "capsnet/training.hpp"

#include <algorithm>
#include <numeric>

#include "capsnet/batch.hpp"

namespace capsnet {

template <class T>
Losses<T> train_step(const Config& config, double learning_rate, const Tensor<T, 4>& images,
                     const std::vector<int>& labels, Parameters<T>& params, AdamState<T>& adam,
                     TrainWorkspace<T>& workspace) {
    const DecoderMask mask = config.reconstruct ? DecoderMask::labels : DecoderMask::none;
    model_forward(config, params, images, mask, labels, workspace.state);
    const Losses<T> losses = model_loss(config, workspace.state, labels);
    model_backward(config, params, workspace.state, labels, workspace.grads, workspace.gradients);
    adam_update(config, learning_rate, workspace.grads, params, adam);
    return losses;
}

template <class T>
Evaluation evaluate(const Config& config, const Parameters<T>& params, const std::vector<std::uint8_t>& pixels,
                    const std::vector<std::uint8_t>& labels, std::size_t first, std::size_t count,
                    std::size_t batch_size) {
    Evaluation result;
    ForwardState<T> state;
    Tensor<T, 4> images;
    std::vector<int> batch_labels;
    Rng unused(0);  // no augmentation at evaluation time
    for (std::size_t start = first; start < first + count; start += batch_size) {
        std::vector<std::size_t> indices(std::min(batch_size, first + count - start));
        std::iota(indices.begin(), indices.end(), start);
        make_batch(pixels, labels, image_side, indices, 0, unused, images, batch_labels);
        model_forward(config, params, images, DecoderMask::none, {}, state);
        const std::vector<int> predicted = predicted_classes(state.lengths);
        for (std::size_t i = 0; i < predicted.size(); ++i) result.correct += predicted[i] == batch_labels[i];
        result.total += predicted.size();
    }
    return result;
}

template Losses<float> train_step<float>(const Config&, double, const Tensor<float, 4>&, const std::vector<int>&,
                                         Parameters<float>&, AdamState<float>&, TrainWorkspace<float>&);
template Losses<double> train_step<double>(const Config&, double, const Tensor<double, 4>&, const std::vector<int>&,
                                           Parameters<double>&, AdamState<double>&, TrainWorkspace<double>&);
template Evaluation evaluate<float>(const Config&, const Parameters<float>&, const std::vector<std::uint8_t>&,
                                    const std::vector<std::uint8_t>&, std::size_t, std::size_t, std::size_t);
template Evaluation evaluate<double>(const Config&, const Parameters<double>&, const std::vector<std::uint8_t>&,
                                     const std::vector<std::uint8_t>&, std::size_t, std::size_t, std::size_t);

}  // namespace capsnet
