// Per-image time of the core's forward and forward+backward passes, for both presets. Builds natively
// (OpenBLAS GEMM, all cores) and under Emscripten (xsimd GEMM on wasm SIMD128, one thread, run by node),
// so one table compares the targets.
// Usage: core_timing [--batch N] [--repeats N] [--gemm openblas|xsimd]   (native default: openblas)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "capsnet/gemm.hpp"
#include "capsnet/model.hpp"
#ifdef CAPSNET_WITH_OPENBLAS
#include "cpu/gemm_openblas.hpp"
#endif

using namespace capsnet;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char* argv[]) {
    int batch = 32, repeats = 3;
#ifdef CAPSNET_WITH_OPENBLAS
    std::string backend = "openblas";
#else
    std::string backend = "xsimd";
#endif
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--help" || arg == "-h") {
            std::printf("usage: core_timing [--batch N] [--repeats N] [--gemm openblas|xsimd]\n"
                        "  Per-image time of the core's forward and forward+backward passes, both presets.\n");
            return 0;
        }
        if (arg == "--batch" && has_value) batch = std::atoi(argv[++i]);
        else if (arg == "--repeats" && has_value) repeats = std::atoi(argv[++i]);
        else if (arg == "--gemm" && has_value) backend = argv[++i];
        else {
            std::fprintf(stderr, "usage: core_timing [--batch N] [--repeats N] [--gemm openblas|xsimd]\n");
            return 2;
        }
    }
    if (batch < 1 || repeats < 1) {
        std::fprintf(stderr, "core_timing: --batch and --repeats must be at least 1\n");
        return 2;
    }
    if (backend == "openblas") {
#ifdef CAPSNET_WITH_OPENBLAS
        gemm_use_openblas();
#else
        std::fprintf(stderr, "core_timing: OpenBLAS is not available in this build (wasm uses xsimd)\n");
        return 2;
#endif
    } else if (backend != "xsimd") {
        std::fprintf(stderr, "core_timing: unknown --gemm '%s' (openblas or xsimd)\n", backend.c_str());
        return 2;
    }
    std::printf("GEMM backend: %s, batch %d, best of %d\n", gemm_backend().name, batch, repeats);
    std::printf("%-6s %18s %28s\n", "preset", "forward ms/image", "forward+backward ms/image");
    for (Preset preset : {Preset::seed, Preset::paper}) {
        const Config config = config_for_preset(preset);
        Rng rng(1);
        const Parameters<float> params = parameters_init<float>(config, rng);
        Tensor<float, 4> images = xt::zeros<float>({std::size_t(batch), std::size_t(1), std::size_t(28), std::size_t(28)});
        for (auto& x : images) x = rng.uniform01() < 0.2 ? float(rng.uniform01()) : 0.0f;
        std::vector<int> labels(batch);
        for (auto& l : labels) l = int(rng.below(10));
        ForwardState<float> state;
        Parameters<float> grads;
        double best_forward = 1e30, best_both = 1e30;
        for (int r = 0; r < repeats + 1; ++r) {  // the first round warms up caches and allocations
            auto start = std::chrono::steady_clock::now();
            model_forward(config, params, images, DecoderMask::labels, labels, state);
            const double forward = seconds_since(start);
            model_loss(config, state, labels);
            model_backward(config, params, state, labels, grads);
            const double both = seconds_since(start);
            if (r > 0) {
                best_forward = std::min(best_forward, forward);
                best_both = std::min(best_both, both);
            }
        }
        std::printf("%-6s %18.2f %28.2f\n", preset_name(preset), 1000 * best_forward / batch, 1000 * best_both / batch);
    }
    return 0;
}
