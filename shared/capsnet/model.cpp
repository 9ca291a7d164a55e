// Composition of the layers into the CapsNet forward and backward passes.
#include "capsnet/model.hpp"

#include <algorithm>

#include "capsnet/capsules.hpp"
#include "capsnet/layers.hpp"
#include "capsnet/losses.hpp"
#include "capsnet/profile.hpp"

namespace capsnet {

template <class T>
std::vector<int> predicted_classes(const Tensor<T, 2>& lengths) {
    std::vector<int> classes(lengths.shape(0));
    const std::size_t J = lengths.shape(1);
    for (std::size_t b = 0; b < classes.size(); ++b) {
        const T* row = lengths.data() + b * J;
        classes[b] = static_cast<int>(std::max_element(row, row + J) - row);
    }
    return classes;
}

template <class T>
void decoder_forward(const Parameters<T>& params, const Tensor<T, 2>& input, Tensor<T, 2>& hidden1,
                     Tensor<T, 2>& hidden2, Tensor<T, 2>& reconstruction) {
    linear_forward(input, params.decoder0_weight, params.decoder0_bias, hidden1);
    leaky_relu_inplace(hidden1, T(0));
    linear_forward(hidden1, params.decoder1_weight, params.decoder1_bias, hidden2);
    leaky_relu_inplace(hidden2, T(0));
    linear_forward(hidden2, params.decoder2_weight, params.decoder2_bias, reconstruction);
    sigmoid_inplace(reconstruction);
}

template <class T>
void model_forward(const Config& config, const Parameters<T>& params, const Tensor<T, 4>& images, DecoderMask mask,
                   const std::vector<int>& labels, ForwardState<T>& state) {
    features_forward(config, params, images, state);
    head_forward(config, params, mask, labels, state);
}

template <class T>
void features_forward(const Config& config, const Parameters<T>& params, const Tensor<T, 4>& images,
                      ForwardState<T>& state) {
    state.images = images;
    {
        StageTimer timer(Stage::conv1_forward);
        conv2d_forward(images, params.conv1_weight, params.conv1_bias, 1, state.conv1_out);
        leaky_relu_inplace(state.conv1_out, T(config.conv1_leaky_slope));
    }
    {
        StageTimer timer(Stage::conv2_forward);
        conv2d_forward(state.conv1_out, params.primary_weight, params.primary_bias, primary_stride, state.primary_out,
                       &state.primary_patch_rows);
    }
    {
        StageTimer timer(Stage::primary_capsules);
        primary_capsules_forward(state.primary_out, primary_dims, config.squash_primary, state.primary_raw,
                                 state.primary_capsules);
    }
}

template <class T>
void head_forward(const Config& config, const Parameters<T>& params, DecoderMask mask, const std::vector<int>& labels,
                  ForwardState<T>& state) {
    // The preset decides whether the digit capsules have a bias; the layer adds one when it is given one.
    if ((params.digit_bias.size() > 0) != has_digit_bias(config))
        throw Error(std::string("model: the ") + preset_name(config.preset) + " preset " +
                    (has_digit_bias(config) ? "needs" : "has no") + " digit.bias, but the parameters " +
                    (has_digit_bias(config) ? "lack it" : "hold one"));
    {
        StageTimer timer(Stage::predictions_forward);
        predictions_forward(state.primary_capsules, params.digit_weight, params.digit_bias, state.u_hat);
    }
    {
        StageTimer timer(Stage::routing_forward);
        routing_forward(state.u_hat, config.routing_iterations, state.routing, state.digit_capsules);
        capsule_lengths(state.digit_capsules, state.lengths);
    }

    state.mask_labels.clear();
    if (mask == DecoderMask::none) return;
    StageTimer timer(Stage::decoder);
    const std::size_t B = state.primary_capsules.shape(0);
    if (mask == DecoderMask::labels) {
        if (labels.size() != B) throw Error("model: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(B));
        state.mask_labels = labels;
    } else {
        state.mask_labels = predicted_classes(state.lengths);
    }
    state.decoder_input = xt::zeros<T>({B, std::size_t(decoder_input)});
    for (std::size_t b = 0; b < B; ++b) {
        const int j = state.mask_labels[b];
        if (j < 0 || j >= digit_classes) throw Error("model: label " + std::to_string(j) + " out of range");
        std::copy_n(state.digit_capsules.data() + (b * digit_classes + j) * digit_dims, digit_dims,
                    state.decoder_input.data() + b * decoder_input + j * digit_dims);
    }
    decoder_forward(params, state.decoder_input, state.decoder_hidden1, state.decoder_hidden2, state.reconstruction);
}

template <class T>
Losses<T> model_loss(const Config& config, const ForwardState<T>& state, const std::vector<int>& labels) {
    StageTimer timer(Stage::losses);
    Losses<T> losses;
    losses.margin = margin_loss_forward(state.lengths, labels, config);
    if (config.reconstruct && !state.mask_labels.empty())
        losses.reconstruction = reconstruction_loss_forward(state.reconstruction, state.images, T(config.reconstruction_weight));
    return losses;
}

template <class T>
void model_backward(const Config& config, const Parameters<T>& params, const ForwardState<T>& state,
                    const std::vector<int>& labels, Parameters<T>& grads) {
    BackwardState<T> gradients;
    model_backward(config, params, state, labels, grads, gradients);
}

template <class T>
void model_backward(const Config& config, const Parameters<T>& params, const ForwardState<T>& state,
                    const std::vector<int>& labels, Parameters<T>& grads, BackwardState<T>& g) {
    if (grads.conv1_weight.size() != params.conv1_weight.size() || grads.digit_weight.shape() != params.digit_weight.shape() ||
        grads.digit_bias.shape() != params.digit_bias.shape())
        grads = parameters_zeros<T>(config);
    else
        parameters_fill_zero(grads);
    model_backward_accumulate(config, params, state, labels, T(1), grads, g);
}

// Every parameter gradient below is added (GEMMs with beta = 1, biases +=), so starting from the sum so
// far accumulates; the loss weight scales the two output gradients, and everything below is linear in them.
template <class T>
void model_backward_accumulate(const Config& config, const Parameters<T>& params, const ForwardState<T>& state,
                               const std::vector<int>& labels, T loss_weight, Parameters<T>& grads,
                               BackwardState<T>& g) {
    if (grads.conv1_weight.size() != params.conv1_weight.size() || grads.digit_weight.shape() != params.digit_weight.shape() ||
        grads.digit_bias.shape() != params.digit_bias.shape())
        throw Error("model_backward_accumulate: the gradients do not have the parameters' shapes");
    // The backward pass goes down only as far as the lowest trainable layer (config.trainable).
    const TrainableLayers& trains = config.trainable;
    const bool below_primary = trains.conv1;
    const bool below_digit = below_primary || trains.primary;
    const bool below_decoder = below_digit || trains.digit;
    // Groups whose gradient a lower layer's needs compute anyway: cleared at the end when frozen.
    const auto clear_frozen = [&] {
        if (!trains.decoder) {
            grads.decoder0_weight.fill(T(0)), grads.decoder0_bias.fill(T(0));
            grads.decoder1_weight.fill(T(0)), grads.decoder1_bias.fill(T(0));
            grads.decoder2_weight.fill(T(0)), grads.decoder2_bias.fill(T(0));
        }
        if (!trains.digit) grads.digit_weight.fill(T(0)), grads.digit_bias.fill(T(0));
    };

    Tensor<T, 3>& v_grad = g.digit_capsules;
    v_grad.resize(state.digit_capsules.shape());
    v_grad.fill(T(0));
    if (below_decoder) {
        StageTimer timer(Stage::losses);
        margin_loss_backward(state.digit_capsules, state.lengths, labels, config, v_grad);
        if (loss_weight != T(1)) v_grad *= loss_weight;
    }

    if (config.reconstruct && !state.mask_labels.empty()) {
        StageTimer timer(Stage::decoder);
        {
            StageTimer loss_timer(Stage::losses);
            reconstruction_loss_backward(state.reconstruction, state.images, T(config.reconstruction_weight), g.reconstruction);
            if (loss_weight != T(1)) g.reconstruction *= loss_weight;
        }
        sigmoid_backward_inplace(state.reconstruction, g.reconstruction);
        linear_backward(state.decoder_hidden2, params.decoder2_weight, g.reconstruction, grads.decoder2_weight,
                        grads.decoder2_bias, &g.decoder_hidden2);
        leaky_relu_backward_inplace(state.decoder_hidden2, g.decoder_hidden2, T(0));
        linear_backward(state.decoder_hidden1, params.decoder1_weight, g.decoder_hidden2, grads.decoder1_weight,
                        grads.decoder1_bias, &g.decoder_hidden1);
        leaky_relu_backward_inplace(state.decoder_hidden1, g.decoder_hidden1, T(0));
        linear_backward(state.decoder_input, params.decoder0_weight, g.decoder_hidden1, grads.decoder0_weight,
                        grads.decoder0_bias, below_decoder ? &g.decoder_input : nullptr);
        // The mask passes the gradient of the kept capsule only.
        if (below_decoder)
            for (std::size_t b = 0; b < v_grad.shape(0); ++b) {
                const int j = state.mask_labels[b];
                for (int d = 0; d < digit_dims; ++d) v_grad(b, j, d) += g.decoder_input(b, j * digit_dims + d);
            }
    }
    if (!below_decoder) return clear_frozen();

    {
        StageTimer timer(Stage::routing_backward);
        routing_backward(state.u_hat, state.routing, v_grad, config.routing_stop_gradient, g.u_hat);
    }
    {
        StageTimer timer(Stage::predictions_backward);
        predictions_backward(state.primary_capsules, params.digit_weight, g.u_hat, grads.digit_weight,
                             grads.digit_bias, below_digit ? &g.primary_capsules : nullptr);
    }
    clear_frozen();
    if (!below_digit) return;
    {
        StageTimer timer(Stage::primary_capsules);
        primary_capsules_backward(state.primary_raw, config.squash_primary, g.primary_capsules, g.primary_out,
                                  primary_channels, primary_side, primary_side);
    }
    {
        // conv2d_backward times its input-gradient part as Stage::conv2_input_grad itself.
        StageTimer timer(Stage::conv2_weight_grad);
        conv2d_backward(state.conv1_out, params.primary_weight, primary_stride, g.primary_out, grads.primary_weight,
                        grads.primary_bias, below_primary ? &g.conv1_out : nullptr, &state.primary_patch_rows);
    }
    if (!trains.primary) grads.primary_weight.fill(T(0)), grads.primary_bias.fill(T(0));
    if (!below_primary) return;
    {
        StageTimer timer(Stage::conv2_input_grad);
        leaky_relu_backward_inplace(state.conv1_out, g.conv1_out, T(config.conv1_leaky_slope));
    }
    StageTimer timer(Stage::conv1_weight_grad);
    conv2d_backward(state.images, params.conv1_weight, 1, g.conv1_out, grads.conv1_weight, grads.conv1_bias,
                    static_cast<Tensor<T, 4>*>(nullptr));
}

#define CAPSNET_INSTANTIATE(T)                                                                                     \
    template std::vector<int> predicted_classes<T>(const Tensor<T, 2>&);                                          \
    template void decoder_forward<T>(const Parameters<T>&, const Tensor<T, 2>&, Tensor<T, 2>&, Tensor<T, 2>&,      \
                                     Tensor<T, 2>&);                                                              \
    template void model_forward<T>(const Config&, const Parameters<T>&, const Tensor<T, 4>&, DecoderMask,         \
                                   const std::vector<int>&, ForwardState<T>&);                                    \
    template void features_forward<T>(const Config&, const Parameters<T>&, const Tensor<T, 4>&, ForwardState<T>&); \
    template void head_forward<T>(const Config&, const Parameters<T>&, DecoderMask, const std::vector<int>&,       \
                                  ForwardState<T>&);                                                              \
    template Losses<T> model_loss<T>(const Config&, const ForwardState<T>&, const std::vector<int>&);             \
    template void model_backward<T>(const Config&, const Parameters<T>&, const ForwardState<T>&,                  \
                                    const std::vector<int>&, Parameters<T>&);                                     \
    template void model_backward<T>(const Config&, const Parameters<T>&, const ForwardState<T>&,                  \
                                    const std::vector<int>&, Parameters<T>&, BackwardState<T>&);                  \
    template void model_backward_accumulate<T>(const Config&, const Parameters<T>&, const ForwardState<T>&,       \
                                               const std::vector<int>&, T, Parameters<T>&, BackwardState<T>&);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
