// Bit-for-bit equality of share views, floats compared by their bits: what "opening a link restores the
// view exactly" means. Shared by test_share_link.cpp and the share-link fuzzer (tests/fuzz/).
#pragma once

#include <cstdint>
#include <cstring>

#include "capsnet/affine.hpp"
#include "share_link.hpp"

namespace capsnet_test {

inline std::uint32_t float_bits(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

inline bool same_pose(const capsnet::AffineTransform& a, const capsnet::AffineTransform& b) {
    return float_bits(a.rotation_degrees) == float_bits(b.rotation_degrees) && float_bits(a.scale) == float_bits(b.scale) &&
           float_bits(a.shear) == float_bits(b.shear) && float_bits(a.translate_x) == float_bits(b.translate_x) &&
           float_bits(a.translate_y) == float_bits(b.translate_y);
}

inline bool same_view(const capsnet::ShareView& a, const capsnet::ShareView& b) {
    bool same = a.model_id == b.model_id && a.input == b.input && a.selected_capsule == b.selected_capsule &&
                float_bits(a.sweep_low) == float_bits(b.sweep_low) &&
                float_bits(a.sweep_high) == float_bits(b.sweep_high) &&
                float_bits(a.sweep_step) == float_bits(b.sweep_step) && a.capsule_edited == b.capsule_edited;
    for (std::size_t d = 0; d < a.capsule.size(); ++d) same = same && float_bits(a.capsule[d]) == float_bits(b.capsule[d]);
    return same && a.view_tab == b.view_tab && a.routing_iteration == b.routing_iteration &&
           a.routing_logits == b.routing_logits && same_pose(a.pose, b.pose) && a.pose_refit == b.pose_refit &&
           a.pose_sweep == b.pose_sweep && a.fine_tuned == b.fine_tuned;
}

}  // namespace capsnet_test
