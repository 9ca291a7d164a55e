// Tests of the share-link codec: random views, every value of the version-2 fields and all MNIST test
// digits come back bit for bit (and the digits fit the length target), the bytes are laid out as
// share_link.hpp says, links the version-1 page made still open, every hostile link we can think of gets
// its own message, and random or mutated fragments end in capsnet::Error or a stable view. The base64url,
// CRC-16 and pose ranges here are written independently of share_link.cpp, so the tests check the
// documented format rather than the codec against itself.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/idx.hpp"
#include "capsnet/visualize.hpp"
#include "mnist_fixture.hpp"
#include "share_link.hpp"
#include "share_view_compare.hpp"

using namespace capsnet;
using capsnet_test::float_bits;
using capsnet_test::same_pose;
using capsnet_test::same_view;
using Catch::Contains;
using Catch::StartsWith;

namespace {

// The pose fields in link order, with share_link.hpp's ranges and stored steps per unit.
struct PoseFieldSpec {
    const char* name;
    float AffineTransform::*member;
    float min, max;
    int steps;
    float identity;
    int min_steps() const { return static_cast<int>(std::lround(double(min) * steps)); }
    int max_steps() const { return static_cast<int>(std::lround(double(max) * steps)); }
    float value(int stored) const { return static_cast<float>(stored) / static_cast<float>(steps); }
};

const PoseFieldSpec pose_specs[] = {
    {"rotation", &AffineTransform::rotation_degrees, share_link_pose_rotation_min, share_link_pose_rotation_max, 10, 0.0f},
    {"scale", &AffineTransform::scale, share_link_pose_scale_min, share_link_pose_scale_max, 1000, 1.0f},
    {"shear", &AffineTransform::shear, share_link_pose_shear_min, share_link_pose_shear_max, 1000, 0.0f},
    {"translate_x", &AffineTransform::translate_x, share_link_pose_translate_min, share_link_pose_translate_max, 1000,
     0.0f},
    {"translate_y", &AffineTransform::translate_y, share_link_pose_translate_min, share_link_pose_translate_max, 1000,
     0.0f},
};

// ---------------------------------------------------------------------------------------------------
// The format, rewritten from share_link.hpp's description

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// CRC-16/GENIBUS, bit by bit (check value: 0xD64E for "123456789").
std::uint16_t crc16(const std::vector<std::uint8_t>& bytes) {
    std::uint32_t crc = 0xFFFF;
    for (std::uint8_t byte : bytes) {
        for (int bit = 7; bit >= 0; --bit) {
            const bool top = ((crc >> 15) & 1) != static_cast<std::uint32_t>((byte >> bit) & 1);
            crc = ((crc << 1) & 0xFFFF) ^ (top ? 0x1021 : 0);
        }
    }
    return static_cast<std::uint16_t>(crc ^ 0xFFFF);
}

// prefix + base64url(body + CRC): a link around hand-made bytes.
std::string link_from_body(std::vector<std::uint8_t> body, const std::string& prefix = "v2.") {
    const std::uint16_t crc = crc16(body);
    body.push_back(static_cast<std::uint8_t>(crc >> 8));
    body.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    std::string text = prefix;
    for (std::size_t i = 0; i < body.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, body.size() - i);
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 3; ++k) group = group << 8 | (k < n ? body[i + k] : 0);
        for (std::size_t k = 0; k <= n; ++k) text += alphabet[(group >> (18 - 6 * k)) & 63];
    }
    return text;
}

// The body (without CRC) of a version-1 or -2 link, checking the CRC on the way.
std::vector<std::uint8_t> body_of_link(const std::string& link) {
    REQUIRE((link.rfind("v1.", 0) == 0 || link.rfind("v2.", 0) == 0));
    std::vector<std::uint8_t> bytes;
    std::uint32_t bits = 0;
    int count = 0;
    for (std::size_t i = 3; i < link.size(); ++i) {
        const char* at = std::strchr(alphabet, link[i]);
        REQUIRE((at != nullptr && link[i] != '\0'));
        bits = bits << 6 | static_cast<std::uint32_t>(at - alphabet);
        count += 6;
        if (count >= 8) bytes.push_back(static_cast<std::uint8_t>(bits >> (count -= 8)));
    }
    REQUIRE(bytes.size() >= 2);
    const std::uint16_t crc = static_cast<std::uint16_t>(bytes[bytes.size() - 2] << 8 | bytes.back());
    bytes.resize(bytes.size() - 2);
    REQUIRE(crc16(bytes) == crc);
    return bytes;
}

void put_int16(std::vector<std::uint8_t>& bytes, std::size_t at, int value) {
    bytes[at] = static_cast<std::uint8_t>(value & 0xFF);
    bytes[at + 1] = static_cast<std::uint8_t>((value >> 8) & 0xFF);
}

// ---------------------------------------------------------------------------------------------------
// Random views

float random_value(std::mt19937& rng, int low, int high) {
    return static_cast<float>(std::uniform_int_distribution<int>(low, high)(rng)) / 1000.0f;
}

std::size_t offsets_or_too_many(float low, float high, float step) {
    try {
        return sweep_offsets(low, high, step).size();
    } catch (const Error&) {
        return 100000;
    }
}

ShareView random_view(std::mt19937& rng) {
    ShareView view;
    const std::string id_chars = "abcdefghijklmnopqrstuvwxyz0123456789._-";
    const int id_size = std::uniform_int_distribution<int>(1, 32)(rng);
    for (int i = 0; i < id_size; ++i)
        view.model_id += id_chars[std::uniform_int_distribution<std::size_t>(0, id_chars.size() - 1)(rng)];
    view.selected_capsule = std::uniform_int_distribution<int>(0, 9)(rng);
    do {
        view.sweep_low = random_value(rng, -2000, 1999);
        view.sweep_high = random_value(rng, static_cast<int>(std::lround(view.sweep_low * 1000)) + 1, 2000);
        view.sweep_step = random_value(rng, 1, 2000);
    } while (offsets_or_too_many(view.sweep_low, view.sweep_high, view.sweep_step) > 41);
    view.capsule_edited = rng() % 2 == 0;
    if (view.capsule_edited)
        for (float& value : view.capsule) value = random_value(rng, -2000, 2000);
    view.view_tab = static_cast<int>(rng() % 3);
    view.routing_iteration = static_cast<int>(rng() % 16);
    view.routing_logits = rng() % 2 == 0;
    view.pose_refit = rng() % 2 == 0;
    view.pose_sweep = rng() % 2 == 0;
    if (rng() % 3 != 0)  // else the identity, which is not stored
        for (const PoseFieldSpec& field : pose_specs)
            view.pose.*field.member =
                field.value(std::uniform_int_distribution<int>(field.min_steps(), field.max_steps())(rng));

    std::uniform_int_distribution<int> byte(0, 255);
    switch (rng() % 5) {
        case 0: break;  // blank
        case 1:         // dense noise: the raw fallback
            for (auto& pixel : view.input) pixel = static_cast<std::uint8_t>(byte(rng));
            break;
        case 2:
            view.input.fill(255);
            break;
        default: {      // sparse, in blobs like a stroke
            const double density = std::uniform_real_distribution<double>(0.0, 0.4)(rng);
            for (auto& pixel : view.input)
                if (std::uniform_real_distribution<double>(0, 1)(rng) < density)
                    pixel = static_cast<std::uint8_t>(rng() % 2 ? 255 : byte(rng));
        }
    }
    view.fine_tuned = rng() % 4 == 0;
    return view;
}

