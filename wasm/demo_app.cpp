// The demo's interface. Compute is lazy: an input change marks the analysis stale, the analysis marks the
// sweep, the slider picture, the routing pictures and the pose sweeps stale, and each is recomputed once at
// the next frame, so a frame never does work nobody will see. While a stroke is being drawn only the
// classification, the mask grid and the routing view follow the pen (~20 ms); the interpolation grid (176
// decoder passes) catches up when the pen lifts, and the pose sweeps (46 forward passes, ~0.7 s) when
// neither the pen nor a slider is held.
#include "demo_app.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>
#include <xtensor/xview.hpp>

#include "capsnet/visualize.hpp"
#include "demo_page.hpp"
#include "demo_png.hpp"
#include "demo_widgets.hpp"

namespace capsnet {

namespace {

constexpr int raster_side = demo_raster_side;
// The link codec's limit on interpolation columns: a hostile link cannot ask for a huge grid.
constexpr int max_sweep_columns = share_link_max_sweep_columns;

constexpr int interpolation_tab = 0, routing_tab = 1, pose_tab = 2;  // view_tab_ (the share link's view_tab)
constexpr int teach_tab = demo_teach_tab;
constexpr double routing_play_step_ms = 700;  // slow enough to see each iteration's couplings settle

// matplotlib's tab10, one per class in the pose charts (as the CLI's charts); the 16 dimensions cycle them.
const ImU32 series_colours[10] = {IM_COL32(31, 119, 180, 255), IM_COL32(255, 127, 14, 255), IM_COL32(44, 160, 44, 255),
                                  IM_COL32(214, 39, 40, 255),  IM_COL32(148, 103, 189, 255), IM_COL32(140, 86, 75, 255),
                                  IM_COL32(227, 119, 194, 255), IM_COL32(127, 127, 127, 255), IM_COL32(188, 189, 34, 255),
                                  IM_COL32(23, 190, 207, 255)};

std::vector<float> sweep_values(float low, float high, float step) {
    std::vector<float> values;
    const int count = static_cast<int>(std::lround((high - low) / step)) + 1;
    for (int k = 0; k < count; ++k) values.push_back(low + k * step);
    return values;
}

// The routing view's pictures for iteration `iteration` (0-based): the 10 classes' attribution overlays
// in a row of 28x28 tiles, and the chosen class's heatmap of c (fixed scale [0, 1], so iteration 1's
// uniform 1/10 looks uniform) or b (scaled to the iteration's range over all classes; `logit_range`
// receives it). Gaps between heatmap tiles are the page's grey.
struct RoutingPictures {
    std::vector<std::uint8_t> overlay;  // [28, 10 * 28, 3]
    std::vector<std::uint8_t> heatmap;  // [27, 55, 3]
    float logit_low = 0, logit_high = 0;
};

RoutingPictures routing_pictures(const RoutingView& view, const DemoImage& input, int iteration, int digit, bool logits) {
    RoutingPictures pictures;
    const int classes = static_cast<int>(view.attribution.shape(1)), side = demo_image_side;
    pictures.overlay.resize(static_cast<std::size_t>(side) * classes * side * 3);
    for (int j = 0; j < classes; ++j)
        for (int y = 0; y < side; ++y)
            for (int x = 0; x < side; ++x) {
                const float ink = input[y * side + x] / 255.0f;
                const Rgb colour = routing_overlay_pixel(ink, view.attribution_normalized(iteration, j, y, x));
                std::uint8_t* pixel = &pictures.overlay[(static_cast<std::size_t>(y) * classes * side + j * side + x) * 3];
                pixel[0] = colour.r, pixel[1] = colour.g, pixel[2] = colour.b;
            }
    const Tensor<float, 3>& per_capsule = logits ? view.trace.logits : view.trace.coupling;
    float low = 0, high = 1;
    if (logits) {
        const auto values = xt::view(per_capsule, iteration, xt::all(), xt::all());
        low = xt::amin(values)(), high = xt::amax(values)();
        pictures.logit_low = low, pictures.logit_high = high;
    }
    const float gap = std::numeric_limits<float>::quiet_NaN();
    const Tensor<float, 2> heatmap = routing_heatmap(per_capsule, iteration, digit, gap);
    pictures.heatmap.resize(heatmap.size() * 3);
    for (std::size_t p = 0; p < heatmap.size(); ++p) {
        const float value = heatmap.data()[p];
        const Rgb colour = std::isnan(value) ? Rgb{89, 89, 89}
                                             : routing_ramp(high > low ? (value - low) / (high - low) : 0.0f);
        pictures.heatmap[3 * p] = colour.r, pictures.heatmap[3 * p + 1] = colour.g, pictures.heatmap[3 * p + 2] = colour.b;
    }
    return pictures;
}

float median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values.empty() ? 0.0f : static_cast<float>(values[values.size() / 2]);
}

}  // namespace

DemoApp::DemoApp(float ui_scale) : ui_scale_(ui_scale), sweep_offsets_(sweep_offsets(default_sweep_range)) {}

// ---------------------------------------------------------------------------------------------------
// Inputs from the page

void DemoApp::model_loaded(std::unique_ptr<DemoEngine> engine, std::string model_id) {
    engine_ = std::move(engine);
    model_id_ = std::move(model_id);
    load_error_.clear();
    capsule_.assign(engine_->capsule_dims(), 0.0f);
    routing_iteration_ = engine_->model().config.routing_iterations;
    shipped_model_ = std::make_unique<Model>(engine_->model());
    fine_tuned_ = false;
    personal_predictions_stale_ = !personal_.empty();
    input_stale_ = true;
}

void DemoApp::model_failed(std::string message) { load_error_ = std::move(message); }

void DemoApp::gallery_loaded(std::vector<GalleryDigit> digits) {
    gallery_ = std::move(digits);
    std::vector<float> images;
    for (const GalleryDigit& digit : gallery_) {
        const Tensor<float, 2> values = demo_image_floats(digit.pixels);
        images.insert(images.end(), values.begin(), values.end());
    }
    if (gallery_.empty()) return;
    const int cols = 10, rows = (static_cast<int>(gallery_.size()) + cols - 1) / cols;
    textures_.gallery.upload(atlas_tiles(images.data(), static_cast<int>(gallery_.size()), cols, demo_image_side).data(),
                             cols * demo_image_side, rows * demo_image_side);
}

