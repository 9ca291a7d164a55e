// The functions web/demo.js calls (exported with EMSCRIPTEN_KEEPALIVE): hand over the model and the
// gallery, the Teach panel's digits and stored examples, open a share fragment, the Teach panel's buttons, and the test hooks behind window.capsnetDemo. Strings returned to
// JavaScript live in one static buffer, valid until the next call.
#include <emscripten.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capsnet/gemm_parallel.hpp"
#include "demo_app.hpp"

capsnet::DemoApp* demo_app_instance();

namespace {

std::string returned;

const char* give(std::string text) {
    returned = std::move(text);
    return returned.c_str();
}

}  // namespace

extern "C" {

// Returns "" on success, else why the model could not be used (also shown in the UI).
EMSCRIPTEN_KEEPALIVE const char* demo_load_model(const std::uint8_t* data, int size, const char* model_id) {
    capsnet::DemoApp* app = demo_app_instance();
    if (!app) return give("the app has not started");
    try {
        const std::vector<std::uint8_t> bytes(data, data + size);
        const std::string id = model_id;
        app->model_loaded(std::make_unique<capsnet::DemoEngine>(bytes, id + ".safetensors"), id);
        return give("");
    } catch (const std::exception& error) {
        app->model_failed(error.what());
        return give(error.what());
    }
}

EMSCRIPTEN_KEEPALIVE void demo_model_failed(const char* message) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->model_failed(message);
}

EMSCRIPTEN_KEEPALIVE void demo_loading_progress(float fraction) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->loading_progress(fraction);
}

EMSCRIPTEN_KEEPALIVE const char* demo_load_gallery(const std::uint8_t* data, int size) {
    capsnet::DemoApp* app = demo_app_instance();
    if (!app) return give("the app has not started");
    try {
        app->gallery_loaded(capsnet::gallery_parse(std::vector<std::uint8_t>(data, data + size)));
        return give("");
    } catch (const std::exception& error) {
        return give(error.what());
    }
}

// The Teach panel's MNIST digits: the training digits to mix in and the test digits to check (both
// gallery files). Returns "" or what is wrong with them.
EMSCRIPTEN_KEEPALIVE const char* demo_load_teach_digits(const std::uint8_t* mix, int mix_size, const std::uint8_t* check,
                                                        int check_size) {
    capsnet::DemoApp* app = demo_app_instance();
    if (!app) return give("the app has not started");
    try {
        app->teach_digits_loaded(capsnet::gallery_parse(std::vector<std::uint8_t>(mix, mix + mix_size)),
                                 capsnet::gallery_parse(std::vector<std::uint8_t>(check, check + check_size)));
        return give("");
    } catch (const std::exception& error) {
        return give(error.what());
    }
}

// The personal set the browser's storage kept. Returns "" or why it could not be read.
EMSCRIPTEN_KEEPALIVE const char* demo_load_personal(const std::uint8_t* data, int size) {
    capsnet::DemoApp* app = demo_app_instance();
    if (!app) return give("the app has not started");
    try {
        app->personal_loaded(capsnet::gallery_parse(std::vector<std::uint8_t>(data, data + size)));
        return give("");
    } catch (const std::exception& error) {
        return give(error.what());
    }
}

EMSCRIPTEN_KEEPALIVE const char* demo_teach_add(int label) {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->teach_add(label) : "the app has not started");
}

EMSCRIPTEN_KEEPALIVE const char* demo_teach_remove(int index) {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->teach_remove(index) : "the app has not started");
}

EMSCRIPTEN_KEEPALIVE const char* demo_teach_clear() {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->teach_clear() : "the app has not started");
}

// learning_rate 0: the panel's default for the layers chosen (teach_default_learning_rate).
EMSCRIPTEN_KEEPALIVE const char* demo_fine_tune(int all_layers, int steps, double learning_rate) {
    capsnet::DemoApp* app = demo_app_instance();
    if (learning_rate == 0) learning_rate = capsnet::teach_default_learning_rate(all_layers != 0);
    return give(app ? app->start_fine_tune(all_layers != 0, steps, learning_rate) : "the app has not started");
}

EMSCRIPTEN_KEEPALIVE void demo_stop_fine_tune() {
    if (capsnet::DemoApp* app = demo_app_instance()) app->stop_fine_tune();
}

