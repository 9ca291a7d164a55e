// Tests of the share-link codec: random views and all MNIST test digits come back bit for bit (and the
// digits fit the length target), the bytes are laid out as share_link.hpp says, every hostile link we can
// think of gets its own message, and random or mutated fragments end in capsnet::Error or a stable view.
// The base64url and CRC-16 here are written independently of share_link.cpp, so the tests check the
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

using namespace capsnet;
using Catch::Contains;
using Catch::StartsWith;

namespace {

std::uint32_t float_bits(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

bool same_view(const ShareView& a, const ShareView& b) {
    bool same = a.model_id == b.model_id && a.input == b.input && a.selected_capsule == b.selected_capsule &&
                float_bits(a.sweep_low) == float_bits(b.sweep_low) &&
                float_bits(a.sweep_high) == float_bits(b.sweep_high) &&
                float_bits(a.sweep_step) == float_bits(b.sweep_step) && a.capsule_edited == b.capsule_edited;
    for (std::size_t d = 0; d < a.capsule.size(); ++d) same = same && float_bits(a.capsule[d]) == float_bits(b.capsule[d]);
    return same;
}

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

// "v1." + base64url(body + CRC): a link around hand-made bytes.
std::string link_from_body(std::vector<std::uint8_t> body) {
    const std::uint16_t crc = crc16(body);
    body.push_back(static_cast<std::uint8_t>(crc >> 8));
    body.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    std::string text = "v1.";
    for (std::size_t i = 0; i < body.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, body.size() - i);
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 3; ++k) group = group << 8 | (k < n ? body[i + k] : 0);
        for (std::size_t k = 0; k <= n; ++k) text += alphabet[(group >> (18 - 6 * k)) & 63];
    }
    return text;
}

