// The demo's interface. Compute is lazy: an input change marks the analysis stale, the analysis marks the
// sweep and the slider picture stale, and each is recomputed once at the next frame, so a frame never does
// work nobody will see. While a stroke is being drawn only the classification and the mask grid follow the
// pen (~20 ms); the interpolation grid (176 decoder passes) catches up when the pen lifts.
#include "demo_app.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xoperation.hpp>

#include "capsnet/visualize.hpp"
#include "demo_page.hpp"
#include "demo_png.hpp"

namespace capsnet {

namespace {

// The drawing is rasterised at 5x MNIST's size before the MNIST-style crop, scale and centring: enough
// resolution for the 20x20 box's antialiasing, cheap enough to redo on every pen move.
constexpr int raster_side = 140;
// The link codec's limit on interpolation columns: a hostile link cannot ask for a huge grid.
constexpr int max_sweep_columns = share_link_max_sweep_columns;

const ImU32 highlight_colour = IM_COL32(255, 196, 0, 255);

float median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values.empty() ? 0.0f : static_cast<float>(values[values.size() / 2]);
}

// [28, 28] in [0, 1], as the network reads the bytes.
Tensor<float, 2> image_to_floats(const DemoImage& image) {
    Tensor<float, 2> values(std::array<std::size_t, 2>{demo_image_side, demo_image_side});
    std::transform(image.begin(), image.end(), values.begin(), [](std::uint8_t v) { return v / 255.0f; });
    return values;
}

// A picture `size` wide and tall that reports clicks; returns true when clicked.
bool image_button(const char* id, const GrayTexture& texture, ImVec2 size, ImVec2 uv0, ImVec2 uv1, bool framed) {
    const ImVec2 corner = ImGui::GetCursorScreenPos();
    const bool clicked = ImGui::InvisibleButton(id, size);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    draw->AddImage(texture.id(), corner, ImVec2(corner.x + size.x, corner.y + size.y), uv0, uv1);
    if (framed) draw->AddRect(corner, ImVec2(corner.x + size.x, corner.y + size.y), highlight_colour, 0, 0, 2.5f);
    else if (ImGui::IsItemHovered())
        draw->AddRect(corner, ImVec2(corner.x + size.x, corner.y + size.y), IM_COL32(160, 160, 160, 255));
    return clicked;
}

}  // namespace

DemoApp::DemoApp(float ui_scale) : ui_scale_(ui_scale), sweep_offsets_(sweep_offsets(-0.25f, 0.25f, 0.05f)) {}

// ---------------------------------------------------------------------------------------------------
// Inputs from the page

void DemoApp::model_loaded(std::unique_ptr<DemoEngine> engine, std::string model_id) {
    engine_ = std::move(engine);
    model_id_ = std::move(model_id);
    load_error_.clear();
    capsule_.assign(engine_->capsule_dims(), 0.0f);
    input_stale_ = true;
}

void DemoApp::model_failed(std::string message) { load_error_ = std::move(message); }

void DemoApp::gallery_loaded(std::vector<GalleryDigit> digits) {
    gallery_ = std::move(digits);
    std::vector<float> images;
    for (const GalleryDigit& digit : gallery_) {
        const Tensor<float, 2> values = image_to_floats(digit.pixels);
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
        strokes_.clear();
        drawing_ = false;
        set_input_from_image(view.input);
        selected_capsule_ = view.selected_capsule;
        selection_follows_prediction_ = false;
        sweep_low_ = view.sweep_low, sweep_high_ = view.sweep_high, sweep_step_ = view.sweep_step;
        sweep_offsets_ = offsets;
        range_error_.clear();
        capsule_edited_ = view.capsule_edited;
        if (capsule_edited_) capsule_.assign(view.capsule.begin(), view.capsule.end());
        update_input();
        update_analysis();
    } catch (const std::exception& error) {
        // A bad link must never leave half a view behind: clear everything and say why.
        clear();
        selected_capsule_ = 0;
        sweep_low_ = -0.25f, sweep_high_ = 0.25f, sweep_step_ = 0.05f;
        sweep_offsets_ = sweep_offsets(sweep_low_, sweep_high_, sweep_step_);
        link_error_ = std::string(error.what()) + ". Showing an empty canvas.";
    }
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
    sweep_stale_ = slider_image_stale_ = true;
}

