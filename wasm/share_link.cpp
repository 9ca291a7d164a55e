// The share-link codec (format in share_link.hpp): writes version 2, reads versions 1 and 2. Decoding
// trusts nothing: the length is capped before any work, the checksum is checked before any field is read,
// every read is bounds-checked, and the range decoder produces exactly 784 pixels whatever its input, so
// a hostile link costs at most a few microseconds and ends in capsnet::Error.
#include "share_link.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <vector>

#include "capsnet/error.hpp"

namespace capsnet {

namespace {

constexpr std::string_view share_link_version = "2";  // written as "v2." before the base64
constexpr std::string_view share_link_version_1 = "1";  // still read: no view or pose bytes
constexpr std::size_t share_link_max_input = 4096;  // a valid link is at most 1163 characters
constexpr std::size_t share_link_model_id_max = 32;
constexpr std::size_t image_bytes = image_pixels;  // capsnet/config.hpp's 28 x 28, as a size
constexpr int value_limit = 2000;  // thousandths: the [-2, 2] of share_link_quantize

constexpr unsigned state_capsule_mask = 0x0F;
constexpr unsigned state_capsule_edited = 0x10;
constexpr unsigned state_image_raw = 0x20;
constexpr unsigned state_fine_tuned = 0x40;  // version 2 only
constexpr unsigned state_reserved_v1 = 0xC0, state_reserved_v2 = 0x80;

constexpr unsigned view_byte_tab = 0x03;
constexpr int view_byte_iteration_shift = 2;
constexpr unsigned view_byte_iteration = 0x0F;  // after the shift
constexpr unsigned view_byte_logits = 0x40;
constexpr unsigned view_byte_reserved = 0x80;

constexpr unsigned pose_byte_refit = 0x01;
constexpr unsigned pose_byte_sweep = 0x02;
constexpr unsigned pose_byte_stored = 0x04;  // the pose is not the identity: its five values follow
constexpr unsigned pose_byte_reserved = 0xF8;

static_assert(share_view_tabs - 1 <= int(view_byte_tab) && share_view_max_routing_iteration == int(view_byte_iteration),
              "the view byte's fields must hold the ShareView ranges");

// The pose's fields in the order the link stores them, each with its range and stored unit from
// share_link.hpp, so quantizing, encoding, decoding and the messages cannot disagree.
struct PoseField {
    const char* name;
    float AffineTransform::*member;
    float min, max;
    int steps;       // stored steps per unit
    float identity;  // the field's value in the identity transform
};

constexpr PoseField pose_fields[] = {
    {"rotation", &AffineTransform::rotation_degrees, share_link_pose_rotation_min, share_link_pose_rotation_max,
     share_link_pose_rotation_steps, 0.0f},
    {"scale", &AffineTransform::scale, share_link_pose_scale_min, share_link_pose_scale_max, share_link_pose_steps, 1.0f},
    {"shear", &AffineTransform::shear, share_link_pose_shear_min, share_link_pose_shear_max, share_link_pose_steps, 0.0f},
    {"translate_x", &AffineTransform::translate_x, share_link_pose_translate_min, share_link_pose_translate_max,
     share_link_pose_steps, 0.0f},
    {"translate_y", &AffineTransform::translate_y, share_link_pose_translate_min, share_link_pose_translate_max,
     share_link_pose_steps, 0.0f},
};

// The ranges in stored steps. The range ends are binary fractions (90, 1.5, 0.25...), so these products
// are exact, and they fit an int16.
constexpr int pose_steps_min(const PoseField& field) { return static_cast<int>(field.min * float(field.steps)); }
constexpr int pose_steps_max(const PoseField& field) { return static_cast<int>(field.max * float(field.steps)); }
constexpr int pose_steps_identity(const PoseField& field) { return static_cast<int>(field.identity * float(field.steps)); }

// A stored value as a decimal: steps 1000 (thousandths) gives "-0.250", steps 10 (tenths) "90.5".
std::string steps_text(int value, int steps) {
    const std::size_t digits = std::to_string(steps).size() - 1;  // steps is a power of ten
    std::string fraction = std::to_string(std::abs(value) % steps);
    fraction.insert(0, digits - fraction.size(), '0');
    return (value < 0 ? "-" : "") + std::to_string(std::abs(value) / steps) + "." + fraction;
}

std::string thousandths_text(int value) { return steps_text(value, 1000); }

std::string range_text(const PoseField& field) {
    char text[40];
    std::snprintf(text, sizeof text, "[%g, %g]", double(field.min), double(field.max));
    return text;
}

// The decoder prints what it saw; a character that could confuse the page (control, non-ASCII) is shown
// as its byte value.
std::string character_text(char c) {
    const auto byte = static_cast<unsigned char>(c);
    char text[16];
    if (byte >= 0x21 && byte <= 0x7E) std::snprintf(text, sizeof text, "'%c'", c);
    else std::snprintf(text, sizeof text, "byte 0x%02X", byte);
    return text;
}

int thousandths(float value) { return static_cast<int>(std::lround(double(share_link_quantize(value)) * 1000.0)); }
float from_thousandths(int value) { return static_cast<float>(value) / 1000.0f; }

// share_link_quantize_pose for one field, in stored steps. Through an int, so -0 gives +0.
int pose_steps(float value, const PoseField& field) {
    if (std::isnan(value)) return pose_steps_identity(field);
    const double clamped =
        std::clamp(double(value) * field.steps, double(pose_steps_min(field)), double(pose_steps_max(field)));
    return static_cast<int>(std::lround(clamped));
}
float from_pose_steps(int value, const PoseField& field) { return static_cast<float>(value) / float(field.steps); }

// ---------------------------------------------------------------------------------------------------
// Checks shared by both directions, so encode never makes a link decode refuses.

void share_view_check_model_id_size(std::size_t size) {
    if (size < 1 || size > share_link_model_id_max)
        throw Error("share link: the model id must have 1 to 32 characters, not " + std::to_string(size));
}

void share_view_check_model_id(const std::string& id) {
    share_view_check_model_id_size(id.size());
    for (char c : id) {
        const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!allowed) throw Error("share link: the model id may only contain a-z, 0-9, '.', '_' and '-'");
    }
}

void share_view_check_capsule(int capsule) {
    if (capsule < 0 || capsule > 9) throw Error("share link: capsule " + std::to_string(capsule) + " is not one of 0-9");
}

// Counts as capsnet::sweep_offsets does (the app draws that many columns): sweep_offset_count.
void share_view_check_sweep(int low, int high, int step) {
    if (!(step > 0)) throw Error("share link: the sweep step must be positive, not " + thousandths_text(step));
    if (!(low < high))
        throw Error("share link: the sweep low (" + thousandths_text(low) + ") must be below its high (" +
                    thousandths_text(high) + ")");
    const double columns = sweep_offset_count(from_thousandths(low), from_thousandths(high), from_thousandths(step));
    if (columns > share_link_max_sweep_columns)
        throw Error("share link: the sweep would have " + std::to_string(static_cast<long>(columns)) +
                    " columns (at most " + std::to_string(share_link_max_sweep_columns) + ")");
}

void share_view_check_tab(int tab) {
    if (tab < 0 || tab >= share_view_tabs)
        throw Error("share link: view tab " + std::to_string(tab) +
                    " is not one of 0-2 (0 interpolation, 1 routing, 2 pose lab)");
}

// The encoder clamps every field into its range, so only a forged link fails this; the encoder checks
// too, so a change to the clamping could not make links that do not open.
void share_view_check_pose_value(int steps, const PoseField& field) {
    if (steps < pose_steps_min(field) || steps > pose_steps_max(field))
        throw Error(std::string("share link: the pose ") + field.name + " is " + steps_text(steps, field.steps) +
                    ", outside " + range_text(field));
}

// ---------------------------------------------------------------------------------------------------
// Base64url without padding, and the checksum

constexpr char base64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(const std::vector<std::uint8_t>& bytes) {
    std::string text;
    text.reserve((bytes.size() * 4 + 2) / 3);
    std::uint32_t bits = 0;
    int count = 0;
    for (std::uint8_t byte : bytes) {
        bits = (bits << 8) | byte;
        count += 8;
        while (count >= 6) {
            count -= 6;
            text += base64url_alphabet[(bits >> count) & 63];
        }
    }
    if (count > 0) text += base64url_alphabet[(bits << (6 - count)) & 63];
    return text;
}

int base64url_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

// `offset` only places errors: positions are counted in the fragment the user pasted.
std::vector<std::uint8_t> base64url_decode(std::string_view text, std::size_t offset) {
    if (text.size() % 4 == 1)
        throw Error("share link: damaged or incomplete (no base64 text has " + std::to_string(text.size()) +
                    " characters)");
    std::vector<std::uint8_t> bytes;
    bytes.reserve(text.size() * 3 / 4);
    std::uint32_t bits = 0;
    int count = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const int value = base64url_value(text[i]);
        if (value < 0)
            throw Error("share link: unexpected " + character_text(text[i]) + " at position " +
                        std::to_string(offset + i + 1));
        bits = (bits << 6) | static_cast<std::uint32_t>(value);
        count += 6;
        if (count >= 8) {
            count -= 8;
            bytes.push_back(static_cast<std::uint8_t>(bits >> count));
        }
    }
    // The encoder leaves the last character's spare bits zero; anything else is a damaged character the
    // checksum could not see.
    if ((bits & ((1u << count) - 1)) != 0) throw Error("share link: damaged (its last character is not possible)");
    return bytes;
}