// The body (without CRC) of a link, checking the CRC on the way.
std::vector<std::uint8_t> body_of_link(const std::string& link) {
    REQUIRE(link.rfind("v1.", 0) == 0);
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

ShareView mnist_view(const IdxImages& images, std::size_t index) {
    ShareView view;
    view.model_id = "capsnet-seed-i8";
    std::copy_n(images.pixels.begin() + static_cast<std::ptrdiff_t>(index * 784), 784, view.input.begin());
    view.selected_capsule = static_cast<int>(index % 10);
    view.capsule_edited = true;  // the longest links: 32 more bytes
    for (std::size_t d = 0; d < 16; ++d) view.capsule[d] = share_link_quantize(std::sin(float(index + d)) * 1.5f);
    return view;
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

TEST_CASE("random views survive encode then decode bit for bit", "[share_link]") {
    const unsigned seed = 1710829u;
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    for (int i = 0; i < 3000; ++i) {
        const ShareView view = random_view(rng);
        const std::string link = share_link_encode(view);
        INFO("view " << i << ": " << link);
        REQUIRE(link.rfind("v1.", 0) == 0);
        REQUIRE(link.find_first_not_of(alphabet, 3) == std::string::npos);
        REQUIRE(link.size() <= 1147);
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
    SECTION("an unedited capsule is not stored") {
        ShareView view;
        view.model_id = "m";
        view.capsule[0] = 1.0f;
        const ShareView back = share_link_decode(share_link_encode(view));
        CHECK_FALSE(back.capsule_edited);
        CHECK(back.capsule[0] == 0.0f);
    }
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
    CHECK(body.size() - 55 < 16);  // a blank image range-codes to a few bytes

    SECTION("noise that range coding cannot shrink is stored raw: the longest possible link") {
        std::mt19937 rng(7);
        view.model_id = std::string(32, 'z');
        for (auto& pixel : view.input) pixel = static_cast<std::uint8_t>(rng() % 255 + 1);
        const std::string link = share_link_encode(view);
        const std::vector<std::uint8_t> raw = body_of_link(link);
        CHECK(raw[33] == (7 | 0x10 | 0x20));
        REQUIRE(raw.size() == 1 + 32 + 1 + 6 + 32 + 784);
        CHECK(std::equal(view.input.begin(), view.input.end(), raw.end() - 784));
        CHECK(link.size() == 1147);
    }
}

TEST_CASE("every MNIST test digit round-trips in fewer than share_link_max_length characters", "[share_link][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const MnistSplit test = mnist_load(capsnet_test::mnist_directory(), "t10k");
    std::vector<std::size_t> lengths;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < test.labels.size(); ++i) {
        const ShareView view = mnist_view(test.images, i);
        const std::string link = share_link_encode(view);
        lengths.push_back(link.size());
        if (!same_view(share_link_decode(link), view)) FAIL("digit " << i << " did not come back");
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::sort(lengths.begin(), lengths.end());
    std::printf("share link over %zu MNIST test digits (edited capsule): min %zu, median %zu, max %zu characters; "
                "encode+decode %.1f us per digit\n",
                lengths.size(), lengths.front(), lengths[lengths.size() / 2], lengths.back(),
                seconds * 1e6 / double(lengths.size()));
    CHECK(lengths.size() == 10000);
    CHECK(lengths.back() < static_cast<std::size_t>(share_link_max_length));
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
    const std::size_t state = 16, low = 17, high = 19, step = 21, image = 23;
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
        REQUIRE_THROWS_WITH(decode("hello"), Contains("not a share link"));
        REQUIRE_THROWS_WITH(decode("v.AAAA"), Contains("not a share link"));
        REQUIRE_THROWS_WITH(decode("vx1.AAAA"), Contains("not a share link"));
        REQUIRE_THROWS_WITH(decode("v2." + link.substr(3)), "share link: version 2 is not supported (this page reads version 1)");
        REQUIRE_THROWS_WITH(decode("#v10." + link.substr(3)), Contains("version 10 is not supported"));
        REQUIRE_THROWS_WITH(decode(link.substr(0, 10) + "%" + link.substr(11)), Contains("unexpected '%' at position 11"));
        REQUIRE_THROWS_WITH(decode("#" + link.substr(0, 10) + "=" + link.substr(11)), Contains("unexpected '=' at position 12"));
        REQUIRE_THROWS_WITH(decode(link + "\xc3\xa9"), Contains("unexpected byte 0xC3"));
        REQUIRE_THROWS_WITH(decode(link + "#"), Contains("unexpected '#'"));
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
        REQUIRE_THROWS_WITH(decode(link.substr(0, link.size() - 2)), Contains("checksum mismatch") || Contains("incomplete"));
        REQUIRE_THROWS_WITH(decode(link.substr(0, link.size() - 4)), Contains("checksum mismatch") || Contains("incomplete"));
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
        REQUIRE_THROWS_WITH(decode(changed(state, 0x40, false)), Contains("unknown flags"));
        REQUIRE_THROWS_WITH(decode(changed(state, 0x80 | 3, false)), Contains("unknown flags"));
        // "edited" without the 32 bytes: the image's bytes are read as values, and run out.
        std::vector<std::uint8_t> edited(body.begin(), body.begin() + image);
        edited[state] = 0x10;
        for (int d = 0; d < 16; ++d) edited.insert(edited.end(), {0x00, 0x80});  // -32768
        REQUIRE_THROWS_WITH(decode(link_from_body(edited)), "share link: a capsule value is -32.768, outside [-2, 2]");
        edited.resize(image + 3);
        edited[image] = edited[image + 1] = 0;
        REQUIRE_THROWS_WITH(decode(link_from_body(edited)), "share link: incomplete (a capsule value missing)");
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
    const char special_chars[] = "#%=.v1 +/?&\0\x7f";
    const std::string specials(special_chars, sizeof special_chars - 1);
    const auto random_char = [&]() -> char {
        switch (rng() % 3) {
            case 0: return alphabet[pick(64)];
            case 1: return specials[pick(specials.size())];
            default: return static_cast<char>(rng() & 0xFF);  // non-ASCII and control bytes too
        }
    };
    std::vector<std::string> links;
    std::vector<std::vector<std::uint8_t>> bodies;
    for (int i = 0; i < 40; ++i) {
        links.push_back(share_link_encode(random_view(rng)));
        bodies.push_back(body_of_link(links.back()));
    }

    FuzzCounts strings, mutations, forged;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3000; ++i) {  // random strings, some behind a valid-looking prefix
        std::string text = (rng() % 4 == 0) ? "v1." : (rng() % 4 == 0) ? "#v1." : "";
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
        std::vector<std::uint8_t> bytes = bodies[pick(bodies.size())];
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
        decode_or_refuse(link_from_body(bytes), forged);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("share link fuzz: random %d refused / %d accepted, mutated %d / %d, forged %d / %d (%.2f s)\n",
                strings.refused, strings.accepted, mutations.refused, mutations.accepted, forged.refused,
                forged.accepted, seconds);
    CHECK(strings.refused + strings.accepted == 3000);
    CHECK(forged.accepted > 100);  // the forged bodies really reach (and pass) the image decoder
}
