// Affine warps by inverse mapping with bilinear sampling, and the pose sweep (conventions in affine.hpp).
#include "capsnet/affine.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "capsnet/drawing.hpp"

namespace capsnet {

namespace {

constexpr double pi = 3.14159265358979323846;
// drawing.hpp's limit on a side: larger is surely a bug in the caller, and would exhaust a browser tab.
constexpr std::size_t affine_max_side = 4096;
// Sample positions this close to a pixel centre are taken as on it (see affine_warp in the header).
constexpr double affine_snap = 1e-4;

void affine_check_field(const char* field, float value, double low, double high) {
    if (std::isfinite(value) && value >= low && value <= high) return;
    char message[160];
    std::snprintf(message, sizeof message, "affine transform: %s must be a finite number in [%g, %g], not %g", field,
                  low, high, double(value));
    throw Error(message);
}

// One axis of a bilinear tap: the lower pixel index and the weight of the upper one, for a sample at
// index coordinate `at` (pixel i's centre is at index coordinate i).
struct Tap {
    long long low;
    double upper_weight;
};

Tap affine_tap(double at) {
    const double nearest = std::round(at);
    if (std::abs(at - nearest) < affine_snap) at = nearest;
    const double low = std::floor(at);
    return {static_cast<long long>(low), at - low};
}

}  // namespace

void affine_validate(const AffineTransform& t) {
    affine_check_field("rotation_degrees", t.rotation_degrees, -360, 360);
    affine_check_field("scale", t.scale, 0.1, 10);
    affine_check_field("shear", t.shear, -2, 2);
    affine_check_field("translate_x", t.translate_x, -1, 1);
    affine_check_field("translate_y", t.translate_y, -1, 1);
}

AffineMatrix affine_matrix(const AffineTransform& t, int rows, int cols) {
    affine_validate(t);
    // With y pointing down, a counter-clockwise turn on screen takes (1, 0) to (cos, -sin); the shear
    // moves x by -shear * (y - centre), i.e. right by shear * the height above the centre.
    const double angle = double(t.rotation_degrees) * pi / 180, cosine = std::cos(angle), sine = std::sin(angle);
    const double s = t.scale, k = t.shear;
    // linear = scale * rotation * shear = s [[cos, sin], [-sin, cos]] [[1, -k], [0, 1]]
    const double a = s * cosine, b = s * (sine - k * cosine), d = -s * sine, e = s * (cosine + k * sine);
    const double cx = cols / 2.0, cy = rows / 2.0;
    const double tx = double(t.translate_x) * cols, ty = double(t.translate_y) * rows;
    return {a, b, cx + tx - a * cx - b * cy, d, e, cy + ty - d * cx - e * cy};
}

AffineMatrix affine_matrix_inverse(const AffineMatrix& m) {
    const double det = m[0] * m[4] - m[1] * m[3];
    if (!std::isfinite(det) || std::abs(det) < 1e-12) throw Error("affine matrix: singular, cannot be inverted");
    const double a = m[4] / det, b = -m[1] / det, d = -m[3] / det, e = m[0] / det;
    return {a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])};
}

Tensor<float, 2> affine_warp(const Tensor<float, 2>& image, const AffineTransform& transform) {
    const std::size_t rows = image.shape(0), cols = image.shape(1);
    if (rows == 0 || cols == 0 || rows > affine_max_side || cols > affine_max_side)
        throw Error("affine_warp: the image is " + std::to_string(rows) + "x" + std::to_string(cols) +
                    ", not 1..4096 on each side");
    for (float v : image)
        if (!std::isfinite(v)) throw Error("affine_warp: the image has a non-finite value");
    const AffineMatrix inverse =
        affine_matrix_inverse(affine_matrix(transform, static_cast<int>(rows), static_cast<int>(cols)));

    Tensor<float, 2> result = xt::zeros<float>({rows, cols});
    const auto pixel = [&](long long r, long long c) -> double {
        return r >= 0 && c >= 0 && r < static_cast<long long>(rows) && c < static_cast<long long>(cols)
                   ? image(static_cast<std::size_t>(r), static_cast<std::size_t>(c))
                   : 0.0;
    };
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            const double x = c + 0.5, y = r + 0.5;
            // The source point in index coordinates (centres at integers), where the bilinear taps are.
            const double u = inverse[0] * x + inverse[1] * y + inverse[2] - 0.5;
            const double v = inverse[3] * x + inverse[4] * y + inverse[5] - 0.5;
            // Entirely outside (also keeps huge values away from the conversion to an integer).
            if (!(u > -1 && v > -1 && u < double(cols) && v < double(rows))) continue;
            const Tap across = affine_tap(u), down = affine_tap(v);
            double sum = 0;
            for (int i = 0; i < 2; ++i) {
                const double row_weight = i ? down.upper_weight : 1 - down.upper_weight;
                if (row_weight == 0) continue;
                for (int j = 0; j < 2; ++j) {
                    const double weight = row_weight * (j ? across.upper_weight : 1 - across.upper_weight);
                    if (weight != 0) sum += weight * pixel(down.low + i, across.low + j);
                }
            }
            result(r, c) = static_cast<float>(sum);
        }
    return result;
}

