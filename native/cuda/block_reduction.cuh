// Deterministic sums for the kernels: a fixed binary tree inside a block, and a two-pass sum over many
// blocks (the losses). No atomics anywhere: the order of every addition is fixed by the shape alone, so
// the same inputs give the same bits, run after run.
//
// The multi-block sum: a grid whose size depends only on the element count writes one double per block
// (each thread's grid-stride partial, then the block's tree), and one block adds those partials by the
// same tree. The whole GPU shares the first pass; a single block summing a B*784 reconstruction error
// would leave all but one multiprocessor idle.
#pragma once

#include <algorithm>
#include <cstddef>

namespace capsnet::cuda {

// Sum of `value` over the block's Threads threads by a fixed binary tree, so the order of additions
// never depends on timing. Every thread of the block must call it; the result is valid in thread 0.
template <int Threads, class T>
__device__ T block_tree_sum(T value, T* shared) {
    static_assert((Threads & (Threads - 1)) == 0, "the tree needs a power-of-two block");
    shared[threadIdx.x] = value;
    __syncthreads();
    for (int half = Threads / 2; half > 0; half /= 2) {
        if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    return shared[0];
}

constexpr int reduction_threads = 256;
constexpr int reduction_max_blocks = 1024;  // the partials buffer's length
constexpr std::size_t reduction_items_per_thread = 8;  // fewer, fuller blocks: each adds one partial

// Blocks of the first pass for `count` items: enough that each thread takes about 8, at most 1024.
inline int reduction_blocks(std::size_t count) {
    const std::size_t per_block = reduction_threads * reduction_items_per_thread;
    return static_cast<int>(std::clamp<std::size_t>((count + per_block - 1) / per_block, 1, reduction_max_blocks));
}

// The second pass, one block of Threads: *out += float(factor * (sum of partials[0..count)) / divisor),
// the expression the CPU losses evaluate in double. (A template, so each .cu that includes this header
// may instantiate it without a duplicate symbol.)
template <int Threads = reduction_threads>
__global__ void add_block_partials_kernel(const double* partials, int count, double factor, double divisor,
                                          float* out) {
    __shared__ double shared[Threads];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += Threads) sum += partials[i];
    const double total = block_tree_sum<Threads>(sum, shared);
    if (threadIdx.x == 0) *out += static_cast<float>(factor * total / divisor);
}

}  // namespace capsnet::cuda
