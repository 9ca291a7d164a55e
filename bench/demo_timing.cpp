// The browser demo's work timed outside the browser, through the same DemoEngine the page runs: classify
// one digit, the mask grid (10 reconstructions), the interpolation grid (11 offsets x 16 dimensions), the
// routing view (engine.routing(): couplings, logits and attribution of every iteration; the page's
// overlay and heatmap pictures are demo_app.cpp's and are timed only in the browser), one posed input
// (rotation 30, affNIST-style warp) and the pose lab's rotation sweep (25 angles, -60..60 step 5).
// Builds natively (OpenBLAS, or the core's xsimd GEMM, threaded with --threads as the page runs it) and
// under Emscripten (wasm with or without SIMD128, run by node), so bench/demo_bench.sh puts every target
// and Chromium in one table.
// Usage: demo_timing [--model FILE] [--mnist DIR] [--digits K] [--repeats N] [--gemm openblas|xsimd]
//                    [--threads N] [--profile]
// --profile adds where the every-layer fine-tuning step's time goes, stage by stage, for micro-batches of
// 1, 2, 4 and 16 images (the page runs 1 per frame).
// Each timing is the median of --repeats rounds after a few warm-up rounds; the rounds take the first K
// MNIST test digits in turn (the work does not depend on the digit). The checksums over those digits
// (untimed) must agree across targets within float rounding: the last line, `demo_timing: {json}`,
// carries them and every capsule length, for bench/demo_bench.sh to compare.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capsnet/gemm.hpp"
#include "capsnet/idx.hpp"
#include "capsnet/profile.hpp"
#include "capsnet/visualize.hpp"
#include "demo_engine.hpp"
#include "demo_finetune.hpp"
#ifdef CAPSNET_WITH_OPENBLAS
#include <cblas.h>

#include "cpu/gemm_openblas.hpp"
#endif

using namespace capsnet;

namespace {

constexpr int warm_up_rounds = 3;

double ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// What the build is, for the table: the wasm builds differ only in their compile flags.
std::string target_name(const std::string& backend) {
#if defined(__EMSCRIPTEN__) && defined(__wasm_simd128__)
    (void)backend;
    return "wasm-simd128";
#elif defined(__EMSCRIPTEN__)
    (void)backend;
    return "wasm-nosimd";
#else
    return "native-" + backend;
#endif
}

// gemm_backend().name, and how the build runs it: the no-SIMD wasm runs gemm_xsimd on one-lane batches.
std::string gemm_label() {
#if defined(CAPSNET_NO_SIMD)
    return std::string(gemm_backend().name) + " (one lane, no SIMD)";
#else
    return gemm_backend().name;
#endif
}

std::string default_path(const char* relative) {
#ifdef CAPSNET_SOURCE_DIR
    return std::string(CAPSNET_SOURCE_DIR) + "/" + relative;
#else
    return relative;
#endif
}

const char* const usage_text =
    "usage: demo_timing [--model FILE] [--mnist DIR] [--digits K] [--repeats N] [--gemm openblas|xsimd] [--threads N]\n"
    "                   [--profile]\n"
    "  Times the browser demo's classify, mask grid, interpolation grid, routing view, posed input,\n"
    "  rotation sweep and fine-tuning steps (medians of --repeats rounds). --profile: the every-layer\n"
    "  fine-tuning step stage by stage, for micro-batches of 1, 2, 4 and 16 images.\n";

// Milliseconds per stage of one every-layer fine-tuning step (the mean of `steps` after one warm-up step).
void print_fine_tune_profile(const Model& model, const std::vector<TeachExample>& personal,
                             const std::vector<GalleryDigit>& mix, int steps) {
    const std::vector<int> micro_batches = {1, 2, 4, 16};
    std::vector<StageTimes> times(micro_batches.size());
    std::vector<double> wall_ms(micro_batches.size());
    for (std::size_t m = 0; m < micro_batches.size(); ++m) {
        FineTuneOptions options;
        options.layers = trainable_layers_from_name("all");
        options.steps = 1 + steps;
        options.micro_batch = micro_batches[m];
        FineTuner tuner(model, personal, mix, options);
        while (tuner.steps_done() < 1) tuner.advance(0);
        const StageRecording recording(&times[m]);
        const auto start = std::chrono::steady_clock::now();
        while (!tuner.done()) tuner.advance(0);
        wall_ms[m] = ms_since(start) / steps;
        times[m][Stage::other] += wall_ms[m] * steps / 1000 - times[m].total();  // untimed: the gradient sums, copies
    }
    std::printf("  every-layer fine-tuning step, 16 images, ms per stage (mean of %d steps):\n", steps);
    std::printf("  | stage | micro-batch 1 | 2 | 4 | 16 |\n  |---|---|---|---|---|\n");
    for (int stage = 0; stage <= static_cast<int>(Stage::count); ++stage) {
        const bool total = stage == static_cast<int>(Stage::count);
        std::printf("  | %s |", total ? "total" : stage_name(static_cast<Stage>(stage)));
        for (const StageTimes& t : times)
            std::printf(" %.1f |", 1000 * (total ? t.total() : t[static_cast<Stage>(stage)]) / steps);
        std::printf("\n");
    }
}

int usage() {
    std::fputs(usage_text, stderr);
    return 2;
}

}  // namespace

