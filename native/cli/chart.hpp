// Drawing primitives for the command's line charts (curves.png, robustness.png): dots, 2-pixel lines with
// dash patterns, text from stb_easy_font's quads, tick labels and frames, all into an RgbImage.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "cli/png.hpp"

namespace capsnet::cli::chart {

using Color = std::array<std::uint8_t, 3>;

inline constexpr Color white{255, 255, 255}, black{30, 30, 30}, grid{225, 225, 225}, frame{150, 150, 150};
// matplotlib's "tab10" colours: one per run or series.
inline constexpr Color palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                    {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

// A filled square of side 2 * radius + 1 centred on (x, y).
void dot(RgbImage& image, int x, int y, int radius, const Color& c);

// stb_easy_font's text with its top-left at (x, y); each of its pixels is drawn `scale` times larger.
void text(RgbImage& image, int x, int y, const std::string& s, const Color& c, int scale = 2);
int text_width(const std::string& s, int scale = 2);

enum class Dash { solid, dashed, dotted };

// A 2-pixel line from (x0, y0) to (x1, y1); `phase` carries the dash pattern across segments.
void line(RgbImage& image, double x0, double y0, double x1, double y1, const Color& c, Dash dash, double& phase);

// A log axis's tick: "%g" between 0.01 and 1000, else "1e-05" style.
std::string tick_label(double value);

// A 1-pixel rectangle outline: left/top edges at left/top, right/bottom edges at left + width / top + height.
void outline(RgbImage& image, int left, int top, int width, int height, const Color& c);

}  // namespace capsnet::cli::chart
