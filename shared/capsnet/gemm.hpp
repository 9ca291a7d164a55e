// The GEMM interface of the core: every matrix product of the model goes through gemm<T>, which calls
// the active backend. The core ships a naive reference (the ground truth for tests) and a portable,
// cache-blocked xsimd implementation (the default, and the one wasm uses); native programs can plug in a
// BLAS (see native/cpu/gemm_openblas.hpp). All matrices are row-major, with the cblas conventions.
#pragma once

namespace capsnet {

// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major; op(X) = X or X^T. lda/ldb/ldc are
// the row strides of the stored matrices (as in cblas row-major): A is stored m x k (k x m when
// trans_a), B is stored k x n (n x k when trans_b). As in BLAS, beta == 0 overwrites C without reading
// it, k == 0 (or alpha == 0) gives C = beta * C, and m == 0 or n == 0 does nothing.
template <class T>
using GemmFunction = void (*)(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
                              const T* b, int ldb, T beta, T* c, int ldc);

// Throws Error naming the argument unless m, n, k and the strides describe stored matrices by the rules
// above (cblas's, with its allowances for empty products: nothing is checked for m == 0 or n == 0, and
// lda, ldb for k == 0). Every entry point below, and the OpenBLAS adapters, check in every build type.
void gemm_check_arguments(bool trans_a, bool trans_b, int m, int n, int k, int lda, int ldb, int ldc);

// Naive triple loop accumulating in double: slow, obviously right, the ground truth for the tests.
template <class T>
void gemm_reference(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
                    int ldb, T beta, T* c, int ldc);

// Portable SIMD implementation (packed panels, cache blocking, register-blocked micro-kernel).
// Single-threaded and thread-safe: callers may run several at once on disjoint outputs (gemm_parallel.hpp
// splits one product that way).
template <class T>
void gemm_xsimd(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                T beta, T* c, int ldc);

// Dispatches to the active backend.
template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
          T* c, int ldc);

struct GemmBackend {
    const char* name;
    GemmFunction<float> f32;
    GemmFunction<double> f64;
};

// The backend is a plain global, the process's one GEMM: a program sets it once at startup, before any
// thread calls gemm (the native programs in main(): native/cpu/gemm_openblas.hpp); nothing else changes
// it behind their back. Error for a backend with a missing name or function.
void gemm_set_backend(const GemmBackend& backend);
// The active backend; the default is {"xsimd", gemm_xsimd<float>, gemm_xsimd<double>}.
GemmBackend gemm_backend();

}  // namespace capsnet
