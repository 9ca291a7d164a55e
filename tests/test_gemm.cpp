// Tests of the core's GEMM: gemm_xsimd and the threaded gemm_parallel against gemm_reference over odd
// shapes, all transpose cases, padded leading dimensions and the BLAS corner cases (beta == 0 over NaN,
// k == 0, empty outputs), and the backend switch behind gemm<T>.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "capsnet/gemm.hpp"
#include "capsnet/gemm_parallel.hpp"
#include "gemm_check.hpp"

using namespace capsnet;
using capsnet_test::Case;
using capsnet_test::check_case;

namespace {

const double alphas[] = {1.0, -0.5, 2.5, 0.3};
const double betas[] = {0.0, 1.0, -1.5, 0.25};

// Every transpose case over odd and round small shapes, cycling through alpha, beta and paddings.
template <class T>
void check_small_shapes(GemmFunction<T> f) {
    std::mt19937 rng(1);
    const int sizes[] = {1, 2, 3, 5, 7, 12, 13, 16, 17, 31, 33};
    const int ks[] = {1, 2, 3, 17};
    int counter = 0;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (int m : sizes)
                for (int n : sizes)
                    for (int k : ks) {
                        ++counter;
                        check_case<T>({ta == 1, tb == 1, m, n, k, alphas[counter % 4], betas[(counter / 4) % 4],
                                       counter % 3, (counter / 3) % 2 * 5, counter % 5},
                                      f, rng);
                    }
}

// Sizes around the vector width, the micro-tile and the cache blocks (K = 256, M up to 192, N = 4096).
template <class T>
void check_block_edges(GemmFunction<T> f) {
    std::mt19937 rng(2);
    const int sizes[] = {63, 65, 129, 257};
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (int s = 0; s < 4; ++s) {
                const int m = sizes[s], n = sizes[(s + 1) % 4], k = sizes[(s + 2) % 4];
                check_case<T>({ta == 1, tb == 1, m, n, k, 1.0, 0.0}, f, rng);
                check_case<T>({ta == 1, tb == 1, n, k, m, -0.5, 1.0, 3, 1, 7}, f, rng);
            }
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            check_case<T>({ta == 1, tb == 1, 17, 19, 255, 1.0, 0.0}, f, rng);
            check_case<T>({ta == 1, tb == 1, 17, 19, 256, 1.0, 0.5}, f, rng);
            check_case<T>({ta == 1, tb == 1, 17, 19, 257, 2.0, 0.0, 1, 2, 3}, f, rng);
            check_case<T>({ta == 1, tb == 1, 33, 9, 770, 1.0, 1.0}, f, rng);
            check_case<T>({ta == 1, tb == 1, 300, 40, 31, 1.0, 0.0, 0, 0, 4}, f, rng);  // tall: computes C^T
            check_case<T>({ta == 1, tb == 1, 40, 300, 31, 1.0, -1.0}, f, rng);
            check_case<T>({ta == 1, tb == 1, 3, 4100, 5, 1.0, 0.0, 2, 2, 2}, f, rng);  // crosses the N block
            check_case<T>({ta == 1, tb == 1, 4100, 3, 5, 1.0, 0.0, 2, 2, 2}, f, rng);  // the same, via C^T
        }
}

// Few rows or few columns: the paths that read B in place (tails of partial vectors, K past a block)
// and the dot-product path, on both sides of the threshold.
template <class T>
void check_skinny_shapes(GemmFunction<T> f) {
    std::mt19937 rng(5);
    const int thin[] = {1, 2, 5, 6, 7, 12, 13};
    const int wide[] = {1, 15, 16, 17, 64, 100, 300};
    const int ks[] = {31, 600};
    int counter = 0;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (int t : thin)
                for (int w : wide)
                    for (int k : ks) {
                        ++counter;
                        const double alpha = alphas[counter % 4], beta = betas[(counter / 4) % 4];
                        check_case<T>({ta == 1, tb == 1, t, w, k, alpha, beta, counter % 3, counter % 2, counter % 5},
                                      f, rng);
                        check_case<T>({ta == 1, tb == 1, w, t, k, alpha, beta, counter % 2, counter % 3, 0}, f, rng);
                    }
}

// Random shapes, transposes, paddings and scalars.
template <class T>
void check_random_shapes(GemmFunction<T> f, int count) {
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> dim(1, 300), depth(1, 600), pad(0, 9), coin(0, 1), pick(0, 3);
    for (int i = 0; i < count; ++i) {
        const Case c{coin(rng) == 1, coin(rng) == 1, dim(rng),          dim(rng), depth(rng),
                     alphas[pick(rng)], betas[pick(rng)], pad(rng), pad(rng), pad(rng)};
        check_case<T>(c, f, rng);
    }
}

