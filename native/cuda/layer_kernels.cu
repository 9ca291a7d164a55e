// CUDA versions of the conventional layers (shared/capsnet/layers.cpp), the reconstruction loss
// (shared/capsnet/losses.cpp) and Adam (shared/capsnet/adam.cpp). Each function below names the CPU code it
// follows, then shows its kernels and its launcher.
//
// Determinism: no kernel uses atomics. Every sum is computed by a fixed thread in a fixed order (or by a
// fixed-shape shared-memory tree), and cuBLAS GEMMs are bitwise reproducible on one GPU model, so two runs
// on the same inputs give the same bits.
//
// cuBLAS is column-major and every tensor here is row-major. A row-major [r, c] matrix with row stride ld
// is, read column-major, its transpose: a [c, r] matrix with leading dimension ld. So the row-major product
// C = A B is computed as the column-major C^T = B^T A^T: swap the operands, keep the row strides as
// leading dimensions. Each call below spells out which matrix is which.
#include "layer_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "block_reduction.cuh"
#include "capsnet/error.hpp"

namespace capsnet::cuda {

namespace {

constexpr int block_threads = 256;
// Grid-stride loops cover any count; more blocks than this adds nothing on one GPU.
constexpr std::size_t max_blocks = 1 << 16;

unsigned int blocks_for(std::size_t count) {
    return static_cast<unsigned int>(std::min((count + block_threads - 1) / block_threads, max_blocks));
}

__device__ std::size_t global_thread() { return std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ std::size_t global_stride() { return std::size_t(gridDim.x) * blockDim.x; }

struct ConvShape {
    int batch, in_channels, height, width, out_channels, kernel, stride, out_h, out_w;
    int positions() const { return out_h * out_w; }                // N: output pixels of one image
    int patch() const { return in_channels * kernel * kernel; }     // P: rows of the column matrix
    int columns() const { return batch * positions(); }             // B*N: columns of the column matrix
};

ConvShape conv_shape(int batch, int in_channels, int height, int width, int out_channels, int kernel, int stride) {
    if (batch < 0 || in_channels <= 0 || out_channels <= 0 || kernel <= 0 || stride <= 0 || height < kernel ||
        width < kernel)
        throw Error("cuda conv2d: invalid shape (batch " + std::to_string(batch) + ", channels " +
                    std::to_string(in_channels) + "->" + std::to_string(out_channels) + ", " + std::to_string(height) +
                    "x" + std::to_string(width) + ", kernel " + std::to_string(kernel) + ", stride " +
                    std::to_string(stride) + ")");
    ConvShape s{batch, in_channels, height, width, out_channels, kernel, stride, 0, 0};
    s.out_h = (height - kernel) / stride + 1;
    s.out_w = (width - kernel) / stride + 1;
    return s;
}

void check_linear_shape(int batch, int in_features, int out_features) {
    if (batch < 0 || in_features <= 0 || out_features <= 0)
        throw Error("cuda linear: invalid shape (batch " + std::to_string(batch) + ", " + std::to_string(in_features) +
                    "->" + std::to_string(out_features) + ")");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// conv2d_forward. CPU reference: conv2d_forward and im2col in shared/capsnet/layers.cpp (its columns
// lowering; the patch-rows lowering the CPU uses for the primary capsules is the same product transposed).
// The whole batch is one group: columns [P, B, N] (row (c, ky, kx), then image b, then output pixel
// (oy, ox)): every image's column matrix (im2col) side by side. ONE GEMM over the whole batch,
// product [O, B*N] = weight [O, P] * columns [P, B*N], then one pass permutes it to output [B, O, N]
// and adds the bias. (Per image, the primary capsules' product is only 36 x 256 x 20736: as 128
// strided-batched GEMMs of that shape cuBLAS runs far below its peak; as one it is 4608 x 256 x 20736.)
// `columns` holds [cols: P x B*N | product: O x B*N], the same size the backward pass uses.
// ---------------------------------------------------------------------------------------------------

namespace {

// columns[(r * batch + b) * N + n] = input[b, c, oy*stride + ky, ox*stride + kx],
// r = (c * kernel + ky) * kernel + kx, n = oy * out_w + ox.
__global__ void im2col_kernel(const float* input, int batch, int channels, int height, int width, int kernel,
                              int stride, int out_h, int out_w, float* columns) {
    const std::size_t positions = std::size_t(out_h) * out_w;
    const std::size_t total = std::size_t(channels) * kernel * kernel * batch * positions;
    for (std::size_t i = global_thread(); i < total; i += global_stride()) {
        const int n = static_cast<int>(i % positions);
        const std::size_t rb = i / positions;  // r * batch + b
        const int b = static_cast<int>(rb % batch);
        const int r = static_cast<int>(rb / batch);
        const int kx = r % kernel;
        const int ky = (r / kernel) % kernel;
        const int c = r / (kernel * kernel);
        const int ox = n % out_w;
        const int oy = n / out_w;
        columns[i] = input[((std::size_t(b) * channels + c) * height + oy * stride + ky) * width + ox * stride + kx];
    }
}

// output[b, o, n] = product[o, b, n] + bias[o]: the CPU adds the bias after the product, as here.
__global__ void channel_major_to_batch_add_bias_kernel(const float* product, const float* bias, int batch,
                                                       int channels, std::size_t positions, float* output) {
    const std::size_t total = std::size_t(batch) * channels * positions;
    for (std::size_t i = global_thread(); i < total; i += global_stride()) {
        const std::size_t n = i % positions;
        const std::size_t bo = i / positions;  // b * channels + o
        const std::size_t o = bo % channels;
        const std::size_t b = bo / channels;
        output[i] = product[(o * batch + b) * positions + n] + bias[o];
    }
}

}  // namespace

void conv2d_forward(const GpuContext& ctx, const float* input, int batch, int in_channels, int height, int width,
                    const float* weight, const float* bias, int out_channels, int kernel, int stride, float* output,
                    DeviceBuffer<float>& columns) {
    const ConvShape s = conv_shape(batch, in_channels, height, width, out_channels, kernel, stride);
    if (s.batch == 0) return;
    const int P = s.patch(), N = s.positions(), BN = s.columns(), O = s.out_channels;
    const std::size_t column_count = std::size_t(P) * BN;
    const std::size_t product_count = std::size_t(O) * BN;
    columns.reserve(column_count + product_count, ctx.stream());  // grow-only
    float* cols = columns.data();
    float* product = columns.data() + column_count;

    im2col_kernel<<<blocks_for(column_count), block_threads, 0, ctx.stream()>>>(
        input, s.batch, s.in_channels, s.height, s.width, s.kernel, s.stride, s.out_h, s.out_w, cols);
    CAPSNET_CUDA_CHECK_LAUNCH();

    // Row-major: product [O, BN] = weight [O, P] * cols [P, BN].
    // Column-major: product^T [BN, O] = cols^T [BN, P] * weight^T [P, O], where
    //   A = cols^T: stored column-major as [BN, P] with lda = BN, op = N;
    //   B = weight^T: stored column-major as [P, O] with ldb = P, op = N;
    //   C = product^T: [BN, O], ldc = BN; beta = 0 overwrites (cuBLAS does not read C).
    const float one = 1.0f, zero = 0.0f;
    CAPSNET_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, BN, O, P, &one, cols, BN, weight, P,
                                     &zero, product, BN));

    channel_major_to_batch_add_bias_kernel<<<blocks_for(product_count), block_threads, 0, ctx.stream()>>>(
        product, bias, s.batch, O, std::size_t(N), output);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------
// conv2d_backward. CPU reference: conv2d_backward and col2im_add in shared/capsnet/layers.cpp.
// `columns` holds [cols: P x B*N | grad: O x B*N]. grad is the output gradient permuted from [B, O, N]
// to [O, B, N] (the CPU's grad_matrix), so the weight gradient is one GEMM summing over (b, n), and the
// bias gradient is a sum over each contiguous row of grad. The input gradient's column matrix
// [P, B*N] then overwrites cols (the weight-gradient GEMM, which reads cols, runs before it on the
// stream) and is gathered back into images: each input pixel sums its own contributions in a fixed
// order, so no two threads ever write the same element.
// ---------------------------------------------------------------------------------------------------

namespace {

// grad[(o * batch + b) * N + n] = output_grad[(b * channels + o) * N + n]
__global__ void batch_to_channel_major_kernel(const float* output_grad, int batch, int channels,
                                              std::size_t positions, float* grad) {
    const std::size_t total = std::size_t(batch) * channels * positions;
    for (std::size_t i = global_thread(); i < total; i += global_stride()) {
        const std::size_t n = i % positions;
        const std::size_t ob = i / positions;  // o * batch + b
        const std::size_t b = ob % batch;
        const std::size_t o = ob / batch;
        grad[i] = output_grad[(b * channels + o) * positions + n];
    }
}

// sums[row] += sum of matrix[row, 0..length): one block per row, fixed strided partial sums per thread,
// then the fixed tree.
__global__ void row_sums_add_kernel(const float* matrix, std::size_t length, float* sums) {
    __shared__ float shared[block_threads];
    const float* row = matrix + std::size_t(blockIdx.x) * length;
    float partial = 0.0f;
    for (std::size_t i = threadIdx.x; i < length; i += block_threads) partial += row[i];
    const float total = block_tree_sum<block_threads>(partial, shared);
    if (threadIdx.x == 0) sums[blockIdx.x] += total;
}

// image_grad[b, c, y, x] = sum over (ky, kx) with y = oy*stride + ky, x = ox*stride + kx (0 <= oy < out_h,
// 0 <= ox < out_w) of column_grad[(((c * kernel + ky) * kernel + kx) * batch + b) * N + oy * out_w + ox].
// ky and kx ascend, the order in which the CPU's col2im_add adds them into a zeroed image.
__global__ void col2im_gather_kernel(const float* column_grad, int batch, int channels, int height, int width,
                                     int kernel, int stride, int out_h, int out_w, float* image_grad) {
    const std::size_t positions = std::size_t(out_h) * out_w;
    const std::size_t total = std::size_t(batch) * channels * height * width;
    for (std::size_t i = global_thread(); i < total; i += global_stride()) {
        const int x = static_cast<int>(i % width);
        const int y = static_cast<int>((i / width) % height);
        const int c = static_cast<int>((i / (std::size_t(width) * height)) % channels);
        const int b = static_cast<int>(i / (std::size_t(width) * height * channels));
        float sum = 0.0f;
        for (int ky = 0; ky < kernel; ++ky) {
            const int ty = y - ky;  // = oy * stride when this (ky) contributes
            if (ty < 0) break;      // and it only gets smaller as ky grows
            if (ty % stride != 0) continue;
            const int oy = ty / stride;
            if (oy >= out_h) continue;
            for (int kx = 0; kx < kernel; ++kx) {
                const int tx = x - kx;
                if (tx < 0) break;
                if (tx % stride != 0) continue;
                const int ox = tx / stride;
                if (ox >= out_w) continue;
                const std::size_t r = (std::size_t(c) * kernel + ky) * kernel + kx;
                sum += column_grad[(r * batch + b) * positions + std::size_t(oy) * out_w + ox];
            }
        }
        image_grad[i] = sum;
    }
}

}  // namespace

void conv2d_backward(const GpuContext& ctx, const float* input, int batch, int in_channels, int height, int width,
                     const float* weight, int out_channels, int kernel, int stride, const float* output_grad,
                     float* weight_grad, float* bias_grad, float* input_grad, DeviceBuffer<float>& columns) {
    const ConvShape s = conv_shape(batch, in_channels, height, width, out_channels, kernel, stride);
    if (s.batch == 0) return;  // nothing to accumulate; an empty input has an empty gradient
    const int P = s.patch(), N = s.positions(), BN = s.columns(), O = s.out_channels;
    const std::size_t column_count = std::size_t(P) * BN;
    const std::size_t grad_count = std::size_t(O) * BN;
    columns.reserve(column_count + grad_count, ctx.stream());
    float* cols = columns.data();
    float* grad = columns.data() + column_count;

    im2col_kernel<<<blocks_for(column_count), block_threads, 0, ctx.stream()>>>(
        input, s.batch, s.in_channels, s.height, s.width, s.kernel, s.stride, s.out_h, s.out_w, cols);
    CAPSNET_CUDA_CHECK_LAUNCH();
    batch_to_channel_major_kernel<<<blocks_for(grad_count), block_threads, 0, ctx.stream()>>>(output_grad, s.batch,
                                                                                            O, std::size_t(N), grad);
    CAPSNET_CUDA_CHECK_LAUNCH();

    // bias_grad[o] += sum over (b, n) of grad[o, b, n]: row o of grad.
    row_sums_add_kernel<<<O, block_threads, 0, ctx.stream()>>>(grad, std::size_t(BN), bias_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();

    // Row-major: weight_grad [O, P] += grad [O, BN] * cols^T [BN, P].
    // Column-major: weight_grad^T [P, O] += cols [P, BN] * grad^T [BN, O], where
    //   A = cols: stored column-major as cols^T [BN, P] with lda = BN, so op = T;
    //   B = grad^T: stored column-major as [BN, O] with ldb = BN, op = N;
    //   C = weight_grad^T: [P, O], ldc = P; beta = 1 accumulates.
    const float one = 1.0f, zero = 0.0f;
    CAPSNET_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, P, O, BN, &one, cols, BN, grad, BN, &one,
                                     weight_grad, P));
    if (!input_grad) return;

    // Row-major: column_grad [P, BN] = weight^T [P, O] * grad [O, BN], written over cols.
    // Column-major: column_grad^T [BN, P] = grad^T [BN, O] * weight [O, P], where
    //   A = grad^T: stored column-major as [BN, O] with lda = BN, op = N;
    //   B = weight: stored column-major as weight^T [P, O] with ldb = P, so op = T;
    //   C = column_grad^T: [BN, P], ldc = BN; beta = 0 overwrites (cuBLAS does not read C).
    float* column_grad = cols;
    CAPSNET_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, BN, P, O, &one, grad, BN, weight, P, &zero,
                                     column_grad, BN));

