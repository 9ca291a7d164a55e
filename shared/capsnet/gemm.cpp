// The core's GEMM: the naive reference, the portable xsimd implementation, and the backend switch.
// gemm_xsimd follows the GotoBLAS/BLIS scheme: op(B) is packed in KC x NC blocks and op(A) in MC x KC
// blocks, each into panels that a register-blocked micro-kernel streams with unit stride, so the four
// transpose cases differ only in how the panels are packed. Edges use narrower kernel instances (fewer
// rows, fewer vectors) over zero-padded panels instead of scalar code. A skinny C is computed as C^T
// when that wastes fewer lanes, and a product with only a few rows (or columns) reads B in place,
// since packing it would cost more than the multiplication.
#include "capsnet/gemm.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "capsnet/error.hpp"
#include "capsnet/simd.hpp"

#if defined(__SSE2__)
// Only for the transposing pack; Emscripten maps these to wasm SIMD128 (with -msimd128 -msse4.1).
#include <emmintrin.h>
#endif

namespace capsnet {

void gemm_check_arguments(bool trans_a, bool trans_b, int m, int n, int k, int lda, int ldb, int ldc) {
    auto fail = [&](const std::string& problem) {
        throw Error("gemm: " + problem + " (m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " +
                    std::to_string(k) + ", lda " + std::to_string(lda) + ", ldb " + std::to_string(ldb) + ", ldc " +
                    std::to_string(ldc) + ")");
    };
    if (m < 0 || n < 0 || k < 0) fail("negative size");
    if (m == 0 || n == 0) return;
    if (ldc < n) fail("ldc below n");
    if (k == 0) return;
    if (lda < (trans_a ? m : k)) fail(trans_a ? "lda below m (A transposed)" : "lda below k");
    if (ldb < (trans_b ? k : n)) fail(trans_b ? "ldb below k (B transposed)" : "ldb below n");
}

// ---------------------------------------------------------------------------------------------------
// Reference

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
                    int ldb, T beta, T* c, int ldc) {
    gemm_check_arguments(trans_a, trans_b, m, n, k, lda, ldb, ldc);
    for (int i = 0; i < m; ++i) {
        for (int j = 0; j < n; ++j) {
            double sum = 0;
            for (int p = 0; p < k; ++p) {
                const T x = trans_a ? a[std::ptrdiff_t(p) * lda + i] : a[std::ptrdiff_t(i) * lda + p];
                const T y = trans_b ? b[std::ptrdiff_t(j) * ldb + p] : b[std::ptrdiff_t(p) * ldb + j];
                sum += double(x) * double(y);
            }
            T& out = c[std::ptrdiff_t(i) * ldc + j];
            // beta == 0 must not read C: 0 * NaN would keep garbage alive.
            out = beta == T(0) ? T(double(alpha) * sum) : T(double(alpha) * sum + double(beta) * double(out));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// xsimd implementation

namespace {

using Index = std::ptrdiff_t;

template <class T>
struct Blocking {
    using Batch = simd::batch<T>;
    static constexpr int lanes = int(Batch::size);
    // 512-bit arches have 32 vector registers, SSE/AVX (and V8's wasm SIMD on x86) 16. The micro-tile
    // needs mr * nv accumulators, nv registers for the row of B and one for the broadcast of A.
    static constexpr int registers = sizeof(T) * Batch::size >= 64 ? 32 : 16;
    static constexpr int mr = registers == 32 ? 12 : 6;
    static constexpr int nv = 2;
    static constexpr int nr = nv * lanes;
    // When B is read in place (few rows of A) a tile has fewer rows, and can afford more vectors: as many
    // as the registers hold, up to 4.
    static constexpr int wide_nv = 4;
    static constexpr int direct_vectors(int rows) {
        return std::max(1, std::min(wide_nv, (registers - 2) / (rows + 1)));
    }
    static constexpr int table_nv = std::max(nv, wide_nv);
    // The micro-panel of A (mr x kc) stays in L1 while the tile sweeps across the packed KC x NC block
    // of B, which stays in L2: nc is sized from that budget, so a short K gets a wide block.
    static constexpr int kc = 256;
    static constexpr int mc = mr * 16;
    static constexpr std::size_t b_block_bytes = std::size_t(1) << 20;
    // Up to one micro-panel of rows (or columns), B is not packed (see gemm_small).
    static constexpr int small = mr;
    // The dot-product kernel's tiles: up to 4 rows, and as many columns as the registers allow.
    static constexpr int dot_rows = 4, dot_cols_max = 8;
    static constexpr int dot_cols(int rows) { return std::min(dot_cols_max, (registers - rows - 2) / rows); }
};

// Element (i, j) of a matrix operand is data[i * rs + j * cs]: one of the strides is 1, and swapping
// them transposes the operand for free.
template <class T>
struct Operand {
    const T* data;
    Index rs;
    Index cs;
    Operand transposed() const { return {data, cs, rs}; }
};

int round_up(int x, int to) { return (x + to - 1) / to * to; }

// Packing buffers, per thread and kept between calls: the model calls GEMM thousands of times a batch.
template <class T>
T* scratch(int which, std::size_t size) {
    thread_local std::vector<T, simd::aligned_allocator<T, 64>> buffers[2];
    if (buffers[which].size() < size) buffers[which].resize(size);
    return buffers[which].data();
}

// Transposes a tile x tile block (rows `ld` apart) into dst (rows `dst_ld` apart). The SSE versions
// move a row per instruction instead of an element, which matters because a transposing pack of a big
// operand can cost as much as the product when the other dimension is small (256 x 36 x 20736).
#if defined(__SSE2__)
constexpr int transpose_tile(const float*) { return 4; }
constexpr int transpose_tile(const double*) { return 2; }

inline void transpose_block(const float* src, Index ld, float* dst, Index dst_ld) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ld);
    __m128 r2 = _mm_loadu_ps(src + 2 * ld), r3 = _mm_loadu_ps(src + 3 * ld);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + dst_ld, r1);
    _mm_storeu_ps(dst + 2 * dst_ld, r2);
    _mm_storeu_ps(dst + 3 * dst_ld, r3);
}

inline void transpose_block(const double* src, Index ld, double* dst, Index dst_ld) {
    const __m128d r0 = _mm_loadu_pd(src), r1 = _mm_loadu_pd(src + ld);
    _mm_storeu_pd(dst, _mm_unpacklo_pd(r0, r1));
    _mm_storeu_pd(dst + dst_ld, _mm_unpackhi_pd(r0, r1));
}
#else
template <class T>
constexpr int transpose_tile(const T*) { return 1; }

template <class T>
inline void transpose_block(const T* src, Index, T* dst, Index) { *dst = *src; }
#endif

template <class T>
constexpr int transpose_tile_of = transpose_tile(static_cast<const T*>(nullptr));

// Packs `lines` x `len` elements into panels of P lines: element (l, p) is src[l * line_stride +
// p * step_stride], and panel q holds, for each p, elements (q*P .. q*P+P-1, p) side by side, so the
// micro-kernel reads them with unit stride. Lines past `lines` in the last panel are zero, so partial
// tiles compute harmless zeros. One of the strides is 1 (see Operand).
template <class T, int P>
void pack_panels(int lines, int len, const T* src, Index line_stride, Index step_stride, T* dst) {
    const Index panel_size = Index(P) * len;
    if (line_stride == 1) {
        // The panel direction is contiguous: read each step's row once, front to back, and deal it out
        // to the panels. Reading panel by panel instead would walk `len` rows in parallel, a stride the
        // prefetchers and the TLB handle badly when the rows are long.
        for (int p = 0; p < len; ++p) {
            const T* s = src + p * step_stride;
            T* d = dst + Index(p) * P;
            int l0 = 0;
            // A fixed-size memcpy compiles to a few vector moves (std::copy_n here became a memmove call).
            for (; l0 + P <= lines; l0 += P, d += panel_size) std::memcpy(d, s + l0, sizeof(T) * P);
            if (l0 < lines) {
                std::copy_n(s + l0, lines - l0, d);
                std::fill(d + (lines - l0), d + P, T(0));
            }
        }
        return;
    }
    // Each line is contiguous along len: transpose tile by tile.
    assert(step_stride == 1);
    constexpr int tile = transpose_tile_of<T>;
    const int len_tiled = len / tile * tile;
    for (int l0 = 0; l0 < lines; l0 += P, dst += panel_size) {
        const int count = std::min(P, lines - l0);
        const T* s = src + l0 * line_stride;
        int l = 0;
        for (; l + tile <= count; l += tile) {
            const T* sl = s + l * line_stride;
            for (int p = 0; p < len_tiled; p += tile) transpose_block(sl + p, line_stride, dst + Index(p) * P + l, P);
            for (int p = len_tiled; p < len; ++p)
                for (int t = 0; t < tile; ++t) dst[Index(p) * P + l + t] = sl[t * line_stride + p];
        }
        for (; l < count; ++l)
            for (int p = 0; p < len; ++p) dst[Index(p) * P + l] = s[l * line_stride + p];
        if (count < P)
            for (int p = 0; p < len; ++p) std::fill(dst + Index(p) * P + count, dst + Index(p) * P + P, T(0));
    }
}

// c = x, or c = x + beta * c; beta == 0 must not read C (it may hold NaN garbage).
template <class T>
inline void update(T& c, T x, T beta) { c = beta == T(0) ? x : x + beta * c; }

// Stores rows x cols of `tile` (rows `tile_ld` apart, alpha already applied) into C(i, j) =
// c[i * rsc + j * csc], the partial and transposed tiles of the micro-kernel.
template <class T>
void store_tile(const T* tile, int tile_ld, int rows, int cols, T beta, T* c, Index rsc, Index csc) {
    if (rsc != 1) {
        for (int i = 0; i < rows; ++i)
            for (int j = 0; j < cols; ++j) update(c[i * rsc + j * csc], tile[i * tile_ld + j], beta);
        return;
    }
    // C is transposed (column j is contiguous): transpose small blocks, so each store is a short run.
    constexpr int t = transpose_tile_of<T>;
    const int rows_tiled = rows / t * t, cols_tiled = cols / t * t;
    for (int j0 = 0; j0 < cols_tiled; j0 += t) {
        for (int i0 = 0; i0 < rows_tiled; i0 += t) {
            alignas(16) T block[t * t];
            transpose_block(tile + i0 * tile_ld + j0, tile_ld, block, t);
            for (int q = 0; q < t; ++q) {
                T* cq = c + (j0 + q) * csc + i0;
                for (int r = 0; r < t; ++r) update(cq[r], block[q * t + r], beta);
            }
        }
        for (int j = j0; j < j0 + t; ++j)
            for (int i = rows_tiled; i < rows; ++i) update(c[i + j * csc], tile[i * tile_ld + j], beta);
    }
    for (int j = cols_tiled; j < cols; ++j)
        for (int i = 0; i < rows; ++i) update(c[i + j * csc], tile[i * tile_ld + j], beta);
}

// C[M, cols] = alpha * Apanel * Bpanel + beta * C for one micro-tile. Apanel is packed (kc steps of mr
// values, M used); Bpanel has kc rows `b_step` apart of V vectors, of which `cols` <= V * lanes are
// stored. C(i, j) is c[i * rsc + j * csc].
template <class T, int M, int V>
void micro_kernel(int kc, const T* a, const T* b, Index b_step, T alpha, T beta, T* c, Index rsc, Index csc,
                  int cols) {
    using Batch = simd::batch<T>;
    constexpr int lanes = Blocking<T>::lanes, mr = Blocking<T>::mr;
    Batch acc[M][V];
    for (int i = 0; i < M; ++i)
        for (int v = 0; v < V; ++v) acc[i][v] = Batch(T(0));
    for (int p = 0; p < kc; ++p, a += mr, b += b_step) {
        Batch bv[V];
        for (int v = 0; v < V; ++v) bv[v] = Batch::load_unaligned(b + v * lanes);
        for (int i = 0; i < M; ++i) {
            const Batch ai(a[i]);
            for (int v = 0; v < V; ++v) acc[i][v] = simd::fma(ai, bv[v], acc[i][v]);
        }
    }
    const Batch alpha_v(alpha);
    if (csc == 1 && cols == V * lanes) {
        const Batch beta_v(beta);
        for (int i = 0; i < M; ++i) {
            T* ci = c + i * rsc;
            for (int v = 0; v < V; ++v) {
                Batch r = acc[i][v] * alpha_v;
                if (beta != T(0)) r = simd::fma(beta_v, Batch::load_unaligned(ci + v * lanes), r);
                r.store_unaligned(ci + v * lanes);
            }
        }
        return;
    }
    alignas(64) T tile[M * V * lanes];
    for (int i = 0; i < M; ++i)
        for (int v = 0; v < V; ++v) (acc[i][v] * alpha_v).store_unaligned(tile + (i * V + v) * lanes);
    store_tile(tile, V * lanes, M, cols, beta, c, rsc, csc);
}

// C[M, N] = alpha * A[M, k] * B[N, k]^T + beta * C with A and B rows contiguous in k: dot products, for
// when so few rows of C share B that packing B would cost more than multiplying.
template <class T, int M, int N>
void dot_kernel(int k, const T* a, Index lda, const T* b, Index ldb, T alpha, T beta, T* c, Index rsc, Index csc) {
    using Batch = simd::batch<T>;
    constexpr int lanes = Blocking<T>::lanes;
    Batch acc[M * N];
    for (auto& x : acc) x = Batch(T(0));
    const int k_vec = k / lanes * lanes;
    for (int p = 0; p < k_vec; p += lanes) {
        Batch av[M];
        for (int i = 0; i < M; ++i) av[i] = Batch::load_unaligned(a + i * lda + p);
        for (int j = 0; j < N; ++j) {
            const Batch bj = Batch::load_unaligned(b + j * ldb + p);
            for (int i = 0; i < M; ++i) acc[i * N + j] = simd::fma(av[i], bj, acc[i * N + j]);
        }
    }
    for (int i = 0; i < M; ++i) {
        for (int j = 0; j < N; ++j) {
            // One horizontal sum per accumulator: xsimd 8.1's batched haddp returns its AVX-512 float
            // lanes out of order. (GCC 12 flags the _mm512_undefined_pd inside xsimd's AVX-512 double
            // hadd as uninitialized, a false positive.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
            T sum = simd::hadd(acc[i * N + j]);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
            for (int p = k_vec; p < k; ++p) sum += a[i * lda + p] * b[j * ldb + p];
            update(c[i * rsc + j * csc], alpha * sum, beta);
        }
    }
}

template <class T>
using MicroKernel = void (*)(int, const T*, const T*, Index, T, T, T*, Index, Index, int);
template <class T>
using DotKernel = void (*)(int, const T*, Index, const T*, Index, T, T, T*, Index, Index);

// Only the shapes some path uses are instantiated (wide tiles only with few rows), which keeps the
// compile time in check; the others stay null.
template <class T, int M, int V>
constexpr MicroKernel<T> micro_kernel_if_used() {
    if constexpr (V <= std::max(Blocking<T>::nv, Blocking<T>::direct_vectors(M)))
        return &micro_kernel<T, M, V>;
    else
        return nullptr;
}

template <class T, std::size_t... I>
constexpr std::array<MicroKernel<T>, sizeof...(I)> make_micro_kernels(std::index_sequence<I...>) {
    constexpr int nv = Blocking<T>::table_nv;
    return {{micro_kernel_if_used<T, int(I) / nv + 1, int(I) % nv + 1>()...}};
}

template <class T, int M, int N>
constexpr DotKernel<T> dot_kernel_if_used() {
    if constexpr (N <= Blocking<T>::dot_cols(M))
        return &dot_kernel<T, M, N>;
    else
        return nullptr;
}

template <class T, std::size_t... I>
constexpr std::array<DotKernel<T>, sizeof...(I)> make_dot_kernels(std::index_sequence<I...>) {
    constexpr int cols = Blocking<T>::dot_cols_max;
    return {{dot_kernel_if_used<T, int(I) / cols + 1, int(I) % cols + 1>()...}};
}

// micro_kernels[(M - 1) * table_nv + V - 1] computes an M-row, V-vector tile.
template <class T>
constexpr auto micro_kernels =
    make_micro_kernels<T>(std::make_index_sequence<Blocking<T>::mr * Blocking<T>::table_nv>());
// dot_kernels[(M - 1) * dot_cols_max + N - 1] computes an M x N tile.
template <class T>
constexpr auto dot_kernels =
    make_dot_kernels<T>(std::make_index_sequence<Blocking<T>::dot_rows * Blocking<T>::dot_cols_max>());

// Rough cost of the blocked product for an m x n output, in units of half a cycle on a core with two
// FMA and two load ports: a tile's k step issues M*V FMAs and M+V loads, and each KC block stores the
// tile, a vector at a time when C rows are contiguous and about an element at a time otherwise. Used
// only to pick between computing C and C^T, whichever wastes fewer lanes on edges (n = 36 with
// 32-float tiles, say).
template <class T>
double plan_cost(int m, int n, int k, bool transposed_store) {
    using B = Blocking<T>;
    const int k_blocks = (k + B::kc - 1) / B::kc;
    const int row_counts[2] = {m / B::mr, m % B::mr ? 1 : 0};
    const int row_sizes[2] = {B::mr, m % B::mr};
    const int col_counts[2] = {n / B::nr, n % B::nr ? 1 : 0};
    const int col_vectors[2] = {B::nv, (n % B::nr + B::lanes - 1) / B::lanes};
    double cost = 0;
    for (int r = 0; r < 2; ++r) {
        for (int s = 0; s < 2; ++s) {
            const int rows = row_sizes[r], vectors = col_vectors[s];
            const double step = std::max(rows * vectors, rows + vectors);
            const double store = 2.0 * rows * vectors * (transposed_store || s == 1 ? B::lanes : 1);
            cost += double(row_counts[r]) * col_counts[s] * (double(k) * step + k_blocks * store);
        }
    }
    return cost;
}

// C = alpha * A * B + beta * C for strided operands, with m, n, k > 0: packs both operands and runs the
// micro-kernel over the blocks.
template <class T>
void gemm_packed(int m, int n, int k, T alpha, Operand<T> a, Operand<T> b, T beta, T* c, Index rsc, Index csc) {
    using B = Blocking<T>;
    // Split k evenly so the last block is not a sliver (k = 260 would otherwise give 256 + 4).
    const int k_blocks = (k + B::kc - 1) / B::kc;
    const int kc_max = (k + k_blocks - 1) / k_blocks;
    const int nc_block = std::max(B::nr, int(B::b_block_bytes / (sizeof(T) * kc_max)) / B::nr * B::nr);
    const int mc_max = round_up(std::min(m, B::mc), B::mr);
    const int nc_max = round_up(std::min(n, nc_block), B::nr);
    T* const a_pack = scratch<T>(0, std::size_t(mc_max) * kc_max);
    T* const b_pack = scratch<T>(1, std::size_t(nc_max) * kc_max);

    for (int jc = 0; jc < n; jc += nc_block) {
        const int nc = std::min(nc_block, n - jc);
        for (int pc = 0; pc < k; pc += kc_max) {
            const int kc = std::min(kc_max, k - pc);
            // Later K blocks add to what the first one wrote.
            const T beta_block = pc == 0 ? beta : T(1);
            pack_panels<T, B::nr>(nc, kc, b.data + pc * b.rs + jc * b.cs, b.cs, b.rs, b_pack);
            for (int ic = 0; ic < m; ic += B::mc) {
                const int mc = std::min(B::mc, m - ic);
                pack_panels<T, B::mr>(mc, kc, a.data + ic * a.rs + pc * a.cs, a.rs, a.cs, a_pack);
                // Rows outside, columns inside: the A panel stays in L1, B panels stream from L2, and C
                // is written a few rows at a time front to back (columns outside would walk all of C's
                // rows at once, which thrashes the TLB when they are long).
                for (int ir = 0; ir < mc; ir += B::mr) {
                    const int rows = std::min(B::mr, mc - ir);
                    const T* a_panel = a_pack + Index(ir) * kc;
                    for (int jr = 0; jr < nc; jr += B::nr) {
                        const int cols = std::min(B::nr, nc - jr);
                        const int vectors = (cols + B::lanes - 1) / B::lanes;
                        micro_kernels<T>[(rows - 1) * B::table_nv + vectors - 1](
                            kc, a_panel, b_pack + Index(jr) * kc, B::nr, alpha, beta_block,
                            c + (ic + ir) * rsc + (jc + jr) * csc, rsc, csc, cols);
                    }
                }
            }
        }
    }
}

// The same product when m <= Blocking::small: B is used by so few rows that packing it would cost more
// than the product, so the kernels read it in place. With B's rows contiguous (along n) the micro-
// kernel streams them directly (only a last partial panel is packed, to keep loads inside B); with B's
// columns contiguous (along k) the dot-product kernel does.
template <class T>
void gemm_small(int m, int n, int k, T alpha, Operand<T> a, Operand<T> b, T beta, T* c, Index rsc, Index csc) {
    using B = Blocking<T>;
    if (b.cs == 1) {
        const int k_blocks = (k + B::kc - 1) / B::kc;
        const int kc_max = (k + k_blocks - 1) / k_blocks;
        // Loads must stay inside B: columns past the last whole vector go through a padded copy.
        const int n_vec = n / B::lanes * B::lanes;
        T* const a_pack = scratch<T>(0, std::size_t(round_up(m, B::mr)) * kc_max);
        T* const b_tail = scratch<T>(1, std::size_t(B::lanes) * kc_max);
        for (int pc = 0; pc < k; pc += kc_max) {
            const int kc = std::min(kc_max, k - pc);
            const T beta_block = pc == 0 ? beta : T(1);
            pack_panels<T, B::mr>(m, kc, a.data + pc * a.cs, a.rs, a.cs, a_pack);
            const T* b_block = b.data + pc * b.rs;
            if (n_vec < n) pack_panels<T, B::lanes>(n - n_vec, kc, b_block + n_vec, 1, b.rs, b_tail);
            for (int ir = 0; ir < m; ir += B::mr) {
                const int rows = std::min(B::mr, m - ir);
                const MicroKernel<T>* row_kernels = micro_kernels<T>.data() + (rows - 1) * B::table_nv;
                const T* a_panel = a_pack + Index(ir) * kc;
                T* c_rows = c + ir * rsc;
                const int vectors = B::direct_vectors(rows), width = vectors * B::lanes;
                int j = 0;
                for (; j + width <= n_vec; j += width)
                    row_kernels[vectors - 1](kc, a_panel, b_block + j, b.rs, alpha, beta_block, c_rows + j * csc, rsc,
                                             csc, width);
                if (j < n_vec)
                    row_kernels[(n_vec - j) / B::lanes - 1](kc, a_panel, b_block + j, b.rs, alpha, beta_block,
                                                            c_rows + j * csc, rsc, csc, n_vec - j);
                if (n_vec < n)
                    row_kernels[0](kc, a_panel, b_tail, B::lanes, alpha, beta_block, c_rows + n_vec * csc, rsc, csc,
                                   n - n_vec);
            }
        }
        return;
    }
    assert(b.rs == 1);
    const T* a_rows = a.data;
    Index lda = a.rs;
    if (a.cs != 1) {
        // Rows of A contiguous in k, as the dot products want; cheap, A has few rows.
        T* const a_copy = scratch<T>(0, std::size_t(m) * k);
        for (int i = 0; i < m; ++i)
            for (int p = 0; p < k; ++p) a_copy[Index(i) * k + p] = a.data[i * a.rs + p * a.cs];
        a_rows = a_copy;
        lda = k;
    }
    // Columns outside: a few rows of B stay in L1 while every row group of A passes them.
    const int tile_cols = B::dot_cols(std::min(m, B::dot_rows));
    for (int j0 = 0; j0 < n; j0 += tile_cols) {
        const int cols = std::min(tile_cols, n - j0);
        for (int i0 = 0; i0 < m; i0 += B::dot_rows) {
            const int rows = std::min(B::dot_rows, m - i0);
            const int cols_here = std::min(cols, B::dot_cols(rows));
            for (int j = j0; j < j0 + cols; j += cols_here)
                dot_kernels<T>[(rows - 1) * B::dot_cols_max + std::min(cols_here, j0 + cols - j) - 1](
                    k, a_rows + i0 * lda, lda, b.data + j * b.cs, b.cs, alpha, beta, c + i0 * rsc + j * csc, rsc, csc);
        }
    }
}

template <class T>
void scale_c(int m, int n, T beta, T* c, int ldc) {
    for (int i = 0; i < m; ++i) {
        T* ci = c + Index(i) * ldc;
        if (beta == T(0))
            std::fill_n(ci, n, T(0));
        else if (beta != T(1))
            for (int j = 0; j < n; ++j) ci[j] *= beta;
    }
}

}  // namespace

