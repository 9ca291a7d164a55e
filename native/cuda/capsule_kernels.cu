// CUDA kernels of the capsule layers, the dynamic routing and the margin loss (contract: capsule_kernels.hpp).
// Each op shows the CPU reference it reproduces, its kernel(s), then its launcher.
//
// Determinism: no atomics. Every sum is either a loop in one thread in a fixed order or a fixed tree over
// shared memory, so two runs on the same data give the same bits. Where a sum is short (a squash norm, an
// agreement, a softmax), one thread runs it in the same order as the core, so only long reductions (over
// the 1152 inputs, over the batch) differ from the CPU by rounding.
#include "capsule_kernels.hpp"

#include <string>

#include "block_reduction.cuh"
#include "capsnet/error.hpp"

namespace capsnet::cuda {
namespace {

constexpr int kThreads = 256;     // block size of the one-thread-per-element kernels
constexpr int kMaxInDims = 16;    // predictions_backward keeps one accumulator per input dimension in registers
constexpr int kWeightSlices = 8;  // weight gradient: threads splitting the (sample, grid position) terms
constexpr int kMaxDims = 64;      // routing: one thread per output dimension, kRouteSlices of them per block
constexpr int kRouteSlices = 16;  // routing: threads splitting the 1152 inputs of one (sample, class)

unsigned blocks_for(long long count) { return static_cast<unsigned>((count + kThreads - 1) / kThreads); }

void require(bool condition, const char* message) {
    if (!condition) throw Error(std::string("CUDA capsule kernels: ") + message);
}

// shared/capsnet/routing.cpp squash_forward: v = scale * s, scale = |s| / (1 + |s|^2), 0 at s = 0.
__device__ float squash_scale(float norm2) { return norm2 > 0.f ? sqrtf(norm2) / (1.f + norm2) : 0.f; }

// shared/capsnet/routing.cpp squash_backward for one vector, same operations in the same order.
// s and v_grad may live in global or shared memory.
__device__ void squash_backward_vector(const float* s, const float* v_grad, float* s_grad, int dims) {
    float norm2 = 0.f, s_dot_g = 0.f;
    for (int d = 0; d < dims; ++d) {
        norm2 += s[d] * s[d];
        s_dot_g += s[d] * v_grad[d];
    }
    if (!(norm2 > 0.f)) {
        for (int d = 0; d < dims; ++d) s_grad[d] = 0.f;
        return;
    }
    const float norm = sqrtf(norm2);
    const float one_plus = 1.f + norm2;
    const float f = norm / one_plus;
    const float radial = (1.f - norm2) / (norm * one_plus * one_plus) * s_dot_g;
    for (int d = 0; d < dims; ++d) s_grad[d] = f * v_grad[d] + radial * s[d];
}

// std::max(0, x) as the core writes it.
__device__ float positive_part(float x) { return 0.f < x ? x : 0.f; }

// ---------------------------------------------------------------------------------------------------------
// Primary capsules. Reference: shared/capsnet/capsules.cpp primary_capsules_forward / _backward.
// One thread per capsule (b, i), i = t*grid + p: it gathers channels dims*t + d at position p (adjacent
// threads read adjacent positions) and squashes its own vector.

__global__ void primary_capsules_forward_kernel(const float* conv_out, int batch, int types, int dims, int grid,
                                                bool squash, float* raw, float* capsules) {
    const long long capsule = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // b*types*grid + i
    const long long count = static_cast<long long>(batch) * types * grid;
    if (capsule >= count) return;
    const long long b = capsule / (types * grid);
    const int i = static_cast<int>(capsule % (types * grid));
    const int t = i / grid, p = i % grid;
    // conv_out[b, t*dims + d, p] at ((b*types + t)*dims + d)*grid + p
    const float* src = conv_out + (b * types + t) * dims * grid + p;
    float* r = raw + capsule * dims;
    float* out = capsules + capsule * dims;
    float norm2 = 0.f;
    for (int d = 0; d < dims; ++d) {
        const float x = src[static_cast<long long>(d) * grid];
        r[d] = x;
        norm2 += x * x;
    }
    const float scale = squash_scale(norm2);
    for (int d = 0; d < dims; ++d) out[d] = squash ? scale * r[d] : r[d];
}

__global__ void primary_capsules_backward_kernel(const float* raw, int batch, int types, int dims, int grid,
                                                 bool squash, const float* capsules_grad, float* conv_out_grad) {
    const long long capsule = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
    const long long count = static_cast<long long>(batch) * types * grid;
    if (capsule >= count) return;
    const long long b = capsule / (types * grid);
    const int i = static_cast<int>(capsule % (types * grid));
    const int t = i / grid, p = i % grid;
    const float* g = capsules_grad + capsule * dims;
    float* dst = conv_out_grad + (b * types + t) * dims * grid + p;
    if (!squash) {
        for (int d = 0; d < dims; ++d) dst[static_cast<long long>(d) * grid] = g[d];
        return;
    }
    float raw_grad[kMaxDims];
    squash_backward_vector(raw + capsule * dims, g, raw_grad, dims);
    for (int d = 0; d < dims; ++d) dst[static_cast<long long>(d) * grid] = raw_grad[d];
}

}  // namespace

void primary_capsules_forward(const GpuContext& ctx, const float* conv_out, int batch, int types, int dims, int grid,
                              bool squash, float* raw, float* capsules) {
    require(dims >= 1 && dims <= kMaxDims && types >= 1 && grid >= 1, "primary capsules: unsupported shape");
    const long long count = static_cast<long long>(batch) * types * grid;
    if (count <= 0) return;
    primary_capsules_forward_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(conv_out, batch, types, dims,
                                                                                      grid, squash, raw, capsules);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

void primary_capsules_backward(const GpuContext& ctx, const float* raw, int batch, int types, int dims, int grid,
                               bool squash, const float* capsules_grad, float* conv_out_grad) {
    require(dims >= 1 && dims <= kMaxDims && types >= 1 && grid >= 1, "primary capsules: unsupported shape");
    const long long count = static_cast<long long>(batch) * types * grid;
    if (count <= 0) return;
    primary_capsules_backward_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(
        raw, batch, types, dims, grid, squash, capsules_grad, conv_out_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Predictions u_hat. Reference: shared/capsnet/capsules.cpp predictions_forward / predictions_backward.
// row = classes*out_dims values per input capsule; W[m] is [row, in_dims]; capsule i uses m = i / share.

namespace {

// One thread per u_hat entry (b, i, r): an in_dims-long dot product; writes are coalesced and the W rows
// of neighbouring threads are contiguous.
__global__ void predictions_forward_kernel(const float* capsules, int batch, int inputs, int in_dims,
                                           const float* weight, const float* bias, int share, int row, float* u_hat) {
    const long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // (b*inputs + i)*row + r
    if (e >= static_cast<long long>(batch) * inputs * row) return;
    const int r = static_cast<int>(e % row);
    const long long capsule = e / row;  // b*inputs + i
    const int w = static_cast<int>(capsule % inputs) / share;
    const float* wr = weight + (static_cast<long long>(w) * row + r) * in_dims;
    const float* u = capsules + capsule * in_dims;
    float acc = 0.f;
    for (int k = 0; k < in_dims; ++k) acc += wr[k] * u[k];
    u_hat[e] = bias ? bias[static_cast<long long>(w) * row + r] + acc : acc;
}

// capsules_grad[b, i, k] = sum_r u_hat_grad[b, i, r] W[w(i), r, k]: one thread per (b, i, k), r in order.
__global__ void predictions_capsules_grad_kernel(const float* u_hat_grad, int batch, int inputs, int in_dims,
                                                 const float* weight, int share, int row, float* capsules_grad) {
    const long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // (b*inputs + i)*in_dims + k
    if (e >= static_cast<long long>(batch) * inputs * in_dims) return;
    const int k = static_cast<int>(e % in_dims);
    const long long capsule = e / in_dims;
    const int w = static_cast<int>(capsule % inputs) / share;
    const float* g = u_hat_grad + capsule * row;
    const float* wk = weight + static_cast<long long>(w) * row * in_dims + k;
    float acc = 0.f;
    for (int r = 0; r < row; ++r) acc += g[r] * wk[static_cast<long long>(r) * in_dims];
    capsules_grad[e] = acc;
}

// weight_grad[w, r, k] += sum_{b, p} u_hat_grad[b, i, r] u[b, i, k] and bias_grad[w, r] += sum_{b, p}
// u_hat_grad[b, i, r], i = w*share + p. Block (32, kWeightSlices) per (32 rows r, matrix w): lane x owns
// row r (coalesced u_hat_grad loads), slice y takes the terms n = y, y + kWeightSlices, ... of the
// batch*share terms n = b*share + p; the slices' partial sums are then added by a fixed tree.
__global__ void predictions_weight_grad_kernel(const float* capsules, const float* u_hat_grad, int batch, int inputs,
                                               int in_dims, int share, int row, float* weight_grad, float* bias_grad) {
    __shared__ float partial[kMaxInDims + 1][kWeightSlices][32];  // [k or bias slot kMaxInDims][slice][lane]
    const int x = threadIdx.x, y = threadIdx.y;
    const int r = blockIdx.x * 32 + x;
    const int w = blockIdx.y;
    float acc[kMaxInDims];
    for (int k = 0; k < kMaxInDims; ++k) acc[k] = 0.f;
    float bias_acc = 0.f;
    if (r < row) {
        const int terms = batch * share;
        for (int n = y; n < terms; n += kWeightSlices) {
            const long long capsule = static_cast<long long>(n / share) * inputs + w * share + n % share;
            const float g = u_hat_grad[capsule * row + r];
            const float* u = capsules + capsule * in_dims;
#pragma unroll
            for (int k = 0; k < kMaxInDims; ++k)
                if (k < in_dims) acc[k] += g * u[k];
            bias_acc += g;
        }
    }
#pragma unroll
    for (int k = 0; k < kMaxInDims; ++k)
        if (k < in_dims) partial[k][y][x] = acc[k];
    partial[kMaxInDims][y][x] = bias_acc;
    __syncthreads();
    for (int stride = kWeightSlices / 2; stride > 0; stride /= 2) {
        if (y < stride) {
            for (int k = 0; k < in_dims; ++k) partial[k][y][x] += partial[k][y + stride][x];
            partial[kMaxInDims][y][x] += partial[kMaxInDims][y + stride][x];
        }
        __syncthreads();
    }
    if (y != 0 || r >= row) return;
    float* wg = weight_grad + (static_cast<long long>(w) * row + r) * in_dims;
    for (int k = 0; k < in_dims; ++k) wg[k] += partial[k][0][x];
    if (bias_grad) bias_grad[static_cast<long long>(w) * row + r] += partial[kMaxInDims][0][x];
}

int prediction_share(int inputs, int in_dims, int matrices, int classes, int out_dims) {
    require(inputs >= 1 && matrices >= 1 && inputs % matrices == 0, "predictions: inputs not a multiple of matrices");
    require(in_dims >= 1 && in_dims <= kMaxInDims && classes >= 1 && out_dims >= 1, "predictions: unsupported shape");
    return inputs / matrices;
}

}  // namespace

void predictions_forward(const GpuContext& ctx, const float* capsules, int batch, int inputs, int in_dims,
                         const float* weight, const float* bias, int matrices, int classes, int out_dims, float* u_hat) {
    const int share = prediction_share(inputs, in_dims, matrices, classes, out_dims);
    const int row = classes * out_dims;
    const long long count = static_cast<long long>(batch) * inputs * row;
    if (count <= 0) return;
    predictions_forward_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(capsules, batch, inputs, in_dims,
                                                                                 weight, bias, share, row, u_hat);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

void predictions_backward(const GpuContext& ctx, const float* capsules, int batch, int inputs, int in_dims,
                          const float* weight, int matrices, int classes, int out_dims, const float* u_hat_grad,
                          float* weight_grad, float* bias_grad, float* capsules_grad) {
    const int share = prediction_share(inputs, in_dims, matrices, classes, out_dims);
    const int row = classes * out_dims;
    if (batch <= 0) return;
    const long long count = static_cast<long long>(batch) * inputs * in_dims;
    predictions_capsules_grad_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(
        u_hat_grad, batch, inputs, in_dims, weight, share, row, capsules_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
    const dim3 grid((row + 31) / 32, matrices), block(32, kWeightSlices);
    predictions_weight_grad_kernel<<<grid, block, 0, ctx.stream()>>>(capsules, u_hat_grad, batch, inputs, in_dims,
                                                                     share, row, weight_grad, bias_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Dynamic routing forward. Reference: shared/capsnet/routing.cpp routing_forward.
// Per iteration r: softmax (one thread per (b, i)) -> weighted sum and squash (one block per (b, j)) ->
// agreement (one thread per (b, i, j), skipped after the last iteration). The logits live in
// state.scratch; c, s, v of every iteration are kept in state for routing_backward.
// Scratch layout, shared by forward and backward so it is sized once:
//   [0, B*I*J)          forward: logits b          backward: dL/db
//   [B*I*J, 2*B*I*J)    backward: dL/dc of the current iteration
//   [2*B*I*J, +B*J*D)   backward: dL/ds of the current iteration

namespace {

// c[row, :] = softmax(logits[row, :]) over the classes, as softmax_rows in routing.cpp (max subtracted).
__global__ void routing_softmax_kernel(const float* logits, long long rows, int classes, float* coupling) {
    const long long row = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // b*inputs + i
    if (row >= rows) return;
    const float* l = logits + row * classes;
    float* c = coupling + row * classes;
    float top = l[0];
    for (int j = 1; j < classes; ++j)
        if (top < l[j]) top = l[j];
    float sum = 0.f;
    for (int j = 0; j < classes; ++j) {
        c[j] = expf(l[j] - top);
        sum += c[j];
    }
    for (int j = 0; j < classes; ++j) c[j] /= sum;
}

// Block (dims, kRouteSlices) per (b, j): slice y sums c_ij u_hat_ij[d] over i = y, y + kRouteSlices, ...;
// a fixed tree adds the slices; thread (0, 0) takes |s|^2 over d in order, as squash_forward does.
// Writes s, v = squash(s) of this iteration, and v_out too when it is not null (the last iteration).
__global__ void routing_weighted_sum_kernel(const float* u_hat, const float* coupling, int inputs, int classes,
                                            float* s, float* v, float* v_out) {
    __shared__ float partial[kRouteSlices][kMaxDims];
    __shared__ float scale;
    const int dims = blockDim.x;
    const int d = threadIdx.x, y = threadIdx.y;
    const long long b = blockIdx.x / classes;
    const int j = blockIdx.x % classes;
    float acc = 0.f;
    for (int i = y; i < inputs; i += kRouteSlices) {
        const long long e = (b * inputs + i) * classes + j;  // (b, i, j)
        acc += coupling[e] * u_hat[e * dims + d];
    }
    partial[y][d] = acc;
    __syncthreads();
    for (int stride = kRouteSlices / 2; stride > 0; stride /= 2) {
        if (y < stride) partial[y][d] += partial[y + stride][d];
        __syncthreads();
    }
    if (d == 0 && y == 0) {
        float norm2 = 0.f;
        for (int k = 0; k < dims; ++k) norm2 += partial[0][k] * partial[0][k];
        scale = squash_scale(norm2);
    }
    __syncthreads();
    if (y != 0) return;
    const long long out = static_cast<long long>(blockIdx.x) * dims + d;  // (b*classes + j)*dims + d
    const float sd = partial[0][d];
    s[out] = sd;
    v[out] = scale * sd;
    if (v_out) v_out[out] = scale * sd;
}

// logits[b, i, j] += u_hat[b, i, j, :] . v[b, j, :], one thread per (b, i, j), d in order.
__global__ void routing_agreement_kernel(const float* u_hat, const float* v, long long count, int inputs, int classes,
                                         int dims, float* logits) {
    const long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // (b*inputs + i)*classes + j
    if (e >= count) return;
    const int j = static_cast<int>(e % classes);
    const long long b = e / (static_cast<long long>(inputs) * classes);
    const float* u = u_hat + e * dims;
    const float* vj = v + (b * classes + j) * dims;
    float agreement = 0.f;
    for (int d = 0; d < dims; ++d) agreement += u[d] * vj[d];
    logits[e] += agreement;
}

struct RoutingSizes {
    long long coupling;  // B*I*J, one iteration's couplings (and logits)
    long long capsules;  // B*J*D, one iteration's s or v
};

RoutingSizes routing_sizes(int batch, int inputs, int classes, int dims, int iterations) {
    require(iterations >= 1, "routing: at least one iteration is needed");
    require(batch >= 1 && inputs >= 1 && classes >= 1, "routing: empty shape");
    require(dims >= 1 && dims <= kMaxDims, "routing: capsule dims must be in [1, 64]");
    return {static_cast<long long>(batch) * inputs * classes, static_cast<long long>(batch) * classes * dims};
}

std::size_t routing_scratch_size(const RoutingSizes& n) {
    return static_cast<std::size_t>(2 * n.coupling + n.capsules);
}

}  // namespace

void routing_forward(const GpuContext& ctx, const float* u_hat, int batch, int inputs, int classes, int dims,
                     int iterations, RoutingBuffers& state, float* v_out) {
    const RoutingSizes n = routing_sizes(batch, inputs, classes, dims, iterations);
    // Grow-only: no allocation (and no synchronisation) once the largest batch has been seen.
    state.coupling.reserve(static_cast<std::size_t>(iterations * n.coupling), ctx.stream());
    state.s.reserve(static_cast<std::size_t>(iterations * n.capsules), ctx.stream());
    state.v.reserve(static_cast<std::size_t>(iterations * n.capsules), ctx.stream());
    state.scratch.reserve(routing_scratch_size(n), ctx.stream());
    state.forward_shape = {batch, inputs, classes, dims, iterations};
    float* logits = state.scratch.data();
    CAPSNET_CUDA_CHECK(cudaMemsetAsync(logits, 0, n.coupling * sizeof(float), ctx.stream()));
    const long long rows = static_cast<long long>(batch) * inputs;
    const dim3 sum_block(dims, kRouteSlices);
    for (int r = 0; r < iterations; ++r) {
        float* c = state.coupling.data() + r * n.coupling;
        float* s = state.s.data() + r * n.capsules;
        float* v = state.v.data() + r * n.capsules;
        const bool last = r + 1 == iterations;
        routing_softmax_kernel<<<blocks_for(rows), kThreads, 0, ctx.stream()>>>(logits, rows, classes, c);
        CAPSNET_CUDA_CHECK_LAUNCH();
        routing_weighted_sum_kernel<<<batch * classes, sum_block, 0, ctx.stream()>>>(u_hat, c, inputs, classes, s, v,
                                                                                    last ? v_out : nullptr);
        CAPSNET_CUDA_CHECK_LAUNCH();
        if (last) break;
        routing_agreement_kernel<<<blocks_for(n.coupling), kThreads, 0, ctx.stream()>>>(u_hat, v, n.coupling, inputs,
                                                                                       classes, dims, logits);
        CAPSNET_CUDA_CHECK_LAUNCH();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Dynamic routing backward. Reference: shared/capsnet/routing.cpp routing_backward, iterations last to first:
//   1. dL/dv(r): the output gradient for the last iteration; otherwise sum_i dL/db(r+1)_ij u_hat_ij, since
//      b(r+1) = b(r) + u_hat . v(r). Then dL/ds(r) = squash_backward. One block per (b, j).
//   2. dL/du_hat_ij (= on the first step, += after) gets dL/db(r+1)_ij v_j(r) (not on the last iteration) and
//      c_ij dL/ds_j; dL/dc_ij = u_hat_ij . dL/ds_j. One thread per (b, i, j).
//   3. Unless stop_gradient or r == 0: dL/db(r)_ij = dL/db(r+1)_ij + c_ij (dL/dc_ij - sum_k c_ik dL/dc_ik)
//      (softmax backward), in place. One thread per (b, i).

namespace {

// Block (dims, kRouteSlices) per (b, j). With v_grad: dL/dv = v_grad (last iteration); without: the fixed
// tree over the slices' sums of dL/db_ij u_hat_ij[d]. Thread (0, 0) then applies squash_backward.
__global__ void routing_s_grad_kernel(const float* u_hat, const float* v_grad, const float* logits_grad,
                                      const float* s, int inputs, int classes, float* s_grad) {
    __shared__ float partial[kRouteSlices][kMaxDims];
    const int dims = blockDim.x;
    const int d = threadIdx.x, y = threadIdx.y;
    const long long b = blockIdx.x / classes;
    const int j = blockIdx.x % classes;
    const long long vec = static_cast<long long>(blockIdx.x) * dims;  // (b*classes + j)*dims
    if (v_grad) {  // uniform over the block, so every thread meets the same barriers
        if (y == 0) partial[0][d] = v_grad[vec + d];
        __syncthreads();
    } else {
        float acc = 0.f;
        for (int i = y; i < inputs; i += kRouteSlices) {
            const long long e = (b * inputs + i) * classes + j;
            acc += logits_grad[e] * u_hat[e * dims + d];
        }
        partial[y][d] = acc;
        __syncthreads();
        for (int stride = kRouteSlices / 2; stride > 0; stride /= 2) {
            if (y < stride) partial[y][d] += partial[y + stride][d];
            __syncthreads();
        }
    }
    if (d == 0 && y == 0) squash_backward_vector(s + vec, partial[0], s_grad + vec, dims);
}

// logits_grad == nullptr on the last iteration (no agreement after it) and then u_hat_grad is written, not
// accumulated: that is the first step of the backward loop.
__global__ void routing_u_hat_grad_kernel(const float* u_hat, const float* coupling, const float* logits_grad,
                                          const float* v, const float* s_grad, long long count, int inputs,
                                          int classes, int dims, float* u_hat_grad, float* coupling_grad) {
    const long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // (b*inputs + i)*classes + j
    if (e >= count) return;
    const int j = static_cast<int>(e % classes);
    const long long b = e / (static_cast<long long>(inputs) * classes);
    const long long vec = (b * classes + j) * dims;
    const float c = coupling[e];
    const float* u = u_hat + e * dims;
    const float* sg = s_grad + vec;
    float* gu = u_hat_grad + e * dims;
    float dot = 0.f;
    if (logits_grad) {
        const float lg = logits_grad[e];
        const float* vj = v + vec;
        for (int d = 0; d < dims; ++d) {
            float g = gu[d];
            g += lg * vj[d];  // the agreement's term first, then the weighted sum's, as the core adds them
            g += c * sg[d];
            gu[d] = g;
            dot += u[d] * sg[d];
        }
    } else {
        for (int d = 0; d < dims; ++d) {
            gu[d] = c * sg[d];
            dot += u[d] * sg[d];
        }
    }
    coupling_grad[e] = dot;
}

__global__ void routing_softmax_backward_kernel(const float* coupling, const float* coupling_grad, long long rows,
                                                int classes, float* logits_grad) {
    const long long row = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // b*inputs + i
    if (row >= rows) return;
    const float* c = coupling + row * classes;
    const float* cg = coupling_grad + row * classes;
    float* lg = logits_grad + row * classes;
    float weighted = 0.f;
    for (int j = 0; j < classes; ++j) weighted += c[j] * cg[j];
    for (int j = 0; j < classes; ++j) lg[j] += c[j] * (cg[j] - weighted);
}

}  // namespace

void routing_backward(const GpuContext& ctx, const float* u_hat, int batch, int inputs, int classes, int dims,
                      int iterations, RoutingBuffers& state, const float* v_grad, bool stop_gradient,
                      float* u_hat_grad) {
    const RoutingSizes n = routing_sizes(batch, inputs, classes, dims, iterations);
    require(state.forward_shape == RoutingBuffers::Shape{batch, inputs, classes, dims, iterations},
            "routing backward: the state does not come from a routing_forward of this shape");
    state.scratch.reserve(routing_scratch_size(n), ctx.stream());
    float* logits_grad = state.scratch.data();
    float* coupling_grad = logits_grad + n.coupling;
    float* s_grad = coupling_grad + n.coupling;
    CAPSNET_CUDA_CHECK(cudaMemsetAsync(logits_grad, 0, n.coupling * sizeof(float), ctx.stream()));
    const long long rows = static_cast<long long>(batch) * inputs;
    const dim3 sum_block(dims, kRouteSlices);
    for (int r = iterations - 1; r >= 0; --r) {
        const float* c = state.coupling.data() + r * n.coupling;
        const float* s = state.s.data() + r * n.capsules;
        const float* v = state.v.data() + r * n.capsules;
        const bool last = r == iterations - 1;
        routing_s_grad_kernel<<<batch * classes, sum_block, 0, ctx.stream()>>>(
            u_hat, last ? v_grad : nullptr, logits_grad, s, inputs, classes, s_grad);
        CAPSNET_CUDA_CHECK_LAUNCH();
        routing_u_hat_grad_kernel<<<blocks_for(n.coupling), kThreads, 0, ctx.stream()>>>(
            u_hat, c, last ? nullptr : logits_grad, v, s_grad, n.coupling, inputs, classes, dims, u_hat_grad,
            coupling_grad);
        CAPSNET_CUDA_CHECK_LAUNCH();
        // b(0) = 0 is a constant, and stop_gradient makes every coupling one: nothing flows further back.
        if (stop_gradient || r == 0) break;
        routing_softmax_backward_kernel<<<blocks_for(rows), kThreads, 0, ctx.stream()>>>(c, coupling_grad, rows,
                                                                                        classes, logits_grad);
        CAPSNET_CUDA_CHECK_LAUNCH();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Capsule lengths. Reference: shared/capsnet/losses.cpp capsule_lengths. One thread per (b, j).

namespace {

__global__ void capsule_lengths_kernel(const float* v, int count, int dims, float* lengths) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // b*classes + j
    if (e >= count) return;
    const float* x = v + static_cast<long long>(e) * dims;
    float norm2 = 0.f;
    for (int d = 0; d < dims; ++d) norm2 += x[d] * x[d];
    lengths[e] = sqrtf(norm2);
}

}  // namespace

void capsule_lengths(const GpuContext& ctx, const float* v, int batch, int classes, int dims, float* lengths) {
    const int count = batch * classes;
    if (count <= 0) return;
    capsule_lengths_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(v, count, dims, lengths);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Margin loss. Reference: shared/capsnet/losses.cpp margin_loss_forward (in double, like the core) and
// margin_loss_backward (in float, same expressions). The value: a fixed grid of blocks, thread t of it
// taking samples t, t + grid threads, ..., each block's tree giving one partial and one block adding the
// partials (block_reduction.cuh); the gradient: one thread per (b, j).

namespace {

__global__ void __launch_bounds__(reduction_threads)
    margin_loss_value_kernel(const float* lengths, const int* labels, int batch, int classes, float margin_positive,
                             float margin_negative, float lambda, double* partials) {
    __shared__ double shared[reduction_threads];
    double total = 0;
    for (int b = blockIdx.x * reduction_threads + threadIdx.x; b < batch; b += gridDim.x * reduction_threads) {
        const int label = labels[b];
        for (int j = 0; j < classes; ++j) {
            const double len = lengths[static_cast<long long>(b) * classes + j];
            if (j == label) {
                const double miss = fmax(0.0, double(margin_positive) - len);
                total += miss * miss;
            } else {
                const double excess = fmax(0.0, len - double(margin_negative));
                total += double(lambda) * excess * excess;
            }
        }
    }
    const double sum = block_tree_sum<reduction_threads>(total, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void margin_loss_grad_kernel(const float* v, const float* lengths, const int* labels, int batch,
                                        int classes, int dims, float margin_positive, float margin_negative,
                                        float lambda, float* v_grad) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // b*classes + j
    if (e >= batch * classes) return;
    const int b = e / classes, j = e % classes;
    const float len = lengths[e];
    const float length_grad = j == labels[b] ? -2.f * positive_part(margin_positive - len)
                                             : 2.f * lambda * positive_part(len - margin_negative);
    const float* x = v + static_cast<long long>(e) * dims;
    float* g = v_grad + static_cast<long long>(e) * dims;
    // d|v|/dv = v / |v|; at v = 0 the core adds nothing (0 < m-), and here the gradient is written, so 0.
    if (!(len > 0.f) || length_grad == 0.f) {
        for (int d = 0; d < dims; ++d) g[d] = 0.f;
        return;
    }
    const float scale = length_grad / (len * static_cast<float>(batch));
    for (int d = 0; d < dims; ++d) g[d] = scale * x[d];
}

}  // namespace

void margin_loss(const GpuContext& ctx, const float* v, const float* lengths, const int* labels, int batch,
                 int classes, int dims, float margin_positive, float margin_negative, float lambda, float* loss,
                 float* v_grad, DeviceBuffer<double>& partials) {
    if (batch <= 0 || classes <= 0) return;
    // The items are samples (a thread adds its samples' `classes` terms): one block up to 2048 of them.
    const int blocks = reduction_blocks(std::size_t(batch));
    partials.reserve(reduction_max_blocks, ctx.stream());
    margin_loss_value_kernel<<<blocks, reduction_threads, 0, ctx.stream()>>>(
        lengths, labels, batch, classes, margin_positive, margin_negative, lambda, partials.data());
    CAPSNET_CUDA_CHECK_LAUNCH();
    add_block_partials_kernel<<<1, reduction_threads, 0, ctx.stream()>>>(partials.data(), blocks, 1.0, batch, loss);
    CAPSNET_CUDA_CHECK_LAUNCH();
    margin_loss_grad_kernel<<<blocks_for(batch * classes), kThreads, 0, ctx.stream()>>>(
        v, lengths, labels, batch, classes, dims, margin_positive, margin_negative, lambda, v_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Predicted classes. Reference: shared/capsnet/model.cpp predicted_classes (std::max_element: the first of
// equal maxima, replaced only by a strictly larger value). One thread per sample.

namespace {

__global__ void predicted_classes_kernel(const float* lengths, int batch, int classes, int* predicted) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= batch) return;
    const float* row = lengths + static_cast<long long>(b) * classes;
    int best = 0;
    for (int j = 1; j < classes; ++j)
        if (row[best] < row[j]) best = j;
    predicted[b] = best;
}

}  // namespace

void predicted_classes(const GpuContext& ctx, const float* lengths, int batch, int classes, int* predicted) {
    if (batch <= 0) return;
    require(classes >= 1, "predicted classes: no classes");
    predicted_classes_kernel<<<blocks_for(batch), kThreads, 0, ctx.stream()>>>(lengths, batch, classes, predicted);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Decoder masking. Reference: shared/capsnet/model.cpp model_forward (decoder_input) and model_backward
// ("the mask passes the gradient of the kept capsule only"). decoder_input [b, j*dims + d] has the same
// flat index as v [b, j, d]. A label outside [0, classes) keeps nothing (the core rejects it on the host).

namespace {

__global__ void mask_capsules_kernel(const float* v, const int* mask_labels, int batch, int classes, int dims,
                                     float* decoder_input) {
    const long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;  // (b*classes + j)*dims + d
    const long long row = static_cast<long long>(classes) * dims;
    if (e >= batch * row) return;
    const int j = static_cast<int>(e % row) / dims;
    decoder_input[e] = j == mask_labels[e / row] ? v[e] : 0.f;
}

__global__ void mask_capsules_backward_kernel(const float* decoder_input_grad, const int* mask_labels, int batch,
                                              int classes, int dims, float* v_grad) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // b*dims + d
    if (e >= batch * dims) return;
    const int b = e / dims, d = e % dims;
    const int j = mask_labels[b];
    if (j < 0 || j >= classes) return;
    const long long at = (static_cast<long long>(b) * classes + j) * dims + d;
    v_grad[at] += decoder_input_grad[at];
}

}  // namespace

void mask_capsules(const GpuContext& ctx, const float* v, const int* mask_labels, int batch, int classes, int dims,
                   float* decoder_input) {
    const long long count = static_cast<long long>(batch) * classes * dims;
    if (count <= 0) return;
    mask_capsules_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(v, mask_labels, batch, classes, dims,
                                                                           decoder_input);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

void mask_capsules_backward(const GpuContext& ctx, const float* decoder_input_grad, const int* mask_labels, int batch,
                            int classes, int dims, float* v_grad) {
    const int count = batch * dims;
    if (count <= 0 || classes <= 0) return;
    mask_capsules_backward_kernel<<<blocks_for(count), kThreads, 0, ctx.stream()>>>(decoder_input_grad, mask_labels,
                                                                                    batch, classes, dims, v_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

}  // namespace capsnet::cuda
