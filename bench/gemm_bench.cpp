// Single-thread GEMM throughput of the core's xsimd GEMM against OpenBLAS (and the naive reference on
// one small shape) on the model's shapes, as a table of GFLOP/s. Native only.
// Usage: gemm_bench [min seconds per measurement, default 0.2] [only shapes whose name contains this]
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
    const double min_seconds = argc > 1 ? std::atof(argv[1]) : 0.2;
    if (!(min_seconds > 0)) {
        std::fprintf(stderr, "usage: gemm_bench [min seconds per measurement > 0] [shape filter]\n");
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
    };
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
    std::printf("single thread, float, C = A*B (beta = 0); GFLOP/s, best of 3\n");
    std::printf("%-16s %2s %6s %6s %6s %9s %9s %9s %8s\n", "shape", "op", "m", "n", "k", "xsimd", "openblas",
                "reference", "x/oblas");
    const std::string filter = argc > 2 ? argv[2] : "";
    for (const Shape& s : shapes) {
        if (s.what.find(filter) == std::string::npos) continue;
        std::vector<float> a(std::size_t(s.m) * s.k), b(std::size_t(s.k) * s.n), c(std::size_t(s.m) * s.n);
        for (auto& x : a) x = uniform(rng);
        for (auto& x : b) x = uniform(rng);
        const double x = gflops(gemm_xsimd<float>, s, a, b, c, min_seconds);
        const double o = gflops(openblas, s, a, b, c, min_seconds);
        char reference[16] = "-";
        if (s.with_reference)
            std::snprintf(reference, sizeof reference, "%.2f", gflops(gemm_reference<float>, s, a, b, c, min_seconds));
        std::printf("%-16s %c%c %6d %6d %6d %9.1f %9.1f %9s %8.2f\n", s.what.c_str(), s.trans_a ? 'T' : 'N',
                    s.trans_b ? 'T' : 'N', s.m, s.n, s.k, x, o, reference, x / o);
    }
    return 0;
}
