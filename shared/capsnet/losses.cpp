// Margin and reconstruction losses.
#include "capsnet/losses.hpp"

#include <algorithm>
#include <cmath>

namespace capsnet {

template <class T>
void capsule_lengths(const Tensor<T, 3>& v, Tensor<T, 2>& lengths) {
    lengths = xt::sqrt(xt::sum(v * v, {2}));
}

namespace {

void check_labels(const std::vector<int>& labels, std::size_t batch, std::size_t classes) {
    if (labels.size() != batch) throw Error("loss: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(batch));
    for (int label : labels)
        if (label < 0 || static_cast<std::size_t>(label) >= classes) throw Error("loss: label " + std::to_string(label) + " out of range");
}

}  // namespace

template <class T>
T margin_loss_forward(const Tensor<T, 2>& lengths, const std::vector<int>& labels, const Config& config) {
    const std::size_t B = lengths.shape(0), J = lengths.shape(1);
    check_labels(labels, B, J);
    double total = 0;
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < J; ++j) {
            const double len = lengths(b, j);
            if (static_cast<int>(j) == labels[b]) {
                const double miss = std::max(0.0, double(config.margin_positive) - len);
                total += miss * miss;
            } else {
                const double excess = std::max(0.0, len - double(config.margin_negative));
                total += config.margin_lambda * excess * excess;
            }
        }
    return static_cast<T>(total / B);
}

template <class T>
void margin_loss_backward(const Tensor<T, 3>& v, const Tensor<T, 2>& lengths, const std::vector<int>& labels,
                          const Config& config, Tensor<T, 3>& v_grad) {
    const std::size_t B = v.shape(0), J = v.shape(1), D = v.shape(2);
    check_labels(labels, B, J);
    if (v_grad.shape() != v.shape()) {
        v_grad.resize(v.shape());
        v_grad.fill(T(0));
    }
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < J; ++j) {
            const T len = lengths(b, j);
            T length_grad;
            if (static_cast<int>(j) == labels[b])
                length_grad = -T(2) * std::max(T(0), T(config.margin_positive) - len);
            else
                length_grad = T(2) * T(config.margin_lambda) * std::max(T(0), len - T(config.margin_negative));
            // d|v|/dv = v / |v|; at v = 0 the loss is flat in every direction that matters (0 < m-), so 0.
            if (!(len > T(0)) || length_grad == T(0)) continue;
            const T scale = length_grad / (len * T(B));
            for (std::size_t d = 0; d < D; ++d) v_grad(b, j, d) += scale * v(b, j, d);
        }
}

template <class T>
T reconstruction_loss_forward(const Tensor<T, 2>& reconstruction, const Tensor<T, 4>& images, T weight) {
    const std::size_t B = reconstruction.shape(0);
    auto target = xt::reshape_view(images, {B, reconstruction.shape(1)});
    const double sum = xt::sum(xt::square(reconstruction - target))();
    return static_cast<T>(weight * sum / B);
}

template <class T>
void reconstruction_loss_backward(const Tensor<T, 2>& reconstruction, const Tensor<T, 4>& images, T weight,
                                  Tensor<T, 2>& reconstruction_grad) {
    const std::size_t B = reconstruction.shape(0);
    auto target = xt::reshape_view(images, {B, reconstruction.shape(1)});
    reconstruction_grad = (T(2) * weight / T(B)) * (reconstruction - target);
}

#define CAPSNET_INSTANTIATE(T)                                                                                      \
    template void capsule_lengths<T>(const Tensor<T, 3>&, Tensor<T, 2>&);                                          \
    template T margin_loss_forward<T>(const Tensor<T, 2>&, const std::vector<int>&, const Config&);                \
    template void margin_loss_backward<T>(const Tensor<T, 3>&, const Tensor<T, 2>&, const std::vector<int>&,       \
                                          const Config&, Tensor<T, 3>&);                                           \
    template T reconstruction_loss_forward<T>(const Tensor<T, 2>&, const Tensor<T, 4>&, T);                        \
    template void reconstruction_loss_backward<T>(const Tensor<T, 2>&, const Tensor<T, 4>&, T, Tensor<T, 2>&);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
