// Squash and dynamic routing between capsules (Sabour et al. 2017, Procedure 1), forward and backward.
// This is the heart of the model: start reading here.
//
//   b = 0
//   repeat r = 1..R:  c_i = softmax_j(b_i)          coupling coefficients, sum to 1 over the classes j
//                     s_j = sum_i c_ij u_hat_ij      weighted vote of the primary capsules i
//                     v_j = squash(s_j)              |v_j| in [0, 1) is the probability of class j
//                     b_ij += u_hat_ij . v_j         agreement, skipped after the last iteration
//
// The backward pass differentiates through every iteration: the coupling coefficients depend on
// u_hat through the agreements, and the seed implementation does not stop those gradients.
#pragma once

#include <cstddef>

#include "capsnet/common.hpp"

namespace capsnet {

// squash(s) = |s|^2 / (1 + |s|^2) * s / |s|, applied to `vectors` consecutive vectors of `dims` values.
// squash(0) = 0, and its derivative there is 0 too (v ~ |s| s near 0), so no epsilon is needed.
template <class T>
void squash_forward(const T* s, T* v, std::size_t vectors, int dims);
// s_grad = (dv/ds)^T v_grad for each vector.
template <class T>
void squash_backward(const T* s, const T* v_grad, T* s_grad, std::size_t vectors, int dims);

// What the backward pass needs from each iteration.
template <class T>
struct RoutingState {
    Tensor<T, 4> coupling;  // c, [iterations, batch, inputs, classes]
    Tensor<T, 4> s;         // [iterations, batch, classes, dims]
    Tensor<T, 4> v;         // [iterations, batch, classes, dims]; v[iterations-1] is the output
};

// u_hat: [batch, inputs, classes, dims] predictions. Writes the output capsules v [batch, classes, dims].
template <class T>
void routing_forward(const Tensor<T, 4>& u_hat, int iterations, RoutingState<T>& state, Tensor<T, 3>& v);

// Gradient of the loss with respect to u_hat, given its gradient with respect to the output v.
// stop_gradient treats the coupling coefficients as constants (only the last iteration's weighted sum
// is differentiated), an option some implementations use; the default (false) is the exact gradient.
template <class T>
void routing_backward(const Tensor<T, 4>& u_hat, const RoutingState<T>& state, const Tensor<T, 3>& v_grad,
                      bool stop_gradient, Tensor<T, 4>& u_hat_grad);

// The same two functions written loop by loop after the equations above: the readable ground truth
// that the tests hold the fused versions to (routing.cpp says what the fusion changes).
template <class T>
void routing_forward_reference(const Tensor<T, 4>& u_hat, int iterations, RoutingState<T>& state, Tensor<T, 3>& v);
template <class T>
void routing_backward_reference(const Tensor<T, 4>& u_hat, const RoutingState<T>& state, const Tensor<T, 3>& v_grad,
                                bool stop_gradient, Tensor<T, 4>& u_hat_grad);

}  // namespace capsnet
