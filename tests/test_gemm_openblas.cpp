// Tests of the native OpenBLAS GEMM backend: the same comparison with gemm_reference as test_gemm.cpp
// (transposes, odd shapes, padded leading dimensions, beta == 0 over NaN, k == 0), and that
// gemm_use_openblas routes gemm<T> to it. Native only.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "capsnet/gemm.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/gemm_openblas.hpp"
#include "gemm_check.hpp"

using namespace capsnet;
using capsnet_test::check_case;

namespace {

template <class T>
GemmFunction<T> function_of(const GemmBackend& backend) {
    if constexpr (std::is_same_v<T, float>)
        return backend.f32;
    else
        return backend.f64;
}

template <class T>
GemmFunction<T> openblas_function() { return function_of<T>(gemm_openblas_backend()); }

}  // namespace

TEMPLATE_TEST_CASE("the OpenBLAS and by-shape backends match the reference", "[gemm][openblas]", float, double) {
    // The by-shape backend sends shapes on both sides of its rule to the two GEMMs (1 and 3 rows, k
    // from 1 to 133), so this covers its dispatch too.
    const bool by_shape = GENERATE(false, true);
    INFO((by_shape ? "by shape" : "openblas"));
    const GemmFunction<TestType> f = function_of<TestType>(by_shape ? gemm_by_shape_backend() : gemm_openblas_backend());
    std::mt19937 rng(11);
    const double alphas[] = {1.0, -0.5, 2.5}, betas[] = {0.0, 1.0, -1.5};
    const int sizes[] = {1, 3, 17, 63, 65, 129};
    int counter = 0;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (int m : sizes)
                for (int n : sizes) {
                    ++counter;
                    const int k = sizes[counter % 6] + counter % 4;
                    check_case<TestType>({ta == 1, tb == 1, m, n, k, alphas[counter % 3], betas[(counter / 3) % 3],
                                          counter % 3, counter % 2, counter % 5},
                                         f, rng);
                }
    check_case<TestType>({false, false, 257, 36, 1000, 1.0, 0.0, 0, 0, 0}, f, rng);
    check_case<TestType>({true, false, 300, 36, 256, 1.0, 1.0, 1, 2, 3}, f, rng);
    check_case<TestType>({false, true, 2, 512, 160, 1.0, 0.0, 0, 0, 0}, f, rng);
}

TEMPLATE_TEST_CASE("the OpenBLAS backend handles k == 0 and empty outputs", "[gemm][openblas]", float, double) {
    const GemmFunction<TestType> f = openblas_function<TestType>();
    const TestType nan = std::numeric_limits<TestType>::quiet_NaN();
    const TestType a[4] = {nan, nan, nan, nan}, b[4] = {nan, nan, nan, nan};
    std::vector<TestType> c = {1, 2, 3, 4, 5, 6};
    f(false, false, 2, 3, 0, TestType(1), a, 1, b, 3, TestType(2), c.data(), 3);
    CHECK(c == std::vector<TestType>{2, 4, 6, 8, 10, 12});
    c.assign(6, nan);
    f(true, true, 2, 3, 0, TestType(1), a, 2, b, 1, TestType(0), c.data(), 3);
    CHECK(c == std::vector<TestType>(6, TestType(0)));
    c = {1, 2, 3, 4, 5, 6};
    f(false, false, 0, 3, 2, TestType(1), nullptr, 2, b, 3, TestType(0), c.data(), 3);
    f(false, false, 2, 0, 2, TestType(1), a, 2, nullptr, 1, TestType(0), c.data(), 1);
    CHECK(c == std::vector<TestType>{1, 2, 3, 4, 5, 6});
}

TEMPLATE_TEST_CASE("the OpenBLAS adapters refuse malformed sizes and strides with an Error", "[gemm][openblas]", float,
                   double) {
    SECTION("openblas") { capsnet_test::check_refuses_malformed_arguments<TestType>(openblas_function<TestType>()); }
    SECTION("by shape") {
        capsnet_test::check_refuses_malformed_arguments<TestType>(function_of<TestType>(gemm_by_shape_backend()));
    }
}

TEST_CASE("a CPU backend runs the GEMM the program chose and leaves it chosen", "[gemm][openblas]") {
    const GemmBackend original = gemm_backend();
    REQUIRE(std::string(original.name) == "xsimd");  // this test's main selects nothing
    {
        const CpuBackend backend(1);
        CHECK(std::string(gemm_backend().name) == "xsimd");
        CHECK(backend.description().find("xsimd GEMM") != std::string::npos);
    }
    gemm_use_by_shape();
    const CpuBackend backend(1);
    CHECK(std::string(gemm_backend().name) == "openblas+xsimd");
    CHECK(backend.description().find("openblas+xsimd GEMM") != std::string::npos);
    gemm_set_backend(original);
}

TEST_CASE("gemm_use_openblas routes gemm<T> to OpenBLAS", "[gemm][openblas]") {
    const GemmBackend original = gemm_backend();
    gemm_use_openblas();
    const GemmBackend active = gemm_backend();
    CHECK(std::string(active.name) == "openblas");
    CHECK(active.f32 == gemm_openblas_backend().f32);
    CHECK(active.f64 == gemm_openblas_backend().f64);
    const float a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8};
    float c[4] = {0, 0, 0, 0};
    gemm<float>(false, false, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    CHECK(std::vector<float>(c, c + 4) == std::vector<float>{19, 22, 43, 50});
    const double ad[] = {1, 2, 3, 4}, bd[] = {5, 6, 7, 8};
    double cd[4] = {1, 1, 1, 1};
    gemm<double>(true, false, 2, 2, 2, 1.0, ad, 2, bd, 2, 1.0, cd, 2);
    CHECK(std::vector<double>(cd, cd + 4) == std::vector<double>{27, 31, 39, 45});
    gemm_set_backend(original);
    CHECK(std::string(gemm_backend().name) == std::string(original.name));
}

TEST_CASE("the by-shape backend uses xsimd only on skinny products", "[gemm][openblas]") {
    CHECK(gemm_by_shape_uses_xsimd(2, 1024, 512));     // decoder, batch 2
    CHECK(gemm_by_shape_uses_xsimd(512, 160, 32));     // decoder weight gradient, 32 samples
    CHECK(gemm_by_shape_uses_xsimd(32, 160, 8));       // capsule predictions
    CHECK_FALSE(gemm_by_shape_uses_xsimd(32, 8, 160)); // their input gradient: OpenBLAS measured faster
    CHECK_FALSE(gemm_by_shape_uses_xsimd(1152, 256, 20736));  // conv2
    CHECK_FALSE(gemm_by_shape_uses_xsimd(256, 400, 81));      // conv1
}