AffineTransform affine_with(AffineTransform base, PoseAxis axis, float value) {
    switch (axis) {
        case PoseAxis::rotation: base.rotation_degrees = value; break;
        case PoseAxis::scale: base.scale = value; break;
        case PoseAxis::shear: base.shear = value; break;
        case PoseAxis::translate_x: base.translate_x = value; break;
        case PoseAxis::translate_y: base.translate_y = value; break;
    }
    return base;
}

std::vector<std::uint8_t> pose_input_bytes(const Tensor<float, 2>& image, PoseSource source,
                                           const AffineTransform& transform) {
    if (source == PoseSource::canvas) return drawing_to_bytes(drawing_to_mnist(affine_warp(image, transform)));
    if (image.shape(0) != image_side || image.shape(1) != image_side)
        throw Error("pose input: an mnist image must be 28x28, not " + std::to_string(image.shape(0)) + "x" +
                    std::to_string(image.shape(1)));
    return drawing_to_bytes(affine_warp(image, transform));
}

PoseSweep pose_sweep(const Config& config, const Parameters<float>& params, const Tensor<float, 2>& image,
                     PoseSource source, const AffineTransform& base, PoseAxis axis, const std::vector<float>& values,
                     int digit, ForwardState<float>& scratch) {
    const std::size_t classes = params.digit_weight.shape(1), dims = params.digit_weight.shape(2);
    if (digit < 0 || static_cast<std::size_t>(digit) >= classes)
        throw Error("pose sweep: capsule " + std::to_string(digit) + " is not one of 0.." + std::to_string(classes - 1));
    if (values.empty()) throw Error("pose sweep: no values to sweep");
    PoseSweep sweep;
    sweep.values = values;
    sweep.lengths = xt::zeros<float>({values.size(), classes});
    sweep.capsule = xt::zeros<float>({values.size(), dims});
    const std::size_t pixels = std::size_t(image_side) * image_side;
    for (std::size_t first = 0; first < values.size(); first += pose_sweep_batch) {
        const std::size_t count = std::min(pose_sweep_batch, values.size() - first);
        Tensor<float, 4> input({count, std::size_t{1}, std::size_t(image_side), std::size_t(image_side)});
        std::vector<bool> blank(count);
        for (std::size_t b = 0; b < count; ++b) {
            const std::vector<std::uint8_t> bytes =
                pose_input_bytes(image, source, affine_with(base, axis, values[first + b]));
            std::transform(bytes.begin(), bytes.end(), input.data() + b * pixels, [](std::uint8_t v) { return v / 255.0f; });
            blank[b] = std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t v) { return v == 0; });
        }
        model_forward(config, params, input, DecoderMask::none, {}, scratch);
        const std::vector<int> predicted = predicted_classes(scratch.lengths);
        for (std::size_t b = 0; b < count; ++b) {
            const std::size_t i = first + b;
            std::copy_n(scratch.lengths.data() + b * classes, classes, sweep.lengths.data() + i * classes);
            std::copy_n(scratch.digit_capsules.data() + (b * classes + digit) * dims, dims, sweep.capsule.data() + i * dims);
            sweep.predictions.push_back(blank[b] ? -1 : predicted[b]);
        }
    }
    return sweep;
}

}  // namespace capsnet
