// Rasterising strokes and turning ink into MNIST-like digits (conventions in drawing.hpp).
#include "capsnet/drawing.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace capsnet {

namespace {

// 4096^2 floats is 64 MB: larger is surely a bug in the caller, and would exhaust a browser tab.
constexpr int drawing_max_side = 4096;
constexpr int mnist_side = 28;
constexpr int mnist_box = 20;
constexpr int mnist_centre = 14;

void drawing_check_side(int side, const char* what) {
    if (side < 1 || side > drawing_max_side)
        throw Error(std::string(what) + ": side " + std::to_string(side) + " is outside 1.." +
                    std::to_string(drawing_max_side));
}

void drawing_check_finite(const Tensor<float, 2>& image, const char* what) {
    for (float v : image)
        if (!std::isfinite(v)) throw Error(std::string(what) + ": the image has a non-finite value");
}

struct Point {
    double x, y;
};

// Paints one segment of a pen of the given radius (pixels) into the image, taking the maximum with what
// is there: the union of all segments is then the min-distance coverage of the whole polyline, so joins
// are round and never darker than the stroke. Geometry in double: coordinates far outside the canvas
// must still clip correctly.
void drawing_paint_segment(Tensor<float, 2>& image, Point a, Point b, double radius) {
    const int side = static_cast<int>(image.shape(0));
    const double reach = radius + 0.5;  // beyond this distance the coverage is 0
    // Pixel c is touched when its centre c + 0.5 lies within reach of the segment's box; clamped before
    // the conversion to int, which is undefined for a value out of int's range.
    const auto first = [&](double low) {
        return static_cast<int>(std::clamp(std::ceil(low - reach - 0.5), 0.0, double(side)));
    };
    const auto last = [&](double high) {
        return static_cast<int>(std::clamp(std::floor(high + reach - 0.5), -1.0, side - 1.0));
    };
    const int x0 = first(std::min(a.x, b.x)), x1 = last(std::max(a.x, b.x));
    const int y0 = first(std::min(a.y, b.y)), y1 = last(std::max(a.y, b.y));
    const double dx = b.x - a.x, dy = b.y - a.y, length2 = dx * dx + dy * dy;
    for (int r = y0; r <= y1; ++r)
        for (int c = x0; c <= x1; ++c) {
            const double px = c + 0.5 - a.x, py = r + 0.5 - a.y;
            // Closest point of the segment: the projection, clamped to the ends (a dot when length2 = 0).
            const double t = length2 > 0 ? std::clamp((px * dx + py * dy) / length2, 0.0, 1.0) : 0.0;
            const double distance = std::hypot(px - t * dx, py - t * dy);
            const float coverage = static_cast<float>(std::clamp(reach - distance, 0.0, 1.0));
            float& pixel = image(r, c);
            pixel = std::max(pixel, coverage);
        }
}

// For an axis of `from` source pixels resampled to `to` pixels by area averaging: for each target pixel,
// the source pixels it overlaps and their weights (overlap length / target pixel length, summing to 1).
std::vector<std::vector<std::pair<int, double>>> drawing_box_weights(int from, int to) {
    const double step = double(from) / to;  // source pixels per target pixel
    std::vector<std::vector<std::pair<int, double>>> weights(to);
    for (int i = 0; i < to; ++i) {
        const double low = i * step, high = (i + 1) * step;
        for (int s = static_cast<int>(std::floor(low)); s < from && s < high; ++s) {
            const double overlap = std::min(high, s + 1.0) - std::max(low, double(s));
            if (overlap > 0) weights[i].emplace_back(s, overlap / step);
        }
    }
    return weights;
}

}  // namespace

Tensor<float, 2> drawing_rasterize(const std::vector<Stroke>& strokes, int side) {
    drawing_check_side(side, "drawing_rasterize");
    Tensor<float, 2> image = xt::zeros<float>({std::size_t(side), std::size_t(side)});
    for (const Stroke& stroke : strokes) {
        if (!std::isfinite(stroke.width) || !(stroke.width > 0))
            throw Error("drawing_rasterize: a stroke's width must be finite and positive, not " +
                        std::to_string(stroke.width));
        std::vector<Point> points;
        for (const StrokePoint& p : stroke.points)
            if (std::isfinite(p.x) && std::isfinite(p.y)) points.push_back({double(p.x) * side, double(p.y) * side});
        const double radius = double(stroke.width) * side / 2;
        if (points.size() == 1) drawing_paint_segment(image, points[0], points[0], radius);
        for (std::size_t i = 1; i < points.size(); ++i) drawing_paint_segment(image, points[i - 1], points[i], radius);
    }
    return image;
}

