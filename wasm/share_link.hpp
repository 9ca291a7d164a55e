// The share link of the browser demo: the whole view (model, input digit, selected capsule, sweep range,
// edited capsule) in the page's URL fragment, so opening the link restores the view exactly. Plain C++
// (no ImGui, no Emscripten), so the tests run natively and under node.
//
// Format, version 1:  "v1." + base64url (RFC 4648 §5, no padding) of these bytes:
//   model id length n (1..32), then n characters of [a-z0-9._-]
//   state byte: bits 0-3 selected capsule (0..9), bit 4 capsule edited, bit 5 image stored raw, bits 6-7 zero
//   sweep low, high, step: int16 little-endian thousandths in [-2000, 2000]
//   if capsule edited: its 16 values, int16 little-endian thousandths in [-2000, 2000]
//   image: the 784 bytes range-coded (see share_link.cpp), or, when that would not be shorter, stored raw
//   CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, output inverted) of all the bytes above, big-endian
// The version sits in readable text before the base64, so a later version may change everything after it
// and this page still says "version 2 is not supported" instead of "damaged". Measured on all 10,000 MNIST
// test digits with the id "capsnet-seed-i8" and an edited capsule: 142 / 274 / 389 characters (min /
// median / max), against 194 / 353 / 563 for the simpler zero-run byte coding. No valid view takes more
// than 1147 characters (32-character id, edited capsule, raw image).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace capsnet {

struct ShareView {
    std::string model_id;                       // 1..32 chars of [a-z0-9._-], e.g. "capsnet-seed-i8"
    std::array<std::uint8_t, 784> input{};      // the 28x28 network input as bytes (pixel = byte/255)
    int selected_capsule = 0;                   // 0..9
    float sweep_low = -0.25f, sweep_high = 0.25f, sweep_step = 0.05f;  // interpolation range
    bool capsule_edited = false;                // the 16 sliders were moved: `capsule` holds their values
    std::array<float, 16> capsule{};            // only meaningful when capsule_edited
};

constexpr int share_link_max_length = 600;        // the target, for tests and the UI's warning
constexpr int share_link_max_sweep_columns = 41;  // so a hostile link cannot request a huge grid

// Values are stored in thousandths: the app rounds every slider/range value with this before using it,
// so a restored view is bit-identical. Clamped to [-2, 2]; NaN gives 0 (a slider's neutral value) and
// -0 gives +0, so every result survives the link bit for bit.
float share_link_quantize(float value);

// The fragment text (without '#'), URL-safe characters only. Values are stored as share_link_quantize
// gives them. Throws capsnet::Error("share link: ...") for a view the decoder would refuse (bad model id,
// capsule out of 0..9, a non-finite value, low >= high, step <= 0, more than 41 sweep columns), so no link
// this makes can fail to open.
std::string share_link_encode(const ShareView& view);

// The inverse. Accepts an optional leading '#'. Throws capsnet::Error("share link: <what is wrong>") for
// anything malformed (bad characters, another version, damage or truncation caught by the checksum,
// trailing bytes, out-of-range values, a bad model id, image data that is not exactly 784 pixels), never
// another exception. Linear time; anything over 4096 characters is refused before it is read.
ShareView share_link_decode(std::string_view fragment);

}  // namespace capsnet
