// Convolution and fully connected layers on top of the GEMM interface.
//
// A convolution is lowered to matrix products in one of two ways (ConvLowering), because its two uses
// in CapsNet have opposite shapes:
// - columns, image by image: out[b] [O, P] = W [O, K] * columns [K, P]. conv1 has P = 400 output
//   positions per image, enough for an efficient GEMM, and its output lands in place.
// - patch rows over the whole batch: out^T [B*P, O] = rows [B*P, K] * W^T. The primary-capsule
//   convolution has only P = 36 positions per image but K = 20736, so per image it would be a GEMM 36
//   columns wide; stacking the batch's patches as rows gives one product with B*P rows, and the weight
//   gradient and the input gradient become one large product each as well.
// (K = in_channels * kernel^2, the patch; O = out_channels.)
#include "capsnet/layers.hpp"

#include <algorithm>
#include <vector>

#include "capsnet/gemm.hpp"
#include "capsnet/profile.hpp"
#include "capsnet/simd.hpp"

namespace capsnet {

template <class T>
void im2col(const T* image, int channels, int height, int width, int kernel, int stride, T* columns) {
    const int out_h = (height - kernel) / stride + 1;
    const int out_w = (width - kernel) / stride + 1;
    for (int c = 0; c < channels; ++c)
        for (int ky = 0; ky < kernel; ++ky)
            for (int kx = 0; kx < kernel; ++kx) {
                T* row = columns + ((static_cast<std::size_t>(c) * kernel + ky) * kernel + kx) * out_h * out_w;
                for (int oy = 0; oy < out_h; ++oy) {
                    const T* src = image + (static_cast<std::size_t>(c) * height + oy * stride + ky) * width + kx;
                    for (int ox = 0; ox < out_w; ++ox) row[oy * out_w + ox] = src[ox * stride];
                }
            }
}

template <class T>
void col2im_add(const T* columns, int channels, int height, int width, int kernel, int stride, T* image) {
    const int out_h = (height - kernel) / stride + 1;
    const int out_w = (width - kernel) / stride + 1;
    for (int c = 0; c < channels; ++c)
        for (int ky = 0; ky < kernel; ++ky)
            for (int kx = 0; kx < kernel; ++kx) {
                const T* row = columns + ((static_cast<std::size_t>(c) * kernel + ky) * kernel + kx) * out_h * out_w;
                for (int oy = 0; oy < out_h; ++oy) {
                    T* dst = image + (static_cast<std::size_t>(c) * height + oy * stride + ky) * width + kx;
                    for (int ox = 0; ox < out_w; ++ox) dst[ox * stride] += row[oy * out_w + ox];
                }
            }
}

namespace {

// Pairs the patch rows of one image with the pixels they copy: for output position p = (oy, ox), patch
// element (c, ky, kx) at rows[p * K + (c * kernel + ky) * kernel + kx] is
// image[c][oy * stride + ky][ox * stride + kx]. Each kernel row is `kernel` consecutive values on both
// sides: op(row run, pixel run, kernel) handles one.
template <class Row, class Pixel, class Op>
void for_each_kernel_row(Row* rows, Pixel* image, int channels, int height, int width, int kernel, int stride, Op op) {
    const int out_h = (height - kernel) / stride + 1;
    const int out_w = (width - kernel) / stride + 1;
    for (int oy = 0; oy < out_h; ++oy)
        for (int ox = 0; ox < out_w; ++ox)
            for (int c = 0; c < channels; ++c)
                for (int ky = 0; ky < kernel; ++ky, rows += kernel)
                    op(rows, image + (static_cast<std::size_t>(c) * height + oy * stride + ky) * width + ox * stride, kernel);
}

// A short run (a kernel row, 9 values) in whole vectors, then the rest one by one: a loop of unknown
// length this short would otherwise be a call to memmove, or scalar code.
template <class T>
inline void copy_run(const T* src, T* dst, int n) {
    using Batch = simd::batch<T>;
    constexpr int lanes = static_cast<int>(Batch::size);
    int k = 0;
    for (; k + lanes <= n; k += lanes) Batch::load_unaligned(src + k).store_unaligned(dst + k);
    for (; k < n; ++k) dst[k] = src[k];
}

template <class T>
inline void add_run(const T* src, T* dst, int n) {
    using Batch = simd::batch<T>;
    constexpr int lanes = static_cast<int>(Batch::size);
    int k = 0;
    for (; k + lanes <= n; k += lanes) (Batch::load_unaligned(dst + k) + Batch::load_unaligned(src + k)).store_unaligned(dst + k);
    for (; k < n; ++k) dst[k] += src[k];
}

}  // namespace

template <class T>
void im2row(const T* image, int channels, int height, int width, int kernel, int stride, T* rows) {
    for_each_kernel_row(rows, image, channels, height, width, kernel, stride,
                        [](T* row, const T* pixels, int n) { copy_run(pixels, row, n); });
}

template <class T>
void row2im_add(const T* rows, int channels, int height, int width, int kernel, int stride, T* image) {
    for_each_kernel_row(rows, image, channels, height, width, kernel, stride,
                        [](const T* row, T* pixels, int n) { add_run(row, pixels, n); });
}

namespace {

struct ConvShape {
    int batch, in_channels, height, width, out_channels, kernel, stride, out_h, out_w;
    int positions() const { return out_h * out_w; }
    int patch() const { return in_channels * kernel * kernel; }
    std::size_t image_size() const { return static_cast<std::size_t>(in_channels) * height * width; }
    std::size_t output_size() const { return static_cast<std::size_t>(out_channels) * positions(); }
    ConvLowering lowering(ConvLowering asked) const {
        if (asked != ConvLowering::automatic) return asked;
        // A GEMM narrower than the output channels wastes the kernel's width: stack the batch instead.
        return positions() < out_channels ? ConvLowering::patch_rows : ConvLowering::columns;
    }
};

template <class T>
ConvShape conv_shape(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, int stride) {
    ConvShape s{};
    s.batch = static_cast<int>(input.shape(0));
    s.in_channels = static_cast<int>(input.shape(1));
    s.height = static_cast<int>(input.shape(2));
    s.width = static_cast<int>(input.shape(3));
    s.out_channels = static_cast<int>(weight.shape(0));
    s.kernel = static_cast<int>(weight.shape(2));
    s.stride = stride;
    if (static_cast<int>(weight.shape(1)) != s.in_channels || weight.shape(3) != weight.shape(2))
        throw Error("conv2d: weight shape does not match the input channels");
    s.out_h = (s.height - s.kernel) / stride + 1;
    s.out_w = (s.width - s.kernel) / stride + 1;
    return s;
}

// The patch rows of images [first, first + count) into rows [count * P, K].
template <class T>
void batch_im2row(const Tensor<T, 4>& input, const ConvShape& s, int first, int count, T* rows) {
    const std::size_t rows_per_image = static_cast<std::size_t>(s.positions()) * s.patch();
    for (int g = 0; g < count; ++g)
        im2row(input.data() + (first + g) * s.image_size(), s.in_channels, s.height, s.width, s.kernel, s.stride,
               rows + g * rows_per_image);
}

// Scratch buffer `which` of the calling thread, kept between calls: a training step runs these layers
// with the same shapes every time and should not allocate (and fault in) tens of megabytes per call.
template <class T>
T* scratch(int which, std::size_t size) {
    thread_local std::vector<T> buffers[3];
    std::vector<T>& buffer = buffers[which];
    if (buffer.size() < size) buffer.resize(size);
    return buffer.data();
}

// Images per GEMM when the patch rows (or their gradient) go through scratch space: enough rows (~256)
// for an efficient product while the buffer ([group * P, K], 24 MB for conv2) stays bounded.
int patch_group(const ConvShape& s) { return std::max(1, std::min(s.batch, (256 + s.positions() - 1) / s.positions())); }

}  // namespace

template <class T>
void conv2d_forward(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, const Tensor<T, 1>& bias, int stride,
                    Tensor<T, 4>& output, Tensor<T, 2>* keep_patch_rows, ConvLowering lowering) {
    const ConvShape s = conv_shape(input, weight, stride);
    output.resize({static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.out_channels),
                   static_cast<std::size_t>(s.out_h), static_cast<std::size_t>(s.out_w)});
    const int p = s.positions(), K = s.patch(), O = s.out_channels;
    if (s.lowering(lowering) == ConvLowering::columns) {
        T* const columns = scratch<T>(0, static_cast<std::size_t>(K) * p);
        for (int b = 0; b < s.batch; ++b) {
            im2col(input.data() + b * s.image_size(), s.in_channels, s.height, s.width, s.kernel, s.stride, columns);
            T* out = output.data() + b * s.output_size();
            for (int o = 0; o < O; ++o) std::fill_n(out + static_cast<std::size_t>(o) * p, p, bias(o));
            gemm<T>(false, false, O, p, K, T(1), weight.data(), K, columns, p, T(1), out, p);
        }
        return;
    }
    // Kept rows cover the whole batch; otherwise a few images at a time go through a bounded scratch.
    const int group = keep_patch_rows ? s.batch : patch_group(s);
    if (keep_patch_rows) keep_patch_rows->resize({static_cast<std::size_t>(s.batch) * p, static_cast<std::size_t>(K)});
    T* const product = scratch<T>(1, static_cast<std::size_t>(group) * p * O);  // out^T: [group * P, O]
    for (int first = 0; first < s.batch; first += group) {
        const int count = std::min(group, s.batch - first);
        T* const rows = keep_patch_rows ? keep_patch_rows->data() + static_cast<std::size_t>(first) * p * K
                                        : scratch<T>(0, static_cast<std::size_t>(group) * p * K);
        batch_im2row(input, s, first, count, rows);
        gemm<T>(false, true, count * p, O, K, T(1), rows, K, weight.data(), K, T(0), product, O);
        for (int g = 0; g < count; ++g)
            for (int o = 0; o < O; ++o) {
                T* dst = output.data() + (first + g) * s.output_size() + static_cast<std::size_t>(o) * p;
                const T* src = product + static_cast<std::size_t>(g) * p * O + o;
                for (int i = 0; i < p; ++i) dst[i] = src[static_cast<std::size_t>(i) * O] + bias(o);
            }
    }
}