    const std::size_t input_count = std::size_t(s.batch) * s.in_channels * s.height * s.width;
    col2im_gather_kernel<<<blocks_for(input_count), block_threads, 0, ctx.stream()>>>(
        column_grad, s.batch, s.in_channels, s.height, s.width, s.kernel, s.stride, s.out_h, s.out_w, input_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------
// linear_forward. CPU reference: linear_forward in shared/capsnet/layers.cpp: each output row starts as
// the bias, then the GEMM adds input * weight^T with beta = 1.
// ---------------------------------------------------------------------------------------------------

namespace {

// output[b, o] = bias[o] over output [batch, features].
__global__ void fill_rows_with_bias_kernel(float* output, const float* bias, int features, std::size_t total) {
    for (std::size_t i = global_thread(); i < total; i += global_stride()) output[i] = bias[i % features];
}

}  // namespace

void linear_forward(const GpuContext& ctx, const float* input, int batch, int in_features, const float* weight,
                    const float* bias, int out_features, float* output) {
    check_linear_shape(batch, in_features, out_features);
    if (batch == 0) return;
    const std::size_t output_count = std::size_t(batch) * out_features;
    fill_rows_with_bias_kernel<<<blocks_for(output_count), block_threads, 0, ctx.stream()>>>(output, bias,
                                                                                           out_features, output_count);
    CAPSNET_CUDA_CHECK_LAUNCH();

    // Row-major: output [B, Out] += input [B, In] * weight^T [In, Out].
    // Column-major: output^T [Out, B] += weight [Out, In] * input^T [In, B], where
    //   A = weight: stored column-major as weight^T [In, Out] with lda = In, so op = T;
    //   B = input^T: stored column-major as [In, B] with ldb = In, op = N;
    //   C = output^T: [Out, B], ldc = Out; beta = 1 keeps the bias.
    const float one = 1.0f;
    CAPSNET_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out_features, batch, in_features, &one,
                                     weight, in_features, input, in_features, &one, output, out_features));
}