// The fuzz property: decode throws capsnet::Error saying "share link: ...", or gives a view that survives
// another round trip. Anything else (another exception, a crash) fails.
struct FuzzCounts {
    int accepted = 0, refused = 0;
};

void decode_or_refuse(const std::string& text, FuzzCounts& counts) {
    ShareView view;
    try {
        view = share_link_decode(text);
    } catch (const Error& error) {
        ++counts.refused;
        if (std::string(error.what()).rfind("share link: ", 0) != 0) FAIL("message without prefix: " << error.what());
        return;
    } catch (const std::exception& error) {
        FAIL("not a capsnet::Error: " << error.what());
    }
    ++counts.accepted;
    const std::string again = share_link_encode(view);
    if (!same_view(share_link_decode(again), view)) FAIL("accepted but unstable: " << text);
}

ShareView mnist_view(const IdxImages& images, std::size_t index, bool with_pose) {
    ShareView view;
    view.model_id = "capsnet-seed-i8";
    std::copy_n(images.pixels.begin() + static_cast<std::ptrdiff_t>(index * 784), 784, view.input.begin());
    view.selected_capsule = static_cast<int>(index % 10);
    view.capsule_edited = true;  // the longest links: 32 more bytes
    for (std::size_t d = 0; d < 16; ++d) view.capsule[d] = share_link_quantize(std::sin(float(index + d)) * 1.5f);
    if (with_pose) {  // 10 more bytes
        view.view_tab = 2;
        view.pose = share_link_quantize_pose({std::sin(float(index)) * 45.0f, 1.1f, -0.2f, 0.05f, -0.1f});
    }
    return view;
}

// ---------------------------------------------------------------------------------------------------
// Links made by the version-1 page (its encoder, before version 2 existed), with the views they hold.
// Integer-only images, so native and wasm build the same bytes.

std::array<std::uint8_t, 784> golden_ring() {
    std::array<std::uint8_t, 784> image{};
    for (int row = 0; row < 28; ++row)
        for (int col = 0; col < 28; ++col) {
            const int d2 = (row - 14) * (row - 14) + (col - 13) * (col - 13);
            const int value = std::max(0, 255 - 12 * std::abs(d2 - 49));
            image[static_cast<std::size_t>(row * 28 + col)] = static_cast<std::uint8_t>(value);
        }
    return image;
}

std::array<std::uint8_t, 784> golden_bar() {
    std::array<std::uint8_t, 784> image{};
    for (int row = 4; row < 24; ++row)
        for (int col = 12; col < 16; ++col)
            image[static_cast<std::size_t>(row * 28 + col)] = static_cast<std::uint8_t>(row * 10 + col);
    return image;
}

std::array<std::uint8_t, 784> golden_noise() {  // range coding cannot shrink it: stored raw
    std::array<std::uint8_t, 784> image{};
    std::uint32_t state = 12345;
    for (auto& pixel : image) {
        state = state * 1103515245u + 12345u;
        pixel = static_cast<std::uint8_t>(state >> 16);
    }
    return image;
}

struct GoldenLink {
    const char* what;
    std::string link;
    ShareView view;
};

std::vector<GoldenLink> golden_v1_links() {
    std::vector<GoldenLink> golden;
    ShareView ring;  // the defaults: capsule 0, the default sweep, nothing edited
    ring.model_id = "capsnet-seed-i8";
    ring.input = golden_ring();
    golden.push_back({"default view, a ring", "v1.D2NhcHNuZXQtc2VlZC1pOAAG__oAMgAAAiV7My4hpD4sAERpWOcaeHm0mStaWrArEY2aKhCCJ3uX"
                      "kiDTEa5WKslh69qcNXAkRytbdSdRDqhIfEz2CdKYcudCmZwXCbU7xeYmivbD0OXzmstP9vvEFA8a9de-vxCuuIWx-coBl2Y"
                      "4_daWxclh9D7OWNzcipcwae-FN3hG3gJ4Jyfd7egY4YAAAPeM", ring});

    ShareView bar;
    bar.model_id = "capsnet-seed-i8";
    bar.input = golden_bar();
    bar.selected_capsule = 3;
    bar.sweep_low = -0.5f, bar.sweep_high = 0.75f, bar.sweep_step = 0.125f;
    bar.capsule_edited = true;
    for (int d = 0; d < 16; ++d) bar.capsule[static_cast<std::size_t>(d)] = static_cast<float>(d - 8) * 0.125f;
    golden.push_back({"edited capsule 3, a bar", "v1.D2NhcHNuZXQtc2VlZC1pOBMM_u4CfQAY_JX8Ev2P_Qz-if4G_4P_AAB9APoAdwH0AXEC7gJrAwAD"
                      "OOwPLjlbSwVAXOgb9YZYcs-p4_Bxxup-adcIy00ajtLVk1S8dDA6l8hazs-lJ8Y7laL0RjwQfKLdSSqP_vp-IsHTvUJMfxOJ"
                      "O42E47QjU_iw8bH-N5QWAABpvw", bar});

    ShareView noise;
    noise.model_id = "mnist_capsnet-3.routing-r2.e50ab";  // 32 characters
    noise.input = golden_noise();
    noise.selected_capsule = 9;
    noise.sweep_low = -2.0f, noise.sweep_high = 2.0f, noise.sweep_step = 0.1f;
    golden.push_back({"raw noise, 32-character id, 41 columns",
                      "v1.IG1uaXN0X2NhcHNuZXQtMy5yb3V0aW5nLXIyLmU1MGFiKTD40AdkANwEZaofrR1a2uWsGx5fE3B5bP0Q_xmvYB0ErLQd"
                      "AitGeHM68t9frrcIWdHuORDLSJW1zIkpEf8GtmIu3zz5Nf1LlCjKCXxEswJell-z6m2s1C2Bbmmv4OaHTJwE59I2XSxgyer0"
                      "efaGoOuTJuRiEtUNy7N3FWpqOmi6jtt0CEae886zCvjQ3Wi7-F_6JPLS_BiH-1yHurQ4MqWbGz0QfPd41n_ibfgRkSl-k5XL"
                      "EsVXzlrx1BYY1xm8BFt-mWXxopRxxCqsaqk4xHXHrTI4Ah8FOyyZGvzrFd7PaLrgfLzWHpcbmgudvpdj05L8r9-ijJcjRWLr"
                      "3QdlcP9YiWrP98ruPxzp5Apo5d6TjTicfb3XWwnU5-IzRD9KjMShkNa4uNxhX9GOKL5ZDqpQG1CKajYp5nDfVXe63ERtQ7up"
                      "CBfWwPZ7CGFw2S3JEnJbJH7C4tqxsgSeIIB0N5pvkAzdLl5y9QlItljRl-nDjLFu090SRGIyDBSnrz_6DN7WE84ThstXoEfk"
                      "W77RRbQ21Yj-0gBB8oexD4NfdGW6KEYWUt-IohPZv0LvtxG13gd_yXm646hYSqnoLahNUJ3mmGviqZrPIUxmKozVkBE3mGeJ"
                      "u63zUY0TrfUcoQGUrLCEbPWK9Sp6kfXzqy-GMrqBRSA9w2cUiHp1kMhjxwfgHsJwA5rRixY_JPbD3ivvXVrR5nYTecpCFrkQ"
                      "qgXZgzDHCs-F8GbL7O-siUz6tx8YusM037ZgSrKAMs05oW7flEQU4fOm7MH0OUMGwJtineM602Hvw1Nr0E-WH-5NvfMFLZf-"
                      "xNGbRSe0osSU2GQ-uHG5xB9TiwiVHJ5fQCH_l3oaTX9wjKsvfPqAG0LK9duM-Sy45n5B9vl_AeSoNm2k7KLtunDtVFfroJdj"
                      "QYlNTVlo5pK8XKsO8xB5Bp2lPfFSXS4JOw3Olm1BnvUKLKRrFladrBoEAil7Zr0dl4OoVqXlysNJBFDC-nNNKBTMMQ28XQtc"
                      "eI9-HooahYEP6-ar3NB3QRTpFLWJz1xT2IEuC0MT5vxMFVfb_g", noise});

    ShareView extremes;  // blank image; the capsule at the ends of [-2, 2] and one step off zero
    extremes.model_id = "m";
    extremes.sweep_low = 0.001f, extremes.sweep_high = 0.002f, extremes.sweep_step = 0.001f;
    extremes.capsule_edited = true;
    extremes.capsule.fill(-2.0f);
    extremes.capsule[0] = 2.0f, extremes.capsule[1] = -0.001f, extremes.capsule[15] = 0.0f;
    golden.push_back({"blank image, extreme capsule values, 1-character id",
                      "v1.AW0QAQACAAEA0Af__zD4MPgw-DD4MPgw-DD4MPgw-DD4MPgw-DD4AAAAAAAAAABjBw", extremes});
    return golden;
}

}  // namespace