void DemoApp::open_fragment(const std::string& fragment) {
    std::string text = fragment;
    if (!text.empty() && text[0] == '#') text.erase(0, 1);
    if (text.empty()) return;
    link_error_.clear();
    try {
        const ShareView view = share_link_decode(text);
        if (view.model_id != model_id_)
            throw Error("share link: it was made with the model '" + view.model_id + "', but this page has '" +
                        model_id_ + "'");
        const std::vector<float> offsets = sweep_offsets(view.sweep_low, view.sweep_high, view.sweep_step);
        if (static_cast<int>(offsets.size()) > max_sweep_columns) throw Error("share link: too many sweep columns");
        const int iterations = engine_->model().config.routing_iterations;
        if (view.routing_iteration > iterations)
            throw Error("share link: it shows routing iteration " + std::to_string(view.routing_iteration) +
                        ", but this model routes " + std::to_string(iterations) + " times");
        strokes_.clear();
        drawing_ = false;
        set_input_from_image(view.input);
        selected_capsule_ = view.selected_capsule;
        view_tab_ = pending_tab_ = shared_view_tab_ = view.view_tab;
        routing_iteration_ = view.routing_iteration == 0 ? iterations : view.routing_iteration;
        routing_logits_ = view.routing_logits;
        routing_playing_ = false;
        pose_ = share_link_quantize_pose(view.pose);
        pose_refit_ = view.pose_refit;
        pose_sweep_shown_ = view.pose_sweep;
        selection_follows_prediction_ = false;
        sweep_low_ = view.sweep_low, sweep_high_ = view.sweep_high, sweep_step_ = view.sweep_step;
        sweep_offsets_ = offsets;
        range_error_.clear();
        capsule_edited_ = view.capsule_edited;
        if (capsule_edited_) capsule_.assign(view.capsule.begin(), view.capsule.end());
        fine_tuned_link_note_ =
            view.fine_tuned ? std::string("This link was made with a model fine-tuned in its author's browser, which a "
                                          "link cannot carry: it shows here with ") +
                                  (fine_tuned_ ? "your fine-tuned model" : "the shipped model") +
                                  ", so the capsules can differ from what its author saw."
                            : "";
        update_input();
        update_analysis();
    } catch (const std::exception& error) {
        // A bad link must never leave half a view behind: clear everything and say why.
        clear();
        reset_view_settings();
        link_error_ = std::string(error.what()) + ". Showing an empty canvas.";
    }
}

void DemoApp::reset_view_settings() {
    selected_capsule_ = 0;
    sweep_low_ = default_sweep_range.low, sweep_high_ = default_sweep_range.high, sweep_step_ = default_sweep_range.step;
    sweep_offsets_ = sweep_offsets(sweep_low_, sweep_high_, sweep_step_);
    view_tab_ = pending_tab_ = shared_view_tab_ = 0;
    routing_iteration_ = ready() ? engine_->model().config.routing_iterations : 0;
    routing_logits_ = routing_playing_ = false;
    pose_ = AffineTransform{};
    pose_refit_ = pose_sweep_shown_ = false;
    input_stale_ = true;
}

void DemoApp::pointer_down(float x, float y) {
    if (!ready() || canvas_side_ <= 0) return;
    const float u = (x - canvas_min_.x) / canvas_side_, v = (y - canvas_min_.y) / canvas_side_;
    if (u < 0 || u > 1 || v < 0 || v > 1) return;
    Stroke stroke;
    stroke.width = pen_width_;
    stroke.points.push_back({u, v});
    strokes_.push_back(std::move(stroke));
    drawing_ = true;
    link_error_.clear();
    fine_tuned_link_note_.clear();
    input_stale_ = true;
}

void DemoApp::pointer_move(float x, float y) {
    if (!drawing_ || canvas_side_ <= 0) return;
    const StrokePoint point{(x - canvas_min_.x) / canvas_side_, (y - canvas_min_.y) / canvas_side_};
    const StrokePoint& last = strokes_.back().points.back();
    // Points closer than 1/500 of the canvas add nothing visible and only slow the rasteriser.
    if (std::hypot(point.x - last.x, point.y - last.y) < 0.002f) return;
    strokes_.back().points.push_back(point);
    input_stale_ = true;
}

void DemoApp::pointer_up() {
    if (!drawing_) return;
    drawing_ = false;
    sweep_stale_ = true;
}

void DemoApp::clear() {
    strokes_.clear();
    selection_follows_prediction_ = true;
    drawing_ = false;
    base_image_.reset();
    capsule_edited_ = false;
    input_stale_ = true;
}

void DemoApp::select_capsule(int digit) {
    if (!ready() || digit < 0 || digit >= engine_->classes()) return;
    selection_follows_prediction_ = false;  // picked by hand: keep it while the drawing changes
    if (digit == selected_capsule_) return;
    selected_capsule_ = digit;
    capsule_edited_ = false;  // the sliders belong to one capsule: a new capsule starts from the network's values
    sliders_from_network();
    sweep_stale_ = slider_image_stale_ = routing_pictures_stale_ = pose_sweep_stale_ = true;
}

void DemoApp::set_view_tab(int tab) {
    if (tab < 0 || tab > teach_tab) return;
    view_tab_ = pending_tab_ = tab;
    if (tab < share_view_tabs) shared_view_tab_ = tab;
}

void DemoApp::set_routing(int iteration, bool logits) {
    if (!ready()) return;
    routing_iteration_ = std::clamp(iteration, 1, engine_->model().config.routing_iterations);
    routing_logits_ = logits;
    routing_playing_ = false;
    routing_pictures_stale_ = true;
}

void DemoApp::play_routing() {
    if (!ready()) return;
    routing_iteration_ = 1;
    routing_playing_ = true;
    routing_next_step_ms_ = page_now_ms() + routing_play_step_ms;
    routing_pictures_stale_ = true;
}

void DemoApp::advance_routing_play() {
    if (!routing_playing_ || page_now_ms() < routing_next_step_ms_) return;
    if (routing_iteration_ >= engine_->model().config.routing_iterations) {
        routing_playing_ = false;
        return;
    }
    ++routing_iteration_;
    routing_next_step_ms_ = page_now_ms() + routing_play_step_ms;
    routing_pictures_stale_ = true;
}

void DemoApp::set_pose(const AffineTransform& pose, bool refit) {
    const AffineTransform quantized = share_link_quantize_pose(pose);
    pose_ = quantized;
    pose_refit_ = refit;
    input_stale_ = true;
}

void DemoApp::show_pose_sweep(bool on) {
    pose_sweep_shown_ = on;
    pose_sweep_stale_ = true;
}

void DemoApp::set_input_from_image(const DemoImage& image) {
    base_image_ = image;
    const Tensor<float, 2> values = demo_image_floats(image);
    textures_.base.upload(values.data(), demo_image_side, demo_image_side, true);
    input_stale_ = true;
}

// ---------------------------------------------------------------------------------------------------
// Lazy recomputation

void DemoApp::update_input() {
    if (strokes_.empty()) {
        if (base_image_) base_input_ = *base_image_;
        else base_input_.fill(0);
    } else {
        Tensor<float, 2> ink = drawing_rasterize(strokes_, raster_side);
        if (base_image_) ink = xt::maximum(ink, drawing_upscale(demo_image_floats(*base_image_), raster_side));
        const std::vector<std::uint8_t> bytes = drawing_to_bytes(drawing_to_mnist(ink));
        std::copy(bytes.begin(), bytes.end(), base_input_.begin());
    }
    input_ = demo_pose_input(base_input_, pose_, pose_refit_);
    textures_.pose_base.upload_bytes(base_input_.data(), demo_image_side, demo_image_side);
    textures_.input.upload_bytes(input_.data(), demo_image_side, demo_image_side);
    input_stale_ = false;
    analysis_stale_ = true;
}

void DemoApp::update_analysis() {
    analysis_ = engine_->classify(input_);
    routing_ = engine_->routing();
    before_stale_ = true;
    routing_pictures_stale_ = pose_sweep_stale_ = true;
    if (selection_follows_prediction_ && analysis_.prediction >= 0 && analysis_.prediction != selected_capsule_) {
        selected_capsule_ = analysis_.prediction;
        capsule_edited_ = false;
    }
    mask_images_ = engine_->mask_grid(analysis_.capsules);
    const int classes = engine_->classes();
    textures_.mask_grid.upload(atlas_tiles(mask_images_.data(), classes, classes, demo_image_side).data(),
                               classes * demo_image_side, demo_image_side);
    if (!capsule_edited_) sliders_from_network();
    analysis_stale_ = false;
    slider_image_stale_ = true;
    if (!drawing_) sweep_stale_ = true;
}

