// The Teach panel ("learn your handwriting"): the current drawing, labelled, joins a personal set (kept in
// the browser's storage); "Fine-tune" trains the model on it mixed with MNIST training digits
// (demo_finetune.hpp), a slice of work per frame so the page keeps drawing; before / after shows the
// personal examples' predictions, the accuracy on 500 MNIST test digits (what was forgotten) and the mask
// grid of the current drawing through both models.
//
// Phases: idle -> checking_before (the personal set and, unless known, the test digits classified by the
// model about to be tuned) -> training -> checking_after (the same by the tuned model, now engine_) -> idle.
// The personal set cannot change while a phase runs, so the before / after rows stay comparable.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "capsnet/safetensors.hpp"
#include "capsnet/weights.hpp"
#include "demo_app.hpp"
#include "demo_page.hpp"
#include "demo_widgets.hpp"

namespace capsnet {

namespace {

constexpr int thumbnail_columns = 8;  // the personal set's atlas
constexpr int check_batch = 2;        // digits per classification pass: ~35 ms in Chromium, about a frame's budget
const ImVec4 good_colour(0.45f, 0.85f, 0.45f, 1), bad_colour(1, 0.45f, 0.45f, 1);

int count_correct(const std::vector<int>& labels, const std::vector<int>& predictions) {
    int correct = 0;
    for (std::size_t i = 0; i < labels.size() && i < predictions.size(); ++i) correct += labels[i] == predictions[i];
    return correct;
}

std::vector<GalleryDigit> as_digits(const std::vector<TeachExample>& examples) {
    std::vector<GalleryDigit> digits;
    for (const TeachExample& example : examples) digits.push_back({example.label, example.pixels});
    return digits;
}

bool blank(const DemoImage& image) {
    return std::all_of(image.begin(), image.end(), [](std::uint8_t v) { return v == 0; });
}

}  // namespace

FineTuneOptions teach_fine_tune_options(bool all_layers, int steps, double learning_rate) {
    FineTuneOptions options;
    options.layers = trainable_layers_from_name(all_layers ? "all" : "head");
    options.steps = steps;
    options.learning_rate = learning_rate;
    options.micro_batch = all_layers ? 1 : 2;
    return options;
}

double teach_default_learning_rate(bool all_layers) { return all_layers ? 5e-5 : FineTuneOptions{}.learning_rate; }

// ---------------------------------------------------------------------------------------------------
// From the page

void DemoApp::teach_digits_loaded(std::vector<GalleryDigit> mix, std::vector<GalleryDigit> check) {
    teach_mix_ = std::move(mix);
    teach_check_ = std::move(check);
    check_accuracy_ = shipped_check_accuracy_ = -1;
}

void DemoApp::personal_loaded(std::vector<GalleryDigit> examples) {
    if (examples.size() > static_cast<std::size_t>(teach_max_examples)) examples.resize(teach_max_examples);
    personal_.clear();
    for (const GalleryDigit& digit : examples) personal_.push_back({digit.label, digit.pixels});
    personal_predictions_stale_ = !personal_.empty();
    store_personal();
}

void DemoApp::set_input_image(const DemoImage& image) {
    strokes_.clear();
    drawing_ = false;
    capsule_edited_ = false;
    link_error_.clear();
    fine_tuned_link_note_.clear();
    set_input_from_image(image);
}

// ---------------------------------------------------------------------------------------------------
// The buttons

std::string DemoApp::teach_add(int label) {
    teach_message_.clear();
    if (!ready()) teach_message_ = "the model has not loaded yet";
    else if (teach_phase_ != TeachPhase::idle) teach_message_ = "wait until the fine-tuning has finished";
    else if (label < 0 || label >= engine_->classes()) teach_message_ = "a label is a digit 0-9";
    else if (personal_.size() >= static_cast<std::size_t>(teach_max_examples))
        teach_message_ = "the set is full (" + std::to_string(teach_max_examples) + " examples): remove some first";
    else if (input_stale_ || analysis_stale_ || blank(input_)) teach_message_ = "draw a digit first";
    if (!teach_message_.empty()) return teach_message_;
    personal_.push_back({label, input_});
    // The new example's prediction is the current input's, already computed; a classification of the
    // set under way starts again with it.
    if (!personal_predictions_stale_) personal_predictions_.push_back(analysis_.prediction);
    else checker_.reset();
    store_personal();
    return "";
}

std::string DemoApp::teach_remove(int index) {
    teach_message_.clear();
    if (teach_phase_ != TeachPhase::idle) return teach_message_ = "wait until the fine-tuning has finished";
    if (index < 0 || index >= static_cast<int>(personal_.size())) return teach_message_ = "no such example";
    personal_.erase(personal_.begin() + index);
    if (!personal_predictions_stale_) personal_predictions_.erase(personal_predictions_.begin() + index);
    else checker_.reset();
    store_personal();
    return "";
}

std::string DemoApp::teach_clear() {
    teach_message_.clear();
    if (teach_phase_ != TeachPhase::idle) return teach_message_ = "wait until the fine-tuning has finished";
    personal_.clear();
    personal_predictions_.clear();
    personal_predictions_stale_ = false;
    checker_.reset();
    store_personal();
    return "";
}

void DemoApp::store_personal() {
    page_store_personal(gallery_serialize(as_digits(personal_)));
    if (personal_.empty()) return;
    std::vector<float> images;
    for (const TeachExample& example : personal_) {
        const Tensor<float, 2> values = demo_image_floats(example.pixels);
        images.insert(images.end(), values.begin(), values.end());
    }
    const int count = static_cast<int>(personal_.size());
    const int rows = (count + thumbnail_columns - 1) / thumbnail_columns;
    textures_.personal.upload(atlas_tiles(images.data(), count, thumbnail_columns, demo_image_side).data(),
                              thumbnail_columns * demo_image_side, rows * demo_image_side);
}

std::vector<GalleryDigit> DemoApp::check_digits() const {
    std::vector<GalleryDigit> digits = as_digits(personal_);
    if (check_accuracy_ < 0) digits.insert(digits.end(), teach_check_.begin(), teach_check_.end());
    return digits;
}

std::string DemoApp::start_fine_tune(bool all_layers, int steps, double learning_rate) {
    teach_message_.clear();
    if (!ready()) teach_message_ = "the model has not loaded yet";
    else if (teach_phase_ != TeachPhase::idle) teach_message_ = "a fine-tuning is already running";
    else if (personal_.empty()) teach_message_ = "add some examples first: draw a digit and press its label";
    else if (teach_mix_.empty()) teach_message_ = "the MNIST training digits did not load, so the model would forget";
    else if (steps < 1 || steps > 1000 || !(learning_rate > 0 && learning_rate <= 0.01))
        teach_message_ = "steps must be 1-1000 and the learning rate in (0, 0.01]";
    if (!teach_message_.empty()) return teach_message_;
    teach_all_layers_ = all_layers;
    teach_steps_ = steps;
    teach_learning_rate_ = static_cast<float>(learning_rate);
    before_engine_ = std::make_unique<DemoEngine>(engine_->model());
    before_stale_ = true;
    teach_result_ = TeachComparison{};
    for (const TeachExample& example : personal_) teach_result_.labels.push_back(example.label);
    teach_result_.steps_planned = steps;
    teach_result_.all_layers = all_layers;
    checker_ = std::make_unique<ChunkedClassifier>(before_engine_->model(), check_digits(), check_batch);
    teach_phase_ = TeachPhase::checking_before;
    return "";
}

void DemoApp::stop_fine_tune() {
    if (teach_phase_ == TeachPhase::training && tuner_->steps_done() > 0) finish_training();
    else if (teach_phase_ == TeachPhase::checking_before || teach_phase_ == TeachPhase::training) {
        tuner_.reset();
        checker_.reset();
        teach_phase_ = TeachPhase::idle;
        if (!fine_tuned_) before_engine_.reset();
    }
}

std::string DemoApp::reset_model() {
    teach_message_.clear();
    if (!ready()) return teach_message_ = "the model has not loaded yet";
    if (teach_phase_ != TeachPhase::idle) return teach_message_ = "stop the fine-tuning first";
    if (!fine_tuned_) return "";
    engine_ = std::make_unique<DemoEngine>(*shipped_model_);
    fine_tuned_ = false;
    before_engine_.reset();
    teach_result_ = TeachComparison{};
    check_accuracy_ = shipped_check_accuracy_;
    personal_predictions_stale_ = !personal_.empty();
    checker_.reset();
    analysis_stale_ = true;
    return "";
}

std::string DemoApp::download_model() {
    teach_message_.clear();
    if (!ready()) return teach_message_ = "the model has not loaded yet";
    const std::vector<std::uint8_t> bytes = safetensors_serialize(model_to_safetensors(engine_->model()));
    page_download(model_id_ + (fine_tuned_ ? "-fine-tuned" : "") + ".safetensors", bytes, "application/octet-stream");
    return "";
}

// ---------------------------------------------------------------------------------------------------
// The work per frame

void DemoApp::advance_teach(double budget_ms) {
    switch (teach_phase_) {
        case TeachPhase::idle:
            if (!personal_predictions_stale_) return;
            if (!checker_) checker_ = std::make_unique<ChunkedClassifier>(engine_->model(), as_digits(personal_), check_batch);
            if (checker_->advance(budget_ms)) {
                personal_predictions_ = checker_->predictions();
                personal_predictions_stale_ = false;
                checker_.reset();
            }
            return;
        case TeachPhase::checking_before:
        case TeachPhase::checking_after: {
            if (!checker_->advance(budget_ms)) return;
            const std::vector<int>& predictions = checker_->predictions();
            const std::size_t personal = personal_.size();
            if (predictions.size() > personal) {  // the check set was classified too
                check_accuracy_ = static_cast<double>(checker_->correct(personal)) / teach_check_.size();
                if (!fine_tuned_) shipped_check_accuracy_ = check_accuracy_;
            }
            const std::vector<int> personal_predictions(predictions.begin(), predictions.begin() + personal);
            checker_.reset();
            if (teach_phase_ == TeachPhase::checking_before) {
                teach_result_.personal_before = personal_predictions;
                teach_result_.mnist_before = check_accuracy_;
                tuner_ = std::make_unique<FineTuner>(before_engine_->model(), personal_, teach_mix_,
                                                     teach_fine_tune_options(teach_all_layers_, teach_steps_,
                                                                             teach_learning_rate_));
                teach_phase_ = TeachPhase::training;
            } else {
                teach_result_.personal_after = personal_predictions;
                teach_result_.mnist_after = check_accuracy_;
                personal_predictions_ = personal_predictions;
                personal_predictions_stale_ = false;
                teach_phase_ = TeachPhase::idle;
            }
            return;
        }
        case TeachPhase::training:
            if (tuner_->advance(budget_ms)) finish_training();
            return;
    }
}

void DemoApp::finish_training() {
    teach_result_.shown = true;
    teach_result_.steps = tuner_->steps_done();
    teach_result_.seconds = tuner_->seconds_per_step() * tuner_->steps_done();
    teach_result_.loss = tuner_->last_loss();
    engine_ = std::make_unique<DemoEngine>(tuner_->model());
    tuner_.reset();
    fine_tuned_ = true;
    check_accuracy_ = -1;
    analysis_stale_ = before_stale_ = true;
    checker_ = std::make_unique<ChunkedClassifier>(engine_->model(), check_digits(), check_batch);
    teach_phase_ = TeachPhase::checking_after;
}

void DemoApp::update_before_analysis() {
    before_analysis_ = before_engine_->classify(input_);
    const Tensor<float, 2> grid = before_engine_->mask_grid(before_analysis_.capsules);
    const int classes = before_engine_->classes();
    textures_.before_mask_grid.upload(atlas_tiles(grid.data(), classes, classes, demo_image_side).data(),
                                      classes * demo_image_side, demo_image_side);
    before_stale_ = false;
}

// ---------------------------------------------------------------------------------------------------
// The panel

void DemoApp::draw_teach(float width) {
    ImGui::TextUnformatted("Teach the model your handwriting");
    note("Draw a digit, then press the digit it is: it joins your set (kept in this browser). Fine-tune trains "
         "the model on your set mixed with MNIST training digits, so it learns your style without forgetting "
         "MNIST; the model stays in this page (Download saves it).");
    ImGui::Spacing();
    const bool idle = teach_phase_ == TeachPhase::idle;
    ImGui::TextUnformatted("This drawing is a");
    for (int digit = 0; digit < engine_->classes(); ++digit) {
        ImGui::SameLine();
        ImGui::PushID(digit);
        char label[4];
        std::snprintf(label, sizeof label, "%d", digit);
        if (!idle || blank(input_)) ImGui::BeginDisabled();
        if (ImGui::Button(label, ImVec2(ImGui::GetFrameHeight(), 0))) teach_add(digit);
        if (!idle || blank(input_)) ImGui::EndDisabled();
        ImGui::PopID();
    }
    if (!teach_message_.empty()) ImGui::TextColored(error_colour, "%s", teach_message_.c_str());
    draw_teach_examples(width);
    ImGui::Separator();
    draw_teach_fine_tune();
    if (teach_result_.shown || fine_tuned_) {
        ImGui::Separator();
        draw_teach_comparison(width);
    }
}

void DemoApp::draw_teach_examples(float width) {
    const int count = static_cast<int>(personal_.size());
    ImGui::Text("Your examples: %d of %d", count, teach_max_examples);
    if (count == 0) return;
    const bool known = !personal_predictions_stale_ && personal_predictions_.size() == personal_.size();
    if (known) {
        std::vector<int> labels;
        for (const TeachExample& example : personal_) labels.push_back(example.label);
        ImGui::SameLine();
        ImGui::TextDisabled("(%d recognised by the %s model)", count_correct(labels, personal_predictions_),
                            fine_tuned_ ? "fine-tuned" : "shipped");
    }
    const bool idle = teach_phase_ == TeachPhase::idle;
    const ImGuiStyle& style = ImGui::GetStyle();
    const float cell = std::floor(std::min((width - (thumbnail_columns - 1) * style.ItemSpacing.x) / thumbnail_columns,
                                           52 * ui_scale_));
    const int rows = (count + thumbnail_columns - 1) / thumbnail_columns;
    int remove = -1;
    for (int i = 0; i < count; ++i) {
        if (i % thumbnail_columns) ImGui::SameLine();
        ImGui::BeginGroup();
        ImGui::PushID(5000 + i);
        const ImVec2 uv0(static_cast<float>(i % thumbnail_columns) / thumbnail_columns,
                         static_cast<float>(i / thumbnail_columns) / rows);
        const ImVec2 uv1(static_cast<float>(i % thumbnail_columns + 1) / thumbnail_columns,
                         static_cast<float>(i / thumbnail_columns + 1) / rows);
        if (image_button("example", textures_.personal, ImVec2(cell, cell), uv0, uv1, false))
            set_input_image(personal_[i].pixels);
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("click: show it on the canvas; x: remove it");
        if (known) {
            const int predicted = personal_predictions_[i];
            ImGui::TextColored(predicted == personal_[i].label ? good_colour : bad_colour, "%d:%d", personal_[i].label,
                               predicted);
        } else {
            ImGui::Text("%d", personal_[i].label);
        }
        ImGui::SameLine();
        if (!idle) ImGui::BeginDisabled();
        if (ImGui::SmallButton("x")) remove = i;
        if (!idle) ImGui::EndDisabled();
        ImGui::PopID();
        ImGui::EndGroup();
    }
    if (remove >= 0) teach_remove(remove);
    note("Under each: its label : the model's answer (green when they agree).");
    if (!idle) ImGui::BeginDisabled();
    if (ImGui::Button("Remove all")) teach_clear();
    if (!idle) ImGui::EndDisabled();
}

void DemoApp::draw_teach_fine_tune() {
    const bool idle = teach_phase_ == TeachPhase::idle;
    if (!idle) ImGui::BeginDisabled();
    int layers = teach_all_layers_ ? 1 : 0;
    ImGui::TextUnformatted("Train");
    ImGui::SameLine();
    // A learning rate left at one choice's default follows the other choice's; a chosen one stays.
    const auto choose_layers = [&](bool all_layers) {
        if (teach_learning_rate_ == static_cast<float>(teach_default_learning_rate(teach_all_layers_)))
            teach_learning_rate_ = static_cast<float>(teach_default_learning_rate(all_layers));
        teach_all_layers_ = all_layers;
    };
    if (ImGui::RadioButton("digit capsules + decoder (fast)", &layers, 0) && teach_all_layers_) choose_layers(false);
    ImGui::SameLine();
    if (ImGui::RadioButton("every layer", &layers, 1) && !teach_all_layers_) choose_layers(true);
    ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x * 0.45f, 220 * ui_scale_));
    ImGui::SliderInt("steps of 16 images", &teach_steps_, 10, 200);
    ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x * 0.45f, 220 * ui_scale_));
    ImGui::SliderFloat("learning rate", &teach_learning_rate_, 1e-5f, 1e-3f, "%.5f", ImGuiSliderFlags_Logarithmic);
    if (!idle) ImGui::EndDisabled();

    const bool can_start = idle && !personal_.empty() && !teach_mix_.empty();
    if (!can_start) ImGui::BeginDisabled();
    if (ImGui::Button("Fine-tune")) start_fine_tune(teach_all_layers_, teach_steps_, teach_learning_rate_);
    if (!can_start) ImGui::EndDisabled();
    ImGui::SameLine();
    if (idle) ImGui::BeginDisabled();
    if (ImGui::Button("Stop")) stop_fine_tune();
    if (idle) ImGui::EndDisabled();
    ImGui::SameLine();
    const bool can_reset = idle && fine_tuned_;
    if (!can_reset) ImGui::BeginDisabled();
    if (ImGui::Button("Reset to the shipped model")) reset_model();
    if (!can_reset) ImGui::EndDisabled();
    ImGui::SameLine();
    if (ImGui::Button("Download model")) download_model();
    if (teach_mix_.empty()) note("(the MNIST training digits did not load: fine-tuning is off)");

    const float bar = std::min(ImGui::GetContentRegionAvail().x, 420 * ui_scale_);
    char text[160];
    switch (teach_phase_) {
        case TeachPhase::idle:
            if (fine_tuned_)
                note("This page now uses your fine-tuned model everywhere; share links say so (they cannot carry it).");
            break;
        case TeachPhase::checking_before:
        case TeachPhase::checking_after:
            std::snprintf(text, sizeof text, "%s: classifying your examples%s... %.0f%%",
                          teach_phase_ == TeachPhase::checking_before ? "before" : "after",
                          check_accuracy_ < 0 ? " and 500 MNIST test digits" : "", 100 * checker_->progress());
            ImGui::ProgressBar(static_cast<float>(checker_->progress()), ImVec2(bar, 0), "");
            ImGui::TextUnformatted(text);
            break;
        case TeachPhase::training: {
            const double per_step = tuner_->seconds_per_step();
            const int left = teach_steps_ - tuner_->steps_done();
            std::snprintf(text, sizeof text, "step %d of %d", tuner_->steps_done(), teach_steps_);
            ImGui::ProgressBar(static_cast<float>(tuner_->progress()), ImVec2(bar, 0), text);
            if (tuner_->last_loss() >= 0)
                std::snprintf(text, sizeof text, "loss %.4f, %.0f ms a step, ETA %.0f s", tuner_->last_loss(),
                              1000 * per_step, per_step * left);
            else
                std::snprintf(text, sizeof text, "the first step (it computes what the frozen layers give)...");
            ImGui::TextUnformatted(text);
            break;
        }
    }
}