int main(int argc, char* argv[]) {
    std::string model_path = default_path("web/model/capsnet-seed-i8.safetensors");
    const char* data_dir = std::getenv("CAPSNET_DATA_DIR");  // as the tests (tests/mnist_fixture.hpp)
    std::string mnist_dir = data_dir ? data_dir : default_path("data/mnist");
    int digits = 20, repeats = 20, threads = 1;
    bool profile = false;
#ifdef CAPSNET_WITH_OPENBLAS
    std::string backend = "openblas";
#else
    std::string backend = "xsimd";
#endif
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--help" || arg == "-h") {
            std::printf("%s", usage_text);
            return 0;
        }
        if (arg == "--model" && has_value) model_path = argv[++i];
        else if (arg == "--mnist" && has_value) mnist_dir = argv[++i];
        else if (arg == "--digits" && has_value) digits = std::atoi(argv[++i]);
        else if (arg == "--repeats" && has_value) repeats = std::atoi(argv[++i]);
        else if (arg == "--gemm" && has_value) backend = argv[++i];
        else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
        else if (arg == "--profile") profile = true;
        else return usage();
    }
    if (digits < 1 || repeats < 1 || threads < 1) {
        std::fprintf(stderr, "demo_timing: --digits, --repeats and --threads must be at least 1\n");
        return 2;
    }
    if (backend == "openblas") {
#ifdef CAPSNET_WITH_OPENBLAS
        gemm_use_openblas();
        openblas_set_num_threads(threads);
#else
        std::fprintf(stderr, "demo_timing: OpenBLAS is not available in this build (wasm uses xsimd)\n");
        return 2;
#endif
    } else if (backend != "xsimd") {
        std::fprintf(stderr, "demo_timing: unknown --gemm '%s' (openblas or xsimd)\n", backend.c_str());
        return 2;
    } else if (threads > 1) {
        if (threads > demo_max_gemm_threads) {  // the wasm build's pool of workers (bench/CMakeLists.txt)
            std::fprintf(stderr, "demo_timing: --threads is at most %d with xsimd\n", demo_max_gemm_threads);
            return 2;
        }
        demo_use_gemm_threads(threads);  // as the page runs its GEMMs
    }

    try {
        DemoEngine engine(read_whole_file(model_path), model_path);
        const MnistSplit test = mnist_load(mnist_dir, "t10k");
        digits = std::min<int>(digits, static_cast<int>(test.images.count));
        std::vector<DemoImage> images(digits);
        for (int i = 0; i < digits; ++i)
            std::copy_n(test.images.pixels.begin() + std::ptrdiff_t(i) * demo_image_pixels, demo_image_pixels,
                        images[i].begin());
        // The page's interpolation grid (wasm/demo_app.cpp): the default range.
        const std::vector<float> offsets = sweep_offsets(default_sweep_range);

        // Checksums first (untimed): everything the timed rounds compute, for every digit.
        nlohmann::json lengths = nlohmann::json::array();
        double lengths_sum = 0, mask_sum = 0, sweep_sum = 0;
        int correct = 0;
        for (int i = 0; i < digits; ++i) {
            const DemoAnalysis analysis = engine.classify(images[i]);
            for (float length : analysis.lengths) {
                lengths.push_back(length);
                lengths_sum += length;
            }
            correct += analysis.prediction == test.labels[i];
            for (float x : engine.mask_grid(analysis.capsules)) mask_sum += x;
            for (float x : engine.sweep_grid(analysis.capsules, std::max(analysis.prediction, 0), offsets)) sweep_sum += x;
        }

        // The pose lab's rotation sweep (wasm/demo_app.hpp: -60..60 step 5) and its posed input.
        std::vector<float> angles;
        for (int k = 0; k <= 24; ++k) angles.push_back(-60.0f + 5.0f * k);
        AffineTransform rotated;
        rotated.rotation_degrees = 30;

        std::vector<double> classify_ms, mask_ms, sweep_ms, routing_ms, pose_input_ms, rotation_sweep_ms;
        for (int r = -warm_up_rounds; r < repeats; ++r) {
            const DemoImage& input = images[(r + warm_up_rounds) % digits];
            auto start = std::chrono::steady_clock::now();
            const DemoAnalysis analysis = engine.classify(input);
            const double classify = ms_since(start);
            start = std::chrono::steady_clock::now();
            const Tensor<float, 2> grid = engine.mask_grid(analysis.capsules);
            const double mask = ms_since(start);
            start = std::chrono::steady_clock::now();
            const Tensor<float, 3> sweep = engine.sweep_grid(analysis.capsules, std::max(analysis.prediction, 0), offsets);
            const double sweep_time = ms_since(start);
            // routing() reads classify's scratch: before pose_sweep, which reuses it (as the page does).
            start = std::chrono::steady_clock::now();
            const RoutingView routing = engine.routing();
            const double routing_time = ms_since(start);
            start = std::chrono::steady_clock::now();
            const DemoImage posed = demo_pose_input(input, rotated, false);
            const double posed_time = ms_since(start);
            start = std::chrono::steady_clock::now();
            const PoseSweep rotation = engine.pose_sweep(input, false, AffineTransform{}, PoseAxis::rotation, angles,
                                                         std::max(analysis.prediction, 0));
            const double rotation_time = ms_since(start);
            (void)routing, (void)posed, (void)rotation;
            if (r < 0) continue;
            classify_ms.push_back(classify);
            mask_ms.push_back(mask);
            sweep_ms.push_back(sweep_time);
            routing_ms.push_back(routing_time);
            pose_input_ms.push_back(posed_time);
            rotation_sweep_ms.push_back(rotation_time);
        }

        // Fine-tuning (wasm/demo_finetune.hpp): one step of 16 images, the head only (its primary capsules
        // cached after the first step: the page's case once a set has been seen) and every layer. The
        // examples are 16 test digits, 4 as the "personal" set (a step takes a quarter of its batch from
        // it) and 12 to mix in, so every step sees the same 16 images.
        std::vector<TeachExample> personal;
        std::vector<GalleryDigit> mix;
        for (int i = 0; i < 16; ++i) {
            if (i < 4) personal.push_back({test.labels[i % digits], images[i % digits]});
            else mix.push_back({test.labels[i % digits], images[i % digits]});
        }
        const auto options = [](const char* layers, int steps) {
            FineTuneOptions options;  // the defaults: the head's step in one pass, every layer's in passes of 2
            options.layers = trainable_layers_from_name(layers);
            options.steps = steps;
            return options;
        };
        const std::vector<double> head_steps =
            fine_tune_step_times(engine.model(), personal, mix, options("head", 1 + std::max(repeats, 3)));
        const double head_cold_ms = head_steps.front();
        const double head_step_ms = median(std::vector<double>(head_steps.begin() + 1, head_steps.end()));
        const std::vector<double> all_steps =
            fine_tune_step_times(engine.model(), personal, mix, options("all", 1 + std::min(repeats, 3)));
        const double all_step_ms = median(std::vector<double>(all_steps.begin() + 1, all_steps.end()));

        const std::string target = target_name(backend);
        nlohmann::json result = {
            {"target", target},
            {"gemm", gemm_label()},
            {"threads", threads},
            {"digits", digits},
            {"repeats", repeats},
            {"classify_ms", median(classify_ms)},
            {"mask_grid_ms", median(mask_ms)},
            {"interpolation_grid_ms", median(sweep_ms)},
            {"columns", offsets.size()},
            {"routing_ms", median(routing_ms)},
            {"pose_input_ms", median(pose_input_ms)},
            {"rotation_sweep_ms", median(rotation_sweep_ms)},
            {"rotation_angles", angles.size()},
            {"finetune_head_cold_ms", head_cold_ms},
            {"finetune_head_step_ms", head_step_ms},
            {"finetune_all_step_ms", all_step_ms},
            {"correct", correct},
            {"lengths_sum", lengths_sum},
            {"mask_sum", mask_sum},
            {"sweep_sum", sweep_sum},
            {"lengths", lengths},
        };
        std::printf("demo_timing: %s (%s GEMM, %d thread%s), %d test digits, median of %d rounds after %d warm-up\n",
                    target.c_str(), gemm_label().c_str(), threads, threads == 1 ? "" : "s", digits, repeats,
                    warm_up_rounds);
        std::printf("  classify one digit           %8.2f ms\n", median(classify_ms));
        std::printf("  mask grid (10 x 784)         %8.2f ms\n", median(mask_ms));
        std::printf("  classify + mask grid         %8.2f ms\n", median(classify_ms) + median(mask_ms));
        std::printf("  interpolation grid (%zu x 16) %8.2f ms\n", offsets.size(), median(sweep_ms));
        std::printf("  routing view (no pictures)   %8.2f ms\n", median(routing_ms));
        std::printf("  posed input (rotation 30)    %8.2f ms\n", median(pose_input_ms));
        std::printf("  rotation sweep (%zu angles)   %8.2f ms\n", angles.size(), median(rotation_sweep_ms));
        std::printf("  fine-tune step, 16 images, head (cached)    %8.2f ms (first step, computing the features: %.2f ms)\n",
                    head_step_ms, head_cold_ms);
        std::printf("  fine-tune step, 16 images, every layer      %8.2f ms\n", all_step_ms);
        std::printf("  checksums: %d/%d correct, capsule lengths sum %.6f, mask grids sum %.3f, sweep grids sum %.3f\n",
                    correct, digits, lengths_sum, mask_sum, sweep_sum);
        if (profile) print_fine_tune_profile(engine.model(), personal, mix, 3);
        std::printf("demo_timing: %s\n", result.dump().c_str());
    } catch (const std::exception& error) {
        std::fprintf(stderr, "demo_timing: error: %s\n", error.what());
        return 1;
    }
    return 0;
}
