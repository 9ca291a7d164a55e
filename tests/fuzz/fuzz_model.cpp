// libFuzzer harness: loading a model from a safetensors file (F32, F16, F64, or I8 with per-channel
// scales). A real model's data is 6.8-27 MB, too big to mutate quickly, so the input is a file whose data
// buffer may be shorter than its header says: the harness extends it to the largest data_offsets end
// the header declares (at most 32 MiB) by repeating the data bytes given (zeros if none). A 2 KB input
// then stands for a whole model, and the fuzzer still controls the values (the scales among them).
// Promise (weights.hpp and safetensors.hpp): capsnet::Error or a model whose weights are all finite.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "capsnet/weights.hpp"

using namespace capsnet;

namespace {

constexpr std::uint64_t max_extended_buffer = 32ull << 20;

// The input with its data buffer extended as above, or the input unchanged when its header is unusable.
std::vector<std::uint8_t> extended(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> bytes(data, data + size);
    if (size < 8) return bytes;
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data[i];
    if (header_length > size - 8) return bytes;
    const auto header = nlohmann::json::parse(data + 8, data + 8 + header_length, nullptr, false);
    if (!header.is_object()) return bytes;
    std::uint64_t end = 0;
    for (const auto& item : header.items()) {
        const auto& entry = item.value();
        if (!entry.is_object() || !entry.contains("data_offsets")) continue;
        const auto& offsets = entry["data_offsets"];
        if (offsets.is_array() && offsets.size() == 2 && offsets[1].is_number_unsigned())
            end = std::max(end, offsets[1].get<std::uint64_t>());
    }
    const std::uint64_t have = size - 8 - header_length;
    if (end <= have || end > max_extended_buffer) return bytes;
    const std::size_t start = 8 + header_length;
    bytes.resize(start + end);
    for (std::uint64_t i = have; i < end; ++i) bytes[start + i] = have ? bytes[start + i % have] : 0;
    return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::uint8_t> bytes = extended(data, size);
    Model model;
    try {
        model = model_from_safetensors(safetensors_parse(bytes.data(), bytes.size(), "fuzz"), "fuzz");
    } catch (const Error&) {
        return 0;
    }
    visit_parameters([](const char*, const auto& tensor) {
        for (std::size_t i = 0; i < tensor.size(); ++i)
            if (!std::isfinite(tensor.data()[i])) std::abort();
    }, model.params);
    return 0;
}
