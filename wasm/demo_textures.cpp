// Implements Texture on WebGL2 (OpenGL ES 3.0 through Emscripten).
#include "demo_textures.hpp"

#include <GLES3/gl3.h>

#include <algorithm>

namespace capsnet {

Texture::~Texture() {
    if (id_) glDeleteTextures(1, &id_);
}

void Texture::upload(const float* values, int width, int height, bool smooth) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(width) * height);
    for (std::size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<std::uint8_t>(std::clamp(values[i], 0.0f, 1.0f) * 255.0f + 0.5f);
    upload_bytes(bytes.data(), width, height, smooth);
}

void Texture::upload_bytes(const std::uint8_t* values, int width, int height, bool smooth) {
    // RGBA, gray replicated: ImGui's shader multiplies the texture's RGBA by the vertex colour, so a
    // single-channel texture would draw red.
    rgba_.resize(static_cast<std::size_t>(width) * height * 4);
    for (std::size_t i = 0; i < static_cast<std::size_t>(width) * height; ++i) {
        rgba_[4 * i] = rgba_[4 * i + 1] = rgba_[4 * i + 2] = values[i];
        rgba_[4 * i + 3] = 255;
    }
    upload_rgba(width, height, smooth);
}

void Texture::upload_rgb(const std::uint8_t* rgb, int width, int height, bool smooth) {
    rgba_.resize(static_cast<std::size_t>(width) * height * 4);
    for (std::size_t i = 0; i < static_cast<std::size_t>(width) * height; ++i) {
        std::copy_n(rgb + 3 * i, 3, &rgba_[4 * i]);
        rgba_[4 * i + 3] = 255;
    }
    upload_rgba(width, height, smooth);
}

void Texture::upload_rgba(int width, int height, bool smooth) {
    if (!id_) glGenTextures(1, &id_);
    glBindTexture(GL_TEXTURE_2D, id_);
    const GLint filter = smooth ? GL_LINEAR : GL_NEAREST;
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, width, height, 0, GL_RGBA, GL_UNSIGNED_BYTE, rgba_.data());
    width_ = width;
    height_ = height;
}

std::vector<float> atlas_tiles(const float* images, int count, int cols, int side) {
    const int rows = (count + cols - 1) / cols;
    const int width = cols * side;
    std::vector<float> atlas(static_cast<std::size_t>(rows) * side * width, 0.0f);
    for (int t = 0; t < count; ++t)
        for (int y = 0; y < side; ++y)
            std::copy_n(images + (static_cast<std::size_t>(t) * side + y) * side, side,
                        atlas.begin() + (static_cast<std::size_t>(t / cols) * side + y) * width + (t % cols) * side);
    return atlas;
}

}  // namespace capsnet
