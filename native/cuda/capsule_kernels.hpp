// GPU versions of shared/capsnet/{capsules,routing,losses}.hpp: primary capsules, the prediction vectors
// u_hat, the whole dynamic-routing loop forward and backward, capsule lengths, the margin loss and the
// decoder's masking. Every pointer is device memory; every function only enqueues work on ctx.stream().
// Semantics are exactly the CPU core's; *_grad outputs for weights and biases ACCUMULATE (+=) like the
// core's, activation gradients are overwritten unless stated. tests/test_cuda_capsules.cpp compares each
// with the core on random inputs.
#pragma once

#include "device_buffer.hpp"
#include "gpu_context.hpp"

namespace capsnet::cuda {

// conv_out [batch, types*dims, grid] (grid = h*w) -> raw, capsules [batch, types*grid, dims]; capsule
// i = t*grid + p takes channels dims*t .. dims*t+dims-1 at grid position p; capsules = squash(raw) when
// `squash`, else a copy of raw.
void primary_capsules_forward(const GpuContext& ctx, const float* conv_out, int batch, int types, int dims, int grid,
                              bool squash, float* raw, float* capsules);
void primary_capsules_backward(const GpuContext& ctx, const float* raw, int batch, int types, int dims, int grid,
                               bool squash, const float* capsules_grad, float* conv_out_grad);

// u_hat [batch, inputs, classes, out_dims] = W[w(i), j] u[b, i] (+ bias[w(i), j]); W [matrices, classes,
// out_dims, in_dims]; w(i) = i / (inputs / matrices) (matrices == inputs: paper; 32: seed, with bias).
void predictions_forward(const GpuContext& ctx, const float* capsules, int batch, int inputs, int in_dims,
                         const float* weight, const float* bias, int matrices, int classes, int out_dims, float* u_hat);
// weight_grad (+ bias_grad when bias_grad != nullptr) +=; capsules_grad =.
void predictions_backward(const GpuContext& ctx, const float* capsules, int batch, int inputs, int in_dims,
                          const float* weight, int matrices, int classes, int out_dims, const float* u_hat_grad,
                          float* weight_grad, float* bias_grad, float* capsules_grad);

// What routing_backward needs: per iteration the couplings c [iterations, batch, inputs, classes], and
// s, v [iterations, batch, classes, dims] (the same layout as the core's RoutingState), in the first
// elements of buffers that only grow: a smaller batch after a larger one reallocates nothing.
struct RoutingBuffers {
    DeviceBuffer<float> coupling, s, v;
    DeviceBuffer<float> scratch;  // launcher-owned temporaries (logits, partial sums...)
    // The shape of the last routing_forward, which routing_backward must match.
    struct Shape {
        int batch = 0, inputs = 0, classes = 0, dims = 0, iterations = 0;
        bool operator==(const Shape& o) const {
            return batch == o.batch && inputs == o.inputs && classes == o.classes && dims == o.dims &&
                   iterations == o.iterations;
        }
    } forward_shape;
};
void routing_forward(const GpuContext& ctx, const float* u_hat, int batch, int inputs, int classes, int dims,
                     int iterations, RoutingBuffers& state, float* v_out);
// u_hat_grad = dL/du_hat given v_grad = dL/dv (output of the last iteration).
void routing_backward(const GpuContext& ctx, const float* u_hat, int batch, int inputs, int classes, int dims,
                      int iterations, RoutingBuffers& state, const float* v_grad, bool stop_gradient,
                      float* u_hat_grad);

// lengths [batch, classes] = |v_j|
void capsule_lengths(const GpuContext& ctx, const float* v, int batch, int classes, int dims, float* lengths);
// *loss += the batch-mean margin loss (a device scalar the caller zeroes); v_grad = its gradient.
// labels: device ints in [0, classes). `partials`: the per-block sums of the multi-block reduction.
void margin_loss(const GpuContext& ctx, const float* v, const float* lengths, const int* labels, int batch,
                 int classes, int dims, float margin_positive, float margin_negative, float lambda, float* loss,
                 float* v_grad, DeviceBuffer<double>& partials);
// predicted [batch] = argmax_j lengths (the first of equal maxima, as std::max_element).
void predicted_classes(const GpuContext& ctx, const float* lengths, int batch, int classes, int* predicted);
// decoder_input [batch, classes*dims] = v with every capsule but mask_labels[b] zeroed (class-major).
void mask_capsules(const GpuContext& ctx, const float* v, const int* mask_labels, int batch, int classes, int dims,
                   float* decoder_input);
// v_grad += the decoder_input gradient of each kept capsule.
void mask_capsules_backward(const GpuContext& ctx, const float* decoder_input_grad, const int* mask_labels, int batch,
                            int classes, int dims, float* v_grad);

}  // namespace capsnet::cuda
