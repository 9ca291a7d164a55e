// The SIMD layer of the core's hand-vectorised loops (the GEMM, the routing): xsimd's batches, or in
// the wasm build without SIMD128 (CAPSNET_WASM_SIMD=OFF, CAPSNET_NO_SIMD) a one-lane stand-in with the
// few operations those loops use (exp included), so the same code runs there on scalars. One lane keeps the GEMM's
// 6 x 2 micro-tile within V8's 16 float registers; a four-float stand-in (48 accumulators) measured no
// faster under node.
#pragma once

#include <cstddef>

#if defined(CAPSNET_NO_SIMD)
#include <cmath>
#include <memory>
#else
#include <xsimd/xsimd.hpp>
#endif

namespace capsnet {

#if defined(CAPSNET_NO_SIMD)
namespace simd {

template <class T>
struct batch {
    static constexpr std::size_t size = 1;
    T value;
    batch() = default;
    explicit batch(T x) : value(x) {}
    static batch load_unaligned(const T* p) { return batch(*p); }
    void store_unaligned(T* p) const { *p = value; }
    friend batch operator*(batch x, batch y) { return batch(x.value * y.value); }
    friend batch operator+(batch x, batch y) { return batch(x.value + y.value); }
};

template <class T>
batch<T> fma(batch<T> x, batch<T> y, batch<T> z) { return batch<T>(x.value * y.value + z.value); }

template <class T>
T hadd(batch<T> x) { return x.value; }

template <class T>
batch<T> exp(batch<T> x) { return batch<T>(std::exp(x.value)); }

template <class T, std::size_t>
using aligned_allocator = std::allocator<T>;

}  // namespace simd
#else
namespace simd = xsimd;
#endif

}  // namespace capsnet
