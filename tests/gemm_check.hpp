// The GEMM comparison shared by test_gemm.cpp (xsimd) and test_gemm_openblas.cpp: one case run through a
// backend and compared with gemm_reference, with a tolerance derived below.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "capsnet/error.hpp"
#include "capsnet/gemm.hpp"

namespace capsnet_test {

using capsnet::GemmFunction;
using capsnet::gemm_reference;

// Written into C's padding (between n and ldc): a GEMM that touches it fails the exact check.
constexpr double sentinel = 12345.0;

struct Case {
    bool trans_a, trans_b;
    int m, n, k;
    double alpha, beta;
    int pad_a = 0, pad_b = 0, pad_c = 0;  // leading dimension minus the minimum
};

std::string describe(const Case& c) {
    char text[200];
    std::snprintf(text, sizeof text, "%c%c m=%d n=%d k=%d alpha=%g beta=%g pads=%d,%d,%d", c.trans_a ? 'T' : 'N',
                  c.trans_b ? 'T' : 'N', c.m, c.n, c.k, c.alpha, c.beta, c.pad_a, c.pad_b, c.pad_c);
    return text;
}

// Runs `f` on one case and compares it with gemm_reference.
//
// Tolerance: each output is a sum of k products; every FMA step rounds with a relative error of at
// most eps/2 of the running sum, whose magnitude is bounded by the same sum over |a||b|. Those errors
// have random signs, so their total grows like sqrt(k), not k (the worst case), and blocking in K only
// makes the partial sums shorter. Alpha, beta and the final rounding add about two more steps. So the
// error, measured in the Frobenius norm relative to M = |alpha| |op(A)| |op(B)| + |beta| |C0| (the
// magnitudes the rounding errors scale with; that avoids a blow-up from cancellation in C itself), is
// bounded by c * sqrt(k + 2) * eps with c = 4, a factor of several over what is observed here. For
// float the reference accumulates in double, so it is exact at float precision; for double both sides
// round, which the margin of c covers.
template <class T>
void check_case(const Case& c, GemmFunction<T> f, std::mt19937& rng, double c_factor = 4.0) {
    INFO(describe(c));
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    const int a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
    const int b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
    const int lda = a_cols + c.pad_a, ldb = b_cols + c.pad_b, ldc = c.n + c.pad_c;
    // No slack after the last row's last element, so the sanitizer build catches reads past it.
    auto storage = [](int rows, int cols, int ld) { return rows == 0 ? 0 : std::size_t(rows - 1) * ld + cols; };
    std::vector<T> a(storage(a_rows, a_cols, lda)), b(storage(b_rows, b_cols, ldb));
    for (auto& x : a) x = T(uniform(rng));
    for (auto& x : b) x = T(uniform(rng));
    std::vector<T> c0(std::size_t(c.m) * ldc);
    for (int i = 0; i < c.m; ++i)
        for (int j = 0; j < ldc; ++j)
            c0[std::size_t(i) * ldc + j] = j >= c.n                ? T(sentinel)
                                           : c.beta == 0.0 ? std::numeric_limits<T>::quiet_NaN()
                                                           : T(uniform(rng));
    std::vector<T> expected = c0, actual = c0;
    gemm_reference<T>(c.trans_a, c.trans_b, c.m, c.n, c.k, T(c.alpha), a.data(), lda, b.data(), ldb, T(c.beta),
                      expected.data(), ldc);
    f(c.trans_a, c.trans_b, c.m, c.n, c.k, T(c.alpha), a.data(), lda, b.data(), ldb, T(c.beta), actual.data(), ldc);

    double error2 = 0, scale2 = 0;
    bool padding_intact = true;
    for (int i = 0; i < c.m; ++i) {
        for (int j = 0; j < ldc; ++j) {
            const std::size_t at = std::size_t(i) * ldc + j;
            if (j >= c.n) {
                padding_intact = padding_intact && actual[at] == T(sentinel);
                continue;
            }
            double magnitude = c.beta == 0.0 ? 0.0 : std::abs(c.beta * double(c0[at]));
            double abs_sum = 0;
            for (int p = 0; p < c.k; ++p) {
                const double x = c.trans_a ? a[std::size_t(p) * lda + i] : a[std::size_t(i) * lda + p];
                const double y = c.trans_b ? b[std::size_t(j) * ldb + p] : b[std::size_t(p) * ldb + j];
                abs_sum += std::abs(x * y);
            }
            magnitude += std::abs(c.alpha) * abs_sum;
            const double diff = double(actual[at]) - double(expected[at]);
            error2 += diff * diff;  // NaN here makes the check below fail
            scale2 += magnitude * magnitude;
        }
    }
    CHECK(padding_intact);
    const double eps = std::numeric_limits<T>::epsilon();
    const double relative = scale2 > 0 ? std::sqrt(error2 / scale2) : std::sqrt(error2);
    const double tolerance = c_factor * std::sqrt(c.k + 2.0) * eps;
    INFO("relative error " << relative << ", tolerance " << tolerance);
    CHECK(relative <= tolerance);
}

// Malformed sizes and strides throw capsnet::Error (in Release too: no assert), and the BLAS
// allowances for empty products still hold: strides unchecked when m or n is 0, lda and ldb when k is 0.
template <class T>
void check_refuses_malformed_arguments(GemmFunction<T> f) {
    std::vector<T> a(64, T(1)), b(64, T(1)), c(64, T(0));
    auto call = [&](bool ta, bool tb, int m, int n, int k, int lda, int ldb, int ldc) {
        f(ta, tb, m, n, k, T(1), a.data(), lda, b.data(), ldb, T(0), c.data(), ldc);
    };
    using Catch::Contains;
    CHECK_THROWS_WITH(call(false, false, -1, 2, 2, 2, 2, 2), Contains("negative size"));
    CHECK_THROWS_WITH(call(false, false, 2, 2, -3, 2, 2, 2), Contains("negative size"));
    CHECK_THROWS_WITH(call(false, false, 2, 3, 2, 2, 3, 2), Contains("ldc below n"));
    CHECK_THROWS_WITH(call(false, false, 2, 2, 4, 3, 2, 2), Contains("lda below k"));
    CHECK_THROWS_WITH(call(true, false, 5, 2, 2, 4, 2, 2), Contains("lda below m"));
    CHECK_THROWS_WITH(call(false, false, 2, 5, 2, 2, 4, 5), Contains("ldb below n"));
    CHECK_THROWS_WITH(call(false, true, 2, 2, 6, 6, 5, 2), Contains("ldb below k"));
    CHECK_THROWS_AS(call(false, false, 2, 3, 2, 2, 3, 2), capsnet::Error);
    CHECK_NOTHROW(call(false, false, 0, 3, 2, 0, 0, 0));
    CHECK_NOTHROW(call(false, false, 3, 0, 2, 0, 0, 0));
    CHECK_NOTHROW(call(false, false, 2, 3, 0, 0, 0, 3));
    CHECK_NOTHROW(call(true, true, 2, 3, 4, 2, 4, 3));
}

}  // namespace capsnet_test
