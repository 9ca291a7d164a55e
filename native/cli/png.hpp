// PNG output for the visualisations (stb_image_write, Debian's libstb-dev), written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet::cli {

// An 8-bit RGB picture.
struct RgbImage {
    int width = 0, height = 0;
    std::vector<std::uint8_t> pixels;  // height * width * 3
    void fill_rect(int x, int y, int w, int h, std::uint8_t r, std::uint8_t g, std::uint8_t b);
};

// Grey values in [0, 1] (clamped) -> RGB, each pixel repeated zoom x zoom times.
RgbImage rgb_from_grey(const Tensor<float, 2>& grey, int zoom);

void png_write(const std::string& path, const RgbImage& image);  // Error naming the path on failure

// Decodes a PNG (tests read back what png_write wrote).
RgbImage png_read(const std::string& path);

}  // namespace capsnet::cli