void DemoApp::draw_teach_comparison(float width) {
    const TeachComparison& r = teach_result_;
    if (r.shown) {
        ImGui::Text("Fine-tuned: %d of %d steps (%s), %.1f s, last loss %.4f", r.steps, r.steps_planned,
                    r.all_layers ? "every layer" : "digit capsules + decoder", r.seconds, r.loss);
        const auto percent = [](double accuracy) {
            if (accuracy < 0) return std::string("...");
            char text[16];
            std::snprintf(text, sizeof text, "%.1f%%", 100 * accuracy);
            return std::string(text);
        };
        const auto of = [&](const std::vector<int>& predictions) {
            if (predictions.size() != r.labels.size()) return std::string("...");
            return std::to_string(count_correct(r.labels, predictions)) + " of " + std::to_string(r.labels.size());
        };
        if (ImGui::BeginTable("before-after", 3, ImGuiTableFlags_Borders | ImGuiTableFlags_SizingFixedFit)) {
            ImGui::TableSetupColumn("");
            ImGui::TableSetupColumn("before");
            ImGui::TableSetupColumn("after");
            ImGui::TableHeadersRow();
            ImGui::TableNextColumn();
            ImGui::TextUnformatted("your examples right");
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(of(r.personal_before).c_str());
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(of(r.personal_after).c_str());
            ImGui::TableNextColumn();
            ImGui::Text("MNIST test (%d digits)", static_cast<int>(teach_check_.size()));
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(percent(r.mnist_before).c_str());
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(percent(r.mnist_after).c_str());
            ImGui::EndTable();
        }
    }
    if (!before_engine_ || before_stale_ || analysis_.prediction < 0 || before_analysis_.prediction < 0) return;
    // The current drawing's mask grid through both models: what each capsule reconstructs.
    ImGui::Text("Your drawing, before: %d (%.2f)   after: %d (%.2f)", before_analysis_.prediction,
                before_analysis_.lengths[before_analysis_.prediction], analysis_.prediction,
                analysis_.lengths[analysis_.prediction]);
    const int classes = engine_->classes();
    const float cell = std::floor(std::min((width - 90 * ui_scale_) / classes, 48 * ui_scale_));
    const Texture* rows[2] = {&textures_.before_mask_grid, &textures_.mask_grid};
    const char* names[2] = {"before", "after"};
    for (int row = 0; row < 2; ++row) {
        ImGui::TextUnformatted(names[row]);
        ImGui::SameLine(60 * ui_scale_);
        ImGui::Image(rows[row]->id(), ImVec2(cell * classes, cell));
    }
}

