// How data-parallel work is split and summed. The CPU backend's threads and the ranks of a run over MPI
// (native/distributed) both use these, so that the same split rounds the same way: N ranks of one thread
// each compute, bit for bit, what one process with N threads computes.
#pragma once

#include <cstddef>
#include <utility>

#include "capsnet/common.hpp"

namespace capsnet {

// [first, last) of part k when `total` things are split into `parts` nearly equal contiguous ranges.
inline std::pair<std::size_t, std::size_t> part_range(std::size_t total, int parts, int k) {
    const std::size_t n = static_cast<std::size_t>(parts);
    return {total * static_cast<std::size_t>(k) / n, total * static_cast<std::size_t>(k + 1) / n};
}

// The weight of a shard's gradient in the batch's: the losses are batch means, so a shard of `shard`
// samples counts shard / batch. Rounded to float once, here, for every caller.
inline float shard_weight(std::size_t shard, std::size_t batch) {
    return static_cast<float>(double(shard) / double(batch));
}

// Images [first, last) of a batch into `shard`, reusing its storage.
void copy_batch_images(const Tensor<float, 4>& images, std::size_t first, std::size_t last, Tensor<float, 4>& shard);

// sum = weight * grad, then sum += weight * grad for each further shard, in shard order: a weighted sum
// over shards is these two calls and nothing else. Out of line, so every caller gets the same
// instructions (whether the multiply and add fuse is the compiler's choice; it is made once, here).
void weighted_gradient_start(float* sum, float weight, const float* grad, std::size_t n);
void weighted_gradient_add(float* sum, float weight, const float* grad, std::size_t n);

}  // namespace capsnet
