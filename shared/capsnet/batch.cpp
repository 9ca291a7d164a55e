// Batch assembly and shift augmentation.
#include "capsnet/batch.hpp"

#include <numeric>
#include <utility>

namespace capsnet {

template <class T>
void shift_image(const std::uint8_t* src, int side, int dx, int dy, T* dst) {
    for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x) {
            const int sy = y - dy, sx = x - dx;
            const bool inside = sy >= 0 && sy < side && sx >= 0 && sx < side;
            dst[y * side + x] = inside ? T(src[sy * side + sx]) / T(255) : T(0);
        }
}

template <class T>
void make_batch(const std::vector<std::uint8_t>& pixels, const std::vector<std::uint8_t>& labels, int side,
                const std::vector<std::size_t>& indices, int max_shift, Rng& rng, Tensor<T, 4>& images,
                std::vector<int>& batch_labels) {
    const std::size_t count = indices.size(), area = std::size_t(side) * side;
    images.resize({count, std::size_t(1), std::size_t(side), std::size_t(side)});
    batch_labels.resize(count);
    for (std::size_t n = 0; n < count; ++n) {
        const std::size_t index = indices[n];
        if ((index + 1) * area > pixels.size() || index >= labels.size()) throw Error("make_batch: sample index out of range");
        int dx = 0, dy = 0;
        if (max_shift > 0) {
            dx = static_cast<int>(rng.below(2 * max_shift + 1)) - max_shift;
            dy = static_cast<int>(rng.below(2 * max_shift + 1)) - max_shift;
        }
        shift_image(pixels.data() + index * area, side, dx, dy, images.data() + n * area);
        batch_labels[n] = labels[index];
    }
}

std::vector<std::size_t> shuffled_indices(std::size_t count, Rng& rng) {
    std::vector<std::size_t> order(count);
    std::iota(order.begin(), order.end(), std::size_t(0));
    for (std::size_t i = count; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    return order;
}

template void shift_image<float>(const std::uint8_t*, int, int, int, float*);
template void shift_image<double>(const std::uint8_t*, int, int, int, double*);
template void make_batch<float>(const std::vector<std::uint8_t>&, const std::vector<std::uint8_t>&, int,
                                const std::vector<std::size_t>&, int, Rng&, Tensor<float, 4>&, std::vector<int>&);
template void make_batch<double>(const std::vector<std::uint8_t>&, const std::vector<std::uint8_t>&, int,
                                 const std::vector<std::size_t>&, int, Rng&, Tensor<double, 4>&, std::vector<int>&);

}  // namespace capsnet
