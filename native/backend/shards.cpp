// The weighted gradient sums of shards.hpp, compiled once.
#include "backend/shards.hpp"

namespace capsnet {

void weighted_gradient_start(float* sum, float weight, const float* grad, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) sum[j] = weight * grad[j];
}

void weighted_gradient_add(float* sum, float weight, const float* grad, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) sum[j] += weight * grad[j];
}

}  // namespace capsnet