// CRC-16/GENIBUS. The final inversion matters: without it a message followed by its own CRC leaves the
// register at 0, and zero bytes appended after that (a pasted "AAAA") would pass.
std::uint16_t crc16_genibus(const std::uint8_t* data, std::size_t size) {
    std::uint16_t crc = 0xFFFF;
    for (std::size_t i = 0; i < size; ++i) {
        crc = static_cast<std::uint16_t>(crc ^ (data[i] << 8));
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return static_cast<std::uint16_t>(crc ^ 0xFFFF);
}

// ---------------------------------------------------------------------------------------------------
// The image: an adaptive binary range coder (LZMA's: 11-bit probabilities, 32-bit range, carries through
// a cached byte). Whether a pixel is ink is predicted from its four already-coded neighbours (left,
// up-left, up, up-right); an ink value is coded bit by bit down a binary tree whose probabilities depend
// on how many of left and up are ink. Integer-only, so native and wasm produce the same bytes. Version-1
// links to MNIST's test digits came out at a median 274 characters (max 389) this way against 353 (max 563) with
// zero-run byte coding: runs of background cost a few bits instead of two bytes, and the stroke's
// near-saturated values a few bits less than a byte.

constexpr int probability_bits = 11;
constexpr std::uint16_t probability_one = 1 << probability_bits;
constexpr int probability_shift = 4;  // adaptation speed: measured best on MNIST among 4 and 5
constexpr std::uint32_t range_top = 1u << 24;

struct ImageModel {
    std::array<std::uint16_t, 16> ink;                     // context: bit k = neighbour k is ink
    std::array<std::array<std::uint16_t, 256>, 3> value;   // context: ink among left and up (0..2)
    ImageModel() {
        ink.fill(probability_one / 2);
        for (auto& tree : value) tree.fill(probability_one / 2);
    }
};

class RangeEncoder {
public:
    int bit(std::uint16_t& probability, int bit) {
        const std::uint32_t bound = (range_ >> probability_bits) * probability;
        if (bit == 0) {
            range_ = bound;
            probability = static_cast<std::uint16_t>(probability + ((probability_one - probability) >> probability_shift));
        } else {
            low_ += bound;
            range_ -= bound;
            probability = static_cast<std::uint16_t>(probability - (probability >> probability_shift));
        }
        while (range_ < range_top) {
            range_ <<= 8;
            shift_low();
        }
        return bit;
    }

    std::vector<std::uint8_t> finish() {
        for (int i = 0; i < 5; ++i) shift_low();
        // The first byte is the integer part of a code value in [0, 1): always 0, so it is not sent.
        bytes_.erase(bytes_.begin());
        return std::move(bytes_);
    }

private:
    // A byte is held back while a later carry could still change it (it and a run of 0xFF after it).
    void shift_low() {
        if (low_ < 0xFF000000u || low_ >= (std::uint64_t{1} << 32)) {
            const auto carry = static_cast<std::uint8_t>(low_ >> 32);
            std::uint8_t pending = cache_;
            do {
                bytes_.push_back(static_cast<std::uint8_t>(pending + carry));
                pending = 0xFF;
            } while (--cache_size_ != 0);
            cache_ = static_cast<std::uint8_t>(low_ >> 24);
        }
        ++cache_size_;
        low_ = (low_ & 0x00FFFFFFu) << 8;
    }

    std::uint64_t low_ = 0;
    std::uint32_t range_ = 0xFFFFFFFFu;
    std::uint8_t cache_ = 0;
    std::size_t cache_size_ = 1;
    std::vector<std::uint8_t> bytes_;
};

// Reads exactly as many bytes as the encoder wrote for the same decisions (4 plus one per
// renormalisation), so running out means truncation and bytes left over mean trailing garbage.
class RangeDecoder {
public:
    RangeDecoder(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {
        for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | next();
        // code < range holds for every encoder output and keeps the arithmetic below in range.
        if (code_ == 0xFFFFFFFFu) throw Error("share link: the image data is corrupt");
    }

    int bit(std::uint16_t& probability, int /*ignored: only the encoder knows the bit*/) {
        const std::uint32_t bound = (range_ >> probability_bits) * probability;
        int bit;
        if (code_ < bound) {
            range_ = bound;
            probability = static_cast<std::uint16_t>(probability + ((probability_one - probability) >> probability_shift));
            bit = 0;
        } else {
            code_ -= bound;
            range_ -= bound;
            probability = static_cast<std::uint16_t>(probability - (probability >> probability_shift));
            bit = 1;
        }
        while (range_ < range_top) {
            range_ <<= 8;
            code_ = (code_ << 8) | next();
        }
        return bit;
    }

    std::size_t consumed() const { return position_; }

private:
    std::uint8_t next() {
        if (position_ == size_) throw Error("share link: the image data ends early");
        return data_[position_++];
    }

    const std::uint8_t* data_;
    std::size_t size_, position_ = 0;
    std::uint32_t range_ = 0xFFFFFFFFu, code_ = 0;
};

// One walk over the pixels for both directions, so encoder and decoder cannot drift apart: the encoder
// passes the true bits and `pixels` is its input; the decoder's answers fill `pixels` in the same order
// (every context reads only pixels already written).
template <typename Coder>
void image_code(Coder& coder, std::array<std::uint8_t, image_bytes>& pixels) {
    ImageModel model;
    const auto ink = [&](int row, int col) {
        return row >= 0 && col >= 0 && col < image_side && pixels[static_cast<std::size_t>(row * image_side + col)] != 0;
    };
    for (int row = 0; row < image_side; ++row) {
        for (int col = 0; col < image_side; ++col) {
            auto& pixel = pixels[static_cast<std::size_t>(row * image_side + col)];
            const bool left = ink(row, col - 1), up = ink(row - 1, col);
            const int context = left | up << 1 | ink(row - 1, col - 1) << 2 | ink(row - 1, col + 1) << 3;
            if (!coder.bit(model.ink[static_cast<std::size_t>(context)], pixel != 0)) {
                pixel = 0;
                continue;
            }
            auto& tree = model.value[static_cast<std::size_t>(left + up)];
            std::size_t node = 1;
            for (int k = 7; k >= 0; --k) node = node * 2 + static_cast<std::size_t>(coder.bit(tree[node], (pixel >> k) & 1));
            // Only a decoder fed a forged stream can reach value 0 here: ink was promised.
            if (node == 256) throw Error("share link: the image data is corrupt");
            pixel = static_cast<std::uint8_t>(node - 256);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Bytes in and out

void put_int16(std::vector<std::uint8_t>& bytes, int value) {
    const auto bits = static_cast<std::uint16_t>(value);
    bytes.push_back(static_cast<std::uint8_t>(bits & 0xFF));
    bytes.push_back(static_cast<std::uint8_t>(bits >> 8));
}

class ByteReader {
public:
    ByteReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::uint8_t byte(const char* what) {
        if (position_ == size_) throw Error(std::string("share link: incomplete (") + what + " missing)");
        return data_[position_++];
    }

    int int16(const char* what) {
        const int low = byte(what);
        const int value = low | byte(what) << 8;
        return value >= 0x8000 ? value - 0x10000 : value;
    }

    // Thousandths as the app's sliders allow them.
    int value(const char* what) {
        const int v = int16(what);
        if (v < -value_limit || v > value_limit)
            throw Error(std::string("share link: ") + what + " is " + thousandths_text(v) + ", outside [-2, 2]");
        return v;
    }

    const std::uint8_t* here() const { return data_ + position_; }
    std::size_t left() const { return size_ - position_; }

private:
    const std::uint8_t* data_;
    std::size_t size_, position_ = 0;
};

}  // namespace

float share_link_quantize(float value) {
    if (std::isnan(value)) return 0.0f;
    const double clamped = std::clamp(double(value) * 1000.0, double(-value_limit), double(value_limit));
    // Through an int, so -0.0004 gives +0 like the decoder does.
    return from_thousandths(static_cast<int>(std::lround(clamped)));
}

AffineTransform share_link_quantize_pose(const AffineTransform& pose) {
    AffineTransform quantized;
    for (const PoseField& field : pose_fields)
        quantized.*field.member = from_pose_steps(pose_steps(pose.*field.member, field), field);
    return quantized;
}

std::string share_link_encode(const ShareView& view) { return share_link_seal(share_link_payload(view), 2); }

std::vector<std::uint8_t> share_link_payload(const ShareView& view) {
    share_view_check_model_id(view.model_id);
    share_view_check_capsule(view.selected_capsule);
    const float range[3] = {view.sweep_low, view.sweep_high, view.sweep_step};
    for (float value : range)
        if (!std::isfinite(value)) throw Error("share link: the sweep range holds a value that is not a number");
    if (view.capsule_edited)
        for (float value : view.capsule)
            if (!std::isfinite(value)) throw Error("share link: the capsule holds a value that is not a number");
    const int low = thousandths(view.sweep_low), high = thousandths(view.sweep_high), step = thousandths(view.sweep_step);
    share_view_check_sweep(low, high, step);
    share_view_check_tab(view.view_tab);
    if (view.routing_iteration < 0 || view.routing_iteration > share_view_max_routing_iteration)
        throw Error("share link: routing iteration " + std::to_string(view.routing_iteration) + " is not one of 0-" +
                    std::to_string(share_view_max_routing_iteration) + " (0 = the model's last)");
    std::array<int, std::size(pose_fields)> pose{};
    bool pose_is_identity = true;
    for (std::size_t k = 0; k < pose.size(); ++k) {
        const PoseField& field = pose_fields[k];
        if (!std::isfinite(view.pose.*field.member))
            throw Error(std::string("share link: the pose ") + field.name + " is not a number");
        pose[k] = pose_steps(view.pose.*field.member, field);
        share_view_check_pose_value(pose[k], field);
        pose_is_identity = pose_is_identity && pose[k] == pose_steps_identity(field);
    }

    std::vector<std::uint8_t> bytes;
    bytes.push_back(static_cast<std::uint8_t>(view.model_id.size()));
    bytes.insert(bytes.end(), view.model_id.begin(), view.model_id.end());

    RangeEncoder encoder;
    std::array<std::uint8_t, image_bytes> pixels = view.input;
    image_code(encoder, pixels);
    std::vector<std::uint8_t> image = encoder.finish();
    const bool raw = image.size() >= image_bytes;  // noise-like input: range coding cannot win
    if (raw) image.assign(view.input.begin(), view.input.end());

    unsigned state = static_cast<unsigned>(view.selected_capsule);
    if (view.capsule_edited) state |= state_capsule_edited;
    if (raw) state |= state_image_raw;
    if (view.fine_tuned) state |= state_fine_tuned;
    bytes.push_back(static_cast<std::uint8_t>(state));
    for (int value : {low, high, step}) put_int16(bytes, value);
    if (view.capsule_edited)
        for (float value : view.capsule) put_int16(bytes, thousandths(value));
    unsigned view_byte = static_cast<unsigned>(view.view_tab) |
                         static_cast<unsigned>(view.routing_iteration) << view_byte_iteration_shift;
    if (view.routing_logits) view_byte |= view_byte_logits;
    bytes.push_back(static_cast<std::uint8_t>(view_byte));
    unsigned pose_byte = 0;
    if (view.pose_refit) pose_byte |= pose_byte_refit;
    if (view.pose_sweep) pose_byte |= pose_byte_sweep;
    if (!pose_is_identity) pose_byte |= pose_byte_stored;
    bytes.push_back(static_cast<std::uint8_t>(pose_byte));
    if (!pose_is_identity)
        for (int value : pose) put_int16(bytes, value);
    bytes.insert(bytes.end(), image.begin(), image.end());
    return bytes;
}

std::string share_link_seal(std::vector<std::uint8_t> payload, int version) {
    if (version != 1 && version != 2) throw Error("share link: version " + std::to_string(version) + " cannot be sealed");
    const std::uint16_t crc = crc16_genibus(payload.data(), payload.size());
    payload.push_back(static_cast<std::uint8_t>(crc >> 8));
    payload.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    return "v" + std::string(version == 2 ? share_link_version : share_link_version_1) + "." + base64url_encode(payload);
}

ShareView share_link_decode(std::string_view fragment) {
    if (fragment.size() > share_link_max_input)
        throw Error("share link: too long (" + std::to_string(fragment.size()) + " characters; a link has at most " +
                    std::to_string(share_link_max_input) + ")");
    std::size_t offset = 0;
    if (!fragment.empty() && fragment[0] == '#') fragment.remove_prefix(1), offset = 1;
    if (fragment.empty()) throw Error("share link: empty");

    // "v<digits>." first, so a link from a newer page is named as such rather than called damaged.
    const std::size_t dot = fragment.substr(0, 8).find('.');
    const std::string_view version = dot == std::string_view::npos || dot == 0 ? "" : fragment.substr(1, dot - 1);
    const bool all_digits = std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (fragment[0] != 'v' || version.empty() || !all_digits)
        throw Error("share link: not a share link (it should start with \"v2.\" or \"v1.\")");
    if (version != share_link_version && version != share_link_version_1)
        throw Error("share link: version " + std::string(version) +
                    " is not supported (this page reads versions 1 and 2)");
    const bool has_view_and_pose = version == share_link_version;
    fragment.remove_prefix(dot + 1);
    offset += dot + 1;

    const std::vector<std::uint8_t> bytes = base64url_decode(fragment, offset);
    if (bytes.size() < 3) throw Error("share link: incomplete (" + std::to_string(bytes.size()) + " bytes)");
    const std::size_t size = bytes.size() - 2;
    if (crc16_genibus(bytes.data(), size) != (bytes[size] << 8 | bytes[size + 1]))
        throw Error("share link: damaged or incomplete (checksum mismatch); copy the whole link again");

    // The checksum matched: what fails below was written that way, by a buggy or a hostile encoder.
    ByteReader reader(bytes.data(), size);
    ShareView view;
    const std::size_t id_size = reader.byte("model id");
    share_view_check_model_id_size(id_size);
    view.model_id.reserve(id_size);
    for (std::size_t i = 0; i < id_size; ++i) view.model_id += static_cast<char>(reader.byte("model id"));
    share_view_check_model_id(view.model_id);

    const unsigned state = reader.byte("state");
    if (state & (has_view_and_pose ? state_reserved_v2 : state_reserved_v1))
        throw Error("share link: unknown flags in the state byte");
    view.selected_capsule = static_cast<int>(state & state_capsule_mask);
    share_view_check_capsule(view.selected_capsule);
    view.capsule_edited = (state & state_capsule_edited) != 0;
    view.fine_tuned = (state & state_fine_tuned) != 0;

    const int low = reader.value("the sweep low"), high = reader.value("the sweep high");
    const int step = reader.value("the sweep step");
    share_view_check_sweep(low, high, step);
    view.sweep_low = from_thousandths(low), view.sweep_high = from_thousandths(high);
    view.sweep_step = from_thousandths(step);
    if (view.capsule_edited)
        for (float& value : view.capsule) value = from_thousandths(reader.value("a capsule value"));

    if (has_view_and_pose) {
        const unsigned view_byte = reader.byte("view");
        if (view_byte & view_byte_reserved) throw Error("share link: unknown flags in the view byte");
        view.view_tab = static_cast<int>(view_byte & view_byte_tab);
        share_view_check_tab(view.view_tab);
        view.routing_iteration = static_cast<int>((view_byte >> view_byte_iteration_shift) & view_byte_iteration);
        view.routing_logits = (view_byte & view_byte_logits) != 0;

        const unsigned pose_byte = reader.byte("pose");
        if (pose_byte & pose_byte_reserved) throw Error("share link: unknown flags in the pose byte");
        view.pose_refit = (pose_byte & pose_byte_refit) != 0;
        view.pose_sweep = (pose_byte & pose_byte_sweep) != 0;
        // An identity pose written out anyway decodes to the identity: the same view, nothing to refuse.
        if (pose_byte & pose_byte_stored)
            for (const PoseField& field : pose_fields) {
                const int steps = reader.int16((std::string("the pose ") + field.name).c_str());
                share_view_check_pose_value(steps, field);
                view.pose.*field.member = from_pose_steps(steps, field);
            }
    }

    if (state & state_image_raw) {
        if (reader.left() != image_bytes)
            throw Error("share link: the raw image has " + std::to_string(reader.left()) + " bytes, not 784");
        std::copy_n(reader.here(), image_bytes, view.input.begin());
    } else {
        RangeDecoder decoder(reader.here(), reader.left());
        image_code(decoder, view.input);
        if (decoder.consumed() != reader.left())
            throw Error("share link: " + std::to_string(reader.left() - decoder.consumed()) +
                        " bytes of extra data after the image");
    }
    return view;
}

}  // namespace capsnet
