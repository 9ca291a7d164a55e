// Affine transforms of images (rotation, scale, shear, translation about the image centre) and the pose
// sweep built on them: the browser demo's pose lab and `capsnet robustness` (affNIST-style transformed
// test digits, the paper's robustness claim) run exactly this code. Arrays only, no threads or file I/O,
// so it builds under Emscripten and the native tests check what the browser runs.
//
// Coordinates are drawing.hpp's: an image is [rows, cols], row 0 at the top; pixel (r, c) covers the
// unit square [c, c+1) x [r, r+1) of the image plane, with x = column to the right and y = row DOWN, so
// its centre is (c + 0.5, r + 0.5). The image centre is (cols / 2, rows / 2) (a pixel corner for an even
// side: for 28x28 it is (14, 14)).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "capsnet/common.hpp"
#include "capsnet/config.hpp"
#include "capsnet/model.hpp"
#include "capsnet/parameters.hpp"

namespace capsnet {

// The identity by default. Units are chosen so that one transform means the same thing on the demo's
// large drawing canvas and on a 28x28 digit:
// - rotation_degrees: positive is counter-clockwise as seen on screen (the top of an upright "1" leans
//   left). Within [-360, 360].
// - scale: isotropic, > 1 enlarges. Within [0.1, 10].
// - shear: the x-shear factor: a point moves right by shear * (its height above the centre), so positive
//   shear leans the top to the right, like italic type. Within [-2, 2].
// - translate_x, translate_y: fractions of the image's width and height; positive x moves right, positive
//   y moves DOWN (the image's row direction, as in drawing.hpp's stroke coordinates). Within [-1, 1]
//   (a whole side moves everything out).
// Order: shear, then rotation, then scale, all about the image centre, then the translation.
struct AffineTransform {
    float rotation_degrees = 0, scale = 1, shear = 0, translate_x = 0, translate_y = 0;
};

// Error naming the field for a non-finite value or one outside the ranges above.
void affine_validate(const AffineTransform& transform);

// Row-major 2x3 matrix m of a map of the image plane: x' = m[0] x + m[1] y + m[2], y' = m[3] x + m[4] y + m[5].
using AffineMatrix = std::array<double, 6>;

// The forward map of `transform` for an image of rows x cols: where a point of the input lands in the
// output (plane coordinates, see the top of this file). Validates the transform.
AffineMatrix affine_matrix(const AffineTransform& transform, int rows, int cols);

// The inverse map (Error for a singular matrix; affine_matrix's never are).
AffineMatrix affine_matrix_inverse(const AffineMatrix& matrix);

// The transformed image, the same size as the input: each output pixel's centre is mapped back through
// the inverse and the input sampled there bilinearly between pixel centres, with zeros outside the
// image (so ink moved out is lost and uncovered area is blank). Taps with weight 0 are skipped and
// sample positions within 1e-4 pixel of a pixel centre snap onto it, so the identity, quarter turns of a
// square image and whole-pixel translations are exact copies of pixels (a float fraction of the side
// cannot hold k/28 exactly; without the snap a 2-pixel shift would blur by ~1e-7). Error for an empty
// image, one over 4096 on a side, non-finite values or an invalid transform.
Tensor<float, 2> affine_warp(const Tensor<float, 2>& image, const AffineTransform& transform);

// ---------------------------------------------------------------------------------------------------
// The pose sweep: one transform parameter varied, the network's response recorded.

enum class PoseAxis { rotation, scale, shear, translate_x, translate_y };

// `base` with the field of `axis` set to `value` (the other fields kept).
AffineTransform affine_with(AffineTransform base, PoseAxis axis, float value);

// What an image is, which decides where the transform applies:
// - canvas: the demo's drawing (any size, ink in [0,1]): warped, then drawing_to_mnist's crop, 20-pixel
//   fit and centring, as the live demo does with a drawing. Note that this preprocessing undoes most of a
//   scale or translation (it refits the ink's box and recentres it): what remains of them is the change
//   of stroke width relative to the digit and what the border cut off. Rotation and shear survive it.
// - mnist: an already preprocessed 28x28 digit (a test image, a gallery digit): warped directly, as
//   affNIST does; scale and translation reach the network.
enum class PoseSource { canvas, mnist };

// The 784 bytes the network sees for `image` under `transform` (round(x * 255), like MNIST and the demo's
// classify). Error for an mnist image that is not 28x28, or what affine_warp rejects.
std::vector<std::uint8_t> pose_input_bytes(const Tensor<float, 2>& image, PoseSource source,
                                           const AffineTransform& transform);

struct PoseSweep {
    std::vector<float> values;     // the swept axis's values, as given
    Tensor<float, 2> lengths;      // [values, classes]: every capsule's length at each value
    Tensor<float, 2> capsule;      // [values, dims]: the chosen capsule's vector at each value
    std::vector<int> predictions;  // the longest capsule at each value; -1 where the input is blank
};

// For each value, `base` with `axis` set to it (affine_with), the image transformed and preprocessed
// (pose_input_bytes) and classified with the demo's byte scaling, pose_sweep_batch images per forward
// pass: a value that gives the base pose reproduces the demo's live (one-image) numbers to float
// rounding (~1e-6: only the GEMM's blocking over the batch differs). Batches, because the browser's
// 25-angle sweep must take under 600 ms: in wasm a batch of 9 costs ~25% less per image than 9 single
// passes (the primary convolution's GEMM is 36 columns wide for one image), and 9 bounds the
// im2col buffer at ~27 MB. `digit` picks the capsule whose 16 dimensions are returned. `scratch` is
// reused between calls. Error for a digit out of range, no values, or an invalid transform.
constexpr std::size_t pose_sweep_batch = 9;
PoseSweep pose_sweep(const Config& config, const Parameters<float>& params, const Tensor<float, 2>& image,
                     PoseSource source, const AffineTransform& base, PoseAxis axis, const std::vector<float>& values,
                     int digit, ForwardState<float>& scratch);

}  // namespace capsnet
