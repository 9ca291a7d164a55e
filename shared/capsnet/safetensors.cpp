// The safetensors reader and writer, and the binary16 conversions used for F16 files. Parsing validates
// the header completely (types, ranges, sizes, overlaps) before any tensor byte is copied, and nlohmann
// json runs with exceptions off so no library exception can escape as anything but capsnet::Error.
#include "capsnet/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

namespace capsnet {

namespace {

using json = nlohmann::json;

// What a model file or a checkpoint can need, with room to spare: a model's header is ~2 KB with 19
// entries, a checkpoint's ~4.3 KB with 37. The bounds keep a hostile header's memory small: the parsed
// JSON of a header takes up to ~16x its size (1.86 million empty tensors in 100 MiB took 1.6 GB before
// these bounds), so 1 MiB costs at most tens of MB.
constexpr std::uint64_t max_header_bytes = 1024 * 1024;
constexpr std::size_t max_tensors = 1024;

bool parse_dtype(const std::string& text, DType& dtype) {
    for (DType candidate : {DType::F32, DType::F16, DType::I8, DType::F64}) {
        if (text == dtype_name(candidate)) {
            dtype = candidate;
            return true;
        }
    }
    return false;
}

// nlohmann stores non-negative literals as unsigned and negative ones as signed; anything else
// (floats, strings, integers beyond int64) is rejected.
bool non_negative_int64(const json& value, std::int64_t& out) {
    if (value.is_number_unsigned()) {
        const auto v = value.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
        out = static_cast<std::int64_t>(v);
        return true;
    }
    if (value.is_number_integer()) {
        const auto v = value.get<std::int64_t>();
        if (v < 0) return false;
        out = v;
        return true;
    }
    return false;
}

// Element count of a validated (non-negative) shape, or false when it exceeds max_elements: an
// unchecked product can wrap (2^40 * 2^40 is 0 in 64 bits) and match a tiny byte range.
bool bounded_element_count(const std::vector<std::int64_t>& shape, std::uint64_t max_elements, std::uint64_t& out) {
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
        out = 0;
        return true;
    }
    std::uint64_t count = 1;
    for (std::int64_t dim : shape) {
        const auto d = static_cast<std::uint64_t>(dim);
        if (count > max_elements / d) return false;
        count *= d;
    }
    out = count;
    return true;
}


struct Range {
    std::uint64_t begin, end;
    const std::string* name;
};

SafeTensors parse_header(const json& header, const std::uint8_t* buffer, std::uint64_t buffer_size,
                         const std::string& source) {
    if (!header.is_object())
        throw Error(source + ": safetensors header is not a JSON object (found " + header.type_name() + ")");
    const std::size_t tensor_count = header.size() - header.count("__metadata__");
    if (tensor_count > max_tensors)
        throw Error(source + ": header lists " + std::to_string(tensor_count) + " tensors, more than the " +
                    std::to_string(max_tensors) + " a model file or checkpoint can need");
    SafeTensors file;
    std::vector<Range> ranges;
    for (const auto& item : header.items()) {
        const std::string& name = item.key();
        const json& entry = item.value();
        if (name == "__metadata__") {
            if (!entry.is_object()) throw Error(source + ": __metadata__ is not a JSON object");
            for (const auto& meta : entry.items()) {
                if (!meta.value().is_string())
                    throw Error(source + ": __metadata__ value for '" + meta.key() + "' is not a string (found " +
                                meta.value().type_name() + ")");
                file.metadata[meta.key()] = meta.value().get<std::string>();
            }
            continue;
        }
        const std::string where = source + ": tensor '" + name + "'";
        if (!entry.is_object()) throw Error(where + ": header entry is not a JSON object");

        const auto dtype_it = entry.find("dtype");
        if (dtype_it == entry.end()) throw Error(where + ": missing dtype");
        if (!dtype_it->is_string()) throw Error(where + ": dtype is not a string");
        StoredTensor tensor{DType::F32, {}, {}};
        const std::string dtype_text = dtype_it->get<std::string>();
        if (!parse_dtype(dtype_text, tensor.dtype))
            throw Error(where + ": unsupported dtype '" + dtype_text + "' (supported: F32, F16, I8, F64)");

        const auto shape_it = entry.find("shape");
        if (shape_it == entry.end()) throw Error(where + ": missing shape");
        if (!shape_it->is_array()) throw Error(where + ": shape is not an array");
        for (const json& dim : *shape_it) {
            std::int64_t value = 0;
            if (!non_negative_int64(dim, value))
                throw Error(where + ": shape must be an array of non-negative integers, found " + dim.dump());
            tensor.shape.push_back(value);
        }
        const std::size_t element_size = dtype_size(tensor.dtype);
        std::uint64_t elements = 0;
        if (!bounded_element_count(tensor.shape, std::numeric_limits<std::uint64_t>::max() / element_size, elements))
            throw Error(where + ": element count of shape " + shape_text(tensor.shape) + " overflows");

        const auto offsets_it = entry.find("data_offsets");
        if (offsets_it == entry.end()) throw Error(where + ": missing data_offsets");
        std::int64_t begin = 0, end = 0;
        if (!offsets_it->is_array() || offsets_it->size() != 2 || !non_negative_int64((*offsets_it)[0], begin) ||
            !non_negative_int64((*offsets_it)[1], end))
            throw Error(where + ": data_offsets must be two non-negative integers, found " + offsets_it->dump());
        const auto ubegin = static_cast<std::uint64_t>(begin), uend = static_cast<std::uint64_t>(end);
        if (ubegin > uend || uend > buffer_size)
            throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "] out of range for the " + std::to_string(buffer_size) +
                        "-byte data buffer (file truncated?)");
        const std::uint64_t expected = elements * element_size;  // bounded above, cannot wrap
        if (uend - ubegin != expected)
            throw Error(where + ": data_offsets span " + std::to_string(uend - ubegin) + " bytes but shape " +
                        shape_text(tensor.shape) + " of " + dtype_text + " needs " + std::to_string(expected) +
                        " (size mismatch)");

        tensor.bytes.assign(buffer + ubegin, buffer + uend);
        ranges.push_back({ubegin, uend, &file.tensors.emplace(name, std::move(tensor)).first->first});
    }