void DemoApp::sliders_from_network() {
    if (analysis_.capsules.size() == 0) return;  // nothing classified yet
    const float* row = analysis_.capsules.data() + selected_capsule_ * engine_->capsule_dims();
    capsule_.assign(row, row + engine_->capsule_dims());
}

void DemoApp::update_sweep() {
    Tensor<float, 2> capsules = analysis_.capsules;
    std::copy(capsule_.begin(), capsule_.end(), capsules.data() + selected_capsule_ * engine_->capsule_dims());
    sweep_images_ = engine_->sweep_grid(capsules, selected_capsule_, sweep_offsets_);
    // sweep_images_ is [column, dim, pixels]; the atlas shows one dimension per row.
    const int columns = static_cast<int>(sweep_images_.shape(0)), dims = static_cast<int>(sweep_images_.shape(1));
    Tensor<float, 3> by_row = xt::transpose(sweep_images_, {1, 0, 2});
    textures_.sweep.upload(atlas_tiles(by_row.data(), dims * columns, columns, demo_image_side).data(),
                           columns * demo_image_side, dims * demo_image_side);
    sweep_stale_ = false;
}

void DemoApp::update_routing_pictures() {
    const RoutingPictures pictures =
        routing_pictures(routing_, input_, routing_iteration_ - 1, selected_capsule_, routing_logits_);
    textures_.routing_overlay.upload_rgb(pictures.overlay.data(), engine_->classes() * demo_image_side, demo_image_side);
    textures_.routing_heatmap.upload_rgb(pictures.heatmap.data(), routing_heatmap_width, routing_heatmap_height);
    routing_logit_low_ = pictures.logit_low, routing_logit_high_ = pictures.logit_high;
    routing_pictures_stale_ = false;
}

void DemoApp::update_pose_sweep() {
    const double start = page_now_ms();
    rotation_sweep_ = engine_->pose_sweep(
        base_input_, pose_refit_, pose_, PoseAxis::rotation,
        sweep_values(pose_sweep_rotation_low, pose_sweep_rotation_high, pose_sweep_rotation_step), selected_capsule_);
    scale_sweep_ = engine_->pose_sweep(base_input_, pose_refit_, pose_, PoseAxis::scale,
                                       sweep_values(pose_sweep_scale_low, pose_sweep_scale_high, pose_sweep_scale_step),
                                       selected_capsule_);
    pose_sweep_ms_ = page_now_ms() - start;
    pose_sweep_stale_ = false;
}

void DemoApp::update_slider_reconstruction() {
    slider_image_ = engine_->reconstruct(capsule_, selected_capsule_);
    textures_.slider.upload(slider_image_.data(), demo_image_side, demo_image_side);
    slider_image_stale_ = false;
}

ShareView DemoApp::current_view() const {
    ShareView view;
    view.model_id = model_id_;
    view.input = base_input_;
    view.selected_capsule = selected_capsule_;
    view.sweep_low = sweep_low_, view.sweep_high = sweep_high_, view.sweep_step = sweep_step_;
    view.capsule_edited = capsule_edited_;
    if (capsule_edited_) std::copy_n(capsule_.begin(), std::min<std::size_t>(capsule_.size(), 16), view.capsule.begin());
    view.view_tab = shared_view_tab_;  // the Teach panel is this browser's own: a link shows the last other panel
    view.fine_tuned = fine_tuned_;
    view.routing_iteration = routing_iteration_;
    view.routing_logits = routing_logits_;
    view.pose = pose_;
    view.pose_refit = pose_refit_;
    view.pose_sweep = pose_sweep_shown_;
    return view;
}

void DemoApp::publish_fragment() {
    // Only while nothing waits to be recomputed, so the link always matches what is on screen.
    std::string fragment;
    try {
        fragment = share_link_encode(current_view());
    } catch (const std::exception& error) {
        // Every state the interface allows encodes; if one ever did not, keep the last good link.
        notice_ = std::string("cannot make a share link: ") + error.what();
        notice_until_ = page_now_ms() + 3000;
        return;
    }
    if (fragment == fragment_) return;
    fragment_ = std::move(fragment);
    page_set_fragment(fragment_);
}

// ---------------------------------------------------------------------------------------------------
// The frame

void DemoApp::frame(float width, float height) {
    ++frame_count_;
    canvas_side_ = 0;  // set again if the canvas is drawn this frame; pointer events outside it are ignored
    if (ready()) {
        if (input_stale_) update_input();
        if (analysis_stale_) update_analysis();
        advance_routing_play();
        // The routing pictures and the interpolation grid only for their own panel (the other panels'
        // pictures wait until it is opened): while a pose slider is dragged the grid alone was a third
        // of each frame.
        if (routing_pictures_stale_ && view_tab_ == routing_tab) update_routing_pictures();
        if (sweep_stale_ && !drawing_ && view_tab_ == interpolation_tab) update_sweep();
        if (slider_image_stale_) update_slider_reconstruction();
        // ImGui's "a widget is held" is last frame's: a pose slider being dragged defers the sweeps too.
        if (pose_sweep_shown_ && pose_sweep_stale_ && !drawing_ && !ImGui::IsAnyItemActive()) update_pose_sweep();
        advance_teach(teach_frame_budget_ms);
        if (before_engine_ && before_stale_ && view_tab_ == teach_tab && !analysis_stale_) update_before_analysis();
        if (!input_stale_ && !analysis_stale_) publish_fragment();
    }

    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(ImVec2(width, height));
    ImGui::Begin("CapsNet demo", nullptr,
                 ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                     ImGuiWindowFlags_NoBringToFrontOnFocus);
    if (!ready()) {
        ImGui::TextUnformatted("CapsNet: dynamic routing between capsules");
        if (!load_error_.empty()) {
            ImGui::PushStyleColor(ImGuiCol_Text, IM_COL32(255, 110, 110, 255));
            ImGui::TextWrapped("Could not load the model: %s", load_error_.c_str());
            ImGui::PopStyleColor();
        } else {
            ImGui::Text("Loading the model...");
            ImGui::ProgressBar(loading_progress_, ImVec2(std::min(width * 0.8f, 400 * ui_scale_), 0));
        }
    } else if (width >= 1.15f * height && width >= 900 * ui_scale_) {
        draw_wide_layout(width, height);
    } else {
        draw_narrow_layout(width, height);
    }
    ImGui::End();
}

void DemoApp::draw_status_line() {
    if (!link_error_.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, IM_COL32(255, 110, 110, 255));
        ImGui::TextWrapped("%s", link_error_.c_str());
        ImGui::PopStyleColor();
    }
    if (!fine_tuned_link_note_.empty()) ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1), "%s", fine_tuned_link_note_.c_str());
    if (!notice_.empty() && page_now_ms() < notice_until_) ImGui::TextWrapped("%s", notice_.c_str());
}

