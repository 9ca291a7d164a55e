// The pictures the paper and the seed implementation draw, as arrays (no file or screen I/O here, so
// the native PNG writer and the browser share them):
// - the mask grid: each input reconstructed through each digit capsule (the others masked to zero);
// - dimension sweeps: one capsule with an offset added to one of its 16 dimensions at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "capsnet/common.hpp"
#include "capsnet/parameters.hpp"

namespace capsnet {

// A dimension sweep's offsets, low to high in steps. The default, the range of the paper's Figure 4, is
// the one every default (the visualize command, the demo, its share links, the benchmarks) starts from.
struct SweepRange {
    float low, high, step;
};
constexpr SweepRange default_sweep_range{-0.25f, 0.25f, 0.05f};

// How many offsets sweep_offsets(low, high, step) gives: round((high - low) / step) + 1, as a double
// so a hostile range cannot overflow it (finite values, step > 0 and high >= low assumed).
double sweep_offset_count(float low, float high, float step);

// Offsets low, low+step, ..., high (both ends included). The count is rounded, so -0.25..0.25 step
// 0.05 gives 11 values despite binary rounding, and a value within step/1000 of 0 is exactly 0 (the
// unperturbed row). Error for step <= 0, high < low, non-finite values or more than 1001 offsets.
std::vector<float> sweep_offsets(float low, float high, float step);
inline std::vector<float> sweep_offsets(const SweepRange& range) { return sweep_offsets(range.low, range.high, range.step); }

// digit_capsules [N, classes, dims] -> [N, classes, 784]: sample n decoded with only capsule j kept.
Tensor<float, 3> mask_grid_reconstructions(const Parameters<float>& params, const Tensor<float, 3>& digit_capsules);

// capsules [classes, dims] of one sample -> [offsets, dims, 784]: capsule `digit` alone, with
// offsets[r] added to its dimension d.
Tensor<float, 3> dimension_sweep_reconstructions(const Parameters<float>& params, const Tensor<float, 2>& capsules,
                                                 int digit, const std::vector<float>& offsets);

// Indices of the first `per_class` samples of each class 0..classes-1, class by class (the seed's
// vis_all picks the first two test images of each digit). Error when a class has too few samples.
std::vector<std::size_t> first_samples_per_class(const std::vector<std::uint8_t>& labels, int classes, int per_class);

// Tiles images [rows, cols, side*side] into one [rows*(side+gap)-gap, cols*(side+gap)-gap] picture,
// with `background` in the gaps.
Tensor<float, 2> tile_images(const Tensor<float, 3>& images, int side, int gap, float background);

}  // namespace capsnet