// k == 0 leaves beta * C (zeros over NaN when beta == 0); m == 0 or n == 0 touches nothing.
template <class T>
void check_degenerate(GemmFunction<T> f) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const T a[4] = {nan, nan, nan, nan}, b[4] = {nan, nan, nan, nan};
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            std::vector<T> c = {1, 2, 3, 4, 5, 6};
            f(ta == 1, tb == 1, 2, 3, 0, T(1), a, 1, b, 3, T(2), c.data(), 3);
            CHECK(c == std::vector<T>{2, 4, 6, 8, 10, 12});
            c.assign(6, nan);
            f(ta == 1, tb == 1, 2, 3, 0, T(1), a, 1, b, 3, T(0), c.data(), 3);
            CHECK(c == std::vector<T>(6, T(0)));
            c = {1, 2, 3, 4, 5, 6};
            f(ta == 1, tb == 1, 0, 3, 2, T(1), nullptr, 2, b, 3, T(0), c.data(), 3);
            f(ta == 1, tb == 1, 2, 0, 2, T(1), a, 2, nullptr, 2, T(0), c.data(), 1);
            f(ta == 1, tb == 1, 0, 0, 0, T(1), nullptr, 1, nullptr, 1, T(0), nullptr, 1);
            CHECK(c == std::vector<T>{1, 2, 3, 4, 5, 6});
        }
}

// The model's shapes (m x n x k), full size: they take the swapped (C^T) and transposing-pack paths.
template <class T>
void check_project_shapes(GemmFunction<T> f) {
    std::mt19937 rng(4);
    check_case<T>({false, false, 256, 36, 20736, 1.0, 0.0}, f, rng);
    check_case<T>({true, false, 20736, 36, 256, 1.0, 0.0}, f, rng);
    check_case<T>({false, true, 256, 400, 81, 1.0, 1.0}, f, rng);
    check_case<T>({false, true, 32, 1024, 512, 1.0, 1.0}, f, rng);
    check_case<T>({true, false, 784, 1024, 32, 1.0, 1.0}, f, rng);
    check_case<T>({false, false, 32, 1024, 784, 1.0, 0.0}, f, rng);
    check_case<T>({false, true, 2, 160, 8, 1.0, 1.0, 1144 * 8, 0, 1151 * 160}, f, rng);  // one capsule's GEMM
}

}  // namespace

TEMPLATE_TEST_CASE("gemm_xsimd matches the reference on small shapes", "[gemm]", float, double) {
    check_small_shapes<TestType>(gemm_xsimd<TestType>);
}

TEMPLATE_TEST_CASE("gemm_xsimd matches the reference across block edges", "[gemm]", float, double) {
    check_block_edges<TestType>(gemm_xsimd<TestType>);
}

TEMPLATE_TEST_CASE("gemm_xsimd matches the reference on skinny shapes", "[gemm]", float, double) {
    check_skinny_shapes<TestType>(gemm_xsimd<TestType>);
}

TEMPLATE_TEST_CASE("gemm_xsimd matches the reference on random shapes", "[gemm]", float, double) {
    check_random_shapes<TestType>(gemm_xsimd<TestType>, 60);
}

TEMPLATE_TEST_CASE("gemm_xsimd handles k == 0 and empty outputs", "[gemm]", float, double) {
    check_degenerate<TestType>(gemm_xsimd<TestType>);
}

TEST_CASE("gemm_xsimd matches the reference on the model's shapes", "[gemm]") {
    check_project_shapes<float>(gemm_xsimd<float>);
}

// gemm_parallel with 3 threads and no minimum work, so even a 1 x 1 product is split wherever it has
// two tiles: every shape above, blocks by columns and by rows, ragged last blocks.
struct ThreeGemmThreads {
    ThreeGemmThreads() { gemm_parallel_set_threads(3, 1); }
    ~ThreeGemmThreads() { gemm_parallel_set_threads(1); }
};

TEMPLATE_TEST_CASE("gemm_parallel matches the reference on every shape gemm_xsimd is tested on", "[gemm]", float,
                   double) {
    const ThreeGemmThreads threads;
    REQUIRE(gemm_parallel_threads() == 3);
    check_small_shapes<TestType>(gemm_parallel<TestType>);
    check_block_edges<TestType>(gemm_parallel<TestType>);
    check_skinny_shapes<TestType>(gemm_parallel<TestType>);
    check_random_shapes<TestType>(gemm_parallel<TestType>, 60);
    check_degenerate<TestType>(gemm_parallel<TestType>);
}

TEST_CASE("gemm_parallel matches the reference on the model's shapes", "[gemm]") {
    gemm_parallel_set_threads(2);  // the default minimum work: the demo's setting on a 2-core machine
    check_project_shapes<float>(gemm_parallel<float>);
    gemm_parallel_set_threads(1);
}

