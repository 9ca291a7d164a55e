// Chart drawing primitives (chart.hpp).
#include "cli/chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <stb/stb_easy_font.h>

namespace capsnet::cli::chart {

void dot(RgbImage& image, int x, int y, int radius, const Color& c) {
    image.fill_rect(x - radius, y - radius, 2 * radius + 1, 2 * radius + 1, c[0], c[1], c[2]);
}

// stb_easy_font draws with quads of whole pixels; each is filled `scale` times larger.
void text(RgbImage& image, int x, int y, const std::string& s, const Color& c, int scale) {
    static char buffer[60000];
    std::string copy = s;
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer, sizeof buffer);
    for (int q = 0; q < quads; ++q) {
        const float* v = reinterpret_cast<const float*>(buffer + q * 64);  // 4 vertices of 16 bytes
        const float x0 = v[0], y0 = v[1], x1 = v[8], y1 = v[9];
        image.fill_rect(x + static_cast<int>(x0 * scale), y + static_cast<int>(y0 * scale),
                        static_cast<int>((x1 - x0) * scale), static_cast<int>((y1 - y0) * scale), c[0], c[1], c[2]);
    }
}

int text_width(const std::string& s, int scale) {
    std::string copy = s;
    return stb_easy_font_width(copy.data()) * scale;
}

void line(RgbImage& image, double x0, double y0, double x1, double y1, const Color& c, Dash dash, double& phase) {
    const double length = std::hypot(x1 - x0, y1 - y0);
    const int steps = std::max(1, static_cast<int>(std::ceil(length)));
    for (int i = 0; i <= steps; ++i, phase += length / steps) {
        const double period = dash == Dash::dashed ? 12 : 6, on = dash == Dash::dashed ? 8 : 2;
        if (dash != Dash::solid && std::fmod(phase, period) >= on) continue;
        const double t = double(i) / steps;
        dot(image, static_cast<int>(std::lround(x0 + t * (x1 - x0))), static_cast<int>(std::lround(y0 + t * (y1 - y0))), 1, c);
    }
}

std::string tick_label(double value) {
    char buffer[32];
    if (value >= 0.01 && value < 1000) std::snprintf(buffer, sizeof buffer, "%g", value);
    else std::snprintf(buffer, sizeof buffer, "%.0e", value);
    return buffer;
}

void outline(RgbImage& image, int left, int top, int width, int height, const Color& c) {
    image.fill_rect(left, top, width, 1, c[0], c[1], c[2]);
    image.fill_rect(left, top + height, width + 1, 1, c[0], c[1], c[2]);
    image.fill_rect(left, top, 1, height, c[0], c[1], c[2]);
    image.fill_rect(left + width, top, 1, height, c[0], c[1], c[2]);
}

}  // namespace capsnet::cli::chart
