// Grayscale pictures as WebGL2 textures for ImGui::Image: one texture per picture or per atlas of tiles
// (the interpolation grid is up to 16 x 41 tiles: one texture and per-tile UVs, not 656 textures).
#pragma once

#include <cstdint>
#include <vector>

#include <imgui.h>

namespace capsnet {

class GrayTexture {
public:
    GrayTexture() = default;
    GrayTexture(const GrayTexture&) = delete;
    GrayTexture& operator=(const GrayTexture&) = delete;
    ~GrayTexture();

    // values [height * width] in [0,1] (clamped), row-major; `smooth` picks linear over nearest filtering.
    void upload(const float* values, int width, int height, bool smooth = false);
    void upload_bytes(const std::uint8_t* values, int width, int height, bool smooth = false);
    bool empty() const { return id_ == 0; }
    ImTextureID id() const { return reinterpret_cast<ImTextureID>(static_cast<std::uintptr_t>(id_)); }
    int width() const { return width_; }
    int height() const { return height_; }

private:
    unsigned id_ = 0;
    int width_ = 0, height_ = 0;
    std::vector<std::uint8_t> rgba_;
};

struct DemoTextures {
    GrayTexture base;        // the base image under the strokes (gallery digit or restored input)
    GrayTexture input;       // 28 x 28: what the network sees
    GrayTexture mask_grid;   // 10 tiles in a row
    GrayTexture sweep;       // columns x 16 tiles
    GrayTexture slider;      // the sliders' reconstruction
    GrayTexture gallery;     // per-class rows of gallery digits
};

// Tiles images [count][side*side] into a `cols`-wide atlas, row-major by tile index.
std::vector<float> atlas_tiles(const float* images, int count, int cols, int side);

}  // namespace capsnet
