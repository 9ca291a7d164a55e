// Pictures as WebGL2 textures for ImGui::Image, grey or colour: one texture per picture or per atlas of
// tiles (the interpolation grid is up to 16 x 41 tiles: one texture and per-tile UVs, not 656 textures).
#pragma once

#include <cstdint>
#include <vector>

#include <imgui.h>

namespace capsnet {

class Texture {
public:
    Texture() = default;
    Texture(const Texture&) = delete;
    Texture& operator=(const Texture&) = delete;
    ~Texture();

    // values [height * width] in [0,1] (clamped), row-major; `smooth` picks linear over nearest filtering.
    void upload(const float* values, int width, int height, bool smooth = false);
    void upload_bytes(const std::uint8_t* values, int width, int height, bool smooth = false);
    // rgb [height * width * 3] bytes, row-major.
    void upload_rgb(const std::uint8_t* rgb, int width, int height, bool smooth = false);
    bool empty() const { return id_ == 0; }
    ImTextureID id() const { return reinterpret_cast<ImTextureID>(static_cast<std::uintptr_t>(id_)); }
    int width() const { return width_; }
    int height() const { return height_; }

private:
    void upload_rgba(int width, int height, bool smooth);  // from rgba_

    unsigned id_ = 0;
    int width_ = 0, height_ = 0;
    std::vector<std::uint8_t> rgba_;
};

struct DemoTextures {
    Texture base;             // the base image under the strokes (gallery digit or restored input)
    Texture input;            // 28 x 28: what the network sees
    Texture pose_base;        // 28 x 28: the input before the pose lab's transform
    Texture mask_grid;        // 10 tiles in a row
    Texture sweep;            // columns x 16 tiles
    Texture slider;           // the sliders' reconstruction
    Texture gallery;          // per-class rows of gallery digits
    Texture routing_overlay;  // colour, 10 tiles of 28 x 28 in a row: the strokes that voted for each class
    Texture routing_heatmap;  // colour, 55 x 27: the chosen class's c or b over the 32 types x 6x6 grid
    Texture personal;         // the Teach panel's examples, 8 tiles a row
    Texture before_mask_grid; // 10 tiles in a row: the input through the model before fine-tuning
};

// Tiles images [count][side*side] into a `cols`-wide atlas, row-major by tile index.
std::vector<float> atlas_tiles(const float* images, int count, int cols, int side);

}  // namespace capsnet
