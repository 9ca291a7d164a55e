// Training throughput of a backend (--device cpu, or cuda[:N] in a CUDA build), measured the way
// bench/pytorch_capsnet.py measures PyTorch: full training steps (forward, losses, backward, Adam; on the
// GPU also the upload and the read-back that ends each step, so the wall clock covers the GPU's work) on
// random [0, 1) images and random labels, after untimed warm-up steps. Prints one JSON line, for
// bench/cpu_vs_pytorch.sh and bench/gpu.sh to put side by side with PyTorch.
//
// --profile (CPU only) adds a table of where a step's time goes, stage by stage, with the GFLOP/s each
// stage achieves; with --gemm-peak (one core's GEMM GFLOP/s, from `gemm_bench --peak`) also the share of
// that peak, and the floor: the images/s that the step's FLOPs would allow at the peak on every thread.
#include <chrono>
#include <cstdio>
#include <string>

#include "backend/training_backend.hpp"
#include "cli/backend_choice.hpp"
#include "capsnet/batch.hpp"
#include "capsnet/profile.hpp"
#include "cli/args.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/gemm_openblas.hpp"

using namespace capsnet;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Floating-point operations per training image of each stage (a multiply-add is 2), from the layer
// shapes of docs/model-contract.md. Elementwise work (activations, squash, softmax, Adam) is not counted.
StageTimes flops_per_image(const Config& config) {
    const double conv1 = 2.0 * conv1_channels * conv1_side * conv1_side * conv_kernel * conv_kernel;
    const double conv2 = 2.0 * primary_channels * primary_grid * conv1_channels * conv_kernel * conv_kernel;
    const double predictions = 2.0 * primary_capsules * decoder_input * primary_dims;
    const double u_hat_size = double(primary_capsules) * decoder_input;
    const int r = config.routing_iterations;
    const double decoder = 2.0 * (decoder_input * decoder_hidden1 + decoder_hidden1 * decoder_hidden2 +
                                  decoder_hidden2 * image_pixels);
    StageTimes f;
    f[Stage::conv1_forward] = conv1;
    f[Stage::conv2_forward] = conv2;
    f[Stage::conv2_weight_grad] = conv2;
    f[Stage::conv2_input_grad] = conv2;
    f[Stage::conv1_weight_grad] = conv1;
    f[Stage::predictions_forward] = predictions;
    f[Stage::predictions_backward] = 2 * predictions;
    // Forward: r weighted sums and r - 1 agreements; backward: both, twice as many multiply-adds.
    f[Stage::routing_forward] = 2.0 * u_hat_size * (2 * r - 1);
    f[Stage::routing_backward] = 4.0 * u_hat_size * (2 * r - 1);
    f[Stage::decoder] = config.reconstruct ? 3 * decoder : 0;
    return f;
}