template <class T>
void conv2d_backward(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, int stride, const Tensor<T, 4>& output_grad,
                     Tensor<T, 4>& weight_grad, Tensor<T, 1>& bias_grad, Tensor<T, 4>* input_grad,
                     const Tensor<T, 2>* patch_rows, ConvLowering lowering) {
    const ConvShape s = conv_shape(input, weight, stride);
    const int p = s.positions(), K = s.patch(), O = s.out_channels;
    if (input_grad) {
        input_grad->resize(input.shape());
        input_grad->fill(T(0));
    }
    for (int b = 0; b < s.batch; ++b)
        for (int o = 0; o < O; ++o) {
            const T* g = output_grad.data() + b * s.output_size() + static_cast<std::size_t>(o) * p;
            T sum = 0;
            for (int i = 0; i < p; ++i) sum += g[i];
            bias_grad(o) += sum;
        }

    if (s.lowering(lowering) == ConvLowering::columns) {
        T* const columns = scratch<T>(0, static_cast<std::size_t>(K) * p);
        for (int b = 0; b < s.batch; ++b) {
            const T* g = output_grad.data() + b * s.output_size();
            im2col(input.data() + b * s.image_size(), s.in_channels, s.height, s.width, s.kernel, s.stride, columns);
            gemm<T>(false, true, O, K, p, T(1), g, p, columns, p, T(1), weight_grad.data(), K);
            if (!input_grad) continue;
            StageTimer timer(Stage::conv2_input_grad);  // only the primary-capsule convolution gets here in CapsNet
            T* const column_grad = scratch<T>(1, static_cast<std::size_t>(K) * p);
            gemm<T>(true, false, K, p, O, T(1), weight.data(), K, g, p, T(0), column_grad, p);
            col2im_add(column_grad, s.in_channels, s.height, s.width, s.kernel, s.stride,
                       input_grad->data() + b * s.image_size());
        }
        return;
    }

    // The output gradient as out^T [B * P, O], the layout of the forward product.
    T* const grad_t = scratch<T>(1, static_cast<std::size_t>(s.batch) * p * O);
    for (int b = 0; b < s.batch; ++b)
        for (int o = 0; o < O; ++o) {
            const T* src = output_grad.data() + b * s.output_size() + static_cast<std::size_t>(o) * p;
            T* dst = grad_t + static_cast<std::size_t>(b) * p * O + o;
            for (int i = 0; i < p; ++i) dst[static_cast<std::size_t>(i) * O] = src[i];
        }
    const T* rows = nullptr;
    if (!patch_rows) {
        T* const recomputed = scratch<T>(0, static_cast<std::size_t>(s.batch) * p * K);
        batch_im2row(input, s, 0, s.batch, recomputed);
        rows = recomputed;
    } else if (patch_rows->shape(0) != static_cast<std::size_t>(s.batch) * p || patch_rows->shape(1) != static_cast<std::size_t>(K)) {
        throw Error("conv2d_backward: the kept patch rows do not match the input");
    } else {
        rows = patch_rows->data();
    }
    // dW [O, K] += (out^T)^T [O, B * P] * rows [B * P, K]: every image of the batch in one product.
    gemm<T>(true, false, O, K, s.batch * p, T(1), grad_t, O, rows, K, T(1), weight_grad.data(), K);
    if (!input_grad) return;
    StageTimer timer(Stage::conv2_input_grad);  // only the primary-capsule convolution gets here in CapsNet
    const int group = patch_group(s);
    T* const row_grad = scratch<T>(2, static_cast<std::size_t>(group) * p * K);
    for (int first = 0; first < s.batch; first += group) {
        const int count = std::min(group, s.batch - first);
        // d rows [count * P, K] = out^T [count * P, O] * W [O, K]
        gemm<T>(false, false, count * p, K, O, T(1), grad_t + static_cast<std::size_t>(first) * p * O, O,
                weight.data(), K, T(0), row_grad, K);
        for (int g = 0; g < count; ++g)
            row2im_add(row_grad + static_cast<std::size_t>(g) * p * K, s.in_channels, s.height, s.width, s.kernel,
                       s.stride, input_grad->data() + (first + g) * s.image_size());
    }
}

