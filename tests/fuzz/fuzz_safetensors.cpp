// libFuzzer harness: the safetensors parser on arbitrary bytes. Its promise (safetensors.hpp): any input
// parses or throws capsnet::Error, never crashes or reads out of bounds (ASan), and what parses is
// consistent: every tensor's bytes match its shape, and serialising then parsing gives it back.
#include <cstdint>
#include <cstdlib>

#include "capsnet/safetensors.hpp"

using namespace capsnet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    SafeTensors file;
    try {
        file = safetensors_parse(data, size, "fuzz");
    } catch (const Error&) {
        return 0;
    }
    for (const auto& entry : file.tensors)
        if (entry.second.bytes.size() != static_cast<std::size_t>(entry.second.element_count()) * dtype_size(entry.second.dtype))
            std::abort();
    const std::vector<std::uint8_t> again = safetensors_serialize(file);
    const SafeTensors reparsed = safetensors_parse(again.data(), again.size(), "fuzz round trip");
    if (reparsed.metadata != file.metadata || reparsed.tensors.size() != file.tensors.size()) std::abort();
    for (const auto& entry : file.tensors) {
        const StoredTensor& other = reparsed.tensors.at(entry.first);
        if (other.dtype != entry.second.dtype || other.shape != entry.second.shape || other.bytes != entry.second.bytes)
            std::abort();
    }
    return 0;
}
