// The demo's state and its Dear ImGui interface: the drawing canvas, the capsule bars, the mask grid, the
// gallery, the share link, and three panels: the dimension interpolation with its 16 sliders, the routing
// view (couplings per iteration, the strokes that voted for a class) and the pose lab (the digit rotated,
// scaled, sheared and shifted before the network sees it, and sweeps of the capsules against the pose), and the
// Teach panel (demo_teach.cpp: a personal set of labelled drawings, fine-tuning on it in the page, before /
// after). One object, driven once per frame by demo_main.cpp; the page's JavaScript reaches it through
// demo_bindings.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <imgui.h>
#include <nlohmann/json.hpp>

#include "capsnet/drawing.hpp"
#include "capsnet/visualize.hpp"
#include "demo_engine.hpp"
#include "demo_finetune.hpp"
#include "demo_textures.hpp"
#include "share_link.hpp"

namespace capsnet {

struct DemoTimings {  // milliseconds, medians
    double classify = 0, mask_grid = 0, interpolation_grid = 0;
    int columns = 0;
    double routing = 0;          // the routing view of one input: trace, attribution, overlay and heatmap pictures
    double pose_input = 0;       // the pose lab's transform of one input (a 30 degree rotation, no refit)
    double rotation_sweep = 0;   // the pose lab's rotation sweep (every angle classified)
    int rotation_angles = 0;
    // One fine-tuning step of 16 images with the Teach panel's settings: the head alone, its first step
    // (computing the features it caches) and later ones; every layer. 0 without the training digits.
    double finetune_head_cold = 0, finetune_head_step = 0, finetune_all_step = 0;
};

// What the Teach panel's "Fine-tune" runs: FineTuneOptions with the page's micro-batches (a frame runs
// about one: 2 images through the head, 1 through every layer, so the page keeps drawing).
FineTuneOptions teach_fine_tune_options(bool all_layers, int steps, double learning_rate);
// The Teach panel's default learning rate: FineTuneOptions' 1e-4 for the head; half that for every layer,
// where tests/e2e/teach_e2e.mjs --all-layers measured 1e-4 costing 1.2 points on the 500 MNIST test
// digits (99.0 -> 97.8%) and 5e-5 none (99.0 -> 99.0%), the personal sevens learnt either way.
double teach_default_learning_rate(bool all_layers);
constexpr int teach_max_examples = 48;  // the personal set (its thumbnails fit the panel; ~50 KB stored)
constexpr double teach_frame_budget_ms = 25;  // the Teach panel's work per frame: the page stays near 30 frames a second
constexpr int demo_teach_tab = share_view_tabs;  // view_tab_ of the Teach panel, after the panels a link can show

// The pose lab's sweeps: the 10 lengths and the chosen capsule against rotation and against scale.
constexpr float pose_sweep_rotation_low = -60, pose_sweep_rotation_high = 60, pose_sweep_rotation_step = 5;  // 25
constexpr float pose_sweep_scale_low = 0.5f, pose_sweep_scale_high = 1.5f, pose_sweep_scale_step = 0.05f;      // 21

class DemoApp {
public:
    explicit DemoApp(float ui_scale);

    // From the page: the model (or why it could not be had), the gallery, a share fragment to open.
    void model_loaded(std::unique_ptr<DemoEngine> engine, std::string model_id);
    void model_failed(std::string message);
    void loading_progress(float fraction) { loading_progress_ = fraction; }
    void gallery_loaded(std::vector<GalleryDigit> digits);
    // The Teach panel's MNIST digits: `mix` training digits mixed into every batch, `check` the test digits
    // whose accuracy shows what fine-tuning forgot.
    void teach_digits_loaded(std::vector<GalleryDigit> mix, std::vector<GalleryDigit> check);
    // The personal set as the browser's storage kept it (gallery_serialize's format); error when unreadable.
    void personal_loaded(std::vector<GalleryDigit> examples);
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
    void select_capsule(int digit);  // the chosen class: sliders, interpolation, routing view and sweeps
    void set_view_tab(int tab);      // 0 interpolation, 1 routing, 2 pose lab, 3 teach
    void set_routing(int iteration, bool logits);
    void play_routing();             // the Play button: iterations 1..R, one step per routing_play_step_ms
    void set_pose(const AffineTransform& pose, bool refit);
    void show_pose_sweep(bool on);   // the Sweep button
    void download_interpolation_png();  // the "Download PNG" button
    void set_input_image(const DemoImage& image);  // as a gallery click: the drawing becomes this image

    // The Teach panel's buttons. Each returns "" or why it did nothing (also shown in the panel).
    std::string teach_add(int label);  // the current input, labelled
    std::string teach_remove(int index);
    std::string teach_clear();
    std::string start_fine_tune(bool all_layers, int steps, double learning_rate);
    void stop_fine_tune();    // keeps the steps done so far
    std::string reset_model();  // back to the shipped model
    std::string download_model();  // the current model as safetensors (what `capsnet eval` loads)
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
    void update_routing_pictures();
    void update_pose_sweep();
    void advance_routing_play();
    void reset_view_settings();  // what a bad link leaves: the default panels, routing and pose
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
    bool panel_tab(const char* label, int tab);  // BeginTabItem for one of the three panels
    void draw_panel_tabs(float width, float interpolation_cell, float slider_preview);  // the three panels' tab items
    void draw_routing(float width);
    void draw_pose_lab(float width);
    void draw_pose_charts(float width);
    void draw_status_line();
    void draw_teach(float width);
    void draw_teach_examples(float width);
    void draw_teach_fine_tune();
    void draw_teach_comparison(float width);
    nlohmann::json teach_state_json() const;