template <class T>
void linear_forward(const Tensor<T, 2>& input, const Tensor<T, 2>& weight, const Tensor<T, 1>& bias, Tensor<T, 2>& output) {
    const int batch = static_cast<int>(input.shape(0));
    const int in = static_cast<int>(input.shape(1));
    const int out = static_cast<int>(weight.shape(0));
    if (static_cast<int>(weight.shape(1)) != in) throw Error("linear: weight shape does not match the input");
    output.resize({static_cast<std::size_t>(batch), static_cast<std::size_t>(out)});
    for (int b = 0; b < batch; ++b) std::copy_n(bias.data(), out, output.data() + static_cast<std::size_t>(b) * out);
    gemm<T>(false, true, batch, out, in, T(1), input.data(), in, weight.data(), in, T(1), output.data(), out);
}

template <class T>
void linear_backward(const Tensor<T, 2>& input, const Tensor<T, 2>& weight, const Tensor<T, 2>& output_grad,
                     Tensor<T, 2>& weight_grad, Tensor<T, 1>& bias_grad, Tensor<T, 2>* input_grad) {
    const int batch = static_cast<int>(input.shape(0));
    const int in = static_cast<int>(input.shape(1));
    const int out = static_cast<int>(weight.shape(0));
    gemm<T>(true, false, out, in, batch, T(1), output_grad.data(), out, input.data(), in, T(1), weight_grad.data(), in);
    bias_grad += xt::sum(output_grad, {0});
    if (input_grad) {
        input_grad->resize(input.shape());
        gemm<T>(false, false, batch, in, out, T(1), output_grad.data(), out, weight.data(), in, T(0), input_grad->data(), in);
    }
}