void print_profile(const StageTimes& seconds, int steps, int batch_size, int threads, const Config& config,
                   double gemm_peak, double images_per_second) {
    const StageTimes flops = flops_per_image(config);
    const double step_ms = 1e3 * seconds.total() / steps;
    const bool peak = gemm_peak > 0;
    std::printf("\nper-stage profile: %d steps of %d images, %d threads; ms per step (mean over the threads for the "
                "stages they run side by side)%s\n\n",
                steps, batch_size, threads, peak ? "; % of peak = achieved GFLOP/s over the threads' GEMM peak" : "");
    std::printf("| stage | ms/step | share | GFLOP/s |%s\n", peak ? " % of peak |" : "");
    std::printf("|---|---:|---:|---:|%s\n", peak ? "---:|" : "");
    double total_flops = 0;
    for (int i = 0; i < static_cast<int>(Stage::count); ++i) {
        const Stage stage = static_cast<Stage>(i);
        const double ms = 1e3 * seconds[stage] / steps;
        const double f = flops[stage] * batch_size;
        total_flops += f;
        char rate[32] = "-", share_of_peak[32] = "-";
        if (f > 0 && ms > 0) {
            // The threads ran this stage side by side on their shards: the step's FLOPs in its wall time.
            const double gflops = f / (ms * 1e-3) * 1e-9;
            std::snprintf(rate, sizeof rate, "%.1f", gflops);
            if (peak) std::snprintf(share_of_peak, sizeof share_of_peak, "%.0f%%", 100 * gflops / (gemm_peak * threads));
        }
        std::printf("| %s | %.2f | %.1f%% | %s |%s%s\n", stage_name(stage), ms, 100 * ms / step_ms, rate,
                    peak ? " " : "", peak ? (std::string(share_of_peak) + " |").c_str() : "");
    }
    const double step_gflops = total_flops / (step_ms * 1e-3) * 1e-9;
    std::printf("| **whole step** | **%.2f** | 100%% | %.1f |%s\n", step_ms, step_gflops,
                peak ? (" " + std::to_string(int(100 * step_gflops / (gemm_peak * threads) + 0.5)) + "% |").c_str() : "");
    std::printf("\n%.3f GFLOP per training image", total_flops / batch_size * 1e-9);
    if (peak) {
        const double floor = gemm_peak * threads * 1e9 / (total_flops / batch_size);
        std::printf("; floor at %.1f GFLOP/s x %d threads: %.1f images/s; measured %.1f images/s = %.0f%% of the floor",
                    gemm_peak, threads, floor, images_per_second, 100 * images_per_second / floor);
    }
    std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
    gemm_use_by_shape();  // the GEMM `capsnet` runs (its main() selects the same)
    cli::ArgParser parser("train_speed",
                          "Times full training steps (forward, both losses, backward through every routing iteration,\n"
                          "Adam) on random images and prints one JSON line with the images/s.");
    parser.option("preset", "NAME", "seed", "seed or paper")
        .option("batch-size", "N", "32", "images per step")
        .option("steps", "N", "5", "timed steps")
        .option("warmup", "N", "1", "untimed steps first")
        .option("threads", "N", "0", "CPU threads (0: all cores)")
        .option("device", "DEV", "cpu", "cpu, or cuda / cuda:N in a CUDA build")
        .flag("tf32", "let cuBLAS use TF32 tensor-core products (CUDA only; the default is float32)")
        .flag("profile", "also print the per-stage profile of the timed steps (CPU only)")
        .option("gemm-peak", "GFLOPS", "0", "one core's GEMM peak (gemm_bench --peak) for the profile's % of peak and floor")
        .example("train_speed --preset seed --batch-size 64 --threads 2 --steps 3 --profile --gemm-peak 80");
    try {
        const cli::ParsedArgs args = parser.parse(std::vector<std::string>(argv + 1, argv + argc));
        if (args.help) {
            std::fputs(parser.help().c_str(), stdout);
            return 0;
        }
        const std::string preset = args.text("preset");
        const int batch_size = static_cast<int>(args.integer("batch-size", 1, 65536));
        const int steps = static_cast<int>(args.integer("steps", 1, 1000000));
        const int warmup = static_cast<int>(args.integer("warmup", 0, 1000000));
        const int threads = static_cast<int>(args.integer("threads", 0, 1024));
        const bool profile = args.flag("profile");
        const double gemm_peak = args.number("gemm-peak", 0, 1e6);

        const Config config = config_for_preset(preset_from_name(preset));
        Rng rng(1);
        const std::unique_ptr<TrainingBackend> owned = make_training_backend(
            args.text("device"), threads, args.flag("tf32") ? GpuMatmul::tf32 : GpuMatmul::float32);
        TrainingBackend& backend = *owned;
        CpuBackend* cpu = dynamic_cast<CpuBackend*>(&backend);
        if (profile && !cpu) throw cli::UsageError("--profile: only the CPU backend records stages");
        backend.load(config, parameters_init<float>(config, rng), adam_init<float>(config));

        // Batches are assembled from random bytes the way the trainer does it (shifts included), so the
        // profile shows that stage too; it stays outside the timed region, as in the PyTorch script.
        const std::size_t pool = 1024;
        std::vector<std::uint8_t> pixels(pool * image_pixels), pool_labels(pool);
        for (auto& p : pixels) p = static_cast<std::uint8_t>(rng.below(256));
        for (auto& l : pool_labels) l = static_cast<std::uint8_t>(rng.below(10));
        Tensor<float, 4> images;
        std::vector<int> labels;
        std::vector<std::size_t> indices(static_cast<std::size_t>(batch_size));
        StageTimes stage_seconds;
        auto fresh_batch = [&](bool timed) {
            for (auto& i : indices) i = static_cast<std::size_t>(rng.below(pool));
            const StageRecording recording(timed && profile ? &stage_seconds : nullptr);
            StageTimer timer(Stage::batch_assembly);
            make_batch(pixels, pool_labels, image_side, indices, config.max_shift, rng, images, labels);
        };
        for (int s = 0; s < warmup; ++s) {
            fresh_batch(false);
            backend.train_step(1e-3, images, labels);
        }
        double seconds = 0;
        if (cpu && profile) cpu->record_stages(&stage_seconds);
        for (int s = 0; s < steps; ++s) {
            fresh_batch(true);
            const auto start = std::chrono::steady_clock::now();
            const double before = stage_seconds.total();
            backend.train_step(1e-3, images, labels);
            const double step = seconds_since(start);
            seconds += step;
            stage_seconds[Stage::other] += step - (stage_seconds.total() - before);
        }
        if (cpu) cpu->record_stages(nullptr);
        const double images_per_second = double(batch_size) * steps / seconds;
        std::printf("{\"framework\": \"capsnet\", \"backend\": \"%s\", \"preset\": \"%s\", \"batch_size\": %d, \"threads\": %d, "
                    "\"steps\": %d, \"seconds\": %.4f, \"images_per_second\": %.2f}\n",
                    backend.description().c_str(), preset.c_str(), batch_size, threads, steps, seconds, images_per_second);
        if (profile) {
            // The batch assembly is outside the timed step; the table shows the step plus it.
            print_profile(stage_seconds, steps, batch_size, cpu->threads(), config, gemm_peak,
                          images_per_second);
        }
    } catch (const cli::UsageError& error) {
        std::fprintf(stderr, "train_speed: %s (see --help)\n", error.what());
        return 2;
    } catch (const Error& error) {
        std::fprintf(stderr, "train_speed: error: %s\n", error.what());
        return 1;
    }
    return 0;
}
