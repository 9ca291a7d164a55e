// Parameter shapes and initialisation.
#include "capsnet/parameters.hpp"

#include <cmath>

namespace capsnet {

template <class T>
Parameters<T> parameters_zeros(const Config& config) {
    using S = std::size_t;
    const S digit_matrices = config.shared_digit_weights ? primary_types : primary_capsules;
    Parameters<T> p;
    p.conv1_weight = xt::zeros<T>({S(conv1_channels), S(1), S(conv_kernel), S(conv_kernel)});
    p.conv1_bias = xt::zeros<T>({S(conv1_channels)});
    p.primary_weight = xt::zeros<T>({S(primary_channels), S(conv1_channels), S(conv_kernel), S(conv_kernel)});
    p.primary_bias = xt::zeros<T>({S(primary_channels)});
    p.digit_weight = xt::zeros<T>({digit_matrices, S(digit_classes), S(digit_dims), S(primary_dims)});
    // The seed's per-type 1x1 convolutions carry a bias; the paper's W has none.
    p.digit_bias = has_digit_bias(config) ? Tensor<T, 3>(xt::zeros<T>({S(primary_types), S(digit_classes), S(digit_dims)}))
                                               : Tensor<T, 3>(xt::zeros<T>({S(0), S(0), S(0)}));
    p.decoder0_weight = xt::zeros<T>({S(decoder_hidden1), S(decoder_input)});
    p.decoder0_bias = xt::zeros<T>({S(decoder_hidden1)});
    p.decoder1_weight = xt::zeros<T>({S(decoder_hidden2), S(decoder_hidden1)});
    p.decoder1_bias = xt::zeros<T>({S(decoder_hidden2)});
    p.decoder2_weight = xt::zeros<T>({S(image_pixels), S(decoder_hidden2)});
    p.decoder2_bias = xt::zeros<T>({S(image_pixels)});
    return p;
}

namespace {

template <class E>
void fill_uniform(E& tensor, double bound, Rng& rng) {
    for (auto& x : tensor) x = static_cast<typename E::value_type>(rng.uniform(-bound, bound));
}

template <class E>
void fill_truncated_normal(E& tensor, double stddev, Rng& rng) {
    for (auto& x : tensor) {
        double z = rng.normal();
        while (std::abs(z) > 2.0) z = rng.normal();  // TensorFlow's truncated_normal: redraw beyond 2 sigma
        x = static_cast<typename E::value_type>(z * stddev);
    }
}

// fan_in of a conv [out, in, kh, kw] or linear [out, in] weight.
template <class E>
double fan_in(const E& weight) {
    double fan = 1;
    for (std::size_t d = 1; d < weight.dimension(); ++d) fan *= static_cast<double>(weight.shape(d));
    return fan;
}

}  // namespace

template <class T>
Parameters<T> parameters_init(const Config& config, Rng& rng) {
    Parameters<T> p = parameters_zeros<T>(config);
    if (config.init == InitScheme::uniform_005) {
        // Chainer's links with initialW=Uniform(0.05) and their default zero biases.
        fill_uniform(p.conv1_weight, 0.05, rng);
        fill_uniform(p.primary_weight, 0.05, rng);
        fill_uniform(p.digit_weight, 0.05, rng);
        fill_uniform(p.decoder0_weight, 0.05, rng);
        fill_uniform(p.decoder1_weight, 0.05, rng);
        fill_uniform(p.decoder2_weight, 0.05, rng);
        return p;
    }
    // PyTorch's default for Conv2d/Linear (kaiming_uniform with a = sqrt(5)) is U(+-1/sqrt(fan_in)) for
    // both weight and bias. The routing weights follow the paper's code: truncated N(0, 0.01^2).
    auto pytorch_layer = [&rng](auto& weight, auto& bias) {
        const double bound = 1.0 / std::sqrt(fan_in(weight));
        fill_uniform(weight, bound, rng);
        fill_uniform(bias, bound, rng);
    };
    pytorch_layer(p.conv1_weight, p.conv1_bias);
    pytorch_layer(p.primary_weight, p.primary_bias);
    fill_truncated_normal(p.digit_weight, 0.01, rng);
    pytorch_layer(p.decoder0_weight, p.decoder0_bias);
    pytorch_layer(p.decoder1_weight, p.decoder1_bias);
    pytorch_layer(p.decoder2_weight, p.decoder2_bias);
    return p;
}

template <class T>
std::size_t parameter_count(const Parameters<T>& params) {
    std::size_t count = 0;
    visit_parameters([&count](const char*, const auto& tensor) { count += tensor.size(); }, params);
    return count;
}

template <class T>
void parameters_fill_zero(Parameters<T>& params) {
    visit_parameters([](const char*, auto& tensor) { tensor.fill(T(0)); }, params);
}

#define CAPSNET_INSTANTIATE(T)                                               \
    template Parameters<T> parameters_zeros<T>(const Config&);               \
    template Parameters<T> parameters_init<T>(const Config&, Rng&);          \
    template std::size_t parameter_count<T>(const Parameters<T>&);           \
    template void parameters_fill_zero<T>(Parameters<T>&);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