// ---------------------------------------------------------------------------------------------------
// linear_backward. CPU reference: linear_backward in shared/capsnet/layers.cpp.
// ---------------------------------------------------------------------------------------------------

namespace {

// sums[col] += sum over rows of matrix[row, col], rows ascending: one thread per column, so the order is
// fixed (and adjacent threads read adjacent addresses).
__global__ void column_sums_add_kernel(const float* matrix, int rows, int cols, float* sums) {
    for (std::size_t col = global_thread(); col < std::size_t(cols); col += global_stride()) {
        float sum = 0.0f;
        for (int row = 0; row < rows; ++row) sum += matrix[std::size_t(row) * cols + col];
        sums[col] += sum;
    }
}

}  // namespace

void linear_backward(const GpuContext& ctx, const float* input, int batch, int in_features, const float* weight,
                     int out_features, const float* output_grad, float* weight_grad, float* bias_grad,
                     float* input_grad) {
    check_linear_shape(batch, in_features, out_features);
    if (batch == 0) return;
    const float one = 1.0f, zero = 0.0f;

    // Row-major: weight_grad [Out, In] += output_grad^T [Out, B] * input [B, In].
    // Column-major: weight_grad^T [In, Out] += input^T [In, B] * output_grad [B, Out], where
    //   A = input^T: stored column-major as [In, B] with lda = In, op = N;
    //   B = output_grad: stored column-major as output_grad^T [Out, B] with ldb = Out, so op = T;
    //   C = weight_grad^T: [In, Out], ldc = In; beta = 1 accumulates.
    CAPSNET_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, in_features, out_features, batch, &one,
                                     input, in_features, output_grad, out_features, &one, weight_grad, in_features));

    column_sums_add_kernel<<<blocks_for(std::size_t(out_features)), block_threads, 0, ctx.stream()>>>(
        output_grad, batch, out_features, bias_grad);
    CAPSNET_CUDA_CHECK_LAUNCH();
    if (!input_grad) return;

    // Row-major: input_grad [B, In] = output_grad [B, Out] * weight [Out, In].
    // Column-major: input_grad^T [In, B] = weight^T [In, Out] * output_grad^T [Out, B], where
    //   A = weight^T: stored column-major as [In, Out] with lda = In, op = N;
    //   B = output_grad^T: stored column-major as [Out, B] with ldb = Out, op = N;
    //   C = input_grad^T: [In, B], ldc = In; beta = 0 overwrites.
    CAPSNET_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, in_features, batch, out_features, &one,
                                     weight, in_features, output_grad, out_features, &zero, input_grad, in_features));
}