TEST_CASE("the test's own CRC is CRC-16/GENIBUS", "[share_link]") {
    const std::string check = "123456789";
    CHECK(crc16(std::vector<std::uint8_t>(check.begin(), check.end())) == 0xD64E);
}

TEST_CASE("share_link_quantize rounds to thousandths in [-2, 2] and is its own fixed point", "[share_link]") {
    for (int n = -2000; n <= 2000; ++n) {
        const float value = static_cast<float>(n) / 1000.0f;
        if (float_bits(share_link_quantize(value)) != float_bits(value)) FAIL("not a fixed point: " << n);
    }
    CHECK(share_link_quantize(0.1234f) == 0.123f);
    CHECK(share_link_quantize(-0.2496f) == -0.25f);
    CHECK(share_link_quantize(2.5f) == 2.0f);
    CHECK(share_link_quantize(-7.0f) == -2.0f);
    CHECK(share_link_quantize(std::numeric_limits<float>::infinity()) == 2.0f);
    CHECK(share_link_quantize(-std::numeric_limits<float>::infinity()) == -2.0f);
    // Signed zeros and NaN would not survive int16 thousandths: both become +0.
    CHECK(float_bits(share_link_quantize(std::numeric_limits<float>::quiet_NaN())) == 0u);
    CHECK(float_bits(share_link_quantize(-0.0f)) == 0u);
    CHECK(float_bits(share_link_quantize(-0.0004f)) == 0u);
}

TEST_CASE("share_link_quantize_pose rounds to the stored steps, clamps into the ranges and is its own fixed point",
          "[share_link]") {
    CHECK(share_link_pose_rotation_min == -90.0f);
    CHECK(share_link_pose_rotation_max == 90.0f);
    CHECK(share_link_pose_scale_min == 0.5f);
    CHECK(share_link_pose_scale_max == 1.5f);
    CHECK(share_link_pose_shear_min == -0.5f);
    CHECK(share_link_pose_shear_max == 0.5f);
    CHECK(share_link_pose_translate_min == -0.25f);
    CHECK(share_link_pose_translate_max == 0.25f);
    CHECK(share_link_pose_rotation_steps == 10);
    CHECK(share_link_pose_steps == 1000);
    for (const PoseFieldSpec& field : pose_specs) {
        INFO(field.name);
        for (int n = field.min_steps(); n <= field.max_steps(); ++n) {
            AffineTransform pose;
            pose.*field.member = field.value(n);
            const AffineTransform quantized = share_link_quantize_pose(pose);
            if (!same_pose(quantized, pose)) FAIL("not a fixed point: " << n << " steps");
        }
        const float infinity = std::numeric_limits<float>::infinity();
        const auto quantized = [&](float value) {
            AffineTransform pose;
            pose.*field.member = value;
            return share_link_quantize_pose(pose).*field.member;
        };
        CHECK(quantized(infinity) == field.max);
        CHECK(quantized(-infinity) == field.min);
        CHECK(quantized(field.max + 0.3f) == field.max);
        CHECK(quantized(field.min - 0.3f) == field.min);
        CHECK(quantized(1e30f) == field.max);
        CHECK(float_bits(quantized(std::numeric_limits<float>::quiet_NaN())) == float_bits(field.identity));
        if (field.identity == 0.0f) {
            CHECK(float_bits(quantized(-0.0f)) == 0u);
            CHECK(float_bits(quantized(-0.4f / float(field.steps))) == 0u);  // rounds to -0 steps: +0
        }
    }
    // Rounding to the nearest step, each field on its own scale.
    const AffineTransform rounded = share_link_quantize_pose({12.34f, 1.2346f, -0.1234f, 0.0996f, -0.2004f});
    CHECK(rounded.rotation_degrees == 12.3f);
    CHECK(rounded.scale == 1.235f);
    CHECK(rounded.shear == -0.123f);
    CHECK(rounded.translate_x == 0.1f);
    CHECK(rounded.translate_y == -0.2f);
    CHECK(share_link_quantize_pose({-45.06f, 1, 0, 0, 0}).rotation_degrees == -45.1f);
    // The whole range is a valid transform for the shared warp code.
    REQUIRE_NOTHROW(affine_validate({-90.0f, 0.5f, -0.5f, -0.25f, -0.25f}));
    REQUIRE_NOTHROW(affine_validate({90.0f, 1.5f, 0.5f, 0.25f, 0.25f}));
}

