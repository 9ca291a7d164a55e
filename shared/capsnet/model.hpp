// The whole CapsNet: conv1 -> primary capsules -> predictions -> dynamic routing -> digit capsules,
// plus the masked decoder, the losses and the backward pass through all of it.
#pragma once

#include <vector>

#include "capsnet/common.hpp"
#include "capsnet/config.hpp"
#include "capsnet/parameters.hpp"
#include "capsnet/routing.hpp"

namespace capsnet {

// Everything the forward pass computes that the backward pass (or a visualisation) reads.
template <class T>
struct ForwardState {
    Tensor<T, 4> images;             // [B, 1, 28, 28]
    Tensor<T, 4> conv1_out;          // [B, 256, 20, 20], after the activation
    Tensor<T, 2> primary_patch_rows; // [B * 36, 20736]: conv2's input patches, kept for its weight gradient
    Tensor<T, 4> primary_out;        // [B, 256, 6, 6]
    Tensor<T, 3> primary_raw;        // [B, 1152, 8], before the optional squash
    Tensor<T, 3> primary_capsules;   // [B, 1152, 8]
    Tensor<T, 4> u_hat;              // [B, 1152, 10, 16]
    RoutingState<T> routing;
    Tensor<T, 3> digit_capsules;     // [B, 10, 16]
    Tensor<T, 2> lengths;            // [B, 10]
    // Decoder (only when it ran).
    std::vector<int> mask_labels;    // which capsule each sample's decoder input keeps
    Tensor<T, 2> decoder_input;      // [B, 160], class-major (j * 16 + d)
    Tensor<T, 2> decoder_hidden1;    // [B, 512]
    Tensor<T, 2> decoder_hidden2;    // [B, 1024]
    Tensor<T, 2> reconstruction;     // [B, 784]
};

// The gradients of the activations (named as in ForwardState), kept only so that a training loop can
// reuse their storage from step to step.
template <class T>
struct BackwardState {
    Tensor<T, 3> digit_capsules;     // [B, 10, 16]
    Tensor<T, 2> reconstruction;     // [B, 784]
    Tensor<T, 2> decoder_hidden2;    // [B, 1024]
    Tensor<T, 2> decoder_hidden1;    // [B, 512]
    Tensor<T, 2> decoder_input;      // [B, 160]
    Tensor<T, 4> u_hat;              // [B, 1152, 10, 16]
    Tensor<T, 3> primary_capsules;   // [B, 1152, 8]
    Tensor<T, 4> primary_out;        // [B, 256, 6, 6]
    Tensor<T, 4> conv1_out;          // [B, 256, 20, 20]
};

template <class T>
struct Losses {
    T margin = 0;
    T reconstruction = 0;  // already multiplied by the reconstruction weight
    T total() const { return margin + reconstruction; }
};

enum class DecoderMask {
    none,         // skip the decoder
    labels,       // mask with the given labels (training)
    predictions,  // mask with the longest capsule (inference)
};

template <class T>
void model_forward(const Config& config, const Parameters<T>& params, const Tensor<T, 4>& images, DecoderMask mask,
                   const std::vector<int>& labels, ForwardState<T>& state);

// model_forward in two parts. features_forward: conv1, conv2 and the primary capsules (state.images kept
// as the reconstruction target). head_forward: the digit capsules' predictions, routing and the decoder,
// from state.primary_capsules and state.images alone. A caller that trains only the head (conv1 and
// primary frozen) can keep the primary capsules of fixed images and run the head only; model_backward
// then reads nothing the features part wrote but those two.
template <class T>
void features_forward(const Config& config, const Parameters<T>& params, const Tensor<T, 4>& images,
                      ForwardState<T>& state);
template <class T>
void head_forward(const Config& config, const Parameters<T>& params, DecoderMask mask, const std::vector<int>& labels,
                  ForwardState<T>& state);

// Margin loss, plus the reconstruction loss when config.reconstruct and the decoder ran.
template <class T>
Losses<T> model_loss(const Config& config, const ForwardState<T>& state, const std::vector<int>& labels);

// Gradients of model_loss with respect to every parameter; `grads` is overwritten. The frozen groups of
// config.trainable get zeros, and the pass stops below the lowest trainable group.
template <class T>
void model_backward(const Config& config, const Parameters<T>& params, const ForwardState<T>& state,
                    const std::vector<int>& labels, Parameters<T>& grads);
// The same, with the activations' gradients in `gradients` (reused storage).
template <class T>
void model_backward(const Config& config, const Parameters<T>& params, const ForwardState<T>& state,
                    const std::vector<int>& labels, Parameters<T>& grads, BackwardState<T>& gradients);

// Adds loss_weight times the gradients of this batch's model_loss into `grads` (zeros, or the sum so far;
// parameter shapes) instead of overwriting them: the micro-batches of a larger batch summed in place
// (loss_weight = micro-batch / batch), without a second set of gradients to add. Frozen groups stay zero.
template <class T>
void model_backward_accumulate(const Config& config, const Parameters<T>& params, const ForwardState<T>& state,
                               const std::vector<int>& labels, T loss_weight, Parameters<T>& grads,
                               BackwardState<T>& gradients);

// The decoder alone, on any [B, 160] input: reconstructions for the visualisations.
template <class T>
void decoder_forward(const Parameters<T>& params, const Tensor<T, 2>& input, Tensor<T, 2>& hidden1,
                     Tensor<T, 2>& hidden2, Tensor<T, 2>& reconstruction);

// Index of the longest capsule of each sample.
template <class T>
std::vector<int> predicted_classes(const Tensor<T, 2>& lengths);

}  // namespace capsnet
