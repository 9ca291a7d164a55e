// The share link of the browser demo: the whole view (model, input digit, selected capsule, sweep range,
// edited capsule, the right-hand panel with its routing and pose-lab settings) in the page's URL
// fragment, so opening the link restores the view exactly. Plain C++ (no ImGui, no Emscripten), so the
// tests run natively and under node.
//
// Format, version 2:  "v2." + base64url (RFC 4648 §5, no padding) of these bytes:
//   model id length n (1..32), then n characters of [a-z0-9._-]
//   state byte: bits 0-3 selected capsule (0..9), bit 4 capsule edited, bit 5 image stored raw, bit 6 the view
//     was made with a model fine-tuned in the browser (the Teach panel; zero in version 1), bit 7 zero
//   sweep low, high, step: int16 little-endian thousandths in [-2000, 2000]
//   if capsule edited: its 16 values, int16 little-endian thousandths in [-2000, 2000]
//   view byte: bits 0-1 view_tab (0..2), bits 2-5 routing_iteration (0..15), bit 6 routing_logits, bit 7 zero
//   pose byte: bit 0 pose_refit, bit 1 pose_sweep, bit 2 the pose is not the identity, bits 3-7 zero
//   if the pose is not the identity: rotation in tenths of a degree, then scale, shear, translate_x and
//     translate_y in thousandths, each int16 little-endian within the share_link_pose_* ranges below
//   image: the 784 bytes range-coded (see share_link.cpp), or, when that would not be shorter, stored raw
//   CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, output inverted) of all the bytes above, big-endian
// Version 1 ("v1.") is the same without the view and pose bytes; such links still open, with the
// version-2 fields at their defaults (which mean what the version-1 page showed). The encoder writes
// version 2 only. The version sits in readable text before the base64, so a later version may change
// everything after it and this page still says "version 3 is not supported" instead of "damaged".
// Measured on all 10,000 MNIST test digits with the id "capsnet-seed-i8", an edited capsule and a
// non-identity pose: 158 / 290 / 405 characters (min / median / max); with the identity pose 145 / 277 /
// 391, 2-3 characters over version 1 (142 / 274 / 389, against 194 / 353 / 563 for the simpler zero-run
// byte coding). No valid view takes more than 1163 characters (32-character id, edited capsule, a pose,
// raw image).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capsnet/affine.hpp"
#include "capsnet/visualize.hpp"

namespace capsnet {

struct ShareView {
    std::string model_id;                       // 1..32 chars of [a-z0-9._-], e.g. "capsnet-seed-i8"
    // The 28x28 image as bytes (pixel = byte/255) BEFORE the pose transform: what the drawing gives
    // untransformed. With the identity pose (always, in version 1) it is the network input.
    std::array<std::uint8_t, 784> input{};
    int selected_capsule = 0;                   // 0..9
    float sweep_low = default_sweep_range.low, sweep_high = default_sweep_range.high,  // interpolation range
          sweep_step = default_sweep_range.step;
    bool capsule_edited = false;                // the 16 sliders were moved: `capsule` holds their values
    std::array<float, 16> capsule{};            // only meaningful when capsule_edited

    // Version 2 (issue 14). A v1 link decodes with these defaults.
    int view_tab = 0;              // the right-hand panel: 0 interpolation, 1 routing, 2 pose lab (share_view_tabs = 3)
    int routing_iteration = 0;     // the routing slider, 1..15; 0 = the model's last iteration
    bool routing_logits = false;   // the routing heatmap shows the logits b_ij instead of the couplings c_ij
    AffineTransform pose;          // the pose lab's transform (capsnet/affine.hpp, shared core), identity by default
    bool pose_refit = false;       // true: transform as a drawing and fit to 28x28 again (PoseSource::canvas); false: warp the 28x28 input (PoseSource::mnist)
    bool pose_sweep = false;       // the pose-sweep charts were on screen (the page recomputes them on open)
    // The view was made with a model fine-tuned in its author's browser: the link cannot carry the weights,
    // so the page that opens it shows the view with its own model and says so.
    bool fine_tuned = false;
};

constexpr int share_link_max_length = 600;        // the target, for tests and the UI's warning
constexpr int share_link_max_sweep_columns = 41;  // so a hostile link cannot request a huge grid
constexpr int share_view_tabs = 3;                // view_tab is 0..share_view_tabs-1
constexpr int share_view_max_routing_iteration = 15;  // what the view byte's 4 bits hold

// The pose lab's ranges, for its sliders and the link alike (all within affine_validate's limits).
// Rotation is stored in tenths of a degree, the other fields in thousandths.
constexpr float share_link_pose_rotation_min = -90.0f, share_link_pose_rotation_max = 90.0f;  // degrees
constexpr float share_link_pose_scale_min = 0.5f, share_link_pose_scale_max = 1.5f;
constexpr float share_link_pose_shear_min = -0.5f, share_link_pose_shear_max = 0.5f;
constexpr float share_link_pose_translate_min = -0.25f, share_link_pose_translate_max = 0.25f;  // x and y
constexpr int share_link_pose_rotation_steps = 10;  // stored steps per degree
constexpr int share_link_pose_steps = 1000;         // stored steps per unit of scale, shear and translation

// Values are stored in thousandths: the app rounds every slider/range value with this before using it,
// so a restored view is bit-identical. Clamped to [-2, 2]; NaN gives 0 (a slider's neutral value) and
// -0 gives +0, so every result survives the link bit for bit.
float share_link_quantize(float value);

// The same for the pose, field by field: rounded to what the link stores (see the steps above) and
// clamped into the field's range; NaN gives the identity's value (0, or 1 for the scale) and -0 gives
// +0, so a quantized pose survives the link bit for bit. The UI calls it on every slider change.
AffineTransform share_link_quantize_pose(const AffineTransform& pose);

// The fragment text (without '#'), URL-safe characters only, always version 2. Values are stored as
// share_link_quantize and share_link_quantize_pose give them, so a finite value outside its range is
// clamped into it, as the sliders would. Throws capsnet::Error("share link: ...") for a view the decoder
// would refuse (bad model id, capsule out of 0..9, a non-finite value or pose field, low >= high,
// step <= 0, more than 41 sweep columns, view_tab out of 0..2, routing_iteration out of 0..15), so no
// link this makes can fail to open.
std::string share_link_encode(const ShareView& view);

// The inverse, for versions 1 and 2. Accepts an optional leading '#'. Throws capsnet::Error("share link:
// <what is wrong>") for anything malformed (bad characters, another version, damage or truncation caught
// by the checksum, trailing bytes, out-of-range values, reserved bits set, view tab 3, a bad model id,
// image data that is not exactly 784 pixels), never another exception; a decoded pose field is never
// outside its range. A pose stored although it is the identity (not what the encoder writes) is accepted:
// it is the same view, only 10 bytes longer. Linear time; anything over 4096 characters is refused
// before it is read.
ShareView share_link_decode(std::string_view fragment);
// share_link_encode in two steps, for the fuzzer (tests/fuzz/), so arbitrary bytes get past the checksum
// to the field parsing: the version-2 payload (the fields above, before the checksum; Error as
// share_link_encode), and the fragment for any payload as it is, with its CRC-16 appended (Error for a
// version other than 1 or 2). share_link_encode(view) is share_link_seal(share_link_payload(view), 2).
std::vector<std::uint8_t> share_link_payload(const ShareView& view);
std::string share_link_seal(std::vector<std::uint8_t> payload, int version);

}  // namespace capsnet