    // The tensors must tile the buffer exactly, as the reference implementation requires: no overlap, no
    // gap, no unused bytes at the end (a file that uses 2 of its 856 data bytes is not one we wrote).
    // Empty tensors occupy no bytes, so they take no part in this.
    ranges.erase(std::remove_if(ranges.begin(), ranges.end(), [](const Range& r) { return r.begin == r.end; }),
                 ranges.end());
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    std::uint64_t covered = 0;  // bytes [0, covered) belong to the tensors checked so far
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        if (ranges[i].begin < covered)
            throw Error(source + ": tensors '" + *ranges[i - 1].name + "' and '" + *ranges[i].name +
                        "' overlap (bytes [" + std::to_string(ranges[i - 1].begin) + ", " +
                        std::to_string(ranges[i - 1].end) + ") and [" + std::to_string(ranges[i].begin) + ", " +
                        std::to_string(ranges[i].end) + "))");
        if (ranges[i].begin > covered)
            throw Error(source + ": bytes [" + std::to_string(covered) + ", " + std::to_string(ranges[i].begin) +
                        ") of the data buffer belong to no tensor (before '" + *ranges[i].name +
                        "'); the tensors must cover the buffer without gaps");
        covered = ranges[i].end;
    }
    if (covered != buffer_size)
        throw Error(source + ": the last " + std::to_string(buffer_size - covered) + " bytes of the " +
                    std::to_string(buffer_size) + "-byte data buffer belong to no tensor (bytes [" +
                    std::to_string(covered) + ", " + std::to_string(buffer_size) + ") unused)");
    return file;
}

}  // namespace

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::F32: return 4;
        case DType::F16: return 2;
        case DType::I8: return 1;
        case DType::F64: return 8;
    }
    return 1;  // unreachable for valid enumerators; keeps divisions by the size safe
}

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::I8: return "I8";
        case DType::F64: return "F64";
    }
    return "?";
}

std::int64_t StoredTensor::element_count() const {
    std::int64_t count = 1;
    for (std::int64_t dim : shape) {
        if (dim < 0) throw Error("tensor shape " + shape_text(shape) + " has a negative dimension");
        if (dim != 0 && count > std::numeric_limits<std::int64_t>::max() / dim)
            throw Error("tensor shape " + shape_text(shape) + " has too many elements");
        count *= dim;
    }
    return count;
}