EMSCRIPTEN_KEEPALIVE const char* demo_reset_model() {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->reset_model() : "the app has not started");
}

EMSCRIPTEN_KEEPALIVE const char* demo_download_model() {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->download_model() : "the app has not started");
}

// A test hook: the drawing becomes these 784 bytes, as a gallery click makes it.
EMSCRIPTEN_KEEPALIVE void demo_set_input_image(const std::uint8_t* pixels) {
    capsnet::DemoApp* app = demo_app_instance();
    if (!app) return;
    capsnet::DemoImage image;
    std::copy_n(pixels, image.size(), image.begin());
    app->set_input_image(image);
}

EMSCRIPTEN_KEEPALIVE void demo_open_fragment(const char* fragment) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->open_fragment(fragment);
}

EMSCRIPTEN_KEEPALIVE const char* demo_state_json() {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->state_json() : "{}");
}

EMSCRIPTEN_KEEPALIVE const char* demo_canvas_rect_json() {
    capsnet::DemoApp* app = demo_app_instance();
    return give(app ? app->canvas_rect_json() : "{}");
}

EMSCRIPTEN_KEEPALIVE void demo_set_pen_width(float fraction) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->set_pen_width(fraction);
}

EMSCRIPTEN_KEEPALIVE void demo_clear() {
    if (capsnet::DemoApp* app = demo_app_instance()) app->clear();
}

EMSCRIPTEN_KEEPALIVE void demo_select_capsule(int digit) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->select_capsule(digit);
}

EMSCRIPTEN_KEEPALIVE void demo_set_view_tab(int tab) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->set_view_tab(tab);
}

EMSCRIPTEN_KEEPALIVE void demo_set_routing(int iteration, int logits) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->set_routing(iteration, logits != 0);
}

EMSCRIPTEN_KEEPALIVE void demo_play_routing() {
    if (capsnet::DemoApp* app = demo_app_instance()) app->play_routing();
}

EMSCRIPTEN_KEEPALIVE void demo_set_pose(float rotation_degrees, float scale, float shear, float translate_x,
                                        float translate_y, int refit) {
    if (capsnet::DemoApp* app = demo_app_instance())
        app->set_pose({rotation_degrees, scale, shear, translate_x, translate_y}, refit != 0);
}

EMSCRIPTEN_KEEPALIVE void demo_show_pose_sweep(int on) {
    if (capsnet::DemoApp* app = demo_app_instance()) app->show_pose_sweep(on != 0);
}

EMSCRIPTEN_KEEPALIVE void demo_download_png() {
    if (capsnet::DemoApp* app = demo_app_instance()) app->download_interpolation_png();
}

EMSCRIPTEN_KEEPALIVE double demo_frame_count() {
    capsnet::DemoApp* app = demo_app_instance();
    return app ? static_cast<double>(app->frame_count()) : 0.0;
}

// The threads the page's GEMMs run on, clamped to 1..demo_max_gemm_threads (for the benchmark's side by
// side); returns the count now in use. Between frames nothing runs on the pool, so it can be replaced.
EMSCRIPTEN_KEEPALIVE int demo_set_gemm_threads(int threads) {
    return capsnet::demo_use_gemm_threads(threads);
}

EMSCRIPTEN_KEEPALIVE int demo_gemm_threads() { return capsnet::gemm_parallel_threads(); }

EMSCRIPTEN_KEEPALIVE const char* demo_benchmark_json(int repeats) {
    capsnet::DemoApp* app = demo_app_instance();
    if (!app) return give("{}");
    const capsnet::DemoTimings timings = app->benchmark(repeats);
    const nlohmann::json result = {{"classify_ms", timings.classify},
                                   {"mask_grid_ms", timings.mask_grid},
                                   {"interpolation_grid_ms", timings.interpolation_grid},
                                   {"columns", timings.columns},
                                   {"routing_ms", timings.routing},
                                   {"pose_input_ms", timings.pose_input},
                                   {"rotation_sweep_ms", timings.rotation_sweep},
                                   {"rotation_angles", timings.rotation_angles},
                                   {"finetune_head_cold_ms", timings.finetune_head_cold},
                                   {"finetune_head_step_ms", timings.finetune_head_step},
                                   {"finetune_all_step_ms", timings.finetune_all_step}};
    return give(result.dump());
}

}  // extern "C"
