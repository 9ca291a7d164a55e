#include "demo_png.hpp"

#include <algorithm>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // memory only: the browser has no files to write
#include <stb/stb_image_write.h>

namespace capsnet {

std::vector<std::uint8_t> png_encode_gray(const Tensor<float, 2>& picture) {
    const int height = static_cast<int>(picture.shape(0)), width = static_cast<int>(picture.shape(1));
    std::vector<std::uint8_t> pixels(picture.size());
    std::transform(picture.begin(), picture.end(), pixels.begin(),
                   [](float v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f); });
    std::vector<std::uint8_t> png;
    auto append = [](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<std::uint8_t>*>(context);
        out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
    };
    if (!stbi_write_png_to_func(append, &png, width, height, 1, pixels.data(), width))
        throw Error("png: could not encode a " + std::to_string(width) + "x" + std::to_string(height) + " picture");
    return png;
}

}  // namespace capsnet