    // The Teach panel's work, a slice per frame: classifying the personal set, the before and after checks,
    // the fine-tuning steps.
    void advance_teach(double budget_ms);
    void update_before_analysis();  // the current input through before_engine_, and its mask grid
    void finish_training();
    void store_personal();  // into the browser's storage, and the thumbnails
    std::vector<GalleryDigit> check_digits() const;  // the personal set, then (when its accuracy is unknown) the check set

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
    DemoImage base_input_{};  // the drawing's 28x28 image before the pose lab's transform (what a link stores)
    DemoImage input_{};       // what the network sees: base_input_ under pose_
    DemoAnalysis analysis_;
    Tensor<float, 2> mask_images_;     // [10, 784]
    Tensor<float, 3> sweep_images_;    // [columns, 16, 784]
    std::vector<float> slider_image_;  // [784]
    bool input_stale_ = true, analysis_stale_ = true, sweep_stale_ = true, slider_image_stale_ = true;
    RoutingView routing_;     // of input_
    bool routing_pictures_stale_ = true;
    float routing_logit_low_ = 0, routing_logit_high_ = 0;  // the heatmap's scale when it shows b
    PoseSweep rotation_sweep_, scale_sweep_;
    bool pose_sweep_stale_ = true;
    double pose_sweep_ms_ = 0;  // how long the last sweeps took

    // The view a link restores.
    int selected_capsule_ = 0;
    bool selection_follows_prediction_ = true;  // until a capsule is picked by hand (or by a link)
    float sweep_low_ = default_sweep_range.low, sweep_high_ = default_sweep_range.high,
          sweep_step_ = default_sweep_range.step;
    std::vector<float> sweep_offsets_;
    std::string range_error_;
    bool capsule_edited_ = false;
    std::vector<float> capsule_;  // the sliders: the network's capsule until edited
    int view_tab_ = 0;                // the right-hand panel
    int shared_view_tab_ = 0;         // the last of the panels a link can show (not Teach): what links say
    int pending_tab_ = -1;            // a link chose a panel: ImGui selects it at its next BeginTabItem
    int routing_iteration_ = 0;       // 1..R; 0 = the model's last
    bool routing_logits_ = false;     // the heatmap shows b_ij, not c_ij
    bool routing_playing_ = false;
    double routing_next_step_ms_ = 0;
    AffineTransform pose_;            // always share_link_quantize_pose'd
    bool pose_refit_ = false;
    bool pose_sweep_shown_ = false;   // the sweep charts are on: recomputed when stale and the pointer is idle
    std::string fragment_;
    std::string link_error_;      // why the opened link was refused
    std::string notice_;          // short-lived status ("link copied")
    double notice_until_ = 0;

    // The Teach panel (demo_teach.cpp).
    enum class TeachPhase { idle, checking_before, training, checking_after };
    std::unique_ptr<Model> shipped_model_;        // what Reset returns to
    bool fine_tuned_ = false;                     // engine_ holds a model fine-tuned here
    std::vector<TeachExample> personal_;
    std::vector<int> personal_predictions_;       // by engine_'s model, once personal_predictions_stale_ is false
    bool personal_predictions_stale_ = false;
    std::vector<GalleryDigit> teach_mix_, teach_check_;
    double check_accuracy_ = -1;                  // engine_'s accuracy on teach_check_; -1 until measured
    double shipped_check_accuracy_ = -1;
    TeachPhase teach_phase_ = TeachPhase::idle;
    std::unique_ptr<ChunkedClassifier> checker_;  // the phase's (or the personal predictions') classification
    std::unique_ptr<DemoEngine> before_engine_;   // the model the last fine-tuning started from
    std::unique_ptr<FineTuner> tuner_;
    bool teach_all_layers_ = false;
    int teach_steps_ = 40;
    float teach_learning_rate_ = static_cast<float>(teach_default_learning_rate(false));
    struct TeachComparison {
        bool shown = false;  // a fine-tuning finished (or was stopped) since the last reset
        std::vector<int> labels, personal_before, personal_after;
        double mnist_before = -1, mnist_after = -1;
        int steps = 0, steps_planned = 0;
        bool all_layers = false;
        double seconds = 0, loss = -1;
    } teach_result_;
    DemoAnalysis before_analysis_;    // the current input by before_engine_
    bool before_stale_ = true;
    std::string teach_message_;       // why the last button did nothing, or what the storage held
    std::string fine_tuned_link_note_;  // an opened link was made with a fine-tuned model

    DemoTextures textures_;
    long frame_count_ = 0;
};

}  // namespace capsnet