void DemoApp::set_input_from_image(const DemoImage& image) {
    base_image_ = image;
    const Tensor<float, 2> values = image_to_floats(image);
    textures_.base.upload(values.data(), demo_image_side, demo_image_side, true);
    input_stale_ = true;
}

// ---------------------------------------------------------------------------------------------------
// Lazy recomputation

void DemoApp::update_input() {
    if (strokes_.empty()) {
        if (base_image_) input_ = *base_image_;
        else input_.fill(0);
    } else {
        Tensor<float, 2> ink = drawing_rasterize(strokes_, raster_side);
        if (base_image_) ink = xt::maximum(ink, drawing_upscale(image_to_floats(*base_image_), raster_side));
        const std::vector<std::uint8_t> bytes = drawing_to_bytes(drawing_to_mnist(ink));
        std::copy(bytes.begin(), bytes.end(), input_.begin());
    }
    textures_.input.upload_bytes(input_.data(), demo_image_side, demo_image_side);
    input_stale_ = false;
    analysis_stale_ = true;
}

void DemoApp::update_analysis() {
    analysis_ = engine_->classify(input_);
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

void DemoApp::update_slider_reconstruction() {
    slider_image_ = engine_->reconstruct(capsule_, selected_capsule_);
    textures_.slider.upload(slider_image_.data(), demo_image_side, demo_image_side);
    slider_image_stale_ = false;
}

ShareView DemoApp::current_view() const {
    ShareView view;
    view.model_id = model_id_;
    view.input = input_;
    view.selected_capsule = selected_capsule_;
    view.sweep_low = sweep_low_, view.sweep_high = sweep_high_, view.sweep_step = sweep_step_;
    view.capsule_edited = capsule_edited_;
    if (capsule_edited_) std::copy_n(capsule_.begin(), std::min<std::size_t>(capsule_.size(), 16), view.capsule.begin());
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
        if (sweep_stale_ && !drawing_) update_sweep();
        if (slider_image_stale_) update_slider_reconstruction();
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
    if (!notice_.empty() && page_now_ms() < notice_until_) ImGui::TextUnformatted(notice_.c_str());
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
    ImGui::BeginChild("interpolate", ImVec2(0, inner_height));
    const float available = ImGui::GetContentRegionAvail().x;
    const int columns = static_cast<int>(sweep_offsets_.size());
    const float cell = std::min((available - 4 * ui_scale_ * 10) / columns, inner_height * 0.55f / 16);
    draw_interpolation(cell);
    draw_sliders(std::min(inner_height * 0.18f, 120 * ui_scale_));
    ImGui::EndChild();
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
    if (ImGui::BeginTabItem("Interpolate")) {
        const int columns = static_cast<int>(sweep_offsets_.size());
        draw_interpolation(std::min((available - 40 * ui_scale_) / columns, height * 0.45f / 16));
        draw_sliders(std::min(available * 0.3f, 110 * ui_scale_));
        ImGui::EndTabItem();
    }
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
        notice_ = "Link copied (" + std::to_string(fragment_.size()) + " characters).";
        notice_until_ = page_now_ms() + 3000;
    }
    ImGui::EndGroup();
    ImGui::SameLine();
    draw_input_preview(preview);
}

void DemoApp::draw_input_preview(float side) {
    ImGui::BeginGroup();
    if (!textures_.input.empty()) ImGui::Image(textures_.input.id(), ImVec2(side, side));
    ImGui::TextDisabled("28x28 input");
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
    }
}

void DemoApp::draw_mask_grid(float cell) {
    ImGui::TextUnformatted("Mask grid");
    ImGui::TextDisabled("the input decoded through each\ncapsule alone; click to select");
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
    if (!range_error_.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.45f, 1), "range: %s", range_error_.c_str());
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
    state["stale"] = input_stale_ || analysis_stale_ || sweep_stale_ || slider_image_stale_;
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
    const std::vector<float> offsets = sweep_offsets(-0.25f, 0.25f, 0.05f);
    std::vector<double> classify, mask, sweep;
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
    }
    timings.classify = median(classify);
    timings.mask_grid = median(mask);
    timings.interpolation_grid = median(sweep);
    timings.columns = static_cast<int>(offsets.size());
    return timings;
}

}  // namespace capsnet