SafeTensors safetensors_parse(const std::uint8_t* data, std::size_t size, const std::string& source_name) {
    if (size < 8)
        throw Error(source_name + ": file is " + std::to_string(size) +
                    " bytes, too short for a safetensors file (needs at least the 8-byte header length)");
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data[i];
    if (header_length > max_header_bytes)
        throw Error(source_name + ": header length " + std::to_string(header_length) +
                    " is implausibly large (limit " + std::to_string(max_header_bytes) +
                    " bytes, a model's is ~2 KB); not a safetensors file?");
    if (header_length > size - 8)
        throw Error(source_name + ": header length " + std::to_string(header_length) + " exceeds the " +
                    std::to_string(size - 8) + " bytes after the length field (file truncated?)");

    const char* header_begin = reinterpret_cast<const char*>(data + 8);
    // JSON text cannot hold a raw NUL, but the parser stops at one and ignores the rest ({}\0garbage).
    if (const void* nul = std::memchr(header_begin, '\0', header_length))
        throw Error(source_name + ": safetensors header has a NUL byte at offset " +
                    std::to_string(static_cast<const char*>(nul) - header_begin) + " (JSON text cannot contain one)");
    // The parser keeps the last of duplicate keys silently; a file naming a tensor (or a metadata key, or
    // a tensor's dtype) twice is ambiguous, and the reference implementation rejects it. The callback
    // sees every key in order, with a set of the keys seen per open object.
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    const json::parser_callback_t find_duplicates = [&](int, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
            open_objects.emplace_back();
        } else if (event == json::parse_event_t::object_end) {
            if (!open_objects.empty()) open_objects.pop_back();
        } else if (event == json::parse_event_t::key && !open_objects.empty() && duplicate.empty() &&
                   parsed.is_string() && !open_objects.back().insert(parsed.get<std::string>()).second) {
            duplicate = parsed.get<std::string>();
        }
        return true;
    };
    const json header = json::parse(header_begin, header_begin + header_length, find_duplicates, false);
    if (header.is_discarded()) throw Error(source_name + ": safetensors header is not valid JSON");
    if (!duplicate.empty())
        throw Error(source_name + ": safetensors header has the key '" + duplicate +
                    "' twice in one object (a name may appear once)");
    const std::uint8_t* buffer = data + 8 + header_length;
    const std::uint64_t buffer_size = size - 8 - header_length;
    try {
        return parse_header(header, buffer, buffer_size, source_name);
    } catch (const json::exception& e) {
        // Not expected (every access is type-checked first); kept so the no-foreign-exception promise holds.
        throw Error(source_name + ": malformed safetensors header (" + e.what() + ")");
    }
}

SafeTensors safetensors_read(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_whole_file(path);
    return safetensors_parse(bytes.data(), bytes.size(), path);
}

std::vector<std::uint8_t> safetensors_serialize(const SafeTensors& file) {
    json header = json::object();
    if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
    std::uint64_t offset = 0;
    for (const auto& entry : file.tensors) {  // std::map: sorted by name
        const std::string& name = entry.first;
        const StoredTensor& tensor = entry.second;
        if (name == "__metadata__") throw Error("safetensors_serialize: '__metadata__' cannot name a tensor");
        const auto expected = static_cast<std::uint64_t>(tensor.element_count()) * dtype_size(tensor.dtype);
        if (tensor.bytes.size() != expected)
            throw Error("safetensors_serialize: tensor '" + name + "' has " + std::to_string(tensor.bytes.size()) +
                        " bytes but shape " + shape_text(tensor.shape) + " of " + dtype_name(tensor.dtype) +
                        " needs " + std::to_string(expected));
        header[name] = {{"dtype", dtype_name(tensor.dtype)},
                        {"shape", tensor.shape},
                        {"data_offsets", {offset, offset + expected}}};
        offset += expected;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception&) {
        throw Error("safetensors_serialize: a tensor name or metadata string is not valid UTF-8");
    }
    // Padding keeps the buffer 8-byte aligned after the 8-byte length field, as the reference does.
    text.append((8 - text.size() % 8) % 8, ' ');

    std::vector<std::uint8_t> out;
    out.reserve(8 + text.size() + static_cast<std::size_t>(offset));
    const std::uint64_t length = text.size();
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
    out.insert(out.end(), text.begin(), text.end());
    for (const auto& entry : file.tensors) out.insert(out.end(), entry.second.bytes.begin(), entry.second.bytes.end());
    return out;
}

