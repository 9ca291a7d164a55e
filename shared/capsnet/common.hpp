// Common definitions of the CapsNet core: the tensor types and the error type every module uses.
#pragma once

// xtensor's loops only vectorise with XTENSOR_USE_XSIMD, and the macro also changes the containers'
// allocator, so every translation unit must agree: the build defines it for all targets (a define in
// this header would come too late for files that include an xtensor header first). The one build
// without it is wasm without SIMD128 (CAPSNET_WASM_SIMD=OFF), which defines CAPSNET_NO_SIMD instead.
#if !defined(XTENSOR_USE_XSIMD) && !defined(CAPSNET_NO_SIMD)
#error "XTENSOR_USE_XSIMD (or CAPSNET_NO_SIMD) must be defined by the build (see CMakeLists.txt)"
#endif

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "capsnet/error.hpp"

namespace capsnet {

// Fixed-rank, row-major tensors: the rank is part of the type so a shape mistake is a compile error.
template <class T, std::size_t Rank>
using Tensor = xt::xtensor<T, Rank>;

// The whole file as bytes; Error naming the path when it is missing, a directory or unreadable.
std::vector<std::uint8_t> read_whole_file(const std::string& path);

// Writes path + ".tmp", checks the stream, then renames it over path: a crash, a kill -9 or a full disk
// never leaves a half-written file under the real name. Error naming the path otherwise.
void write_whole_file_atomically(const std::string& path, const std::vector<std::uint8_t>& bytes);

}  // namespace capsnet
