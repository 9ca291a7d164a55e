#include "cli/png.hpp"

#include <algorithm>
#include <cmath>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#include <stb/stb_image.h>

namespace capsnet::cli {

void RgbImage::fill_rect(int x, int y, int w, int h, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    for (int row = std::max(0, y); row < std::min(height, y + h); ++row)
        for (int col = std::max(0, x); col < std::min(width, x + w); ++col) {
            std::uint8_t* p = &pixels[(static_cast<std::size_t>(row) * width + col) * 3];
            p[0] = r, p[1] = g, p[2] = b;
        }
}

RgbImage rgb_from_grey(const Tensor<float, 2>& grey, int zoom) {
    RgbImage image;
    image.height = static_cast<int>(grey.shape(0)) * zoom;
    image.width = static_cast<int>(grey.shape(1)) * zoom;
    image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * 3);
    for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x) {
            const float value = std::clamp(grey(y / zoom, x / zoom), 0.0f, 1.0f);
            const auto byte = static_cast<std::uint8_t>(std::lround(value * 255.0f));
            std::uint8_t* p = &image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3];
            p[0] = p[1] = p[2] = byte;
        }
    return image;
}

void png_write(const std::string& path, const RgbImage& image) {
    std::vector<std::uint8_t> bytes;
    auto append = [](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<std::uint8_t>*>(context);
        out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
    };
    if (!stbi_write_png_to_func(append, &bytes, image.width, image.height, 3, image.pixels.data(), image.width * 3))
        throw Error(path + ": PNG encoding failed");
    write_whole_file_atomically(path, bytes);
}

RgbImage png_read(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_whole_file(path);
    int width = 0, height = 0, channels = 0;
    std::uint8_t* data = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 3);
    if (!data) throw Error(path + ": not a readable PNG (" + stbi_failure_reason() + ")");
    RgbImage image;
    image.width = width;
    image.height = height;
    image.pixels.assign(data, data + static_cast<std::size_t>(width) * height * 3);
    stbi_image_free(data);
    return image;
}

}  // namespace capsnet::cli