nlohmann::json DemoApp::teach_state_json() const {
    const char* phases[] = {"idle", "checking_before", "training", "checking_after"};
    nlohmann::json teach;
    std::vector<int> labels;
    for (const TeachExample& example : personal_) labels.push_back(example.label);
    teach["labels"] = labels;
    teach["predictions"] = personal_predictions_stale_ ? std::vector<int>{} : personal_predictions_;
    teach["phase"] = phases[static_cast<int>(teach_phase_)];
    teach["fineTuned"] = fine_tuned_;
    teach["mixDigits"] = teach_mix_.size();
    teach["checkDigits"] = teach_check_.size();
    teach["message"] = teach_message_;
    teach["checkAccuracy"] = check_accuracy_;
    if (tuner_) {
        teach["stepsDone"] = tuner_->steps_done();
        teach["progress"] = tuner_->progress();
        teach["loss"] = tuner_->last_loss();
    }
    const TeachComparison& r = teach_result_;
    if (r.shown) {
        teach["result"] = {{"labels", r.labels},
                           {"personalBefore", r.personal_before},
                           {"personalAfter", r.personal_after},
                           {"mnistBefore", r.mnist_before},
                           {"mnistAfter", r.mnist_after},
                           {"steps", r.steps},
                           {"allLayers", r.all_layers},
                           {"seconds", r.seconds},
                           {"loss", r.loss}};
    }
    if (before_engine_ && !before_stale_) teach["beforePrediction"] = before_analysis_.prediction;
    return teach;
}

}  // namespace capsnet
