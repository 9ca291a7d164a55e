// The demo's state and its Dear ImGui interface: the drawing canvas, the capsule bars, the mask grid, the
// dimension interpolation with its 16 sliders, the gallery and the share link. One object, driven once
// per frame by demo_main.cpp; the page's JavaScript reaches it through demo_bindings.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <imgui.h>

#include "capsnet/drawing.hpp"
#include "demo_engine.hpp"
#include "demo_textures.hpp"
#include "share_link.hpp"

namespace capsnet {

struct DemoTimings {  // milliseconds, medians
    double classify = 0, mask_grid = 0, interpolation_grid = 0;
    int columns = 0;
};

class DemoApp {
public:
    explicit DemoApp(float ui_scale);

    // From the page: the model (or why it could not be had), the gallery, a share fragment to open.
    void model_loaded(std::unique_ptr<DemoEngine> engine, std::string model_id);
    void model_failed(std::string message);
    void loading_progress(float fraction) { loading_progress_ = fraction; }
    void gallery_loaded(std::vector<GalleryDigit> digits);
    void open_fragment(const std::string& fragment);

    // Pointer events in framebuffer pixels, straight from GLFW's callbacks (not sampled once a frame, so
    // fast strokes keep every point the browser reported).
    void pointer_down(float x, float y);
    void pointer_move(float x, float y);
    void pointer_up();

    // Builds the whole interface for one frame; recomputes what the last input changes made stale.
    void frame(float width, float height);

    // Test hooks (window.capsnetDemo in web/demo.js).
    void clear();
    void set_pen_width(float fraction) { pen_width_ = fraction; }
    void select_capsule(int digit);
    void download_interpolation_png();  // the "Download PNG" button
    std::string state_json() const;
    std::string canvas_rect_json() const;
    DemoTimings benchmark(int repeats);
    long frame_count() const { return frame_count_; }

private:
    bool ready() const { return engine_ != nullptr; }
    void set_input_from_image(const DemoImage& image);
    void update_input();
    void update_analysis();
    void update_sweep();
    void update_slider_reconstruction();
    void sliders_from_network();  // the sliders show the selected capsule as the network computed it
    void publish_fragment();
    ShareView current_view() const;

    void draw_wide_layout(float width, float height);
    void draw_narrow_layout(float width, float height);
    void draw_canvas_panel(float side);
    void draw_bars();
    void draw_input_preview(float side);
    void draw_mask_grid(float cell);
    void draw_interpolation(float cell);
    void draw_sliders(float preview_side);
    void draw_gallery(float cell);
    void draw_status_line();

    float ui_scale_;
    std::unique_ptr<DemoEngine> engine_;
    std::string model_id_;
    std::string load_error_;
    float loading_progress_ = 0;
    std::vector<GalleryDigit> gallery_;

    // The drawing: strokes over an optional base image (a gallery digit or a restored link's input).
    std::vector<Stroke> strokes_;
    bool drawing_ = false;
    float pen_width_ = 0.07f;
    std::optional<DemoImage> base_image_;
    ImVec2 canvas_min_{0, 0};
    float canvas_side_ = 0;

    // Derived state, recomputed lazily when marked stale.
    DemoImage input_{};
    DemoAnalysis analysis_;
    Tensor<float, 2> mask_images_;     // [10, 784]
    Tensor<float, 3> sweep_images_;    // [columns, 16, 784]
    std::vector<float> slider_image_;  // [784]
    bool input_stale_ = true, analysis_stale_ = true, sweep_stale_ = true, slider_image_stale_ = true;

    // The view a link restores.
    int selected_capsule_ = 0;
    bool selection_follows_prediction_ = true;  // until a capsule is picked by hand (or by a link)
    float sweep_low_ = -0.25f, sweep_high_ = 0.25f, sweep_step_ = 0.05f;
    std::vector<float> sweep_offsets_;
    std::string range_error_;
    bool capsule_edited_ = false;
    std::vector<float> capsule_;  // the sliders: the network's capsule until edited
    std::string fragment_;
    std::string link_error_;      // why the opened link was refused
    std::string notice_;          // short-lived status ("link copied")
    double notice_until_ = 0;

    DemoTextures textures_;
    long frame_count_ = 0;
};

}  // namespace capsnet
