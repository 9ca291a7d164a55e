// Training throughput of the CUDA backend, measured as bench/train_speed.cpp measures the CPU backend and
// bench/pytorch_capsnet.py measures PyTorch: full training steps (upload, forward, losses, backward, Adam,
// read-back of the losses) on random [0, 1) images and random labels, after untimed warm-up steps. Each
// train_step ends with its own synchronisation, so the wall clock around it is the GPU time of the step.
// Prints one JSON line, for bench/gpu.sh to put side by side with PyTorch on the same GPU.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cuda_backend.hpp"

using namespace capsnet;

int main(int argc, char** argv) {
    std::string preset = "seed";
    int batch_size = 128, steps = 20, warmup = 3, device = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        if (key == "--preset") preset = argv[i + 1];
        else if (key == "--batch-size") batch_size = std::atoi(argv[i + 1]);
        else if (key == "--steps") steps = std::atoi(argv[i + 1]);
        else if (key == "--warmup") warmup = std::atoi(argv[i + 1]);
        else if (key == "--device") device = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: gpu_train_speed [--preset seed|paper] [--batch-size N] [--steps N] [--warmup N] [--device N]\n");
            return 2;
        }
    }
    if (argc % 2 == 0 || batch_size < 1 || steps < 1 || warmup < 0 || device < 0) {
        std::fprintf(stderr, "gpu_train_speed: options come in pairs; --batch-size and --steps must be >= 1, --warmup and --device >= 0\n");
        return 2;
    }
    try {
        const Config config = config_for_preset(preset_from_name(preset));
        Rng rng(1);
        std::unique_ptr<TrainingBackend> backend = make_cuda_backend(device);
        backend->load(config, parameters_init<float>(config, rng), adam_init<float>(config));
        Tensor<float, 4> images = xt::zeros<float>({std::size_t(batch_size), std::size_t(1), std::size_t(28), std::size_t(28)});
        std::vector<int> labels(static_cast<std::size_t>(batch_size));
        auto fresh_batch = [&] {
            for (auto& x : images) x = static_cast<float>(rng.uniform01());
            for (int& label : labels) label = static_cast<int>(rng.below(10));
        };
        // Warm-up: the first steps allocate the activations and cuBLAS's workspaces.
        for (int s = 0; s < warmup; ++s) {
            fresh_batch();
            backend->train_step(1e-3, images, labels);
        }
        double seconds = 0, loss = 0;
        for (int s = 0; s < steps; ++s) {
            fresh_batch();  // outside the timed region, as in the PyTorch script
            const auto start = std::chrono::steady_clock::now();
            const StepReport report = backend->train_step(1e-3, images, labels);
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            loss = report.margin_loss + report.reconstruction_loss;
        }
        if (!std::isfinite(loss)) throw Error("the loss is not finite: " + std::to_string(loss));
        std::printf("{\"framework\": \"capsnet\", \"backend\": \"%s\", \"preset\": \"%s\", \"batch_size\": %d, "
                    "\"steps\": %d, \"seconds\": %.4f, \"loss\": %.6f, \"images_per_second\": %.2f}\n",
                    backend->description().c_str(), preset.c_str(), batch_size, steps, seconds, loss,
                    double(batch_size) * steps / seconds);
    } catch (const Error& error) {
        std::fprintf(stderr, "gpu_train_speed: error: %s\n", error.what());
        return 1;
    }
    return 0;
}
