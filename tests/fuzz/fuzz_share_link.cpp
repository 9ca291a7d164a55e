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

#include "share_link.hpp"

using namespace capsnet;

namespace {

bool same_view(const ShareView& a, const ShareView& b) {
    const auto bits = [](float x) { std::uint32_t u; std::memcpy(&u, &x, sizeof u); return u; };
    bool same = a.model_id == b.model_id && a.input == b.input && a.selected_capsule == b.selected_capsule &&
                bits(a.sweep_low) == bits(b.sweep_low) && bits(a.sweep_high) == bits(b.sweep_high) &&
                bits(a.sweep_step) == bits(b.sweep_step) && a.capsule_edited == b.capsule_edited &&
                a.view_tab == b.view_tab && a.routing_iteration == b.routing_iteration &&
                a.routing_logits == b.routing_logits && a.pose_refit == b.pose_refit && a.pose_sweep == b.pose_sweep &&
                a.fine_tuned == b.fine_tuned && bits(a.pose.rotation_degrees) == bits(b.pose.rotation_degrees) &&
                bits(a.pose.scale) == bits(b.pose.scale) && bits(a.pose.shear) == bits(b.pose.shear) &&
                bits(a.pose.translate_x) == bits(b.pose.translate_x) && bits(a.pose.translate_y) == bits(b.pose.translate_y);
    if (a.capsule_edited)
        for (int d = 0; d < 16; ++d) same = same && bits(a.capsule[d]) == bits(b.capsule[d]);
    return same;
}

}  // namespace

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
