// The weighted gradient sums of shards.hpp, compiled once.
#include "backend/shards.hpp"

#include <algorithm>
#include <array>

namespace capsnet {

void copy_batch_images(const Tensor<float, 4>& images, std::size_t first, std::size_t last, Tensor<float, 4>& shard) {
    const std::size_t per_image = images.size() / std::max<std::size_t>(1, images.shape(0));
    const std::array<std::size_t, 4> shape{last - first, images.shape(1), images.shape(2), images.shape(3)};
    if (shard.shape() != shape) shard.resize(shape);
    std::copy_n(images.data() + first * per_image, (last - first) * per_image, shard.data());
}

void weighted_gradient_start(float* sum, float weight, const float* grad, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) sum[j] = weight * grad[j];
}

void weighted_gradient_add(float* sum, float weight, const float* grad, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) sum[j] += weight * grad[j];
}

}  // namespace capsnet
