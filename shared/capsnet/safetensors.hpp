// A generic reader and writer for the safetensors format (8-byte little-endian header length, a JSON
// header mapping tensor names to dtype/shape/byte range plus optional string metadata, then one byte
// buffer), so model files interoperate with `safetensors` in Python. The parser treats its input as
// hostile: every malformed file ends in a capsnet::Error naming the source and the problem, never in a
// crash or an out-of-bounds read. Only the dtypes the project uses are supported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet {

enum class DType { F32, F16, I8, F64 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // as spelled in the header: "F32", "F16", "I8", "F64"

// One tensor as stored: raw little-endian bytes, not converted, so F16 and I8 files keep their size.
struct StoredTensor {
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;  // little-endian raw data, element_count() * dtype_size(dtype) bytes

    // Product of the shape (1 for a scalar); throws Error on a negative dimension or overflow.
    std::int64_t element_count() const;
};

struct SafeTensors {
    std::map<std::string, std::string> metadata;  // the header's "__metadata__"
    std::map<std::string, StoredTensor> tensors;
};

// source_name only labels error messages (a path, or e.g. "upload").
SafeTensors safetensors_parse(const std::uint8_t* data, std::size_t size, const std::string& source_name);
SafeTensors safetensors_read(const std::string& path);  // reads the whole file, then parses

// Tensors are laid out sorted by name in a compact buffer and the header is space-padded to a multiple
// of 8 bytes, as the reference implementation does. Throws Error if a tensor's bytes do not match its
// shape and dtype.
std::vector<std::uint8_t> safetensors_serialize(const SafeTensors& file);
// Atomic: writes path + ".tmp", checks the stream, then renames it over path, so a crash or a full disk
// never leaves a half-written model under the real name.
void safetensors_write(const std::string& path, const SafeTensors& file);

// "[256, 1, 9, 9]": shapes as error messages print them.
std::string shape_text(const std::vector<std::int64_t>& shape);

StoredTensor stored_tensor_f32(std::vector<std::int64_t> shape, const float* values);  // copies the values
// F32, F64 and F16 are converted; I8 throws Error (dequantisation needs scales, done by the caller).
std::vector<float> stored_tensor_to_f32(const StoredTensor& tensor, const std::string& name_for_errors);

// IEEE 754 binary16 conversions: round-to-nearest-even, with infinities, NaNs and subnormals.
std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t bits);

}  // namespace capsnet
