// libFuzzer harness: the drawing-to-MNIST preprocessing of arbitrary strokes, as the page runs it on
// pointer events (rasterise on a canvas, crop, scale, centre, to bytes). The input is read as: canvas
// side (one byte: 1..256), then strokes: a width byte (a float bit pattern when its top bit is set, so
// NaN, infinities and negatives occur; else width = byte / 255), a point-count byte, and that many points
// of two little-endian floats (any bit pattern: non-finite coordinates are part of the promise).
// Promise (drawing.hpp): capsnet::Error (bad width) or a 28x28 image in [0,1] and 784 bytes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "capsnet/drawing.hpp"

using namespace capsnet;

namespace {

struct Reader {
    const std::uint8_t* data;
    std::size_t size, at = 0;
    bool has(std::size_t n) const { return size - at >= n; }
    std::uint8_t byte() { return data[at++]; }
    float f32() {
        float value;
        std::memcpy(&value, data + at, sizeof value);
        at += sizeof value;
        return value;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader in{data, size};
    if (!in.has(1)) return 0;
    const int side = 1 + in.byte();
    std::vector<Stroke> strokes;
    while (in.has(2) && strokes.size() < 64) {
        Stroke stroke;
        const std::uint8_t width = in.byte();
        if (width & 0x80) {
            if (!in.has(4)) break;
            stroke.width = in.f32();
        } else {
            stroke.width = width / 127.0f;
        }
        if (!in.has(1)) break;
        const int points = in.byte();
        for (int p = 0; p < points && in.has(8); ++p) {
            StrokePoint point;
            point.x = in.f32();
            point.y = in.f32();
            stroke.points.push_back(point);
        }
        strokes.push_back(stroke);
    }
    try {
        const Tensor<float, 2> canvas = drawing_rasterize(strokes, side);
        const Tensor<float, 2> digit = drawing_to_mnist(canvas);
        if (digit.shape()[0] != 28 || digit.shape()[1] != 28) std::abort();
        for (float value : digit)
            if (!(value >= 0.0f && value <= 1.0f)) std::abort();
        if (drawing_to_bytes(digit).size() != 784) std::abort();
    } catch (const Error&) {
    }
    return 0;
}