TEST_CASE("random views survive encode then decode bit for bit", "[share_link]") {
    const unsigned seed = 1710829u;
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    for (int i = 0; i < 3000; ++i) {
        const ShareView view = random_view(rng);
        const std::string link = share_link_encode(view);
        INFO("view " << i << ": " << link);
        REQUIRE(link.rfind("v2.", 0) == 0);
        REQUIRE(link.find_first_not_of(alphabet, 3) == std::string::npos);
        REQUIRE(link.size() <= 1163);
        REQUIRE(same_view(share_link_decode(link), view));
        REQUIRE(same_view(share_link_decode("#" + link), view));
        REQUIRE(share_link_encode(share_link_decode(link)) == link);
    }
    SECTION("values are stored as share_link_quantize gives them") {
        ShareView view;
        view.model_id = "m";
        view.sweep_low = -0.31234f, view.sweep_high = 5.0f, view.sweep_step = 0.14991f;
        view.capsule_edited = true;
        view.capsule[3] = -0.0007f;
        view.capsule[4] = 0.0004f;
        const ShareView back = share_link_decode(share_link_encode(view));
        CHECK(back.sweep_low == -0.312f);
        CHECK(back.sweep_high == 2.0f);
        CHECK(back.sweep_step == 0.15f);
        CHECK(back.capsule[3] == -0.001f);
        CHECK(float_bits(back.capsule[4]) == 0u);
    }
    SECTION("pose fields are stored as share_link_quantize_pose gives them: finite values out of range clamped") {
        ShareView view;
        view.model_id = "m";
        view.pose = {-123.45f, 7.0f, 0.12345f, -0.0004f, 0.3f};
        const ShareView back = share_link_decode(share_link_encode(view));
        CHECK(back.pose.rotation_degrees == -90.0f);
        CHECK(back.pose.scale == 1.5f);
        CHECK(back.pose.shear == 0.123f);
        CHECK(float_bits(back.pose.translate_x) == 0u);
        CHECK(back.pose.translate_y == 0.25f);
        CHECK(same_pose(back.pose, share_link_quantize_pose(view.pose)));
    }
    SECTION("an unedited capsule is not stored") {
        ShareView view;
        view.model_id = "m";
        view.capsule[0] = 1.0f;
        const ShareView back = share_link_decode(share_link_encode(view));
        CHECK_FALSE(back.capsule_edited);
        CHECK(back.capsule[0] == 0.0f);
    }
}

TEST_CASE("every view tab, routing iteration, flag and pose range end survives the link", "[share_link]") {
    ShareView view;
    view.model_id = "capsnet-seed-i8";
    view.input = golden_bar();
    int combinations = 0;
    for (int tab = 0; tab < share_view_tabs; ++tab)
        for (int iteration = 0; iteration <= share_view_max_routing_iteration; ++iteration)
            for (int flags = 0; flags < 8; ++flags) {
                view.view_tab = tab;
                view.routing_iteration = iteration;
                view.routing_logits = (flags & 1) != 0;
                view.pose_refit = (flags & 2) != 0;
                view.pose_sweep = (flags & 4) != 0;
                view.pose = flags % 3 == 0 ? AffineTransform{} : AffineTransform{-12.5f, 1.25f, 0.1f, -0.05f, 0.2f};
                const ShareView back = share_link_decode(share_link_encode(view));
                INFO("tab " << tab << ", iteration " << iteration << ", flags " << flags);
                REQUIRE(same_view(back, view));
                ++combinations;
            }
    CHECK(combinations == 3 * 16 * 8);

    view.view_tab = 2;
    for (const PoseFieldSpec& field : pose_specs) {
        INFO(field.name);
        for (int stored : {field.min_steps(), field.min_steps() + 1, field.max_steps() - 1, field.max_steps()}) {
            view.pose = AffineTransform{};
            view.pose.*field.member = field.value(stored);
            const ShareView back = share_link_decode(share_link_encode(view));
            INFO(stored << " steps");
            REQUIRE(same_view(back, view));
            REQUIRE(back.pose.*field.member == field.value(stored));
        }
    }
    view.pose = {-90.0f, 0.5f, -0.5f, -0.25f, -0.25f};
    REQUIRE(same_view(share_link_decode(share_link_encode(view)), view));
    view.pose = {90.0f, 1.5f, 0.5f, 0.25f, 0.25f};
    REQUIRE(same_view(share_link_decode(share_link_encode(view)), view));
    CHECK(share_link_decode(share_link_encode(view)).pose.rotation_degrees == 90.0f);
}

TEST_CASE("the bytes are laid out as share_link.hpp documents", "[share_link]") {
    ShareView view;
    view.model_id = "capsnet-seed-i8";
    view.selected_capsule = 7;
    view.sweep_low = -0.25f, view.sweep_high = 0.5f, view.sweep_step = 0.05f;
    view.capsule_edited = true;
    for (int d = 0; d < 16; ++d) view.capsule[static_cast<std::size_t>(d)] = static_cast<float>(d - 8) / 8.0f;
    const std::vector<std::uint8_t> body = body_of_link(share_link_encode(view));
    REQUIRE(body.size() > 56);
    CHECK(body[0] == 15);
    CHECK(std::string(body.begin() + 1, body.begin() + 16) == "capsnet-seed-i8");
    CHECK(body[16] == (7 | 0x10));  // capsule 7, edited, range-coded image
    const auto int16_at = [&](std::size_t at) { return static_cast<std::int16_t>(body[at] | body[at + 1] << 8); };
    CHECK(int16_at(17) == -250);
    CHECK(int16_at(19) == 500);
    CHECK(int16_at(21) == 50);
    for (int d = 0; d < 16; ++d) CHECK(int16_at(23 + 2 * static_cast<std::size_t>(d)) == (d - 8) * 125);
    CHECK(body[55] == 0);  // view byte: interpolation tab, the last iteration, couplings
    CHECK(body[56] == 0);  // pose byte: the identity is not stored, no flags
    CHECK(body.size() - 57 < 16);  // a blank image range-codes to a few bytes

    SECTION("view and pose bytes, and a pose that is not the identity") {
        view.view_tab = 1, view.routing_iteration = 5, view.routing_logits = true;
        view.pose_refit = true, view.pose_sweep = true;
        view.pose = {-12.5f, 1.25f, -0.1f, 0.25f, -0.25f};
        const std::vector<std::uint8_t> posed = body_of_link(share_link_encode(view));
        const auto posed_int16 = [&](std::size_t at) { return static_cast<std::int16_t>(posed[at] | posed[at + 1] << 8); };
        REQUIRE(posed.size() == body.size() + 10);
        CHECK(std::equal(body.begin(), body.begin() + 55, posed.begin()));
        CHECK(posed[55] == (1 | 5 << 2 | 0x40));
        CHECK(posed[56] == (0x01 | 0x02 | 0x04));
        CHECK(posed_int16(57) == -125);  // tenths of a degree
        CHECK(posed_int16(59) == 1250);  // thousandths from here on
        CHECK(posed_int16(61) == -100);
        CHECK(posed_int16(63) == 250);
        CHECK(posed_int16(65) == -250);
        CHECK(std::equal(body.begin() + 57, body.end(), posed.begin() + 67));  // the same image bytes
        view.routing_iteration = 15, view.view_tab = 2, view.routing_logits = false;
        view.pose_refit = false, view.pose = {};
        const std::vector<std::uint8_t> flags = body_of_link(share_link_encode(view));
        CHECK(flags[55] == (2 | 15 << 2));
        CHECK(flags[56] == 0x02);
        CHECK(flags.size() == body.size());
    }
    SECTION("noise that range coding cannot shrink is stored raw: the longest possible link") {
        std::mt19937 rng(7);
        view.model_id = std::string(32, 'z');
        view.pose = {45.0f, 0.75f, 0.25f, 0.1f, 0.1f};
        for (auto& pixel : view.input) pixel = static_cast<std::uint8_t>(rng() % 255 + 1);
        const std::string link = share_link_encode(view);
        const std::vector<std::uint8_t> raw = body_of_link(link);
        CHECK(raw[33] == (7 | 0x10 | 0x20));
        REQUIRE(raw.size() == 1 + 32 + 1 + 6 + 32 + 2 + 10 + 784);
        CHECK(std::equal(view.input.begin(), view.input.end(), raw.end() - 784));
        CHECK(link.size() == 1163);
    }
}

