// libFuzzer harness: the share-link decoder. Built twice (tests/fuzz/CMakeLists.txt):
//   fuzz_share_link         the input is the fragment text as pasted, checksum and all;
//   fuzz_share_link_sealed  the input is the payload bytes (its first byte choosing version 1 or 2), and
//                           share_link_seal adds the matching checksum, so the fuzzer gets past it to the
//                           field parsing and the image decoder.
// Promise (share_link.hpp): capsnet::Error, or a view whose fields are in range and which encodes to a
// link that decodes to the same view (bit for bit: the encoder writes what the decoder reads).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../share_view_compare.hpp"
#include "share_link.hpp"

using namespace capsnet;
using capsnet_test::same_view;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
#ifdef CAPSNET_FUZZ_SEALED
    if (size == 0) return 0;
    const std::string fragment = share_link_seal(std::vector<std::uint8_t>(data + 1, data + size), (data[0] & 1) + 1);
#else
    const std::string fragment(reinterpret_cast<const char*>(data), size);
#endif
    ShareView view;
    try {
        view = share_link_decode(fragment);
    } catch (const Error&) {
        return 0;
    }
    if (view.selected_capsule < 0 || view.selected_capsule > 9 || view.view_tab < 0 || view.view_tab >= share_view_tabs ||
        view.routing_iteration < 0 || view.routing_iteration > share_view_max_routing_iteration ||
        !(view.sweep_low < view.sweep_high) || !(view.sweep_step > 0))
        std::abort();
    if (!same_view(share_link_decode(share_link_encode(view)), view)) std::abort();
    return 0;
}
