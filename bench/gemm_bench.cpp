// Single-thread GEMM throughput of the core's xsimd GEMM against OpenBLAS (and the naive reference on
// one small shape) on the model's shapes, as a table of GFLOP/s. Native only.
// Usage: gemm_bench [--peak] [min seconds per measurement, default 0.2] [only shapes whose name contains this]
// --peak prints only {"gemm_peak_gflops": X}: the best single-core GFLOP/s of either GEMM on the three
// large conv2 products of a training step, the per-core figure the training benchmarks' floor uses.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <cblas.h>

#include "capsnet/gemm.hpp"
#include "cpu/gemm_openblas.hpp"

using namespace capsnet;

namespace {

struct Shape {
    std::string what;
    bool trans_a, trans_b;
    int m, n, k;
    bool with_reference;
};

// Best of three timed rounds, each repeating the call for a third of `min_seconds`, so small shapes
// are not dominated by the clock.
double gflops(GemmFunction<float> f, const Shape& s, const std::vector<float>& a, const std::vector<float>& b,
              std::vector<float>& c, double min_seconds) {
    const int lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    auto call = [&] {
        f(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
    };
    call();  // warm-up: caches, packing buffers, OpenBLAS's own buffers
    double best = 1e30;
    for (int round = 0; round < 3; ++round) {
        int calls = 0;
        const auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        do {
            call();
            ++calls;
            elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (elapsed < min_seconds / 3);
        best = std::min(best, elapsed / calls);
    }
    return 2.0 * s.m * s.n * s.k / best * 1e-9;
}

}  // namespace

int main(int argc, char* argv[]) {
    const char* usage = "usage: gemm_bench [--peak] [min seconds per measurement > 0, default 0.2] [shape filter]\n"
                        "  Single-thread GFLOP/s of the core's xsimd GEMM and of OpenBLAS on the model's shapes.\n"
                        "  --peak: only the best GFLOP/s on the conv2 training products, as one JSON line.\n";
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
        std::fputs(usage, stdout);
        return 0;
    }
    const bool peak_only = !args.empty() && args[0] == "--peak";
    if (peak_only) args.erase(args.begin());
    const double min_seconds = !args.empty() ? std::atof(args[0].c_str()) : 0.2;
    if (!(min_seconds > 0)) {
        std::fputs(usage, stderr);
        return 2;
    }
    openblas_set_num_threads(1);
    const GemmFunction<float> openblas = gemm_openblas_backend().f32;

    // m x n x k as gemm sees them; conv = im2col GEMMs of the primary capsules (conv2) and conv1 for one
    // image, fc = the decoder's linear layers for a batch of B.
    std::vector<Shape> shapes = {
        {"conv1 fwd", false, false, 256, 400, 81, false},     {"conv1 wgrad", false, true, 256, 81, 400, false},
        {"conv2 fwd", false, false, 256, 36, 20736, false},   {"conv2 wgrad", false, true, 256, 20736, 36, false},
        {"conv2 igrad", true, false, 20736, 36, 256, false},  {"caps u_hat", false, true, 32, 160, 8, false},
        {"caps wgrad", true, false, 160, 8, 32, false},        {"caps igrad", false, false, 32, 8, 160, false},
        // The primary-capsule convolution as training runs it (patch rows, layers.cpp), for the 32 images
        // of one thread at batch 64: forward, weight gradient, and the input gradient's 8-image groups.
        {"conv2 rows fwd", false, true, 1152, 256, 20736, false},
        {"conv2 rows wgrad", true, false, 256, 20736, 1152, false},
        {"conv2 rows igrad", false, false, 288, 20736, 256, false},
    };
    if (peak_only) {
        std::vector<Shape> training;
        for (const Shape& s : shapes)
            if (s.what.rfind("conv2 rows", 0) == 0) training.push_back(s);
        shapes = training;
    }
    for (int batch : {2, 32, 256}) {
        for (auto [in, out] : {std::pair{160, 512}, std::pair{512, 1024}, std::pair{1024, 784}}) {
            const std::string b = " B=" + std::to_string(batch);
            shapes.push_back({"fc fwd" + b, false, true, batch, out, in, batch == 32 && in == 160});
            shapes.push_back({"fc igrad" + b, false, false, batch, in, out, false});
            shapes.push_back({"fc wgrad" + b, true, false, out, in, batch, false});
        }
    }

    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    if (!peak_only) {
        std::printf("single thread, float, C = A*B (beta = 0); GFLOP/s, best of 3\n");
        std::printf("%-16s %2s %6s %6s %6s %9s %9s %9s %8s\n", "shape", "op", "m", "n", "k", "xsimd", "openblas",
                    "reference", "x/oblas");
    }
    const std::string filter = args.size() > 1 ? args[1] : "";
    double peak = 0;
    for (const Shape& s : shapes) {
        if (s.what.find(filter) == std::string::npos) continue;
        std::vector<float> a(std::size_t(s.m) * s.k), b(std::size_t(s.k) * s.n), c(std::size_t(s.m) * s.n);
        for (auto& x : a) x = uniform(rng);
        for (auto& x : b) x = uniform(rng);
        const double x = gflops(gemm_xsimd<float>, s, a, b, c, min_seconds);
        const double o = gflops(openblas, s, a, b, c, min_seconds);
        peak = std::max({peak, x, o});
        if (peak_only) continue;
        char reference[16] = "-";
        if (s.with_reference)
            std::snprintf(reference, sizeof reference, "%.2f", gflops(gemm_reference<float>, s, a, b, c, min_seconds));
        std::printf("%-16s %c%c %6d %6d %6d %9.1f %9.1f %9s %8.2f\n", s.what.c_str(), s.trans_a ? 'T' : 'N',
                    s.trans_b ? 'T' : 'N', s.m, s.n, s.k, x, o, reference, x / o);
    }
    if (peak_only) std::printf("{\"gemm_peak_gflops\": %.1f}\n", peak);
    return 0;
}