Tensor<float, 2> drawing_upscale(const Tensor<float, 2>& image, int side) {
    drawing_check_side(side, "drawing_upscale");
    const std::size_t n = image.shape(0);
    if (n == 0 || image.shape(1) != n)
        throw Error("drawing_upscale: the image must be square and non-empty, not " + std::to_string(n) + "x" +
                    std::to_string(image.shape(1)));
    drawing_check_finite(image, "drawing_upscale");
    // The same two taps on both axes: target centre (i + 0.5) maps to source centre coordinate
    // (i + 0.5) * n / side - 0.5, clamped so the edge value extends to the border.
    std::vector<std::size_t> low(side), high(side);
    std::vector<double> frac(side);
    for (int i = 0; i < side; ++i) {
        const double at = std::clamp((i + 0.5) * double(n) / side - 0.5, 0.0, double(n - 1));
        low[i] = static_cast<std::size_t>(std::floor(at));
        high[i] = std::min(low[i] + 1, n - 1);
        frac[i] = at - double(low[i]);
    }
    Tensor<float, 2> result = xt::zeros<float>({std::size_t(side), std::size_t(side)});
    for (int r = 0; r < side; ++r)
        for (int c = 0; c < side; ++c) {
            const double top = (1 - frac[c]) * image(low[r], low[c]) + frac[c] * image(low[r], high[c]);
            const double bottom = (1 - frac[c]) * image(high[r], low[c]) + frac[c] * image(high[r], high[c]);
            result(r, c) = static_cast<float>((1 - frac[r]) * top + frac[r] * bottom);
        }
    return result;
}

Tensor<float, 2> drawing_to_mnist(const Tensor<float, 2>& ink) {
    drawing_check_finite(ink, "drawing_to_mnist");
    Tensor<float, 2> result = xt::zeros<float>({std::size_t(mnist_side), std::size_t(mnist_side)});
    const int rows = static_cast<int>(ink.shape(0)), cols = static_cast<int>(ink.shape(1));
    // Bounding box [top, bottom] x [left, right] of the ink (inclusive).
    int top = rows, bottom = -1, left = cols, right = -1;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            if (ink(r, c) > 0) {
                top = std::min(top, r), bottom = std::max(bottom, r);
                left = std::min(left, c), right = std::max(right, c);
            }
    if (bottom < 0) return result;  // blank: nothing to centre
    const int height = bottom - top + 1, width = right - left + 1, longer = std::max(height, width);
    const auto fitted = [&](int length) {
        return std::max(1, static_cast<int>(std::lround(double(length) * mnist_box / longer)));
    };
    const int box_height = fitted(height), box_width = fitted(width);

    // Area averaging, one axis at a time: rows of the crop to box_width columns, then to box_height rows.
    const auto across = drawing_box_weights(width, box_width), down = drawing_box_weights(height, box_height);
    std::vector<double> narrow(std::size_t(height) * box_width, 0.0);
    for (int r = 0; r < height; ++r)
        for (int c = 0; c < box_width; ++c) {
            double sum = 0;
            for (const auto& [s, w] : across[c]) sum += w * std::clamp(ink(top + r, left + s), 0.0f, 1.0f);
            narrow[std::size_t(r) * box_width + c] = sum;
        }
    std::vector<double> box(std::size_t(box_height) * box_width, 0.0);
    double mass = 0, mass_row = 0, mass_col = 0;
    for (int r = 0; r < box_height; ++r)
        for (int c = 0; c < box_width; ++c) {
            double sum = 0;
            for (const auto& [s, w] : down[r]) sum += w * narrow[std::size_t(s) * box_width + c];
            box[std::size_t(r) * box_width + c] = sum;
            mass += sum, mass_row += sum * r, mass_col += sum * c;
        }

    // Whole-pixel shift putting the centre of mass into pixel 14. Rounding half up matches MNIST (whose
    // centres lie in [13.5, 14.5)); the 1e-6 keeps an exact .5 from rounding down through float error.
    const auto offset = [&](double weighted) {
        return mnist_centre - static_cast<int>(std::floor(weighted / mass + 0.5 + 1e-6));
    };
    const int down_by = offset(mass_row), right_by = offset(mass_col);
    for (int r = 0; r < box_height; ++r)
        for (int c = 0; c < box_width; ++c) {
            const int y = r + down_by, x = c + right_by;
            if (y >= 0 && y < mnist_side && x >= 0 && x < mnist_side)
                result(y, x) = static_cast<float>(std::min(1.0, box[std::size_t(r) * box_width + c]));
        }
    return result;
}

std::vector<std::uint8_t> drawing_to_bytes(const Tensor<float, 2>& image) {
    if (image.shape(0) != mnist_side || image.shape(1) != mnist_side)
        throw Error("drawing_to_bytes: the image must be 28x28, not " + std::to_string(image.shape(0)) + "x" +
                    std::to_string(image.shape(1)));
    drawing_check_finite(image, "drawing_to_bytes");
    std::vector<std::uint8_t> bytes(image.size());
    for (std::size_t i = 0; i < image.size(); ++i)
        bytes[i] = static_cast<std::uint8_t>(std::lround(std::clamp(image.data()[i], 0.0f, 1.0f) * 255.0f));
    return bytes;
}

}  // namespace capsnet