// ---------------------------------------------------------------------------------------------------
// leaky_relu_forward / leaky_relu_backward. CPU reference: leaky_relu_inplace and
// leaky_relu_backward_inplace in shared/capsnet/layers.hpp (the backward pass reads the output's sign).
// ---------------------------------------------------------------------------------------------------

namespace {

__global__ void leaky_relu_forward_kernel(float* x, std::size_t count, float slope) {
    for (std::size_t i = global_thread(); i < count; i += global_stride()) {
        const float value = x[i];
        x[i] = value > 0.0f ? value : value * slope;
    }
}

__global__ void leaky_relu_backward_kernel(const float* output, float* grad, std::size_t count, float slope) {
    for (std::size_t i = global_thread(); i < count; i += global_stride()) {
        const float g = grad[i];
        grad[i] = output[i] > 0.0f ? g : g * slope;
    }
}

}  // namespace

void leaky_relu_forward(const GpuContext& ctx, float* x, std::size_t count, float slope) {
    if (count == 0) return;
    leaky_relu_forward_kernel<<<blocks_for(count), block_threads, 0, ctx.stream()>>>(x, count, slope);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

void leaky_relu_backward(const GpuContext& ctx, const float* output, float* grad, std::size_t count, float slope) {
    if (count == 0) return;
    leaky_relu_backward_kernel<<<blocks_for(count), block_threads, 0, ctx.stream()>>>(output, grad, count, slope);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------
// sigmoid_forward / sigmoid_backward. CPU reference: sigmoid_inplace and sigmoid_backward_inplace in
// shared/capsnet/layers.hpp.
// ---------------------------------------------------------------------------------------------------

namespace {

__global__ void sigmoid_forward_kernel(float* x, std::size_t count) {
    // expf, not __expf: the fast intrinsic loses several bits for large |x|.
    for (std::size_t i = global_thread(); i < count; i += global_stride()) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

__global__ void sigmoid_backward_kernel(const float* output, float* grad, std::size_t count) {
    for (std::size_t i = global_thread(); i < count; i += global_stride()) {
        const float y = output[i];
        grad[i] = grad[i] * y * (1.0f - y);
    }
}

}  // namespace

void sigmoid_forward(const GpuContext& ctx, float* x, std::size_t count) {
    if (count == 0) return;
    sigmoid_forward_kernel<<<blocks_for(count), block_threads, 0, ctx.stream()>>>(x, count);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

void sigmoid_backward(const GpuContext& ctx, const float* output, float* grad, std::size_t count) {
    if (count == 0) return;
    sigmoid_backward_kernel<<<blocks_for(count), block_threads, 0, ctx.stream()>>>(output, grad, count);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------
// reconstruction_loss. CPU reference: reconstruction_loss_forward and reconstruction_loss_backward in
// shared/capsnet/losses.cpp: loss = weight * sum / B with the sum of squared float differences taken in
// double; gradient = (2 * weight / B) * (reconstruction - image) in float.
// Each thread of a fixed grid (block_reduction.cuh) writes its elements' gradients and sums their
// squares in a fixed stride order; each block's tree gives one partial; one block adds the partials and
// the scalar.
// ---------------------------------------------------------------------------------------------------

namespace {

__global__ void __launch_bounds__(reduction_threads)
    reconstruction_loss_kernel(const float* reconstruction, const float* images, std::size_t count, float grad_scale,
                               float* reconstruction_grad, double* partials) {
    __shared__ double shared[reduction_threads];
    double partial = 0.0;
    for (std::size_t i = global_thread(); i < count; i += global_stride()) {
        const float difference = reconstruction[i] - images[i];
        reconstruction_grad[i] = grad_scale * difference;
        partial += static_cast<double>(difference * difference);
    }
    const double sum = block_tree_sum<reduction_threads>(partial, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

}  // namespace

void reconstruction_loss(const GpuContext& ctx, const float* reconstruction, const float* images, int batch,
                         int pixels, float weight, float* loss, float* reconstruction_grad,
                         DeviceBuffer<double>& partials) {
    if (batch <= 0 || pixels <= 0)
        throw Error("cuda reconstruction_loss: invalid shape (batch " + std::to_string(batch) + ", pixels " +
                    std::to_string(pixels) + ")");
    const std::size_t count = std::size_t(batch) * pixels;
    const int blocks = reduction_blocks(count);
    partials.reserve(reduction_max_blocks, ctx.stream());
    // The CPU computes T(2) * weight / T(B) in float; so does this line.
    const float grad_scale = 2.0f * weight / static_cast<float>(batch);
    reconstruction_loss_kernel<<<blocks, reduction_threads, 0, ctx.stream()>>>(reconstruction, images, count,
                                                                               grad_scale, reconstruction_grad,
                                                                               partials.data());
    CAPSNET_CUDA_CHECK_LAUNCH();
    add_block_partials_kernel<<<1, reduction_threads, 0, ctx.stream()>>>(partials.data(), blocks,
                                                                         static_cast<double>(weight), batch, loss);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------
// adam_update. CPU reference: adam_update in shared/capsnet/adam.cpp: the bias corrections are folded into
// two scalars computed in double on the host, then each element is updated with the same float
// expressions in the same order.
// ---------------------------------------------------------------------------------------------------

namespace {

__global__ void adam_kernel(float* params, const float* grads, float* first_moment, float* second_moment,
                            std::size_t count, float beta1, float beta2, float epsilon, float step_size,
                            float inv_sqrt_correction2) {
    for (std::size_t i = global_thread(); i < count; i += global_stride()) {
        const float g = grads[i];
        const float m = beta1 * first_moment[i] + (1.0f - beta1) * g;
        const float v = beta2 * second_moment[i] + (1.0f - beta2) * g * g;
        first_moment[i] = m;
        second_moment[i] = v;
        params[i] -= step_size * m / (sqrtf(v) * inv_sqrt_correction2 + epsilon);
    }
}

}  // namespace

void adam_update(const GpuContext& ctx, float* params, const float* grads, float* first_moment, float* second_moment,
                 std::size_t count, float learning_rate, float beta1, float beta2, float epsilon, std::int64_t step) {
    if (step < 1) throw Error("cuda adam_update: step " + std::to_string(step) + " (must be >= 1 after increment)");
    if (count == 0) return;
    const double b1 = beta1, b2 = beta2;
    const float step_size = static_cast<float>(double(learning_rate) / (1.0 - std::pow(b1, double(step))));
    const float inv_sqrt_correction2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(b2, double(step))));
    adam_kernel<<<blocks_for(count), block_threads, 0, ctx.stream()>>>(
        params, grads, first_moment, second_moment, count, beta1, beta2, epsilon, step_size, inv_sqrt_correction2);
    CAPSNET_CUDA_CHECK_LAUNCH();
}

}  // namespace capsnet::cuda
