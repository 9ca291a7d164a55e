// The threaded GEMM (see gemm_parallel.hpp).
#include "capsnet/gemm_parallel.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>

#include "capsnet/error.hpp"
#include "capsnet/thread_pool.hpp"

namespace capsnet {

namespace {

struct ParallelGemm {
    std::unique_ptr<ThreadPool> pool;
    double min_work = gemm_parallel_default_min_work;
    std::mutex busy;  // held while the pool runs a product
};

ParallelGemm& state() {
    static ParallelGemm parallel;
    return parallel;
}

// Block boundaries in multiples of `align` (whole SIMD tiles, so no block gets a ragged edge it
// would not have had anyway): part p of `parts` over [0, size).
int boundary(int p, int parts, int size, int align) {
    if (p >= parts) return size;
    const long long units = (static_cast<long long>(size) + align - 1) / align;
    return static_cast<int>(std::min<long long>(size, units * p / parts * align));
}

}  // namespace

void gemm_parallel_set_threads(int threads, double min_work_per_thread) {
    if (threads < 1) throw Error("gemm_parallel: threads must be at least 1, not " + std::to_string(threads));
    ParallelGemm& parallel = state();
    const std::lock_guard<std::mutex> lock(parallel.busy);
    parallel.pool.reset();
    if (threads > 1) parallel.pool = std::make_unique<ThreadPool>(threads);
    parallel.min_work = min_work_per_thread;
}

int gemm_parallel_threads() {
    const ParallelGemm& parallel = state();
    return parallel.pool ? parallel.pool->size() : 1;
}

template <class T>
void gemm_parallel(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                   T beta, T* c, int ldc) {
    ParallelGemm& parallel = state();
    const double work = static_cast<double>(m) * n * std::max(k, 1);
    const int wanted = parallel.pool ? std::min<int>(parallel.pool->size(), static_cast<int>(work / parallel.min_work)) : 1;
    // Split the longer side of C, in whole micro-tiles (16 columns covers every SIMD width here; 6 rows
    // is the micro-kernel's height), into at most one block per thread, each at least one tile.
    constexpr int column_tile = 16, row_tile = 6;
    const bool by_columns = n / column_tile >= m / row_tile;
    const int tiles = by_columns ? (n + column_tile - 1) / column_tile : (m + row_tile - 1) / row_tile;
    const int parts = std::min(wanted, tiles);
    std::unique_lock<std::mutex> lock(parallel.busy, std::defer_lock);
    if (parts < 2 || !lock.try_lock()) {
        gemm_xsimd<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    parallel.pool->run(parts, [&](int p) {
        if (by_columns) {
            const int first = boundary(p, parts, n, column_tile), last = boundary(p + 1, parts, n, column_tile);
            // Columns [first, last) of op(B) and of C.
            const T* b_part = trans_b ? b + static_cast<std::ptrdiff_t>(first) * ldb : b + first;
            gemm_xsimd<T>(trans_a, trans_b, m, last - first, k, alpha, a, lda, b_part, ldb, beta, c + first, ldc);
        } else {
            const int first = boundary(p, parts, m, row_tile), last = boundary(p + 1, parts, m, row_tile);
            // Rows [first, last) of op(A) and of C.
            const T* a_part = trans_a ? a + first : a + static_cast<std::ptrdiff_t>(first) * lda;
            gemm_xsimd<T>(trans_a, trans_b, last - first, n, k, alpha, a_part, lda, b, ldb, beta,
                          c + static_cast<std::ptrdiff_t>(first) * ldc, ldc);
        }
    });
}

GemmBackend gemm_parallel_backend() { return {"xsimd-threads", gemm_parallel<float>, gemm_parallel<double>}; }

template void gemm_parallel<float>(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);
template void gemm_parallel<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double,
                                    double*, int);

}  // namespace capsnet