TEST_CASE("every MNIST test digit round-trips in fewer than share_link_max_length characters", "[share_link][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const MnistSplit test = mnist_load(capsnet_test::mnist_directory(), "t10k");
    for (bool with_pose : {false, true}) {
        std::vector<std::size_t> lengths;
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < test.labels.size(); ++i) {
            const ShareView view = mnist_view(test.images, i, with_pose);
            const std::string link = share_link_encode(view);
            lengths.push_back(link.size());
            if (!same_view(share_link_decode(link), view)) FAIL("digit " << i << " did not come back");
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::sort(lengths.begin(), lengths.end());
        std::printf("share link over %zu MNIST test digits (edited capsule, %s): min %zu, median %zu, max %zu "
                    "characters; encode+decode %.1f us per digit\n",
                    lengths.size(), with_pose ? "a pose" : "identity pose", lengths.front(),
                    lengths[lengths.size() / 2], lengths.back(), seconds * 1e6 / double(lengths.size()));
        CHECK(lengths.size() == 10000);
        CHECK(lengths.back() < static_cast<std::size_t>(share_link_max_length));
    }
}

TEST_CASE("share_link_payload and share_link_seal are share_link_encode in two steps (for the fuzzer)", "[share_link]") {
    std::mt19937 rng(1616);
    for (int round = 0; round < 20; ++round) {
        const ShareView view = random_view(rng);
        const std::vector<std::uint8_t> payload = share_link_payload(view);
        CHECK(share_link_seal(payload, 2) == share_link_encode(view));
        // The test's own link builder (its own CRC and base64) agrees on both versions' framing.
        CHECK(share_link_seal(payload, 2) == link_from_body(payload, "v2."));
        CHECK(share_link_seal(payload, 1) == link_from_body(payload, "v1."));
    }
    CHECK_THROWS_WITH(share_link_seal({1, 2, 3}, 3), Contains("version 3"));
}

TEST_CASE("v1 links from the earlier page still open", "[share_link]") {
    for (const GoldenLink& golden : golden_v1_links()) {
        INFO(golden.what << ": " << golden.link);
        REQUIRE(golden.link.rfind("v1.", 0) == 0);
        const ShareView view = share_link_decode(golden.link);
        // golden.view leaves the version-2 fields at their defaults, so this checks them too.
        CHECK(same_view(view, golden.view));
        CHECK(view.input == golden.view.input);
        CHECK(same_view(share_link_decode("#" + golden.link), golden.view));
        // Saved again, the view gets version 1's bytes plus a zero view byte and a zero pose byte.
        const std::vector<std::uint8_t> v1 = body_of_link(golden.link);
        const std::vector<std::uint8_t> v2 = body_of_link(share_link_encode(view));
        const std::size_t view_byte = 1 + view.model_id.size() + 1 + 6 + (view.capsule_edited ? 32 : 0);
        const auto at = static_cast<std::ptrdiff_t>(view_byte);
        REQUIRE(v2.size() == v1.size() + 2);
        CHECK(std::equal(v1.begin(), v1.begin() + at, v2.begin()));
        CHECK(v2[view_byte] == 0);
        CHECK(v2[view_byte + 1] == 0);
        CHECK(std::equal(v1.begin() + at, v1.end(), v2.begin() + at + 2));
    }
    // A version-1 body read as version 2 would take the image's first bytes for the view: the prefix
    // alone decides the layout.
    const std::vector<std::uint8_t> body = body_of_link(golden_v1_links()[0].link);
    REQUIRE(same_view(share_link_decode(link_from_body(body, "v1.")), golden_v1_links()[0].view));
    // Version 1 has no fine-tuned flag: its bit 6 stays reserved.
    std::vector<std::uint8_t> tuned = body;
    tuned[1 + tuned[0]] |= 0x40;
    REQUIRE_THROWS_WITH(share_link_decode(link_from_body(tuned, "v1.")), "share link: unknown flags in the state byte");
}

