// Adapts the core's GEMM signature to cblas (row-major), for float and double.
#include "cpu/gemm_openblas.hpp"

#include <type_traits>

#include <cblas.h>

namespace capsnet {

namespace {

CBLAS_TRANSPOSE cblas_trans(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

// cblas rejects leading dimensions below 1 (and prints an error) even when the matrix is empty or
// unread, which the core's semantics allow; m == 0 or n == 0 is a no-op there anyway.
int at_least_one(int ld) { return ld < 1 ? 1 : ld; }

void gemm_openblas_f32(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                       const float* b, int ldb, float beta, float* c, int ldc) {
    gemm_check_arguments(trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), m, n, k, alpha, a,
                at_least_one(lda), b, at_least_one(ldb), beta, c, ldc);
}

void gemm_openblas_f64(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a, int lda,
                       const double* b, int ldb, double beta, double* c, int ldc) {
    gemm_check_arguments(trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    cblas_dgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), m, n, k, alpha, a,
                at_least_one(lda), b, at_least_one(ldb), beta, c, ldc);
}

template <class T>
void gemm_by_shape(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                   T beta, T* c, int ldc) {
    if (gemm_by_shape_uses_xsimd(m, n, k))
        gemm_xsimd<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if constexpr (std::is_same_v<T, float>)
        gemm_openblas_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_openblas_f64(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

bool gemm_by_shape_uses_xsimd(int m, int, int k) { return m <= 8 || k <= 32; }

GemmBackend gemm_by_shape_backend() { return {"openblas+xsimd", gemm_by_shape<float>, gemm_by_shape<double>}; }

void gemm_use_by_shape() { gemm_set_backend(gemm_by_shape_backend()); }

GemmBackend gemm_openblas_backend() { return {"openblas", gemm_openblas_f32, gemm_openblas_f64}; }

void gemm_use_openblas() { gemm_set_backend(gemm_openblas_backend()); }

}  // namespace capsnet
