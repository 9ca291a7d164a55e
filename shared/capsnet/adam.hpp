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

// One update of every parameter: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
template <class T>
void adam_update(const Config& config, double learning_rate, const Parameters<T>& grads, Parameters<T>& params,
                 AdamState<T>& state);

}  // namespace capsnet
