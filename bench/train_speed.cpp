// Training throughput of a backend (--device cpu, or cuda[:N] in a CUDA build), measured the way
// bench/pytorch_capsnet.py measures PyTorch: full training steps (forward, losses, backward, Adam; on the
// GPU also the upload and the read-back that ends each step, so the wall clock covers the GPU's work) on
// random [0, 1) images and random labels, after untimed warm-up steps. Prints one JSON line, for
// bench/cpu_vs_pytorch.sh and bench/gpu.sh to put side by side with PyTorch.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/training_backend.hpp"

using namespace capsnet;

int main(int argc, char** argv) {
    std::string preset = "seed";
    std::string device = "cpu";
    int batch_size = 32, steps = 5, warmup = 1, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        if (key == "--preset") preset = argv[i + 1];
        else if (key == "--batch-size") batch_size = std::atoi(argv[i + 1]);
        else if (key == "--steps") steps = std::atoi(argv[i + 1]);
        else if (key == "--warmup") warmup = std::atoi(argv[i + 1]);
        else if (key == "--threads") threads = std::atoi(argv[i + 1]);
        else if (key == "--device") device = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: train_speed [--preset seed|paper] [--batch-size N] [--steps N] [--warmup N] [--threads N] [--device cpu|cuda[:N]]\n");
            return 2;
        }
    }
    if (batch_size < 1 || steps < 1 || warmup < 0 || threads < 0) {
        std::fprintf(stderr, "train_speed: --batch-size and --steps must be >= 1, --warmup and --threads >= 0\n");
        return 2;
    }
    try {
        const Config config = config_for_preset(preset_from_name(preset));
        Rng rng(1);
        const std::unique_ptr<TrainingBackend> owned = make_training_backend(device, threads);
        TrainingBackend& backend = *owned;
        backend.load(config, parameters_init<float>(config, rng), adam_init<float>(config));
        Tensor<float, 4> images = xt::zeros<float>({std::size_t(batch_size), std::size_t(1), std::size_t(28), std::size_t(28)});
        std::vector<int> labels(static_cast<std::size_t>(batch_size));
        auto fresh_batch = [&] {
            for (auto& x : images) x = static_cast<float>(rng.uniform01());
            for (int& label : labels) label = static_cast<int>(rng.below(10));
        };
        for (int s = 0; s < warmup; ++s) {
            fresh_batch();
            backend.train_step(1e-3, images, labels);
        }
        double seconds = 0;
        for (int s = 0; s < steps; ++s) {
            fresh_batch();  // outside the timed region, as in the PyTorch script
            const auto start = std::chrono::steady_clock::now();
            backend.train_step(1e-3, images, labels);
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        std::printf("{\"framework\": \"capsnet\", \"backend\": \"%s\", \"preset\": \"%s\", \"batch_size\": %d, \"threads\": %d, "
                    "\"steps\": %d, \"seconds\": %.4f, \"images_per_second\": %.2f}\n",
                    backend.description().c_str(), preset.c_str(), batch_size, threads, steps, seconds,
                    double(batch_size) * steps / seconds);
    } catch (const Error& error) {
        std::fprintf(stderr, "train_speed: error: %s\n", error.what());
        return 1;
    }
    return 0;
}