void safetensors_write(const std::string& path, const SafeTensors& file) {
    write_whole_file_atomically(path, safetensors_serialize(file));
}

StoredTensor stored_tensor_f32(std::vector<std::int64_t> shape, const float* values) {
    StoredTensor tensor{DType::F32, std::move(shape), {}};
    const auto count = static_cast<std::size_t>(tensor.element_count());
    tensor.bytes.resize(count * sizeof(float));
    if (count) std::memcpy(tensor.bytes.data(), values, count * sizeof(float));  // little-endian host assumed
    return tensor;
}

std::vector<float> stored_tensor_to_f32(const StoredTensor& tensor, const std::string& name_for_errors) {
    const auto count = static_cast<std::size_t>(tensor.element_count());
    if (tensor.bytes.size() != count * dtype_size(tensor.dtype))
        throw Error(name_for_errors + ": " + std::to_string(tensor.bytes.size()) + " bytes do not match shape " +
                    shape_text(tensor.shape) + " of " + dtype_name(tensor.dtype));
    std::vector<float> values(count);
    const std::uint8_t* bytes = tensor.bytes.data();
    switch (tensor.dtype) {
        case DType::F32:
            if (count) std::memcpy(values.data(), bytes, count * sizeof(float));
            break;
        case DType::F64:
            for (std::size_t i = 0; i < count; ++i) {
                double v;
                std::memcpy(&v, bytes + 8 * i, sizeof v);
                values[i] = static_cast<float>(v);
            }
            break;
        case DType::F16:
            for (std::size_t i = 0; i < count; ++i)
                values[i] = half_to_float(static_cast<std::uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)));
            break;
        case DType::I8:
            throw Error(name_for_errors + ": I8 tensor cannot be converted without its per-channel scales");
    }
    return values;
}

std::uint16_t float_to_half(float value) {
    std::uint32_t x;
    std::memcpy(&x, &value, sizeof x);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t exponent = (x >> 23) & 0xffu;
    std::uint32_t mantissa = x & 0x7fffffu;
    if (exponent == 0xff) {  // inf stays inf; NaN keeps its top payload bits and is forced quiet (non-zero)
        if (mantissa == 0) return static_cast<std::uint16_t>(sign | 0x7c00u);
        return static_cast<std::uint16_t>(sign | 0x7e00u | (mantissa >> 13));
    }
    const int e = static_cast<int>(exponent) - 127 + 15;
    if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (e <= 0) {
        // Below 2^-25 everything rounds to zero (2^-25 itself is a tie that goes to the even zero).
        if (e < -10) return sign;
        mantissa |= 0x800000u;
        const int shift = 14 - e;  // 14..24
        std::uint32_t half = mantissa >> shift;
        const std::uint32_t rest = mantissa & ((1u << shift) - 1);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1u))) ++half;  // a carry becomes the smallest normal
        return static_cast<std::uint16_t>(sign | half);
    }
    std::uint32_t half = (static_cast<std::uint32_t>(e) << 10) | (mantissa >> 13);
    const std::uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // a carry may round up to inf, as it should
    return static_cast<std::uint16_t>(sign | half);
}

float half_to_float(std::uint16_t bits) {
    const bool negative = (bits & 0x8000u) != 0;
    const std::uint32_t exponent = (bits >> 10) & 0x1fu;
    const std::uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24 is exact in float
        const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        return negative ? -magnitude : magnitude;
    }
    std::uint32_t x = negative ? 0x80000000u : 0u;
    if (exponent == 31)
        x |= 0x7f800000u | (mantissa << 13);
    else
        x |= ((exponent - 15 + 127) << 23) | (mantissa << 13);
    float value;
    std::memcpy(&value, &x, sizeof value);
    return value;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::ostringstream out;
    out << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
    out << ']';
    return out.str();
}

}  // namespace capsnet
