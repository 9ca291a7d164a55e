// One product split across threads: C in contiguous blocks of columns (or of rows, when C is narrow),
// each block computed by gemm_xsimd on its own thread. Used where there is no threaded BLAS: the
// browser demo (wasm with pthreads), whose every-layer fine-tuning step is three large convolution
// products, and the benchmarks. The blocks cover disjoint parts of C and each is the same computation
// gemm_xsimd does for the whole, so the result equals gemm_xsimd's up to the order of its K blocks,
// which does not change (K is never split).
#pragma once

#include "capsnet/gemm.hpp"

namespace capsnet {

// Products below this many multiply-adds (m * n * k) per thread run on the calling thread: handing
// work to a thread costs tens of microseconds in a browser, a 1 Mflop product about 50 us in wasm.
constexpr double gemm_parallel_default_min_work = 1 << 19;

// Sets the number of threads (the calling thread and threads - 1 workers, kept until the next call);
// 1 runs everything on the calling thread. Like gemm_set_backend: call it before any thread calls gemm.
void gemm_parallel_set_threads(int threads, double min_work_per_thread = gemm_parallel_default_min_work);
int gemm_parallel_threads();

// The product, split as above. A call made while the pool is busy (from one of its own jobs, or from a
// second thread) runs on its calling thread, so nested and concurrent calls are safe.
template <class T>
void gemm_parallel(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                   T beta, T* c, int ldc);

// {"xsimd-threads", gemm_parallel<float>, gemm_parallel<double>} for gemm_set_backend (the thread count
// is gemm_parallel_threads()).
GemmBackend gemm_parallel_backend();

}  // namespace capsnet
