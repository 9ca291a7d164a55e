// The routing view (issue 14, "See the routing"): what dynamic routing did for one sample, iteration by
// iteration, and which input pixels the primary capsules that voted for a class were looking at. Arrays
// only (the browser draws them as textures, `capsnet visualize` as vis_routing.png).
//
// Everything is read from a ForwardState the model already computed (no second routing run): u_hat,
// the coupling coefficients c of every iteration and the output capsules v of every iteration. What is
// derived here is what routing.cpp does not keep:
//   b_1 = 0,  b_{r+1} = b_r + u_hat . v_r      the agreement logits iteration r's softmax was taken of
//   |v_j| after each iteration                  how the class scores move while routing runs
//   |u_hat_ij|                                  how strongly capsule i predicts class j at all
//
// Receptive fields. conv1 is 9x9 stride 1 (no padding): conv1 cell y1 sees input rows y1..y1+8. The
// primary convolution is 9x9 stride 2: grid cell y sees conv1 rows 2y..2y+8, so input rows
// 2y..2y+16, a 17x17 field starting at (2y, 2x). The last cell (y = 5) ends at row 26: row 27 and
// column 27 are in no field, the only input pixels the capsules never see (test_routing_view checks this
// reasoning against the real convolutions). All 32 capsule types of a grid cell share its field;
// capsule i = t*36 + y*6 + x (capsules.hpp) lies at type t, cell (y, x) in both presets (the seed's
// shared W only changes which matrix a capsule uses, not where it is).
//
// Attribution: how much each input pixel's primary capsules sent to class j at iteration r,
//   A[r, j, p] = x(p) * sum over capsules i whose field contains p of c_r[i, j] * |u_hat_ij| / 289
// c_r[i, j] * |u_hat_ij| is the length of capsule i's term in s_j = sum_i c_ij u_hat_ij: the size of its
// vote for j. It is spread evenly over the capsule's 17x17 = 289 field (the capsule does not say which of
// its pixels mattered), summed over the overlapping fields, and multiplied by the pixel's ink x(p) in
// [0, 1] so that only strokes light up: the view answers "which strokes voted for 4", and blank pixels,
// although the capsules see them, cast no stroke. Hence A >= 0, A == 0 wherever x == 0 (a blank input
// gives an all-zero map) and outside every field (row and column 27). It is the length of the vote, not
// its agreement with v_j: a capsule whose vote points away from v_j still counts (b_ij shows agreement).
// A central pixel (rows and columns 10..16) lies in all 36 cells' fields, a corner pixel in one, so
// every class's map is brighter toward the centre alike: compare classes at a pixel (the view's
// purpose), not the pixels of one class.
#pragma once

#include <cstddef>
#include <cstdint>

#include "capsnet/common.hpp"
#include "capsnet/config.hpp"
#include "capsnet/model.hpp"

namespace capsnet {

// A primary capsule's receptive field in the 28x28 input: rows and columns [2y, 2y+16].
constexpr int primary_field_side = conv_kernel + (conv_kernel - 1) * 1;  // conv1 stride 1: 9 + 8 = 17
constexpr int primary_field_start(int grid_coordinate) { return primary_stride * grid_coordinate; }

// One sample's routing, iteration r (1..R) at index r-1 of the first axis.
struct RoutingTrace {
    Tensor<float, 3> coupling;            // c [R, 1152, 10]: softmax over the classes of logits
    Tensor<float, 3> logits;              // b [R, 1152, 10]: logits[0] is all zeros
    Tensor<float, 2> lengths;             // [R, 10]: |v_j| after iteration r; lengths[R-1] are the class scores
    Tensor<float, 2> prediction_lengths;  // [1152, 10]: |u_hat_ij| (the same at every iteration)
    int iterations() const { return static_cast<int>(coupling.shape(0)); }
};

// Sample `sample` of a state model_forward filled. Error when the sample is out of range.
RoutingTrace routing_trace(const ForwardState<float>& state, std::size_t sample);

// A [R, 10, 28, 28] map as defined above; image [28, 28] is the input the trace was computed from.
Tensor<float, 4> routing_attribution(const RoutingTrace& trace, const Tensor<float, 2>& image);

// For display: each iteration divided by its maximum over the 10 classes and all pixels, so values are in
// [0, 1] and colours compare across classes (the brightest pixel of the most-voted class is 1). An
// iteration whose map is all zero (a blank input) stays zero.
Tensor<float, 4> routing_attribution_normalized(const Tensor<float, 4>& attribution);

// Everything the view shows for one sample (what the demo calls after its forward pass).
struct RoutingView {
    RoutingTrace trace;
    Tensor<float, 4> attribution;             // [R, 10, 28, 28]
    Tensor<float, 4> attribution_normalized;  // [R, 10, 28, 28], in [0, 1]
};
RoutingView routing_view(const ForwardState<float>& state, std::size_t sample);

// The heatmap of one class at one iteration: the 1152 capsules as 32 tiles of 6x6 (the grid as in the
// image, row y, column x), 4 rows of 8 tiles, 1-value gaps filled with gap_value:
// [4*6+3, 8*6+7] = [27, 55]. Capsule type t is the tile at tile row t / 8, tile column t % 8, so the
// value at (t/8 * 7 + y, t%8 * 7 + x) is per_capsule[iteration, t*36 + y*6 + x, digit].
// per_capsule is trace.coupling or trace.logits; iteration is the 0-based index (the slider's r - 1).
constexpr int routing_heatmap_tile_rows = 4;
constexpr int routing_heatmap_tile_columns = 8;
constexpr int routing_heatmap_gap = 1;
constexpr int routing_heatmap_height = routing_heatmap_tile_rows * (primary_side + routing_heatmap_gap) - routing_heatmap_gap;
constexpr int routing_heatmap_width =
    routing_heatmap_tile_columns * (primary_side + routing_heatmap_gap) - routing_heatmap_gap;
Tensor<float, 2> routing_heatmap(const Tensor<float, 3>& per_capsule, int iteration, int digit, float gap_value);

// Colours, so `capsnet visualize` and the browser draw the same picture. The ramp runs purple -> red ->
// orange -> pale yellow (after matplotlib's inferno) and never starts at black, so a faint value still
// shows as colour.
struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};
// value in [0, 1] (clamped) on the ramp; the heatmap's colours.
Rgb routing_ramp(float value);
// One pixel of the attribution overlay: the input's ink (in [0, 1]) in dim grey under the ramp colour of
// the normalised attribution, whose opacity rises to 1 at a fifth of the maximum, so strong votes are
// pure ramp colour and a stroke that sent nothing stays grey.
Rgb routing_overlay_pixel(float ink, float attribution);

}  // namespace capsnet