void DemoApp::draw_wide_layout(float width, float height) {
    const ImGuiStyle& style = ImGui::GetStyle();
    const float inner_height = height - 2 * style.WindowPadding.y;
    const float left = std::floor(width * 0.30f), middle = std::floor(width * 0.19f);

    ImGui::BeginChild("draw", ImVec2(left, inner_height));
    ImGui::TextUnformatted("Draw a digit");
    draw_status_line();
    draw_canvas_panel(std::min(left - style.ItemSpacing.x, inner_height * 0.5f));
    draw_bars();
    ImGui::EndChild();

    // The mask grid above the gallery: both are columns of small pictures.
    ImGui::SameLine();
    ImGui::BeginChild("mask", ImVec2(middle, inner_height));
    const float gallery_cell = std::floor((middle - 11 * style.ItemSpacing.x) / 10);
    const float gallery_height = 10 * (gallery_cell + style.ItemSpacing.y) + 2 * ImGui::GetTextLineHeightWithSpacing();
    const float mask_cell = std::min((middle - 3 * style.ItemSpacing.x) / 2,
                                     (inner_height - gallery_height - 9 * ImGui::GetTextLineHeightWithSpacing()) / 5);
    draw_mask_grid(mask_cell);
    draw_gallery(gallery_cell);
    ImGui::EndChild();

    ImGui::SameLine();
    ImGui::BeginChild("panels", ImVec2(0, inner_height));
    const float available = ImGui::GetContentRegionAvail().x;
    if (ImGui::BeginTabBar("panels")) {
        const int columns = static_cast<int>(sweep_offsets_.size());
        draw_panel_tabs(available, std::min((available - 4 * ui_scale_ * 10) / columns, inner_height * 0.52f / 16),
                        std::min(inner_height * 0.18f, 120 * ui_scale_));
        ImGui::EndTabBar();
    }
    ImGui::EndChild();
}

void DemoApp::draw_panel_tabs(float width, float interpolation_cell, float slider_preview) {
    if (panel_tab("Interpolate", interpolation_tab)) {
        draw_interpolation(interpolation_cell);
        draw_sliders(slider_preview);
        ImGui::EndTabItem();
    }
    if (panel_tab("Routing", routing_tab)) {
        draw_routing(width);
        ImGui::EndTabItem();
    }
    if (panel_tab("Pose lab", pose_tab)) {
        draw_pose_lab(width);
        ImGui::EndTabItem();
    }
    if (panel_tab("Teach", teach_tab)) {
        draw_teach(width);
        ImGui::EndTabItem();
    }
}

bool DemoApp::panel_tab(const char* label, int tab) {
    // A link's panel is selected with SetSelected, which ImGui applies at the tab bar's next frame: until
    // the chosen tab reports itself open, the old one's "open" must not overwrite the choice.
    const ImGuiTabItemFlags flags = pending_tab_ == tab ? ImGuiTabItemFlags_SetSelected : 0;
    if (!ImGui::BeginTabItem(label, nullptr, flags)) return false;
    if (pending_tab_ == tab) pending_tab_ = -1;
    if (pending_tab_ < 0) {
        view_tab_ = tab;
        if (tab < share_view_tabs) shared_view_tab_ = tab;
    }
    return true;
}

void DemoApp::draw_narrow_layout(float width, float height) {
    const ImGuiStyle& style = ImGui::GetStyle();
    const float available = width - 2 * style.WindowPadding.x;
    if (!ImGui::BeginTabBar("views")) return;
    if (ImGui::BeginTabItem("Draw")) {
        draw_status_line();
        draw_canvas_panel(std::min(available, height * 0.55f));
        draw_bars();
        ImGui::EndTabItem();
    }
    if (ImGui::BeginTabItem("Mask grid")) {
        draw_mask_grid(std::min((available - 2 * style.ItemSpacing.x) / 2,
                                (height - 12 * ImGui::GetTextLineHeightWithSpacing()) / 5));
        ImGui::EndTabItem();
    }
    const int columns = static_cast<int>(sweep_offsets_.size());
    draw_panel_tabs(available, std::min((available - 40 * ui_scale_) / columns, height * 0.45f / 16),
                    std::min(available * 0.3f, 110 * ui_scale_));
    if (ImGui::BeginTabItem("Gallery")) {
        draw_gallery(std::min((available - 11 * style.ItemSpacing.x) / 10, 48 * ui_scale_));
        ImGui::EndTabItem();
    }
    ImGui::EndTabBar();
}

void DemoApp::draw_canvas_panel(float side) {
    side = std::max(side, 64.0f);
    const ImVec2 corner = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("canvas", ImVec2(side, side));
    canvas_min_ = corner;
    canvas_side_ = side;
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const ImVec2 far_corner(corner.x + side, corner.y + side);
    draw->AddRectFilled(corner, far_corner, IM_COL32(0, 0, 0, 255));
    draw->PushClipRect(corner, far_corner, true);
    if (base_image_) draw->AddImage(textures_.base.id(), corner, far_corner);
    std::vector<ImVec2> points;
    for (const Stroke& stroke : strokes_) {
        const float thickness = stroke.width * side;
        points.clear();
        for (const StrokePoint& p : stroke.points) {
            points.emplace_back(corner.x + p.x * side, corner.y + p.y * side);
            draw->AddCircleFilled(points.back(), thickness / 2, IM_COL32_WHITE, 12);  // round caps and joins
        }
        if (points.size() > 1)
            draw->AddPolyline(points.data(), static_cast<int>(points.size()), IM_COL32_WHITE, ImDrawFlags_None, thickness);
    }
    if (strokes_.empty() && !base_image_)
        draw->AddText(ImVec2(corner.x + 8 * ui_scale_, corner.y + 8 * ui_scale_), IM_COL32(130, 130, 130, 255),
                      "draw here with mouse or finger");
    draw->PopClipRect();
    draw->AddRect(corner, far_corner, IM_COL32(90, 90, 90, 255));

    // Tools, and what the network sees.
    const float preview = 3 * demo_image_side * ui_scale_;
    ImGui::BeginGroup();
    ImGui::SetNextItemWidth(std::max(side - preview - ImGui::GetStyle().ItemSpacing.x, 80 * ui_scale_) * 0.6f);
    ImGui::SliderFloat("pen", &pen_width_, 0.02f, 0.2f, "%.2f");
    if (ImGui::Button("Undo")) {
        if (!strokes_.empty()) strokes_.pop_back();
        else base_image_.reset();
        capsule_edited_ = false;
        input_stale_ = true;
    }
    ImGui::SameLine();
    if (ImGui::Button("Clear")) clear();
    ImGui::SameLine();
    if (ImGui::Button("Copy link")) {
        page_copy_link();
        notice_ = "Link copied (" + std::to_string(fragment_.size()) + " characters)." +
                  (fine_tuned_ ? " It says the model was fine-tuned here: others see the view with the shipped model." : "");
        notice_until_ = page_now_ms() + 3000;
    }
    ImGui::EndGroup();
    ImGui::SameLine();
    draw_input_preview(preview);
}

void DemoApp::draw_input_preview(float side) {
    ImGui::BeginGroup();
    // With the routing panel open, the input shows the strokes that voted for the chosen class.
    const bool overlay = view_tab_ == routing_tab && !textures_.routing_overlay.empty() && analysis_.prediction >= 0;
    const int classes = ready() ? engine_->classes() : 10;
    if (overlay) {
        const ImVec2 uv0(static_cast<float>(selected_capsule_) / classes, 0);
        const ImVec2 uv1(static_cast<float>(selected_capsule_ + 1) / classes, 1);
        ImGui::Image(textures_.routing_overlay.id(), ImVec2(side, side), uv0, uv1);
        ImGui::TextDisabled("votes for %d", selected_capsule_);
    } else {
        if (!textures_.input.empty()) ImGui::Image(textures_.input.id(), ImVec2(side, side));
        ImGui::TextDisabled(pose_.rotation_degrees == 0 && pose_.scale == 1 && pose_.shear == 0 &&
                                    pose_.translate_x == 0 && pose_.translate_y == 0 && !pose_refit_
                                ? "28x28 input"
                                : "28x28 input, posed");
    }
    ImGui::EndGroup();
}

