// The two losses of the paper: the margin loss on the digit capsules' lengths, and the decoder's
// reconstruction loss. Both are averaged over the batch, as in the seed implementation.
#pragma once

#include <vector>

#include "capsnet/common.hpp"
#include "capsnet/config.hpp"

namespace capsnet {

// lengths [batch, classes] = |v_j| of v [batch, classes, dims].
template <class T>
void capsule_lengths(const Tensor<T, 3>& v, Tensor<T, 2>& lengths);

// (1/B) sum_b sum_j T_j max(0, m+ - |v_j|)^2 + lambda (1 - T_j) max(0, |v_j| - m-)^2
template <class T>
T margin_loss_forward(const Tensor<T, 2>& lengths, const std::vector<int>& labels, const Config& config);
// Adds dL/dv to v_grad (resized and zeroed first if its shape differs from v).
template <class T>
void margin_loss_backward(const Tensor<T, 3>& v, const Tensor<T, 2>& lengths, const std::vector<int>& labels,
                          const Config& config, Tensor<T, 3>& v_grad);

// weight * (1/B) sum of squared pixel errors; images [batch, 1, 28, 28], reconstruction [batch, 784].
template <class T>
T reconstruction_loss_forward(const Tensor<T, 2>& reconstruction, const Tensor<T, 4>& images, T weight);
template <class T>
void reconstruction_loss_backward(const Tensor<T, 2>& reconstruction, const Tensor<T, 4>& images, T weight,
                                  Tensor<T, 2>& reconstruction_grad);

}  // namespace capsnet
