// libFuzzer harness: the IDX readers on arbitrary bytes (the first byte chooses images or labels, the
// rest is the file). Promise (idx.hpp): capsnet::Error, or images whose pixel count is count x rows x
// cols with 1 to 65536 rows and columns, or labels that are all digits 0-9.
#include <cstdint>
#include <cstdlib>

#include "capsnet/idx.hpp"

using namespace capsnet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool images = data[0] & 1;
    try {
        if (images) {
            const IdxImages parsed = idx_parse_images(data + 1, size - 1, "fuzz");
            if (parsed.rows < 1 || parsed.cols < 1 || parsed.rows > 65536 || parsed.cols > 65536 ||
                parsed.pixels.size() != static_cast<std::size_t>(parsed.count) * parsed.rows * parsed.cols)
                std::abort();
        } else {
            for (std::uint8_t label : idx_parse_labels(data + 1, size - 1, "fuzz"))
                if (label > 9) std::abort();
        }
    } catch (const Error&) {
    }
    return 0;
}