void DemoApp::draw_bars() {
    if (analysis_.lengths.empty()) return;
    ImGui::Spacing();
    if (analysis_.prediction >= 0) ImGui::Text("Prediction: %d   (capsule lengths)", analysis_.prediction);
    else ImGui::TextDisabled("Draw a digit: capsule lengths");
    const float bar_width = ImGui::GetContentRegionAvail().x - 3 * ImGui::GetFontSize();
    for (int j = 0; j < static_cast<int>(analysis_.lengths.size()); ++j) {
        const bool predicted = j == analysis_.prediction;
        ImGui::Text("%d", j);
        ImGui::SameLine();
        ImGui::PushStyleColor(ImGuiCol_PlotHistogram, predicted ? highlight_colour : IM_COL32(70, 110, 170, 255));
        char label[16];
        std::snprintf(label, sizeof label, "%.3f", analysis_.lengths[j]);
        ImGui::ProgressBar(analysis_.lengths[j], ImVec2(bar_width, ImGui::GetFontSize() * 1.1f), label);
        ImGui::PopStyleColor();
        // A bar is a button: it chooses the class the other panels show.
        if (ImGui::IsItemClicked()) select_capsule(j);
        if (j == selected_capsule_)
            ImGui::GetWindowDrawList()->AddRect(ImGui::GetItemRectMin(), ImGui::GetItemRectMax(), highlight_colour, 0,
                                                0, 2.0f);
    }
}

void DemoApp::draw_mask_grid(float cell) {
    ImGui::TextUnformatted("Mask grid");
    ImGui::TextDisabled("the input decoded through each\ncapsule alone; click to choose");
    if (mask_images_.size() == 0) return;
    const int classes = engine_->classes();
    for (int j = 0; j < classes; ++j) {
        if (j % 2) ImGui::SameLine();
        ImGui::BeginGroup();
        ImGui::PushID(j);
        const ImVec2 uv0(static_cast<float>(j) / classes, 0), uv1(static_cast<float>(j + 1) / classes, 1);
        if (image_button("cell", textures_.mask_grid, ImVec2(cell, cell), uv0, uv1, j == selected_capsule_)) {
            select_capsule(j);
        }
        ImGui::Text("%d: %.2f", j, analysis_.lengths[j]);
        ImGui::PopID();
        ImGui::EndGroup();
    }
}

void DemoApp::draw_interpolation(float cell) {
    ImGui::Text("Capsule %d: each of 16 dimensions perturbed", selected_capsule_);
    // The range: edited as thousandths (what a link stores), validated before use.
    float range[3] = {sweep_low_, sweep_high_, sweep_step_};
    ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x * 0.7f, 330 * ui_scale_));
    if (ImGui::DragFloat3("low, high, step", range, 0.005f, -2.0f, 2.0f, "%.3f")) {
        for (float& value : range) value = share_link_quantize(value);
        try {
            if (!(range[0] < range[1])) throw Error("low must be below high");
            std::vector<float> offsets = sweep_offsets(range[0], range[1], range[2]);
            if (static_cast<int>(offsets.size()) > max_sweep_columns)
                throw Error("at most " + std::to_string(max_sweep_columns) + " columns");
            sweep_offsets_ = std::move(offsets);
            sweep_low_ = range[0], sweep_high_ = range[1], sweep_step_ = range[2];
            range_error_.clear();
            sweep_stale_ = true;
        } catch (const std::exception& error) {
            range_error_ = error.what();
        }
    }
    if (!range_error_.empty()) ImGui::TextColored(error_colour, "range: %s", range_error_.c_str());
    if (sweep_images_.size() == 0) return;

    const int columns = static_cast<int>(sweep_images_.shape(0)), dims = static_cast<int>(sweep_images_.shape(1));
    const ImVec2 corner = ImGui::GetCursorScreenPos();
    const float label_width = 2.2f * ImGui::GetFontSize();
    ImDrawList* draw = ImGui::GetWindowDrawList();
    for (int d = 0; d < dims; ++d) {
        char label[8];
        std::snprintf(label, sizeof label, "%d", d);
        draw->AddText(ImVec2(corner.x, corner.y + (d + 0.3f) * cell), IM_COL32(170, 170, 170, 255), label);
    }
    const ImVec2 grid(corner.x + label_width, corner.y);
    draw->AddImage(textures_.sweep.id(), grid, ImVec2(grid.x + columns * cell, grid.y + dims * cell));
    // Frame the unperturbed column (offset 0), as the seed's vis_tweaked does.
    for (int r = 0; r < columns; ++r)
        if (sweep_offsets_[r] == 0.0f)
            draw->AddRect(ImVec2(grid.x + r * cell, grid.y), ImVec2(grid.x + (r + 1) * cell, grid.y + dims * cell),
                          highlight_colour, 0, 0, 1.5f);
    ImGui::Dummy(ImVec2(label_width + columns * cell, dims * cell));
    ImGui::TextDisabled("columns: offsets %.3f .. %.3f step %.3f", sweep_low_, sweep_high_, sweep_step_);
    if (ImGui::Button("Download PNG")) download_interpolation_png();
}

void DemoApp::download_interpolation_png() {
    if (sweep_images_.size() == 0) return;
    // One row per dimension, one column per offset, 2-pixel gray gaps (as on screen).
    Tensor<float, 3> by_row = xt::transpose(sweep_images_, {1, 0, 2});
    const Tensor<float, 2> picture = tile_images(by_row, demo_image_side, 2, 0.35f);
    const std::string name = "capsnet-capsule" + std::to_string(selected_capsule_) + "-interpolation.png";
    page_download(name, png_encode_gray(picture), "image/png");
}

void DemoApp::draw_sliders(float preview_side) {
    ImGui::Spacing();
    ImGui::Text("Edit capsule %d directly", selected_capsule_);
    ImGui::SameLine();
    if (ImGui::SmallButton("Reset")) {
        capsule_edited_ = false;
        analysis_stale_ = true;
    }
    ImGui::BeginGroup();
    const float slider_width = (ImGui::GetContentRegionAvail().x - preview_side) / 2 - 4 * ImGui::GetFontSize();
    for (int d = 0; d < static_cast<int>(capsule_.size()); ++d) {
        ImGui::PushID(d);
        if (d % 2) ImGui::SameLine();
        ImGui::SetNextItemWidth(std::max(slider_width, 60 * ui_scale_));
        char label[8];
        std::snprintf(label, sizeof label, "d%d", d);
        if (ImGui::SliderFloat(label, &capsule_[d], -1.0f, 1.0f, "%.3f")) {
            // A link stores thousandths: round every value now so the restored view is identical.
            if (!capsule_edited_) capsule_edited_ = true;
            for (float& value : capsule_) value = share_link_quantize(value);
            slider_image_stale_ = sweep_stale_ = true;
        }
        ImGui::PopID();
    }
    ImGui::EndGroup();
    ImGui::SameLine();
    ImGui::BeginGroup();
    if (!textures_.slider.empty()) ImGui::Image(textures_.slider.id(), ImVec2(preview_side, preview_side));
    ImGui::TextDisabled(capsule_edited_ ? "edited capsule" : "capsule as computed");
    ImGui::EndGroup();
}