TEST_CASE("encode refuses the views decode would refuse", "[share_link]") {
    ShareView view;
    view.model_id = "capsnet-seed-i8";
    REQUIRE_NOTHROW(share_link_encode(view));
    const auto refused = [](ShareView changed) { return share_link_encode(changed); };
    SECTION("model id") {
        view.model_id = "";
        REQUIRE_THROWS_WITH(refused(view), Contains("1 to 32 characters"));
        view.model_id = std::string(33, 'a');
        REQUIRE_THROWS_WITH(refused(view), Contains("1 to 32 characters"));
        for (const char* id : {"Capsnet", "a/b", "a b", "caf\xc3\xa9", "a#b", "a%20"}) {
            view.model_id = id;
            REQUIRE_THROWS_WITH(refused(view), Contains("may only contain"));
        }
    }
    SECTION("capsule") {
        view.selected_capsule = 10;
        REQUIRE_THROWS_WITH(refused(view), Contains("capsule 10 is not one of 0-9"));
        view.selected_capsule = -1;
        REQUIRE_THROWS_WITH(refused(view), Contains("capsule -1"));
    }
    SECTION("values that are not numbers") {
        view.sweep_step = std::numeric_limits<float>::quiet_NaN();
        REQUIRE_THROWS_WITH(refused(view), Contains("not a number"));
        view.sweep_step = 0.05f;
        view.capsule_edited = true;
        view.capsule[5] = std::numeric_limits<float>::infinity();
        REQUIRE_THROWS_WITH(refused(view), Contains("not a number"));
        view.capsule_edited = false;  // then the capsule is not stored, so it cannot matter
        REQUIRE_NOTHROW(refused(view));
    }
    SECTION("sweep range") {
        view.sweep_step = 0.0004f;  // rounds to 0: a division by zero in the grid
        REQUIRE_THROWS_WITH(refused(view), Contains("step must be positive"));
        view.sweep_step = 0.05f, view.sweep_low = 0.25f;
        REQUIRE_THROWS_WITH(refused(view), Contains("must be below"));
        view.sweep_low = -1.0f, view.sweep_high = 1.05f;
        REQUIRE_THROWS_WITH(refused(view), Contains("42 columns (at most 41)"));
        view.sweep_high = 1.0f;
        REQUIRE_NOTHROW(refused(view));
    }
    SECTION("view tab and routing iteration") {
        view.view_tab = 3;
        REQUIRE_THROWS_WITH(refused(view),
                            "share link: view tab 3 is not one of 0-2 (0 interpolation, 1 routing, 2 pose lab)");
        view.view_tab = -1;
        REQUIRE_THROWS_WITH(refused(view), Contains("view tab -1"));
        view.view_tab = 2;
        view.routing_iteration = 16;
        REQUIRE_THROWS_WITH(refused(view), "share link: routing iteration 16 is not one of 0-15 (0 = the model's last)");
        view.routing_iteration = -1;
        REQUIRE_THROWS_WITH(refused(view), Contains("routing iteration -1"));
        view.routing_iteration = 15;
        REQUIRE_NOTHROW(refused(view));
    }
    SECTION("pose fields that are not numbers; finite ones out of range are clamped") {
        for (const PoseFieldSpec& field : pose_specs) {
            for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()}) {
                ShareView changed = view;
                changed.pose.*field.member = bad;
                REQUIRE_THROWS_WITH(refused(changed),
                                    "share link: the pose " + std::string(field.name) + " is not a number");
            }
            ShareView far = view;
            far.pose.*field.member = 1e6f;
            REQUIRE(share_link_decode(refused(far)).pose.*field.member == field.max);
            far.pose.*field.member = -1e6f;
            REQUIRE(share_link_decode(refused(far)).pose.*field.member == field.min);
        }
    }
    SECTION("the column limit counts as sweep_offsets does, rounding included") {
        std::mt19937 rng(41);
        for (int i = 0; i < 20000; ++i) {
            view.sweep_low = random_value(rng, -2000, 2000);
            view.sweep_high = random_value(rng, -2000, 2000);
            view.sweep_step = random_value(rng, 1, 200);
            const bool valid = view.sweep_low < view.sweep_high &&
                               offsets_or_too_many(view.sweep_low, view.sweep_high, view.sweep_step) <= 41;
            bool encoded = true;
            try {
                share_link_encode(view);
            } catch (const Error&) {
                encoded = false;
            }
            INFO(view.sweep_low << " " << view.sweep_high << " " << view.sweep_step);
            REQUIRE(encoded == valid);
        }
    }
}

