// GPU versions of shared/capsnet/layers.hpp, losses' reconstruction term, and Adam. Every pointer is
// device memory; every function only enqueues work on ctx.stream() (no host synchronisation).
// Layouts and semantics are exactly the CPU core's (row-major, NCHW, PyTorch weight layouts):
// *_grad outputs for weights and biases ACCUMULATE (+=), as the core's do; input gradients are
// overwritten. tests/test_cuda_layers.cpp compares each one with the core on random inputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_buffer.hpp"
#include "gpu_context.hpp"

namespace capsnet::cuda {

// output [batch, out_channels, oh, ow] = conv(input [batch, in_channels, height, width], weight
// [out_channels, in_channels, kernel, kernel], stride) + bias; oh = (height - kernel) / stride + 1.
// im2col into `columns` (resized as needed) and cuBLAS GEMMs.
void conv2d_forward(const GpuContext& ctx, const float* input, int batch, int in_channels, int height, int width,
                    const float* weight, const float* bias, int out_channels, int kernel, int stride, float* output,
                    DeviceBuffer<float>& columns);
// weight_grad, bias_grad += ...; input_grad (nullptr: not needed) = ...
void conv2d_backward(const GpuContext& ctx, const float* input, int batch, int in_channels, int height, int width,
                     const float* weight, int out_channels, int kernel, int stride, const float* output_grad,
                     float* weight_grad, float* bias_grad, float* input_grad, DeviceBuffer<float>& columns);

// output [batch, out] = input [batch, in] weight^T ([out, in]) + bias
void linear_forward(const GpuContext& ctx, const float* input, int batch, int in_features, const float* weight,
                    const float* bias, int out_features, float* output);
// weight_grad, bias_grad += ...; input_grad (nullptr: not needed) = output_grad weight
void linear_backward(const GpuContext& ctx, const float* input, int batch, int in_features, const float* weight,
                     int out_features, const float* output_grad, float* weight_grad, float* bias_grad,
                     float* input_grad);

void leaky_relu_forward(const GpuContext& ctx, float* x, std::size_t count, float slope);  // in place
void leaky_relu_backward(const GpuContext& ctx, const float* output, float* grad, std::size_t count, float slope);
void sigmoid_forward(const GpuContext& ctx, float* x, std::size_t count);  // in place
void sigmoid_backward(const GpuContext& ctx, const float* output, float* grad, std::size_t count);

// *loss += weight * (1/batch) * sum (reconstruction - image)^2 (a device scalar the caller zeroes);
// reconstruction_grad = its gradient. images [batch, pixels], reconstruction [batch, pixels].
// `partials`: the per-block sums of the multi-block reduction (grown once, then reused).
void reconstruction_loss(const GpuContext& ctx, const float* reconstruction, const float* images, int batch,
                         int pixels, float weight, float* loss, float* reconstruction_grad,
                         DeviceBuffer<double>& partials);

// Adam with bias correction, as shared/capsnet/adam.cpp (step is the 1-based step after increment).
void adam_update(const GpuContext& ctx, float* params, const float* grads, float* first_moment, float* second_moment,
                 std::size_t count, float learning_rate, float beta1, float beta2, float epsilon, std::int64_t step);

}  // namespace capsnet::cuda