template <class T>
void gemm_xsimd(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                T beta, T* c, int ldc) {
    gemm_check_arguments(trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == T(0)) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    const Operand<T> op_a = trans_a ? Operand<T>{a, 1, lda} : Operand<T>{a, lda, 1};
    const Operand<T> op_b = trans_b ? Operand<T>{b, 1, ldb} : Operand<T>{b, ldb, 1};
    // C^T = op(B)^T op(A)^T: the same code on swapped operands computes C transposed, which helps when
    // C is skinny.
    constexpr int small = Blocking<T>::small;
    if (m <= small)
        gemm_small<T>(m, n, k, alpha, op_a, op_b, beta, c, ldc, 1);
    else if (n <= small)
        gemm_small<T>(n, m, k, alpha, op_b.transposed(), op_a.transposed(), beta, c, 1, ldc);
    else if (plan_cost<T>(n, m, k, true) < plan_cost<T>(m, n, k, false))
        gemm_packed<T>(n, m, k, alpha, op_b.transposed(), op_a.transposed(), beta, c, 1, ldc);
    else
        gemm_packed<T>(m, n, k, alpha, op_a, op_b, beta, c, ldc, 1);
}

// ---------------------------------------------------------------------------------------------------
// Dispatch

namespace {

GemmBackend active_backend{"xsimd", gemm_xsimd<float>, gemm_xsimd<double>};

}  // namespace

void gemm_set_backend(const GemmBackend& backend) {
    if (!backend.name || !backend.f32 || !backend.f64)
        throw Error("gemm_set_backend: a backend needs a name and both functions");
    active_backend = backend;
}

GemmBackend gemm_backend() { return active_backend; }

template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
          T* c, int ldc) {
    gemm_check_arguments(trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if constexpr (std::is_same_v<T, float>)
        active_backend.f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        active_backend.f64(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#define CAPSNET_GEMM_INSTANTIATE(T)                                                                                 \
    template void gemm_reference<T>(bool, bool, int, int, int, T, const T*, int, const T*, int, T, T*, int);       \
    template void gemm_xsimd<T>(bool, bool, int, int, int, T, const T*, int, const T*, int, T, T*, int);           \
    template void gemm<T>(bool, bool, int, int, int, T, const T*, int, const T*, int, T, T*, int);
CAPSNET_GEMM_INSTANTIATE(float)
CAPSNET_GEMM_INSTANTIATE(double)
#undef CAPSNET_GEMM_INSTANTIATE

}  // namespace capsnet
