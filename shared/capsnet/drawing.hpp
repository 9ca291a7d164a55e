// From a drawing to the network's input, the way MNIST itself was made (LeCun et al.): the browser demo
// rasterises the user's strokes onto a large canvas, then crops, scales and centres the ink as the MNIST
// digits were, so a drawn digit looks to the network like the digits it was trained on. Arrays only (no
// screen or file I/O), so the native tests check exactly what the browser runs.
//
// Coordinates: an image is [rows, cols], row 0 at the top. Pixel (r, c) covers the unit square
// [c, c+1) x [r, r+1) of the image plane; its mass sits at its centre, which the centre of mass puts at
// index coordinates (r, c). MNIST's digits have their centre of mass, in those coordinates, in
// [13.5, 14.5) on both axes (measured on all 10,000 test digits), i.e. it rounds (half up) to pixel
// (14, 14): drawing_to_mnist reproduces exactly that.
#pragma once

#include <cstdint>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet {

struct StrokePoint {
    float x = 0, y = 0;  // canvas coordinates normalised to [0,1] (0,0 = top-left)
};

struct Stroke {
    std::vector<StrokePoint> points;
    float width = 0.08f;  // pen diameter as a fraction of the canvas side
};

// Rasterises strokes onto a side x side image in [0,1]. A pixel's value is its coverage by the pen,
// clamp(radius + 0.5 - distance, 0, 1) with the distance from the pixel's centre to the stroke's polyline
// in pixels: round caps and joins, a 1-pixel linear antialiasing ramp that keeps the ink of a straight
// segment per unit length equal to the pen's diameter. Overlaps take the maximum (the union of the pen's
// shapes), so ink saturates at 1 and drawing a stroke twice changes nothing. A one-point stroke is a dot;
// a stroke without points draws nothing. Points outside [0,1] are clipped by the image border; points
// with a non-finite coordinate are skipped (the stroke joins its neighbours), so a bad pointer event
// cannot break the demo. Error for side < 1 or side > 4096, or a width that is not finite and positive.
Tensor<float, 2> drawing_rasterize(const std::vector<Stroke>& strokes, int side);

// Bilinear upscale of a small square image (e.g. a 28x28 digit) to side x side, so a gallery digit can be
// drawn over: pixel centres map onto pixel centres, and samples beyond the outer centres take the edge
// value. Error for a non-square or empty image, non-finite values, side < 1 or side > 4096.
Tensor<float, 2> drawing_upscale(const Tensor<float, 2>& image, int side);

// Preprocesses like MNIST was made: values are clamped to [0,1]; crop to the bounding box of the pixels
// > 0; scale it by area averaging (a box filter, which conserves ink: sum out = sum in * out area / in
// area) so its longer side is 20 pixels and its shorter side round(short * 20 / long), at least 1; then
// place it in 28x28 shifted by whole pixels so that its centre of mass rounds (half up) to pixel (14, 14)
// (see the top of this file); pixels shifted out are dropped. Returns [28,28] in [0,1]; all zeros for an
// empty or blank image. Error for non-finite values.
Tensor<float, 2> drawing_to_mnist(const Tensor<float, 2>& ink);

// [28,28] floats in [0,1] -> 784 bytes round(x*255) clamped to 0..255, row-major (the network always sees
// byte-valued input, like MNIST). Error for another shape or a non-finite value.
std::vector<std::uint8_t> drawing_to_bytes(const Tensor<float, 2>& image);

}  // namespace capsnet
