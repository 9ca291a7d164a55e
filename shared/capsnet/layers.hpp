// The conventional layers: 2-D convolution (lowered to GEMMs), fully connected, and the element-wise
// activations. Forward and backward, templated on the scalar so the gradient checks can run in double.
// Layouts follow PyTorch: activations [batch, channels, height, width], conv weights [out, in, kh, kw],
// linear weights [out, in].
#pragma once

#include "capsnet/common.hpp"

namespace capsnet {

// How a convolution becomes matrix products (layers.cpp explains the two): `automatic` picks patch
// rows when an image has fewer output positions than the layer has output channels (CapsNet's primary
// capsules), columns otherwise (conv1). The tests run both on the same inputs.
enum class ConvLowering { automatic, columns, patch_rows };

// output[b] = weight * im2col(input[b]) + bias. `output` is resized. With the patch-rows lowering and
// keep_patch_rows given, the batch's patch rows [B * P, K] are left there for conv2d_backward.
template <class T>
void conv2d_forward(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, const Tensor<T, 1>& bias, int stride,
                    Tensor<T, 4>& output, Tensor<T, 2>* keep_patch_rows = nullptr,
                    ConvLowering lowering = ConvLowering::automatic);

// Accumulates into weight_grad and bias_grad; writes input_grad unless it is null (the first layer does
// not need it). patch_rows: what conv2d_forward kept for this input (recomputed when null).
template <class T>
void conv2d_backward(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, int stride, const Tensor<T, 4>& output_grad,
                     Tensor<T, 4>& weight_grad, Tensor<T, 1>& bias_grad, Tensor<T, 4>* input_grad,
                     const Tensor<T, 2>* patch_rows = nullptr, ConvLowering lowering = ConvLowering::automatic);

// The column matrix of one image: rows (c, ky, kx), columns (oy, ox). Exposed for the tests.
template <class T>
void im2col(const T* image, int channels, int height, int width, int kernel, int stride, T* columns);
template <class T>
void col2im_add(const T* columns, int channels, int height, int width, int kernel, int stride, T* image);
// Its transpose: one row per output position (oy, ox), holding that position's patch (c, ky, kx).
template <class T>
void im2row(const T* image, int channels, int height, int width, int kernel, int stride, T* rows);
template <class T>
void row2im_add(const T* rows, int channels, int height, int width, int kernel, int stride, T* image);

// output = input * weight^T + bias, input [batch, in], weight [out, in]. `output` is resized.
template <class T>
void linear_forward(const Tensor<T, 2>& input, const Tensor<T, 2>& weight, const Tensor<T, 1>& bias, Tensor<T, 2>& output);

// Accumulates weight_grad and bias_grad; writes input_grad unless it is null.
template <class T>
void linear_backward(const Tensor<T, 2>& input, const Tensor<T, 2>& weight, const Tensor<T, 2>& output_grad,
                     Tensor<T, 2>& weight_grad, Tensor<T, 1>& bias_grad, Tensor<T, 2>* input_grad);

// Leaky ReLU (slope 0 gives ReLU), in place. The backward pass reads the activation's output: its sign
// equals the input's sign whenever slope >= 0, so the pre-activation need not be kept.
template <class T, class E>
void leaky_relu_inplace(E& x, T slope) {
    x = xt::where(x > T(0), x, x * slope);
}
template <class T, class E, class G>
void leaky_relu_backward_inplace(const E& output, G& grad, T slope) {
    grad = xt::where(output > T(0), grad, grad * slope);
}

template <class E>
void sigmoid_inplace(E& x) {
    using T = typename E::value_type;
    x = T(1) / (T(1) + xt::exp(-x));
}
template <class E, class G>
void sigmoid_backward_inplace(const E& output, G& grad) {
    using T = typename E::value_type;
    grad = grad * output * (T(1) - output);
}

}  // namespace capsnet