void DemoApp::draw_gallery(float cell) {
    ImGui::Spacing();
    ImGui::TextUnformatted("Start from an MNIST test digit");
    if (gallery_.empty()) {
        ImGui::TextDisabled("(the gallery is not available)");
        return;
    }
    const int cols = 10, rows = (static_cast<int>(gallery_.size()) + cols - 1) / cols;
    for (int i = 0; i < static_cast<int>(gallery_.size()); ++i) {
        if (i % cols) ImGui::SameLine();
        ImGui::PushID(1000 + i);
        const ImVec2 uv0(static_cast<float>(i % cols) / cols, static_cast<float>(i / cols) / rows);
        const ImVec2 uv1(static_cast<float>(i % cols + 1) / cols, static_cast<float>(i / cols + 1) / rows);
        if (image_button("digit", textures_.gallery, ImVec2(cell, cell), uv0, uv1, false)) {
            strokes_.clear();
            capsule_edited_ = false;
            link_error_.clear();
            set_input_from_image(gallery_[i].pixels);
        }
        ImGui::PopID();
    }
}

// ---------------------------------------------------------------------------------------------------
// The routing panel

void DemoApp::draw_routing(float width) {
    if (routing_.trace.coupling.size() == 0) return;
    const int classes = engine_->classes(), iterations = routing_.trace.iterations(), k = selected_capsule_;
    const int r = routing_iteration_ - 1;
    ImGui::TextWrapped("Routing by agreement: who voted for class %d", k);
    note("Each of the 1152 primary capsules predicts every digit capsule (u_hat = W u) and sends it a share "
         "c_ij of its vote; each iteration raises the share of the capsules whose prediction agrees with the "
         "result (b_ij += u_hat . v_j).");
    ImGui::SetNextItemWidth(std::min(width * 0.4f, 220 * ui_scale_));
    if (ImGui::SliderInt("iteration", &routing_iteration_, 1, iterations)) {
        routing_playing_ = false;
        routing_pictures_stale_ = true;
    }
    ImGui::SameLine();
    if (ImGui::Button(routing_playing_ ? "Stop" : "Play")) {
        if (routing_playing_) routing_playing_ = false;
        else play_routing();
    }
    same_line_if_fits(ImGui::CalcTextSize("couplings c").x + 2 * ImGui::GetFrameHeight());
    if (ImGui::RadioButton("couplings c", !routing_logits_)) routing_logits_ = false, routing_pictures_stale_ = true;
    ImGui::SameLine();
    if (ImGui::RadioButton("logits b", routing_logits_)) routing_logits_ = true, routing_pictures_stale_ = true;

    // The class scores as they stand after this iteration.
    ImGui::Text("After iteration %d of %d, the lengths |v_j|:", routing_iteration_, iterations);
    for (int j = 0; j < classes; ++j) {
        if (j % 5) ImGui::SameLine();  // two rows of five: one row overflows a narrow panel
        const float length = routing_.trace.lengths(r, j);
        if (j == k) ImGui::TextColored(ImVec4(1, 0.77f, 0, 1), "%d:%.2f", j, length);
        else ImGui::Text("%d:%.2f", j, length);
    }

    // Every class's voters, clickable; then the chosen one large beside its heatmap.
    note("The strokes that voted for each class (click one to choose it):");
    const ImGuiStyle& style = ImGui::GetStyle();
    const float tile = std::floor(std::min((width - (classes - 1) * style.ItemSpacing.x) / classes, 64 * ui_scale_));
    for (int j = 0; j < classes; ++j) {
        if (j) ImGui::SameLine();
        ImGui::BeginGroup();
        ImGui::PushID(2000 + j);
        const ImVec2 uv0(static_cast<float>(j) / classes, 0), uv1(static_cast<float>(j + 1) / classes, 1);
        if (image_button("voters", textures_.routing_overlay, ImVec2(tile, tile), uv0, uv1, j == k)) select_capsule(j);
        ImGui::Text("%d", j);
        ImGui::PopID();
        ImGui::EndGroup();
    }
    const float big = std::floor(std::min(width * 0.3f, 8.0f * demo_image_side * ui_scale_));
    ImGui::BeginGroup();
    const ImVec2 uv0(static_cast<float>(k) / classes, 0), uv1(static_cast<float>(k + 1) / classes, 1);
    ImGui::Image(textures_.routing_overlay.id(), ImVec2(big, big), uv0, uv1);
    ImGui::TextDisabled("votes for %d:\nc_ij |u_hat_ij| over each\ncapsule's 17x17 field, x ink", k);
    ImGui::EndGroup();
    if (width >= 560 * ui_scale_) ImGui::SameLine();  // else the heatmap goes below, at the panel's width
    ImGui::BeginGroup();
    const float zoom = std::floor(std::max(1.0f, (ImGui::GetContentRegionAvail().x - style.ItemSpacing.x) /
                                                    routing_heatmap_width));
    ImGui::Image(textures_.routing_heatmap.id(), ImVec2(zoom * routing_heatmap_width, zoom * routing_heatmap_height));
    char caption[160];
    if (routing_logits_)
        std::snprintf(caption, sizeof caption,
                      "b_i,%d: 32 capsule types (4 x 8 tiles) x 6x6 grid; purple %.2f .. pale yellow %.2f (all classes)", k,
                      routing_logit_low_, routing_logit_high_);
    else
        std::snprintf(caption, sizeof caption,
                      "c_i,%d: 32 capsule types (4 x 8 tiles) x 6x6 grid; purple 0 .. pale yellow 1 (uniform 0.1 "
                      "at iteration 1)", k);
    ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + zoom * routing_heatmap_width);
    ImGui::TextDisabled("%s", caption);
    ImGui::PopTextWrapPos();
    ImGui::EndGroup();
}

// ---------------------------------------------------------------------------------------------------
// The pose lab

