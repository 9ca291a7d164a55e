// Convolution and fully connected layers on top of the GEMM interface.
//
// Convolutions process images in groups: the column matrices of a group sit side by side, so each GEMM
// has at least ~256 columns. The primary-capsule convolution has only 36 output positions per image and
// a GEMM that narrow wastes most of a SIMD/BLAS kernel.
#include "capsnet/layers.hpp"

#include <algorithm>
#include <vector>

#include "capsnet/gemm.hpp"

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

struct ConvShape {
    int batch, in_channels, height, width, out_channels, kernel, stride, out_h, out_w;
    int positions() const { return out_h * out_w; }
    int patch() const { return in_channels * kernel * kernel; }
    // Images per GEMM: enough to give ~256 columns.
    int group() const { return std::max(1, std::min(batch, (256 + positions() - 1) / positions())); }
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

// Columns of a group of images, side by side: [patch, group * positions].
template <class T>
void group_im2col(const Tensor<T, 4>& input, const ConvShape& s, int first, int count, std::vector<T>& columns,
                  std::vector<T>& one_image) {
    const int p = s.positions();
    const std::size_t image_size = static_cast<std::size_t>(s.in_channels) * s.height * s.width;
    one_image.resize(static_cast<std::size_t>(s.patch()) * p);
    columns.resize(static_cast<std::size_t>(s.patch()) * count * p);
    for (int g = 0; g < count; ++g) {
        im2col(input.data() + (first + g) * image_size, s.in_channels, s.height, s.width, s.kernel, s.stride,
               one_image.data());
        for (int r = 0; r < s.patch(); ++r)
            std::copy_n(one_image.data() + static_cast<std::size_t>(r) * p, p,
                        columns.data() + (static_cast<std::size_t>(r) * count + g) * p);
    }
}

}  // namespace

template <class T>
void conv2d_forward(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, const Tensor<T, 1>& bias, int stride,
                    Tensor<T, 4>& output) {
    const ConvShape s = conv_shape(input, weight, stride);
    output.resize({static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.out_channels),
                   static_cast<std::size_t>(s.out_h), static_cast<std::size_t>(s.out_w)});
    const int p = s.positions();
    const int group = s.group();
    std::vector<T> columns, one_image, product;
    for (int first = 0; first < s.batch; first += group) {
        const int count = std::min(group, s.batch - first);
        const int n = count * p;
        group_im2col(input, s, first, count, columns, one_image);
        product.resize(static_cast<std::size_t>(s.out_channels) * n);
        gemm<T>(false, false, s.out_channels, n, s.patch(), T(1), weight.data(), s.patch(), columns.data(), n, T(0),
                product.data(), n);
        for (int g = 0; g < count; ++g)
            for (int o = 0; o < s.out_channels; ++o) {
                const T* src = product.data() + static_cast<std::size_t>(o) * n + g * p;
                T* dst = output.data() + (static_cast<std::size_t>(first + g) * s.out_channels + o) * p;
                const T b = bias(o);
                for (int i = 0; i < p; ++i) dst[i] = src[i] + b;
            }
    }
}

template <class T>
void conv2d_backward(const Tensor<T, 4>& input, const Tensor<T, 4>& weight, int stride, const Tensor<T, 4>& output_grad,
                     Tensor<T, 4>& weight_grad, Tensor<T, 1>& bias_grad, Tensor<T, 4>* input_grad) {
    const ConvShape s = conv_shape(input, weight, stride);
    const int p = s.positions();
    const int group = s.group();
    if (input_grad) {
        input_grad->resize(input.shape());
        input_grad->fill(T(0));
    }
    std::vector<T> columns, one_image, grad_matrix, column_grad;
    for (int first = 0; first < s.batch; first += group) {
        const int count = std::min(group, s.batch - first);
        const int n = count * p;
        group_im2col(input, s, first, count, columns, one_image);
        // The output gradient of the group as [out_channels, group * positions], like the forward product.
        grad_matrix.resize(static_cast<std::size_t>(s.out_channels) * n);
        for (int g = 0; g < count; ++g)
            for (int o = 0; o < s.out_channels; ++o) {
                const T* src = output_grad.data() + (static_cast<std::size_t>(first + g) * s.out_channels + o) * p;
                std::copy_n(src, p, grad_matrix.data() + static_cast<std::size_t>(o) * n + g * p);
                T sum = 0;
                for (int i = 0; i < p; ++i) sum += src[i];
                bias_grad(o) += sum;
            }
        gemm<T>(false, true, s.out_channels, s.patch(), n, T(1), grad_matrix.data(), n, columns.data(), n, T(1),
                weight_grad.data(), s.patch());
        if (!input_grad) continue;
        column_grad.resize(static_cast<std::size_t>(s.patch()) * n);
        gemm<T>(true, false, s.patch(), n, s.out_channels, T(1), weight.data(), s.patch(), grad_matrix.data(), n, T(0),
                column_grad.data(), n);
        const std::size_t image_size = static_cast<std::size_t>(s.in_channels) * s.height * s.width;
        for (int g = 0; g < count; ++g) {
            for (int r = 0; r < s.patch(); ++r)
                std::copy_n(column_grad.data() + (static_cast<std::size_t>(r) * count + g) * p, p,
                            one_image.data() + static_cast<std::size_t>(r) * p);
            col2im_add(one_image.data(), s.in_channels, s.height, s.width, s.kernel, s.stride,
                       input_grad->data() + (first + g) * image_size);
        }
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
    template void conv2d_forward<T>(const Tensor<T, 4>&, const Tensor<T, 4>&, const Tensor<T, 1>&, int, Tensor<T, 4>&); \
    template void conv2d_backward<T>(const Tensor<T, 4>&, const Tensor<T, 4>&, int, const Tensor<T, 4>&, Tensor<T, 4>&, \
                                     Tensor<T, 1>&, Tensor<T, 4>*);                                                 \
    template void linear_forward<T>(const Tensor<T, 2>&, const Tensor<T, 2>&, const Tensor<T, 1>&, Tensor<T, 2>&);   \
    template void linear_backward<T>(const Tensor<T, 2>&, const Tensor<T, 2>&, const Tensor<T, 2>&, Tensor<T, 2>&,   \
                                     Tensor<T, 1>&, Tensor<T, 2>*);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
