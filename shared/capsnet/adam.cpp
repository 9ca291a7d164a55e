// Adam update: one fused loop over each tensor (or slice of one, for the threads of the CPU backend).
#include "capsnet/adam.hpp"

#include <cmath>

namespace capsnet {

template <class T>
AdamState<T> adam_init(const Config& config) {
    AdamState<T> state;
    state.first_moment = parameters_zeros<T>(config);
    state.second_moment = parameters_zeros<T>(config);
    return state;
}

template <class T>
AdamStep<T> adam_step(const Config& config, double learning_rate, std::int64_t t) {
    const double b1 = config.adam_beta1, b2 = config.adam_beta2;
    // Bias corrections folded into two scalars, as PyTorch does: step = lr / (1 - b1^t),
    // denominator = sqrt(v) / sqrt(1 - b2^t) + eps.
    return {T(b1), T(b2), T(config.adam_epsilon), T(learning_rate / (1.0 - std::pow(b1, double(t)))),
            T(1.0 / std::sqrt(1.0 - std::pow(b2, double(t))))};
}

template <class T>
void adam_update_slice(const AdamStep<T>& step, const T* g, T* p, T* m, T* v, std::size_t n) {
    const T beta1 = step.beta1, beta2 = step.beta2, eps = step.epsilon;
    const T step_size = step.step_size, inv_sqrt_correction2 = step.inv_sqrt_correction2;
    // One fused loop that the compiler vectorises, sqrt and division included (the four arrays never
    // overlap, which __restrict tells it).
    const T* __restrict gr = g;
    T* __restrict pr = p;
    T* __restrict mr = m;
    T* __restrict vr = v;
    for (std::size_t i = 0; i < n; ++i) {
        const T mi = beta1 * mr[i] + (T(1) - beta1) * gr[i];
        const T vi = beta2 * vr[i] + (T(1) - beta2) * gr[i] * gr[i];
        mr[i] = mi;
        vr[i] = vi;
        pr[i] -= step_size * mi / (std::sqrt(vi) * inv_sqrt_correction2 + eps);
    }
}

template <class T>
void adam_update(const Config& config, double learning_rate, const Parameters<T>& grads, Parameters<T>& params,
                 AdamState<T>& state) {
    state.step += 1;
    const AdamStep<T> step = adam_step<T>(config, learning_rate, state.step);
    visit_parameters(
        [&](const char* name, auto& p, const auto& g, auto& m, auto& v) {
            if (config.trainable.trains(name)) adam_update_slice(step, g.data(), p.data(), m.data(), v.data(), p.size());
        },
        params, grads, state.first_moment, state.second_moment);
}

template AdamState<float> adam_init<float>(const Config&);
template AdamState<double> adam_init<double>(const Config&);
template void adam_update<float>(const Config&, double, const Parameters<float>&, Parameters<float>&, AdamState<float>&);
template void adam_update<double>(const Config&, double, const Parameters<double>&, Parameters<double>&, AdamState<double>&);
template AdamStep<float> adam_step<float>(const Config&, double, std::int64_t);
template AdamStep<double> adam_step<double>(const Config&, double, std::int64_t);
template void adam_update_slice<float>(const AdamStep<float>&, const float*, float*, float*, float*, std::size_t);
template void adam_update_slice<double>(const AdamStep<double>&, const double*, double*, double*, double*, std::size_t);

}  // namespace capsnet