void DemoApp::draw_pose_lab(float width) {
    ImGui::TextWrapped("Pose lab: transform the digit, watch the capsules follow");
    note("Everything on the page (prediction, lengths, mask grid, interpolation, routing) sees the transformed "
         "input.");
    bool changed = false;
    // Short labels: a phone's panel is ~25 characters wide at its font size.
    if (ImGui::RadioButton("warp the 28x28 (affNIST)", !pose_refit_)) pose_refit_ = false, changed = true;
    same_line_if_fits(ImGui::CalcTextSize("transform, refit 28x28").x + 2 * ImGui::GetFrameHeight());
    if (ImGui::RadioButton("transform, refit 28x28", pose_refit_)) pose_refit_ = true, changed = true;
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("transform the drawing, then fit it to 28x28 again as drawings are");
    AffineTransform pose = pose_;
    // Side by side: sliders, then the before and after pictures; stacked on a narrow panel.
    const bool side_by_side = width >= 560 * ui_scale_;
    const float slider_width = side_by_side ? std::min(width * 0.55f, 320 * ui_scale_) : width * 0.6f;
    ImGui::BeginGroup();
    ImGui::SetNextItemWidth(slider_width);
    changed |= ImGui::SliderFloat("rotation", &pose.rotation_degrees, share_link_pose_rotation_min,
                                  share_link_pose_rotation_max, "%.1f deg");
    ImGui::SetNextItemWidth(slider_width);
    changed |= ImGui::SliderFloat("scale", &pose.scale, share_link_pose_scale_min, share_link_pose_scale_max, "%.3f");
    ImGui::SetNextItemWidth(slider_width);
    changed |= ImGui::SliderFloat("shear", &pose.shear, share_link_pose_shear_min, share_link_pose_shear_max, "%.3f");
    ImGui::SetNextItemWidth(slider_width);
    changed |= ImGui::SliderFloat("shift x", &pose.translate_x, share_link_pose_translate_min,
                                  share_link_pose_translate_max, "%.3f");
    ImGui::SetNextItemWidth(slider_width);
    changed |= ImGui::SliderFloat("shift y", &pose.translate_y, share_link_pose_translate_min,
                                  share_link_pose_translate_max, "%.3f");
    if (ImGui::Button("Reset pose")) pose = AffineTransform{}, changed = true;
    ImGui::SameLine();
    if (ImGui::Button(pose_sweep_shown_ ? "Hide sweep" : "Sweep")) show_pose_sweep(!pose_sweep_shown_);
    if (pose_refit_) ImGui::TextDisabled("(the fit to 28x28 undoes most of a scale or shift)");
    ImGui::EndGroup();
    if (changed) set_pose(pose, pose_refit_);  // quantized as a link stores it, so the link restores this exactly

    if (side_by_side) ImGui::SameLine();
    const float side = std::floor(std::min((ImGui::GetContentRegionAvail().x - 2 * ImGui::GetStyle().ItemSpacing.x) / 2,
                                           4.0f * demo_image_side * ui_scale_));
    for (const bool before : {true, false}) {
        ImGui::BeginGroup();
        const Texture& texture = before ? textures_.pose_base : textures_.input;
        if (!texture.empty()) ImGui::Image(texture.id(), ImVec2(side, side));
        ImGui::TextDisabled(before ? "before" : "network input");
        ImGui::EndGroup();
        if (before) ImGui::SameLine();
    }
    if (pose_sweep_shown_) draw_pose_charts(width);
}

namespace {

// One small line chart: series[s][k] against x[k], y from 0 to 1 for lengths (or the series' own range),
// the highlighted series drawn thick on top, the current x marked by a vertical line.
void line_chart(const char* title, const std::vector<float>& x, const std::vector<std::vector<float>>& series,
                int highlighted, float current_x, bool unit_range, ImVec2 size, float font_scale) {
    ImGui::BeginGroup();
    // The title is clipped to the chart's width, so a long one cannot push the next chart off the panel.
    const ImVec2 title_corner = ImGui::GetCursorScreenPos();
    ImGui::Dummy(ImVec2(size.x, ImGui::GetTextLineHeight()));
    ImGui::GetWindowDrawList()->PushClipRect(title_corner, ImVec2(title_corner.x + size.x, title_corner.y + ImGui::GetTextLineHeight()), true);
    ImGui::GetWindowDrawList()->AddText(title_corner, ImGui::GetColorU32(ImGuiCol_Text), title);
    ImGui::GetWindowDrawList()->PopClipRect();
    const ImVec2 corner = ImGui::GetCursorScreenPos();
    ImGui::Dummy(size);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const ImVec2 far_corner(corner.x + size.x, corner.y + size.y);
    draw->AddRectFilled(corner, far_corner, IM_COL32(25, 25, 30, 255));
    draw->AddRect(corner, far_corner, IM_COL32(90, 90, 90, 255));
    if (x.size() < 2 || series.empty()) {
        ImGui::EndGroup();
        return;
    }
    float low = 0, high = 1;
    if (!unit_range) {
        low = high = series[0][0];
        for (const auto& values : series)
            for (float v : values) low = std::min(low, v), high = std::max(high, v);
        if (high - low < 1e-6f) high = low + 1e-6f;
    }
    const float pad = 4 * font_scale;
    auto point = [&](float px, float py) {
        return ImVec2(corner.x + pad + (px - x.front()) / (x.back() - x.front()) * (size.x - 2 * pad),
                      far_corner.y - pad - (py - low) / (high - low) * (size.y - 2 * pad));
    };
    if (current_x >= x.front() && current_x <= x.back()) {
        const ImVec2 top = point(current_x, high), bottom = point(current_x, low);
        draw->AddLine(top, bottom, IM_COL32(200, 200, 200, 120), 1.0f);
    }
    std::vector<ImVec2> points(x.size());
    for (int pass = 0; pass < 2; ++pass)  // the highlighted series last, on top
        for (int s = 0; s < static_cast<int>(series.size()); ++s) {
            if ((s == highlighted) != (pass == 1)) continue;
            for (std::size_t i = 0; i < x.size(); ++i) points[i] = point(x[i], series[s][i]);
            const ImU32 colour = series_colours[s % 10];
            draw->AddPolyline(points.data(), static_cast<int>(points.size()), colour, ImDrawFlags_None,
                              (s == highlighted ? 3.0f : 1.2f) * font_scale);
        }
    char range[64];
    std::snprintf(range, sizeof range, "%.2f..%.2f", low, high);
    draw->AddText(ImVec2(corner.x + pad, corner.y + pad), IM_COL32(150, 150, 150, 255), range);
    ImGui::EndGroup();
}

std::vector<std::vector<float>> columns_of(const Tensor<float, 2>& table) {
    std::vector<std::vector<float>> columns(table.shape(1), std::vector<float>(table.shape(0)));
    for (std::size_t i = 0; i < table.shape(0); ++i)
        for (std::size_t c = 0; c < table.shape(1); ++c) columns[c][i] = table(i, c);
    return columns;
}

}  // namespace

void DemoApp::draw_pose_charts(float width) {
    ImGui::Spacing();
    if (rotation_sweep_.values.empty() || pose_sweep_stale_) {
        note("sweeping... (waits while the pen or a slider is held)");
        if (rotation_sweep_.values.empty()) return;
    } else {
        char text[128];
        std::snprintf(text, sizeof text, "Sweeps around the pose above (%.0f ms); thick: class %d; the vertical line "
                      "marks the pose.", pose_sweep_ms_, selected_capsule_);
        note(text);
    }
    const ImGuiStyle& style = ImGui::GetStyle();
    const bool two_per_row = width >= 560 * ui_scale_;  // else one under the other, full width
    const float chart_width = std::floor(two_per_row ? (width - style.ItemSpacing.x) / 2 : width);
    const ImVec2 size(chart_width, std::floor(chart_width * (two_per_row ? 0.42f : 0.35f)));
    const int k = selected_capsule_;
    line_chart("10 lengths against rotation (-60..60 deg)", rotation_sweep_.values, columns_of(rotation_sweep_.lengths),
               k, pose_.rotation_degrees, true, size, ui_scale_);
    if (two_per_row) ImGui::SameLine();
    line_chart("10 lengths against scale (0.5..1.5)", scale_sweep_.values, columns_of(scale_sweep_.lengths), k,
               pose_.scale, true, size, ui_scale_);
    char title[64];
    std::snprintf(title, sizeof title, "capsule %d's 16 dimensions against rotation", k);
    line_chart(title, rotation_sweep_.values, columns_of(rotation_sweep_.capsule), -1, pose_.rotation_degrees, false,
               size, ui_scale_);
    if (two_per_row) ImGui::SameLine();
    std::snprintf(title, sizeof title, "capsule %d's 16 dimensions against scale", k);
    line_chart(title, scale_sweep_.values, columns_of(scale_sweep_.capsule), -1, pose_.scale, false, size, ui_scale_);
}

