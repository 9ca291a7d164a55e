// The two capsule layers around the routing: primary capsules (regrouping the primary convolution's
// channels into 8-D vectors) and the prediction vectors u_hat = W u (+ bias in the seed preset).
#pragma once

#include "capsnet/common.hpp"

namespace capsnet {

// conv_out [batch, types*dims, h, w] -> capsules [batch, types*h*w, dims]: capsule i = t*h*w + y*w + x
// takes channels dims*t .. dims*t+dims-1 at (y, x). `raw` keeps the regrouped values before the optional
// squash (the backward pass needs them); `capsules` equals `raw` when squash is off.
template <class T>
void primary_capsules_forward(const Tensor<T, 4>& conv_out, int dims, bool squash, Tensor<T, 3>& raw,
                              Tensor<T, 3>& capsules);
template <class T>
void primary_capsules_backward(const Tensor<T, 3>& raw, bool squash, const Tensor<T, 3>& capsules_grad,
                               Tensor<T, 4>& conv_out_grad, int channels, int height, int width);

// u_hat[b, i, j, :] = W[w(i), j] u[b, i] + bias[w(i), j], with W [n, classes, out_dims, in_dims].
// n == inputs: one matrix per capsule (paper). n < inputs: capsule i uses W[i / (inputs / n)], one matrix
// per capsule type shared over its grid (seed). `bias` may be empty (paper has none).
template <class T>
void predictions_forward(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight, const Tensor<T, 3>& bias,
                         Tensor<T, 4>& u_hat);
// Accumulates weight_grad (and bias_grad when bias is used); writes capsules_grad.
template <class T>
void predictions_backward(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight, const Tensor<T, 4>& u_hat_grad,
                          Tensor<T, 4>& weight_grad, Tensor<T, 3>& bias_grad, Tensor<T, 3>& capsules_grad);
// The same, skipping the capsules' gradient when capsules_grad is null (no layer below trains).
template <class T>
void predictions_backward(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight, const Tensor<T, 4>& u_hat_grad,
                          Tensor<T, 4>& weight_grad, Tensor<T, 3>& bias_grad, Tensor<T, 3>* capsules_grad);

}  // namespace capsnet