TEST_CASE("hostile links give the intended message", "[share_link][errors]") {
    ShareView view;
    view.model_id = "capsnet-seed-i8";
    for (std::size_t i = 300; i < 500; ++i) view.input[i] = static_cast<std::uint8_t>(i * 7);
    const std::string link = share_link_encode(view);
    const std::vector<std::uint8_t> body = body_of_link(link);
    const std::size_t state = 16, low = 17, high = 19, step = 21, view_byte = 23, pose_byte = 24, image = 25;
    const auto changed = [&](std::size_t at, int value, bool int16) {
        std::vector<std::uint8_t> bytes = body;
        if (int16) put_int16(bytes, at, value);
        else bytes[at] = static_cast<std::uint8_t>(value);
        return link_from_body(bytes);
    };
    const auto decode = [](const std::string& text) { return share_link_decode(text); };
    REQUIRE(same_view(decode(link_from_body(body)), view));  // the test's own encoder agrees

    SECTION("text") {
        REQUIRE_THROWS_WITH(decode(""), "share link: empty");
        REQUIRE_THROWS_WITH(decode("#"), "share link: empty");
        REQUIRE_THROWS_WITH(decode("hello"), "share link: not a share link (it should start with \"v2.\" or \"v1.\")");
        REQUIRE_THROWS_WITH(decode("v.AAAA"), Contains("not a share link"));
        REQUIRE_THROWS_WITH(decode("vx1.AAAA"), Contains("not a share link"));
        REQUIRE_THROWS_WITH(decode("v3." + link.substr(3)), "share link: version 3 is not supported (this page reads versions 1 and 2)");
        REQUIRE_THROWS_WITH(decode("v0." + link.substr(3)), Contains("version 0 is not supported"));
        REQUIRE_THROWS_WITH(decode("#v10." + link.substr(3)), Contains("version 10 is not supported"));
        REQUIRE_THROWS_WITH(decode(link.substr(0, 10) + "%" + link.substr(11)), Contains("unexpected '%' at position 11"));
        REQUIRE_THROWS_WITH(decode("#" + link.substr(0, 10) + "=" + link.substr(11)), Contains("unexpected '=' at position 12"));
        REQUIRE_THROWS_WITH(decode(link + "\xc3\xa9"), Contains("unexpected byte 0xC3"));
        REQUIRE_THROWS_WITH(decode(link.substr(0, link.size() - 1) + "#"), Contains("unexpected '#'"));
        REQUIRE_THROWS_WITH(decode(std::string(100 * 1024, 'A')), "share link: too long (102400 characters; a link has at most 4096)");
        REQUIRE_THROWS_WITH(decode("v1." + std::string(4094, 'A')), Contains("too long"));
        REQUIRE_THROWS_WITH(decode("v1.A"), Contains("no base64 text has 1 characters"));
        REQUIRE_THROWS_WITH(decode("v1.AAA"), Contains("incomplete (2 bytes)"));
    }
    SECTION("damage the checksum catches") {
        for (std::size_t at = 3; at < link.size(); ++at) {
            std::string damaged = link;
            damaged[at] = damaged[at] == 'B' ? 'C' : 'B';
            INFO(at);
            REQUIRE_THROWS_WITH(decode(damaged), Contains("checksum mismatch") || Contains("last character"));
        }
        // Cut anywhere, a link fails one of the three checks, whichever its length reaches first.
        for (std::size_t cut = 1; cut < link.size() - 3; ++cut) {
            INFO(cut);
            REQUIRE_THROWS_WITH(decode(link.substr(0, link.size() - cut)),
                                Contains("checksum mismatch") || Contains("incomplete") || Contains("last character"));
        }
        REQUIRE_THROWS_WITH(decode(link + "AAAA"), Contains("checksum mismatch"));
    }
    SECTION("sweep range: what would make a huge grid or divide by zero") {
        std::vector<std::uint8_t> bytes = body;
        put_int16(bytes, low, -2000), put_int16(bytes, high, 2000), put_int16(bytes, step, 1);
        REQUIRE_THROWS_WITH(decode(link_from_body(bytes)), "share link: the sweep would have 4001 columns (at most 41)");
        put_int16(bytes, step, 97);
        REQUIRE_THROWS_WITH(decode(link_from_body(bytes)), Contains("42 columns"));
        put_int16(bytes, step, 100);
        REQUIRE_NOTHROW(decode(link_from_body(bytes)));
        REQUIRE_THROWS_WITH(decode(changed(step, 0, true)), "share link: the sweep step must be positive, not 0.000");
        REQUIRE_THROWS_WITH(decode(changed(step, -50, true)), Contains("step must be positive, not -0.050"));
        REQUIRE_THROWS_WITH(decode(changed(low, 250, true)), Contains("low (0.250) must be below its high (0.250)"));
        REQUIRE_THROWS_WITH(decode(changed(high, -32768, true)), "share link: the sweep high is -32.768, outside [-2, 2]");
        REQUIRE_THROWS_WITH(decode(changed(low, 2001, true)), Contains("sweep low is 2.001, outside [-2, 2]"));
    }
    SECTION("state byte and capsule values") {
        REQUIRE_THROWS_WITH(decode(changed(state, 10, false)), "share link: capsule 10 is not one of 0-9");
        REQUIRE_THROWS_WITH(decode(changed(state, 15, false)), Contains("capsule 15"));
        // Bit 6: made with a fine-tuned model (version 2); it survives a round trip.
        const ShareView tuned = decode(changed(state, 0x40, false));
        CHECK(tuned.fine_tuned);
        CHECK_FALSE(decode(link).fine_tuned);
        CHECK(decode(share_link_encode(tuned)).fine_tuned);
        CHECK(decode(share_link_encode(tuned)).selected_capsule == tuned.selected_capsule);
        REQUIRE_THROWS_WITH(decode(changed(state, 0x80 | 3, false)), Contains("unknown flags"));
        // "edited" without the 32 bytes: the bytes after the sweep are read as values, and run out.
        std::vector<std::uint8_t> edited(body.begin(), body.begin() + view_byte);
        edited[state] = 0x10;
        for (int d = 0; d < 16; ++d) edited.insert(edited.end(), {0x00, 0x80});  // -32768
        REQUIRE_THROWS_WITH(decode(link_from_body(edited)), "share link: a capsule value is -32.768, outside [-2, 2]");
        edited.resize(view_byte + 3);
        edited[view_byte] = edited[view_byte + 1] = 0;
        REQUIRE_THROWS_WITH(decode(link_from_body(edited)), "share link: incomplete (a capsule value missing)");
    }
    SECTION("view and pose bytes") {
        REQUIRE_THROWS_WITH(decode(changed(view_byte, 3, false)),
                            "share link: view tab 3 is not one of 0-2 (0 interpolation, 1 routing, 2 pose lab)");
        REQUIRE_THROWS_WITH(decode(changed(view_byte, 3 | 15 << 2 | 0x40, false)), Contains("view tab 3"));
        REQUIRE_THROWS_WITH(decode(changed(view_byte, 0x80, false)), "share link: unknown flags in the view byte");
        REQUIRE_THROWS_WITH(decode(changed(view_byte, 0xFF, false)), "share link: unknown flags in the view byte");
        for (int bit = 3; bit < 8; ++bit)
            REQUIRE_THROWS_WITH(decode(changed(pose_byte, 1 << bit, false)), "share link: unknown flags in the pose byte");
        const ShareView every_flag = decode(changed(view_byte, 2 | 15 << 2 | 0x40, false));
        CHECK(every_flag.view_tab == 2);
        CHECK(every_flag.routing_iteration == 15);
        CHECK(every_flag.routing_logits);
        CHECK(decode(changed(pose_byte, 0x03, false)).pose_refit);
        CHECK(decode(changed(pose_byte, 0x03, false)).pose_sweep);
        std::vector<std::uint8_t> no_view(body.begin(), body.begin() + view_byte);
        REQUIRE_THROWS_WITH(decode(link_from_body(no_view)), "share link: incomplete (view missing)");
        no_view.push_back(0);
        REQUIRE_THROWS_WITH(decode(link_from_body(no_view)), "share link: incomplete (pose missing)");
        no_view.push_back(0x04);
        REQUIRE_THROWS_WITH(decode(link_from_body(no_view)), "share link: incomplete (the pose rotation missing)");
    }
    SECTION("pose values outside their ranges, and the identity written out") {
        // The pose byte says "stored"; the five values go between it and the image.
        const auto with_pose = [&](const std::array<int, 5>& pose) {
            std::vector<std::uint8_t> bytes(body.begin(), body.begin() + image);
            bytes[pose_byte] = 0x04;
            for (int value : pose)
                bytes.insert(bytes.end(), {static_cast<std::uint8_t>(value & 0xFF), static_cast<std::uint8_t>((value >> 8) & 0xFF)});
            bytes.insert(bytes.end(), body.begin() + image, body.end());
            return link_from_body(bytes);
        };
        const struct {
            std::array<int, 5> pose;  // stored steps
            const char* message;      // after "share link: the pose "
        } out_of_range[] = {
            {{901, 1000, 0, 0, 0}, "rotation is 90.1, outside [-90, 90]"},
            {{-901, 1000, 0, 0, 0}, "rotation is -90.1, outside [-90, 90]"},
            {{0, 499, 0, 0, 0}, "scale is 0.499, outside [0.5, 1.5]"},
            {{0, 1501, 0, 0, 0}, "scale is 1.501, outside [0.5, 1.5]"},
            {{0, 0, 0, 0, 0}, "scale is 0.000, outside [0.5, 1.5]"},
            {{0, 1000, -501, 0, 0}, "shear is -0.501, outside [-0.5, 0.5]"},
            {{0, 1000, 0, 251, 0}, "translate_x is 0.251, outside [-0.25, 0.25]"},
            {{0, 1000, 0, 0, -32768}, "translate_y is -32.768, outside [-0.25, 0.25]"},
        };
        for (const auto& bad : out_of_range)
            REQUIRE_THROWS_WITH(decode(with_pose(bad.pose)), std::string("share link: the pose ") + bad.message);
        const ShareView ends = decode(with_pose({-900, 1500, 500, -250, 250}));
        CHECK(ends.pose.rotation_degrees == -90.0f);
        CHECK(ends.pose.scale == 1.5f);
        CHECK(ends.pose.shear == 0.5f);
        CHECK(ends.pose.translate_x == -0.25f);
        CHECK(ends.pose.translate_y == 0.25f);
        // Accepted: the identity, the same view as without the values, saved again without them.
        const std::string identity = with_pose({0, 1000, 0, 0, 0});
        REQUIRE(same_view(decode(identity), view));
        CHECK(share_link_encode(decode(identity)) == link);
        CHECK(body_of_link(identity).size() == body.size() + 10);
    }
    SECTION("model id") {
        std::vector<std::uint8_t> bytes = body;
        bytes[8] = '/';  // capsnet/seed-i8
        REQUIRE_THROWS_WITH(decode(link_from_body(bytes)), Contains("may only contain a-z, 0-9"));
        bytes[8] = 0;
        REQUIRE_THROWS_WITH(decode(link_from_body(bytes)), Contains("may only contain"));
        bytes[8] = 'S';
        REQUIRE_THROWS_WITH(decode(link_from_body(bytes)), Contains("may only contain"));
        REQUIRE_THROWS_WITH(decode(changed(0, 0, false)), Contains("1 to 32 characters, not 0"));
        REQUIRE_THROWS_WITH(decode(changed(0, 33, false)), Contains("1 to 32 characters, not 33"));
        REQUIRE_THROWS_WITH(decode(changed(0, 255, false)), Contains("1 to 32 characters, not 255"));
        REQUIRE_THROWS_WITH(decode(link_from_body({3, 'a', 'b'})), Contains("incomplete (model id missing)"));
        REQUIRE_THROWS_WITH(decode(link_from_body({2, 'a', 'b'})), Contains("incomplete (state missing)"));
        REQUIRE_THROWS_WITH(decode(link_from_body({2, 'a', 'b', 0, 1})), Contains("incomplete (the sweep low missing)"));
    }
    SECTION("image data that is not exactly 784 pixels") {
        std::vector<std::uint8_t> raw(body.begin(), body.begin() + image);
        raw[state] = 0x20;
        raw.insert(raw.end(), 783, 9);
        REQUIRE_THROWS_WITH(decode(link_from_body(raw)), "share link: the raw image has 783 bytes, not 784");
        raw.insert(raw.end(), 2, 9);
        REQUIRE_THROWS_WITH(decode(link_from_body(raw)), Contains("785 bytes, not 784"));
        raw.pop_back();
        REQUIRE(decode(link_from_body(raw)).input[783] == 9);

        std::vector<std::uint8_t> short_image(body.begin(), body.end() - 1);
        REQUIRE_THROWS_WITH(decode(link_from_body(short_image)), "share link: the image data ends early");
        std::vector<std::uint8_t> no_image(body.begin(), body.begin() + image);
        REQUIRE_THROWS_WITH(decode(link_from_body(no_image)), "share link: the image data ends early");
        std::vector<std::uint8_t> long_image = body;
        long_image.insert(long_image.end(), {1, 2, 3});
        REQUIRE_THROWS_WITH(decode(link_from_body(long_image)), "share link: 3 bytes of extra data after the image");
        std::vector<std::uint8_t> corrupt = no_image;
        corrupt.insert(corrupt.end(), 8, 0xFF);
        REQUIRE_THROWS_WITH(decode(link_from_body(corrupt)), "share link: the image data is corrupt");
    }
}