// ---------------------------------------------------------------------------------------------------
// Test hooks

std::string DemoApp::state_json() const {
    nlohmann::json state;
    state["loaded"] = ready();
    state["error"] = !load_error_.empty() ? load_error_ : link_error_;
    state["prediction"] = analysis_.prediction;
    state["lengths"] = analysis_.lengths;
    state["selectedCapsule"] = selected_capsule_;
    state["strokes"] = strokes_.size();
    state["input"] = std::vector<int>(input_.begin(), input_.end());
    state["fragment"] = fragment_;
    state["sweep"] = {{"low", sweep_low_}, {"high", sweep_high_}, {"step", sweep_step_}};
    state["capsuleEdited"] = capsule_edited_;
    state["capsule"] = capsule_;
    state["baseInput"] = std::vector<int>(base_input_.begin(), base_input_.end());
    state["viewTab"] = view_tab_;
    state["pose"] = {{"rotation", pose_.rotation_degrees}, {"scale", pose_.scale}, {"shear", pose_.shear},
                     {"translateX", pose_.translate_x}, {"translateY", pose_.translate_y}, {"refit", pose_refit_}};
    if (routing_.trace.coupling.size() > 0 && routing_iteration_ >= 1) {
        const int r = routing_iteration_ - 1, k = selected_capsule_;
        const auto lengths = xt::view(routing_.trace.lengths, r, xt::all());
        const auto coupling = xt::view(routing_.trace.coupling, r, xt::all(), k);
        const auto attribution = xt::view(routing_.attribution, r, k, xt::all(), xt::all());
        state["routing"] = {{"iteration", routing_iteration_},
                            {"iterations", routing_.trace.iterations()},
                            {"logits", routing_logits_},
                            {"playing", routing_playing_},
                            {"lengths", std::vector<float>(lengths.begin(), lengths.end())},
                            {"couplingMean", xt::mean(coupling)()},
                            {"couplingMax", xt::amax(coupling)()},
                            {"attributionSum", xt::sum(attribution)()}};
    }
    if (pose_sweep_shown_ && !rotation_sweep_.values.empty()) {
        auto sweep_json = [](const PoseSweep& sweep) {
            return nlohmann::json{{"values", sweep.values},
                                  {"lengths", columns_of(sweep.lengths)},  // [class][value]
                                  {"capsule", columns_of(sweep.capsule)},  // [dimension][value]
                                  {"predictions", sweep.predictions}};
        };
        state["poseSweep"] = {{"rotation", sweep_json(rotation_sweep_)}, {"scale", sweep_json(scale_sweep_)},
                              {"ms", pose_sweep_ms_}};
    }
    state["poseSweepShown"] = pose_sweep_shown_;
    state["teach"] = teach_state_json();
    state["linkNote"] = fine_tuned_link_note_;
    // Stale: something on screen waits to be recomputed (a hidden panel's pictures wait for the panel).
    state["stale"] = input_stale_ || analysis_stale_ || slider_image_stale_ ||
                     (sweep_stale_ && view_tab_ == interpolation_tab) ||
                     (routing_pictures_stale_ && view_tab_ == routing_tab) || (pose_sweep_shown_ && pose_sweep_stale_);
    return state.dump();
}

std::string DemoApp::canvas_rect_json() const {
    nlohmann::json rect = {{"x", canvas_min_.x}, {"y", canvas_min_.y}, {"width", canvas_side_}, {"height", canvas_side_}};
    return rect.dump();
}

DemoTimings DemoApp::benchmark(int repeats) {
    DemoTimings timings;
    if (!ready()) return timings;
    repeats = std::clamp(repeats, 1, 1000);
    // A real digit (the gallery's first) unless something is drawn: the work is the same, but the
    // pictures then mean something if anyone looks.
    const DemoImage input = (base_image_ || !strokes_.empty() || gallery_.empty()) ? input_ : gallery_[0].pixels;
    const std::vector<float> offsets = sweep_offsets(default_sweep_range);
    std::vector<double> classify, mask, sweep, routing, posed, rotation;
    const std::vector<float> angles =
        sweep_values(pose_sweep_rotation_low, pose_sweep_rotation_high, pose_sweep_rotation_step);
    AffineTransform rotated;
    rotated.rotation_degrees = 30;
    for (int i = 0; i < repeats; ++i) {
        double start = page_now_ms();
        const DemoAnalysis analysis = engine_->classify(input);
        classify.push_back(page_now_ms() - start);
        start = page_now_ms();
        const Tensor<float, 2> grid = engine_->mask_grid(analysis.capsules);
        mask.push_back(page_now_ms() - start);
        start = page_now_ms();
        const Tensor<float, 3> sweep_grid = engine_->sweep_grid(analysis.capsules, std::max(analysis.prediction, 0), offsets);
        sweep.push_back(page_now_ms() - start);
        // The routing view as update_analysis and update_routing_pictures compute it (classify ran above).
        start = page_now_ms();
        const RoutingView view = engine_->routing();
        const RoutingPictures pictures = routing_pictures(view, input, view.trace.iterations() - 1,
                                                          std::max(analysis.prediction, 0), false);
        routing.push_back(page_now_ms() - start);
        start = page_now_ms();
        const DemoImage posed_input = demo_pose_input(input, rotated, false);
        posed.push_back(page_now_ms() - start);
        start = page_now_ms();
        const PoseSweep rotation_sweep =
            engine_->pose_sweep(input, false, AffineTransform{}, PoseAxis::rotation, angles, std::max(analysis.prediction, 0));
        rotation.push_back(page_now_ms() - start);
        (void)pictures, (void)posed_input, (void)rotation_sweep;
    }
    timings.classify = median(classify);
    timings.mask_grid = median(mask);
    timings.interpolation_grid = median(sweep);
    timings.columns = static_cast<int>(offsets.size());
    timings.routing = median(routing);
    timings.pose_input = median(posed);
    timings.rotation_sweep = median(rotation);
    timings.rotation_angles = static_cast<int>(angles.size());
    // One fine-tuning step as the Teach panel runs it, on 16 gallery digits (4 as the personal set, a
    // quarter of each batch, 12 to mix in, so every step sees the same 16 and the head's cache is warm
    // after the first).
    if (gallery_.size() >= 16) {
        std::vector<TeachExample> personal;
        std::vector<GalleryDigit> mix;
        for (int i = 0; i < 16; ++i) {
            if (i < 4) personal.push_back({gallery_[i].label, gallery_[i].pixels});
            else mix.push_back(gallery_[i]);
        }
        const int steps = std::min(repeats, 5);
        const std::vector<double> head = fine_tune_step_times(
            engine_->model(), personal, mix, teach_fine_tune_options(false, 1 + std::max(steps, 3), 1e-4));
        const std::vector<double> all =
            fine_tune_step_times(engine_->model(), personal, mix, teach_fine_tune_options(true, 1 + std::min(steps, 3), 1e-4));
        timings.finetune_head_cold = head.front();
        timings.finetune_head_step = median(std::vector<double>(head.begin() + 1, head.end()));
        timings.finetune_all_step = median(std::vector<double>(all.begin() + 1, all.end()));
    }
    return timings;
}

}  // namespace capsnet
