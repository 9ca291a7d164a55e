// Primary capsules and prediction vectors.
#include "capsnet/capsules.hpp"

#include <vector>

#include "capsnet/gemm.hpp"
#include "capsnet/routing.hpp"

namespace capsnet {

template <class T>
void primary_capsules_forward(const Tensor<T, 4>& conv_out, int dims, bool squash, Tensor<T, 3>& raw,
                              Tensor<T, 3>& capsules) {
    const std::size_t B = conv_out.shape(0), C = conv_out.shape(1), P = conv_out.shape(2) * conv_out.shape(3);
    if (C % dims != 0) throw Error("primary capsules: channels are not a multiple of the capsule size");
    const std::size_t types = C / dims, D = dims;
    raw.resize({B, types * P, D});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t < types; ++t)
            for (std::size_t d = 0; d < D; ++d) {
                const T* src = conv_out.data() + (b * C + t * D + d) * P;
                T* dst = raw.data() + (b * types * P + t * P) * D + d;
                for (std::size_t p = 0; p < P; ++p) dst[p * D] = src[p];
            }
    capsules.resize(raw.shape());
    if (squash)
        squash_forward(raw.data(), capsules.data(), B * types * P, dims);
    else
        capsules = raw;
}

template <class T>
void primary_capsules_backward(const Tensor<T, 3>& raw, bool squash, const Tensor<T, 3>& capsules_grad,
                               Tensor<T, 4>& conv_out_grad, int channels, int height, int width) {
    const std::size_t B = raw.shape(0), N = raw.shape(1), D = raw.shape(2), P = std::size_t(height) * width;
    const std::size_t types = N / P;
    Tensor<T, 3> raw_grad;
    if (squash) {
        raw_grad.resize(raw.shape());
        squash_backward(raw.data(), capsules_grad.data(), raw_grad.data(), B * N, static_cast<int>(D));
    }
    const Tensor<T, 3>& g = squash ? raw_grad : capsules_grad;
    conv_out_grad.resize({B, static_cast<std::size_t>(channels), static_cast<std::size_t>(height),
                          static_cast<std::size_t>(width)});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t < types; ++t)
            for (std::size_t d = 0; d < D; ++d) {
                const T* src = g.data() + (b * N + t * P) * D + d;
                T* dst = conv_out_grad.data() + (b * channels + t * D + d) * P;
                for (std::size_t p = 0; p < P; ++p) dst[p] = src[p * D];
            }
}

namespace {

struct PredictionShape {
    int batch, inputs, in_dims, matrices, classes, out_dims, share;
    int row() const { return classes * out_dims; }  // one capsule's u_hat, all classes
};

template <class T>
PredictionShape prediction_shape(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight) {
    PredictionShape s{static_cast<int>(capsules.shape(0)), static_cast<int>(capsules.shape(1)),
                      static_cast<int>(capsules.shape(2)), static_cast<int>(weight.shape(0)),
                      static_cast<int>(weight.shape(1)), static_cast<int>(weight.shape(2)), 1};
    if (static_cast<int>(weight.shape(3)) != s.in_dims || s.matrices == 0 || s.inputs % s.matrices != 0)
        throw Error("predictions: weight shape does not match the capsules");
    s.share = s.inputs / s.matrices;
    return s;
}

}  // namespace

template <class T>
void predictions_forward(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight, const Tensor<T, 3>& bias,
                         Tensor<T, 4>& u_hat) {
    const PredictionShape s = prediction_shape(capsules, weight);
    u_hat.resize({std::size_t(s.batch), std::size_t(s.inputs), std::size_t(s.classes), std::size_t(s.out_dims)});
    const int row = s.row(), in_stride = s.inputs * s.in_dims, out_stride = s.inputs * row;
    const bool has_bias = bias.size() > 0;
    for (int i = 0; i < s.inputs; ++i) {
        const int w = i / s.share;
        T* out = u_hat.data() + std::size_t(i) * row;
        T beta = T(0);
        if (has_bias) {
            for (int b = 0; b < s.batch; ++b) std::copy_n(bias.data() + std::size_t(w) * row, row, out + std::size_t(b) * out_stride);
            beta = T(1);
        }
        // [batch, in_dims] x W[w]^T [in_dims, classes*out_dims]: one small GEMM per input capsule.
        gemm<T>(false, true, s.batch, row, s.in_dims, T(1), capsules.data() + std::size_t(i) * s.in_dims, in_stride,
                weight.data() + std::size_t(w) * row * s.in_dims, s.in_dims, beta, out, out_stride);
    }
}

template <class T>
void predictions_backward(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight, const Tensor<T, 4>& u_hat_grad,
                          Tensor<T, 4>& weight_grad, Tensor<T, 3>& bias_grad, Tensor<T, 3>& capsules_grad) {
    predictions_backward(capsules, weight, u_hat_grad, weight_grad, bias_grad, &capsules_grad);
}

template <class T>
void predictions_backward(const Tensor<T, 3>& capsules, const Tensor<T, 4>& weight, const Tensor<T, 4>& u_hat_grad,
                          Tensor<T, 4>& weight_grad, Tensor<T, 3>& bias_grad, Tensor<T, 3>* capsules_grad) {
    const PredictionShape s = prediction_shape(capsules, weight);
    if (capsules_grad) capsules_grad->resize(capsules.shape());
    const int row = s.row(), in_stride = s.inputs * s.in_dims, out_stride = s.inputs * row;
    const bool has_bias = bias_grad.size() > 0;
    for (int i = 0; i < s.inputs; ++i) {
        const int w = i / s.share;
        const T* g = u_hat_grad.data() + std::size_t(i) * row;
        gemm<T>(true, false, row, s.in_dims, s.batch, T(1), g, out_stride, capsules.data() + std::size_t(i) * s.in_dims,
                in_stride, T(1), weight_grad.data() + std::size_t(w) * row * s.in_dims, s.in_dims);
        if (capsules_grad)
            gemm<T>(false, false, s.batch, s.in_dims, row, T(1), g, out_stride,
                    weight.data() + std::size_t(w) * row * s.in_dims, s.in_dims, T(0),
                    capsules_grad->data() + std::size_t(i) * s.in_dims, in_stride);
        if (has_bias) {
            T* bg = bias_grad.data() + std::size_t(w) * row;
            for (int b = 0; b < s.batch; ++b)
                for (int k = 0; k < row; ++k) bg[k] += g[std::size_t(b) * out_stride + k];
        }
    }
}

#define CAPSNET_INSTANTIATE(T)                                                                                    \
    template void primary_capsules_forward<T>(const Tensor<T, 4>&, int, bool, Tensor<T, 3>&, Tensor<T, 3>&);      \
    template void primary_capsules_backward<T>(const Tensor<T, 3>&, bool, const Tensor<T, 3>&, Tensor<T, 4>&, int, \
                                               int, int);                                                         \
    template void predictions_forward<T>(const Tensor<T, 3>&, const Tensor<T, 4>&, const Tensor<T, 3>&,           \
                                         Tensor<T, 4>&);                                                          \
    template void predictions_backward<T>(const Tensor<T, 3>&, const Tensor<T, 4>&, const Tensor<T, 4>&,          \
                                          Tensor<T, 4>&, Tensor<T, 3>&, Tensor<T, 3>&);                          \
    template void predictions_backward<T>(const Tensor<T, 3>&, const Tensor<T, 4>&, const Tensor<T, 4>&,          \
                                          Tensor<T, 4>&, Tensor<T, 3>&, Tensor<T, 3>*);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
