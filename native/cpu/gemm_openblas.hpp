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

}  // namespace capsnet
