// Turning MNIST bytes into training batches: scaling to [0, 1] and the per-sample random shift
// augmentation of the paper ("shifted by up to 2 pixels in each direction with zero padding").
#pragma once

#include <cstdint>
#include <vector>

#include "capsnet/common.hpp"
#include "capsnet/random.hpp"

namespace capsnet {

// dst(y, x) = src(y - dy, x - dx) / 255, zero where that falls outside the image.
template <class T>
void shift_image(const std::uint8_t* src, int side, int dx, int dy, T* dst);

// Fills images [count, 1, side, side] and labels from the samples at `indices`. With max_shift > 0 each
// sample gets its own shift, dx and dy drawn uniformly from [-max_shift, max_shift].
template <class T>
void make_batch(const std::vector<std::uint8_t>& pixels, const std::vector<std::uint8_t>& labels, int side,
                const std::vector<std::size_t>& indices, int max_shift, Rng& rng, Tensor<T, 4>& images,
                std::vector<int>& batch_labels);

// A random permutation of 0..count-1 (Fisher-Yates on our own generator, identical on every target).
std::vector<std::size_t> shuffled_indices(std::size_t count, Rng& rng);

}  // namespace capsnet