TEST_CASE("fuzz: random and mutated fragments throw capsnet::Error or decode to a stable view", "[share_link][fuzz]") {
    const unsigned seed = 20171026u;
    std::printf("share link fuzz seed %u\n", seed);
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    const auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const char special_chars[] = "#%=.v12 +/?&\0\x7f";
    const std::string specials(special_chars, sizeof special_chars - 1);
    const auto random_char = [&]() -> char {
        switch (rng() % 3) {
            case 0: return alphabet[pick(64)];
            case 1: return specials[pick(specials.size())];
            default: return static_cast<char>(rng() & 0xFF);  // non-ASCII and control bytes too
        }
    };
    // Version-2 links of random views, and the version-1 links, whose bodies are forged under "v1.".
    std::vector<std::string> links;
    struct Body {
        std::vector<std::uint8_t> bytes;
        std::string prefix;
    };
    std::vector<Body> bodies;
    for (int i = 0; i < 40; ++i) links.push_back(share_link_encode(random_view(rng)));
    for (const GoldenLink& golden : golden_v1_links()) links.push_back(golden.link);
    for (const std::string& link : links) bodies.push_back({body_of_link(link), link.substr(0, 3)});

    FuzzCounts strings, mutations, forged;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3000; ++i) {  // random strings, some behind a valid-looking prefix
        const char* prefixes[] = {"v2.", "v1.", "#v2.", "#v1.", "", "", "", ""};
        std::string text = prefixes[pick(8)];
        const std::size_t size = pick(5001);
        for (std::size_t k = 0; k < size; ++k) text += rng() % 2 ? alphabet[pick(64)] : random_char();
        decode_or_refuse(text, strings);
    }
    for (int i = 0; i < 3000; ++i) {  // valid links, edited as a mangled copy and paste would
        std::string text = links[pick(links.size())];
        const int edits = 1 + static_cast<int>(pick(4));
        for (int e = 0; e < edits && !text.empty(); ++e) {
            const std::size_t at = pick(text.size());
            switch (rng() % 6) {
                case 0: text[at] = random_char(); break;
                case 1: text[at] = static_cast<char>(text[at] ^ (1 << pick(8))); break;
                case 2: text.insert(at, 1, random_char()); break;
                case 3: text.erase(at, 1 + pick(4)); break;
                case 4: text.insert(at, text.substr(at, 1 + pick(20))); break;
                default: text.resize(at); break;
            }
        }
        decode_or_refuse(text, mutations);
    }
    for (int i = 0; i < 6000; ++i) {  // bytes changed behind a recomputed checksum: reaches every parser
        const Body& body = bodies[pick(bodies.size())];
        std::vector<std::uint8_t> bytes = body.bytes;
        const int edits = 1 + static_cast<int>(pick(4));
        for (int e = 0; e < edits && !bytes.empty(); ++e) {
            const std::size_t at = pick(bytes.size());
            switch (rng() % 5) {
                case 0: bytes[at] = static_cast<std::uint8_t>(rng()); break;
                case 1: bytes[at] = static_cast<std::uint8_t>(bytes[at] ^ (1 << pick(8))); break;
                case 2: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng())); break;
                case 3: bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at)); break;
                default: bytes.resize(at); break;
            }
        }
        decode_or_refuse(link_from_body(bytes, body.prefix), forged);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("share link fuzz: random %d refused / %d accepted, mutated %d / %d, forged %d / %d (%.2f s)\n",
                strings.refused, strings.accepted, mutations.refused, mutations.accepted, forged.refused,
                forged.accepted, seconds);
    CHECK(strings.refused + strings.accepted == 3000);
    CHECK(forged.accepted > 100);  // the forged bodies really reach (and pass) the image decoder
}
