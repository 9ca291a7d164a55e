// Mask grid and dimension sweeps on top of the decoder.
#include "capsnet/visualize.hpp"

#include <algorithm>
#include <cmath>

#include "capsnet/config.hpp"
#include "capsnet/model.hpp"

namespace capsnet {

double sweep_offset_count(float low, float high, float step) {
    return std::round((double(high) - double(low)) / double(step)) + 1;
}

std::vector<float> sweep_offsets(float low, float high, float step) {
    if (!std::isfinite(low) || !std::isfinite(high) || !std::isfinite(step))
        throw Error("sweep range: values must be finite");
    if (!(step > 0)) throw Error("sweep range: step must be positive");
    if (high < low) throw Error("sweep range: high must not be below low");
    const double intervals = sweep_offset_count(low, high, step) - 1;
    if (intervals > 1000) throw Error("sweep range: more than 1001 offsets");
    std::vector<float> offsets;
    for (int i = 0; i <= static_cast<int>(intervals); ++i) {
        const double value = double(low) + i * double(step);
        offsets.push_back(std::abs(value) < double(step) * 1e-3 ? 0.0f : static_cast<float>(value));
    }
    return offsets;
}

namespace {

// Decodes rows * cols decoder inputs (row-major) into a [rows, cols, 784] grid of reconstructions.
Tensor<float, 3> decode_grid(const Parameters<float>& params, const Tensor<float, 2>& input, std::size_t rows,
                             std::size_t cols) {
    Tensor<float, 2> hidden1, hidden2, reconstruction;
    decoder_forward(params, input, hidden1, hidden2, reconstruction);
    Tensor<float, 3> grid(std::array<std::size_t, 3>{rows, cols, reconstruction.shape(1)});
    std::copy(reconstruction.begin(), reconstruction.end(), grid.begin());
    return grid;
}

}  // namespace

Tensor<float, 3> mask_grid_reconstructions(const Parameters<float>& params, const Tensor<float, 3>& digit_capsules) {
    const std::size_t N = digit_capsules.shape(0), J = digit_capsules.shape(1), D = digit_capsules.shape(2);
    // One decoder batch of N * J rows: row n*J + j keeps capsule j of sample n.
    Tensor<float, 2> input = xt::zeros<float>({N * J, J * D});
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t j = 0; j < J; ++j)
            std::copy_n(digit_capsules.data() + (n * J + j) * D, D, input.data() + (n * J + j) * J * D + j * D);
    return decode_grid(params, input, N, J);
}

Tensor<float, 3> dimension_sweep_reconstructions(const Parameters<float>& params, const Tensor<float, 2>& capsules,
                                                 int digit, const std::vector<float>& offsets) {
    const std::size_t J = capsules.shape(0), D = capsules.shape(1), R = offsets.size();
    if (digit < 0 || static_cast<std::size_t>(digit) >= J) throw Error("dimension sweep: digit out of range");
    // Row r*D + d: capsule `digit` with offsets[r] added to dimension d, every other capsule masked.
    Tensor<float, 2> input = xt::zeros<float>({R * D, J * D});
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t d = 0; d < D; ++d) {
            float* row = input.data() + (r * D + d) * J * D + digit * D;
            std::copy_n(capsules.data() + digit * D, D, row);
            row[d] += offsets[r];
        }
    return decode_grid(params, input, R, D);
}

std::vector<std::size_t> first_samples_per_class(const std::vector<std::uint8_t>& labels, int classes, int per_class) {
    std::vector<std::vector<std::size_t>> found(classes);
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < classes && static_cast<int>(found[labels[i]].size()) < per_class) found[labels[i]].push_back(i);
    std::vector<std::size_t> indices;
    for (int c = 0; c < classes; ++c) {
        if (static_cast<int>(found[c].size()) < per_class)
            throw Error("only " + std::to_string(found[c].size()) + " samples of class " + std::to_string(c) + ", " +
                        std::to_string(per_class) + " needed");
        indices.insert(indices.end(), found[c].begin(), found[c].end());
    }
    return indices;
}

Tensor<float, 2> tile_images(const Tensor<float, 3>& images, int side, int gap, float background) {
    const std::size_t rows = images.shape(0), cols = images.shape(1), S = side, G = gap;
    if (images.shape(2) != S * S) throw Error("tile_images: images are not side x side");
    const std::size_t height = rows ? rows * (S + G) - G : 0, width = cols ? cols * (S + G) - G : 0;
    Tensor<float, 2> picture = xt::zeros<float>({height, width}) + background;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
            for (std::size_t y = 0; y < S; ++y)
                std::copy_n(images.data() + ((r * cols + c) * S + y) * S, S,
                            picture.data() + (r * (S + G) + y) * width + c * (S + G));
    return picture;
}

}  // namespace capsnet
