// The OpenBLAS GEMM backend for native programs: plugs cblas_sgemm / cblas_dgemm into the core's
// gemm<T> switch. Native only; the wasm build keeps the core's xsimd GEMM.
#pragma once

#include "capsnet/gemm.hpp"

namespace capsnet {

// {"openblas", ...}: row-major cblas_sgemm / cblas_dgemm. OpenBLAS's own threading applies (see
// openblas_set_num_threads); callers that run GEMMs from several threads should set it to 1.
GemmBackend gemm_openblas_backend();

// gemm_set_backend(gemm_openblas_backend()).
void gemm_use_openblas();

// What the native programs run (each selects it in main() with gemm_use_by_shape): OpenBLAS, except on the skinny products where the core's xsimd
// GEMM measured faster (gemm_bench, bench/README.md: 1.3-4x with m <= 8 rows or k <= 32, as in the
// decoder at small batches, its weight gradients and the capsule predictions);
// gemm_by_shape_uses_xsimd says which. A fixed rule, never a timing taken at run time, so the same
// inputs always give the same bits.
GemmBackend gemm_by_shape_backend();
bool gemm_by_shape_uses_xsimd(int m, int n, int k);
void gemm_use_by_shape();

}  // namespace capsnet
