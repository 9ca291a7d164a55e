// Adam update written as xtensor expressions: each line is one fused, vectorised loop over a tensor.
#include "capsnet/adam.hpp"

#include <cmath>

#include <xtensor/xmath.hpp>

namespace capsnet {

template <class T>
AdamState<T> adam_init(const Config& config) {
    AdamState<T> state;
    state.first_moment = parameters_zeros<T>(config);
    state.second_moment = parameters_zeros<T>(config);
    return state;
}

template <class T>
void adam_update(const Config& config, double learning_rate, const Parameters<T>& grads, Parameters<T>& params,
                 AdamState<T>& state) {
    state.step += 1;
    const double b1 = config.adam_beta1, b2 = config.adam_beta2;
    const T beta1 = T(b1), beta2 = T(b2), eps = T(config.adam_epsilon);
    // Bias corrections folded into two scalars, as PyTorch does: step = lr / (1 - b1^t),
    // denominator = sqrt(v) / sqrt(1 - b2^t) + eps.
    const T step_size = T(learning_rate / (1.0 - std::pow(b1, double(state.step))));
    const T inv_sqrt_correction2 = T(1.0 / std::sqrt(1.0 - std::pow(b2, double(state.step))));
    visit_parameters(
        [&](const char*, auto& p, const auto& g, auto& m, auto& v) {
            m = beta1 * m + (T(1) - beta1) * g;
            v = beta2 * v + (T(1) - beta2) * g * g;
            p -= step_size * m / (xt::sqrt(v) * inv_sqrt_correction2 + eps);
        },
        params, grads, state.first_moment, state.second_moment);
}

template AdamState<float> adam_init<float>(const Config&);
template AdamState<double> adam_init<double>(const Config&);
template void adam_update<float>(const Config&, double, const Parameters<float>&, Parameters<float>&, AdamState<float>&);
template void adam_update<double>(const Config&, double, const Parameters<double>&, Parameters<double>&, AdamState<double>&);

}  // namespace capsnet