TEST_CASE("gemm_parallel is right when called from two threads at once", "[gemm]") {
    // One call gets the pool, the other runs on its own thread (the pool is busy): both must be right.
    const ThreeGemmThreads threads;
    std::vector<double> errors(2);
    auto product = [&](int which) {
        const int m = 70, n = 300, k = 200;
        std::mt19937 rng(10 + which);
        std::uniform_real_distribution<float> uniform(-1, 1);
        std::vector<float> a(std::size_t(m) * k), b(std::size_t(k) * n), expected(std::size_t(m) * n), actual(expected.size());
        for (auto& x : a) x = uniform(rng);
        for (auto& x : b) x = uniform(rng);
        for (int repeat = 0; repeat < 20; ++repeat) {
            gemm_reference<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, expected.data(), n);
            gemm_parallel<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, actual.data(), n);
            for (std::size_t i = 0; i < actual.size(); ++i)
                errors[which] = std::max(errors[which], double(std::abs(actual[i] - expected[i])));
        }
    };
    std::thread other(product, 1);
    product(0);
    other.join();
    // Sums of 200 products of numbers in [-1, 1]: |C| <= 200; float rounding stays far below 1e-3.
    CHECK(errors[0] < 1e-3);
    CHECK(errors[1] < 1e-3);
}

TEST_CASE("gemm_parallel rejects a thread count below 1", "[gemm]") {
    CHECK_THROWS_WITH(gemm_parallel_set_threads(0), Catch::Contains("at least 1"));
    CHECK(gemm_parallel_threads() == 1);
}

TEST_CASE("gemm_reference computes a known product", "[gemm]") {
    // [1 2 3; 4 5 6] * [1 0; 0 1; 1 1] = [4 5; 10 11], then 2 * that - C.
    const double a[] = {1, 2, 3, 4, 5, 6}, b[] = {1, 0, 0, 1, 1, 1};
    double c[] = {1, 1, 1, 1};
    gemm_reference<double>(false, false, 2, 2, 3, 2.0, a, 3, b, 2, -1.0, c, 2);
    CHECK(std::vector<double>(c, c + 4) == std::vector<double>{7, 9, 19, 21});
    // The same through the transposed storage of both operands.
    const double at[] = {1, 4, 2, 5, 3, 6}, bt[] = {1, 0, 1, 0, 1, 1};
    double d[] = {0, 0, 0, 0};
    gemm_reference<double>(true, true, 2, 2, 3, 1.0, at, 2, bt, 3, 0.0, d, 2);
    CHECK(std::vector<double>(d, d + 4) == std::vector<double>{4, 5, 10, 11});
}

namespace {

int f32_calls = 0, f64_calls = 0;

void counting_f32(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                  float beta, float* c, int ldc) {
    ++f32_calls;
    gemm_reference<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void counting_f64(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                  int ldb, double beta, double* c, int ldc) {
    ++f64_calls;
    gemm_reference<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

TEMPLATE_TEST_CASE("every GEMM entry point refuses malformed sizes and strides with an Error", "[gemm]", float, double) {
    SECTION("reference") { capsnet_test::check_refuses_malformed_arguments<TestType>(gemm_reference<TestType>); }
    SECTION("xsimd") { capsnet_test::check_refuses_malformed_arguments<TestType>(gemm_xsimd<TestType>); }
    SECTION("dispatch") { capsnet_test::check_refuses_malformed_arguments<TestType>(gemm<TestType>); }
    CHECK_THROWS_AS(gemm_set_backend({"broken", nullptr, gemm_xsimd<double>}), Error);
    CHECK_THROWS_AS(gemm_set_backend({nullptr, gemm_xsimd<float>, gemm_xsimd<double>}), Error);
    CHECK(std::string(gemm_backend().name) == "xsimd");  // a refused backend leaves the active one
}

TEST_CASE("gemm dispatches to the active backend", "[gemm]") {
    const GemmBackend original = gemm_backend();
    CHECK(std::string(original.name) == "xsimd");
    CHECK(original.f32 == &gemm_xsimd<float>);
    CHECK(original.f64 == &gemm_xsimd<double>);

    gemm_set_backend({"counting", counting_f32, counting_f64});
    const GemmBackend active = gemm_backend();
    CHECK(std::string(active.name) == "counting");
    CHECK(active.f32 == &counting_f32);
    CHECK(active.f64 == &counting_f64);

    const float af[] = {1, 2}, bf[] = {3, 4};
    float cf = 0;
    gemm<float>(false, false, 1, 1, 2, 1.0f, af, 2, bf, 1, 0.0f, &cf, 1);
    const double ad[] = {1, 2}, bd[] = {3, 4};
    double cd = 0;
    gemm<double>(false, true, 1, 1, 2, 1.0, ad, 2, bd, 2, 0.0, &cd, 1);
    gemm<double>(false, true, 1, 1, 2, 1.0, ad, 2, bd, 2, 1.0, &cd, 1);
    CHECK(f32_calls == 1);
    CHECK(f64_calls == 2);
    CHECK(cf == 11.0f);
    CHECK(cd == 22.0);

    gemm_set_backend(original);
    CHECK(std::string(gemm_backend().name) == "xsimd");
    cf = 0;
    gemm<float>(false, false, 1, 1, 2, 1.0f, af, 2, bf, 1, 0.0f, &cf, 1);
    CHECK(cf == 11.0f);
    CHECK(f32_calls == 1);
}
