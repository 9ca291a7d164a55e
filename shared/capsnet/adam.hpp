// Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam and Chainer's Adam compute it.
// The learning rate is passed per step so the caller owns the per-epoch decay schedule.
#pragma once

#include <cstdint>

#include "capsnet/config.hpp"
#include "capsnet/parameters.hpp"

namespace capsnet {

template <class T>
struct AdamState {
    Parameters<T> first_moment;   // m
    Parameters<T> second_moment;  // v
    std::int64_t step = 0;
};

template <class T>
AdamState<T> adam_init(const Config& config);

// One update of every trainable parameter (config.trainable; frozen ones and their moments stay as they
// are, while the step count advances): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
template <class T>
void adam_update(const Config& config, double learning_rate, const Parameters<T>& grads, Parameters<T>& params,
                 AdamState<T>& state);

// The same update in pieces, for a caller that spreads the parameters over threads: the scalars of
// step t (after state.step has been incremented to t), then any slice of any tensor.
template <class T>
struct AdamStep {
    T beta1, beta2, epsilon;
    T step_size;             // lr / (1 - b1^t)
    T inv_sqrt_correction2;  // 1 / sqrt(1 - b2^t)
};

template <class T>
AdamStep<T> adam_step(const Config& config, double learning_rate, std::int64_t t);

// p, m, v and g are n consecutive elements of one tensor and of its moments and gradient.
template <class T>
void adam_update_slice(const AdamStep<T>& step, const T* g, T* p, T* m, T* v, std::size_t n);

}  // namespace capsnet