#define CAPSNET_INSTANTIATE(T)                                                                                      \
    template void im2col<T>(const T*, int, int, int, int, int, T*);                                                 \
    template void col2im_add<T>(const T*, int, int, int, int, int, T*);                                             \
    template void im2row<T>(const T*, int, int, int, int, int, T*);                                                 \
    template void row2im_add<T>(const T*, int, int, int, int, int, T*);                                             \
    template void conv2d_forward<T>(const Tensor<T, 4>&, const Tensor<T, 4>&, const Tensor<T, 1>&, int, Tensor<T, 4>&, \
                                    Tensor<T, 2>*, ConvLowering);                                                   \
    template void conv2d_backward<T>(const Tensor<T, 4>&, const Tensor<T, 4>&, int, const Tensor<T, 4>&, Tensor<T, 4>&, \
                                     Tensor<T, 1>&, Tensor<T, 4>*, const Tensor<T, 2>*, ConvLowering);              \
    template void linear_forward<T>(const Tensor<T, 2>&, const Tensor<T, 2>&, const Tensor<T, 1>&, Tensor<T, 2>&);   \
    template void linear_backward<T>(const Tensor<T, 2>&, const Tensor<T, 2>&, const Tensor<T, 2>&, Tensor<T, 2>&,   \
                                     Tensor<T, 1>&, Tensor<T, 2>*);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
