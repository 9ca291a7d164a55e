// Tests of the safetensors reader/writer: round trips, the on-disk layout the reference implementation
// expects, binary16 conversions, and that every kind of malformed file (including random mutations of
// a valid one) ends in capsnet::Error rather than a crash.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "capsnet/safetensors.hpp"

using namespace capsnet;
using Catch::Contains;

namespace {

std::string temp_path(const std::string& tag) {
    static std::atomic<unsigned> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    return (std::filesystem::temp_directory_path() /
            ("capsnet_test_st_" + tag + "_" + std::to_string(stamp) + "_" + std::to_string(counter++)))
        .string();
}

SafeTensors sample_file() {
    SafeTensors file;
    file.metadata["preset"] = "seed";
    file.metadata["note"] = "h\xc3\xa9llo \"quoted\"";
    const std::vector<float> w = {1.5f, -2.25f, 0.0f, 3.0e-8f, 1e30f, -0.0f};
    file.tensors["b.weight"] = stored_tensor_f32({2, 3}, w.data());
    const float scalar = 42.0f;
    file.tensors["a.scalar"] = stored_tensor_f32({}, &scalar);
    file.tensors["c.empty"] = stored_tensor_f32({0, 4}, nullptr);
    file.tensors["d.half"] = StoredTensor{DType::F16, {3}, {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b}};
    file.tensors["e.int8"] = StoredTensor{DType::I8, {5}, {0x01, 0x7f, 0x80, 0xff, 0x00}};
    StoredTensor f64{DType::F64, {2}, std::vector<std::uint8_t>(16)};
    const double d[2] = {0.125, -1e300};
    std::memcpy(f64.bytes.data(), d, sizeof d);
    file.tensors["f.double"] = f64;
    return file;
}

void require_same(const SafeTensors& a, const SafeTensors& b) {
    REQUIRE(a.metadata == b.metadata);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (const auto& entry : a.tensors) {
        INFO(entry.first);
        const auto it = b.tensors.find(entry.first);
        REQUIRE(it != b.tensors.end());
        CHECK(it->second.dtype == entry.second.dtype);
        CHECK(it->second.shape == entry.second.shape);
        CHECK(it->second.bytes == entry.second.bytes);
    }
}

// A file assembled by hand from header text and buffer bytes, to build exactly the malformation wanted.
std::vector<std::uint8_t> raw_file(const std::string& header, std::size_t buffer_bytes) {
    std::vector<std::uint8_t> out;
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
    out.insert(out.end(), header.begin(), header.end());
    out.resize(out.size() + buffer_bytes, 0xab);
    return out;
}

SafeTensors parse(const std::vector<std::uint8_t>& bytes) { return safetensors_parse(bytes.data(), bytes.size(), "bad.safetensors"); }

std::uint64_t header_length(const std::vector<std::uint8_t>& bytes) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
    return n;
}

}  // namespace

TEST_CASE("serialize then parse gives the same tensors and metadata", "[safetensors]") {
    const SafeTensors file = sample_file();
    const std::vector<std::uint8_t> bytes = safetensors_serialize(file);
    require_same(file, safetensors_parse(bytes.data(), bytes.size(), "memory"));
    CHECK(safetensors_serialize(safetensors_parse(bytes.data(), bytes.size(), "memory")) == bytes);
}

TEST_CASE("write then read through a real file", "[safetensors]") {
    const SafeTensors file = sample_file();
    const std::string path = temp_path("roundtrip");
    safetensors_write(path, file);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    require_same(file, safetensors_read(path));
    // Overwriting an existing file goes through the same rename.
    SafeTensors smaller;
    const float one = 1.0f;
    smaller.tensors["x"] = stored_tensor_f32({1}, &one);
    safetensors_write(path, smaller);
    require_same(smaller, safetensors_read(path));
    std::filesystem::remove(path);
    REQUIRE_THROWS_WITH(safetensors_read(path), Contains(path) && Contains("cannot open"));
    REQUIRE_THROWS_WITH(safetensors_write(temp_path("no_such_dir") + "/x.safetensors", file), Contains("cannot open"));
}

TEST_CASE("layout: 8-byte aligned header, tensors sorted by name in a compact buffer", "[safetensors]") {
    const SafeTensors file = sample_file();
    const std::vector<std::uint8_t> bytes = safetensors_serialize(file);
    const std::uint64_t n = header_length(bytes);
    CHECK(n % 8 == 0);
    const std::string text(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    CHECK(text.find_last_not_of(' ') < text.size());
    const nlohmann::json header = nlohmann::json::parse(text);
    CHECK(header["__metadata__"]["preset"] == "seed");

    std::uint64_t expected_offset = 0;
    for (const auto& entry : file.tensors) {  // std::map order = name order
        INFO(entry.first);
        const auto& offsets = header[entry.first]["data_offsets"];
        CHECK(offsets[0].get<std::uint64_t>() == expected_offset);
        expected_offset += entry.second.bytes.size();
        CHECK(offsets[1].get<std::uint64_t>() == expected_offset);
        CHECK(header[entry.first]["dtype"] == dtype_name(entry.second.dtype));
    }
    CHECK(bytes.size() == 8 + n + expected_offset);

    // Every padding length 0..7 occurs as the name length varies; all must align.
    for (int len = 1; len <= 16; ++len) {
        SafeTensors one;
        const float v = 1.0f;
        one.tensors[std::string(static_cast<std::size_t>(len), 'n')] = stored_tensor_f32({1}, &v);
        const auto b = safetensors_serialize(one);
        CHECK(header_length(b) % 8 == 0);
        require_same(one, parse(b));
    }
}

TEST_CASE("serialize rejects tensors whose bytes do not match the shape", "[safetensors]") {
    SafeTensors file;
    file.tensors["w"] = StoredTensor{DType::F32, {2, 2}, std::vector<std::uint8_t>(15)};
    REQUIRE_THROWS_WITH(safetensors_serialize(file), Contains("'w'") && Contains("15 bytes"));
}

TEST_CASE("stored tensors convert to float", "[safetensors]") {
    const SafeTensors file = sample_file();
    CHECK(stored_tensor_to_f32(file.tensors.at("b.weight"), "w") ==
          std::vector<float>{1.5f, -2.25f, 0.0f, 3.0e-8f, 1e30f, -0.0f});
    CHECK(stored_tensor_to_f32(file.tensors.at("d.half"), "h") == std::vector<float>{1.0f, -2.0f, 65504.0f});
    CHECK(stored_tensor_to_f32(file.tensors.at("f.double"), "d")[0] == 0.125f);
    CHECK(std::isinf(stored_tensor_to_f32(file.tensors.at("f.double"), "d")[1]));
    CHECK(stored_tensor_to_f32(file.tensors.at("a.scalar"), "s") == std::vector<float>{42.0f});
    CHECK(stored_tensor_to_f32(file.tensors.at("c.empty"), "e").empty());
    REQUIRE_THROWS_WITH(stored_tensor_to_f32(file.tensors.at("e.int8"), "layer.q"), Contains("layer.q") && Contains("I8"));
    CHECK(file.tensors.at("b.weight").element_count() == 6);
    CHECK(file.tensors.at("a.scalar").element_count() == 1);
    CHECK(file.tensors.at("c.empty").element_count() == 0);
}

TEST_CASE("float_to_half known values", "[safetensors][f16]") {
    CHECK(float_to_half(1.0f) == 0x3C00);
    CHECK(float_to_half(-2.0f) == 0xC000);
    CHECK(float_to_half(0.0f) == 0x0000);
    CHECK(float_to_half(-0.0f) == 0x8000);
    CHECK(float_to_half(65504.0f) == 0x7BFF);
    CHECK(float_to_half(65519.0f) == 0x7BFF);  // below the midpoint to 2^16
    CHECK(float_to_half(65520.0f) == 0x7C00);  // the midpoint rounds to even: infinity
    CHECK(float_to_half(1e10f) == 0x7C00);
    CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
    CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
    CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);  // tie between 0 and 2^-24: even is 0
    CHECK(float_to_half(std::ldexp(1.5f, -25)) == 0x0001);
    CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);  // 1.5 * 2^-24: tie, rounds to even 2
    CHECK(float_to_half(std::ldexp(5.0f, -25)) == 0x0002);  // 2.5 * 2^-24: tie, rounds to even 2
    CHECK(float_to_half(std::ldexp(1.0f, -30)) == 0x0000);
    CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7C00);
    CHECK(float_to_half(-std::numeric_limits<float>::infinity()) == 0xFC00);
    const std::uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
    CHECK((nan & 0x7C00) == 0x7C00);
    CHECK((nan & 0x03FF) != 0);
    // 1 + 2^-11 is exactly between 1 and the next half 1 + 2^-10: ties to the even mantissa (1.0).
    CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
    // 1 + 3 * 2^-11 is between 1 + 2^-10 (odd) and 1 + 2^-9 (even): rounds up to even.
    CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
    CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3C01);  // above the tie
    CHECK(float_to_half(0.1f) == 0x2E66);
    CHECK(half_to_float(0x3C00) == 1.0f);
    CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
    CHECK(half_to_float(0x7BFF) == 65504.0f);
    CHECK(std::isinf(half_to_float(0x7C00)));
    CHECK(std::isnan(half_to_float(0x7E00)));
    CHECK(std::signbit(half_to_float(0x8000)));
}

TEST_CASE("every non-NaN half survives half -> float -> half", "[safetensors][f16]") {
    int mismatches = 0, nans = 0;
    for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
        const auto bits = static_cast<std::uint16_t>(h);
        const float f = half_to_float(bits);
        if ((bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0) {
            CHECK(std::isnan(f));
            CHECK(std::isnan(half_to_float(float_to_half(f))));
            ++nans;
            continue;
        }
        if (float_to_half(f) != bits) ++mismatches;
    }
    CHECK(nans == 2 * 1023);
    CHECK(mismatches == 0);
}

TEST_CASE("malformed safetensors files throw capsnet::Error naming the problem", "[safetensors][errors]") {
    const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    SECTION("empty file") {
        REQUIRE_THROWS_WITH(safetensors_parse(nullptr, 0, "bad.safetensors"), Contains("bad.safetensors") && Contains("too short"));
    }
    SECTION("7 bytes") {
        const std::vector<std::uint8_t> bytes(7, 0);
        REQUIRE_THROWS_WITH(parse(bytes), Contains("bad.safetensors") && Contains("too short"));
    }
    SECTION("header length larger than the file") {
        std::vector<std::uint8_t> bytes = raw_file("{" + ok_entry + "}", 8);
        bytes[0] = 0xff;
        bytes[1] = 0x01;  // 511 bytes of header claimed
        REQUIRE_THROWS_WITH(parse(bytes), Contains("header length") && Contains("exceeds"));
    }
    SECTION("huge header length") {
        std::vector<std::uint8_t> bytes = raw_file("{}", 0);
        for (int i = 0; i < 7; ++i) bytes[static_cast<std::size_t>(i)] = 0;
        bytes[7] = 0x80;  // 2^63
        REQUIRE_THROWS_WITH(parse(bytes), Contains("header length") && Contains("implausibly large"));
        std::fill(bytes.begin(), bytes.begin() + 8, 0xff);
        REQUIRE_THROWS_WITH(parse(bytes), Contains("header length"));
    }
    SECTION("invalid JSON") {
        REQUIRE_THROWS_WITH(parse(raw_file("{\"w\": [1, 2", 0)), Contains("not valid JSON"));
        REQUIRE_THROWS_WITH(parse(raw_file("{\"w\": \"\xff\xfe\"}", 0)), Contains("not valid JSON"));
        REQUIRE_THROWS_WITH(parse(raw_file("", 0)), Contains("not valid JSON"));
    }
    SECTION("JSON array instead of object") {
        REQUIRE_THROWS_WITH(parse(raw_file("[1, 2, 3]", 0)), Contains("not a JSON object"));
    }
    SECTION("entry not an object") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w": 3})", 0)), Contains("'w'") && Contains("not a JSON object"));
    }
    SECTION("missing or unknown dtype") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4)),
                            Contains("'w'") && Contains("dtype") && Contains("BF16"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8)), Contains("missing dtype"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8)), Contains("dtype"));
    }
    SECTION("negative or non-integer shape") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
                            Contains("shape") && Contains("non-negative"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8)),
                            Contains("shape"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8)),
                            Contains("shape"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8)), Contains("missing shape"));
    }
    SECTION("shape whose element count overflows") {
        // 2^40 * 2^40 = 2^80 wraps to 0 in 64 bits, so an unchecked product would accept 0 bytes.
        REQUIRE_THROWS_WITH(
            parse(raw_file(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,0]}})", 0)),
            Contains("shape") && Contains("overflow"));
        REQUIRE_THROWS_WITH(
            parse(raw_file(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})", 0)),
            Contains("shape"));
        REQUIRE_THROWS_WITH(
            parse(raw_file(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0)),
            Contains("shape"));
    }
    SECTION("data_offsets malformed or out of range") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)),
                            Contains("data_offsets") && Contains("out of range"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)),
                            Contains("data_offsets") && Contains("out of range"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8)),
                            Contains("data_offsets"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8)),
                            Contains("data_offsets"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", 8)), Contains("missing data_offsets"));
    }
    SECTION("size mismatch between offsets and shape") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 12)),
                            Contains("'w'") && Contains("size mismatch"));
    }
    SECTION("overlapping tensors") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                           12)),
                            Contains("'a'") && Contains("'b'") && Contains("overlap"));
        // Empty tensors sharing an offset overlap nothing.
        CHECK(parse(raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             8))
                  .tensors.size() == 2);
    }
    SECTION("metadata not strings") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"__metadata__":{"epochs":3}})", 0)),
                            Contains("__metadata__") && Contains("epochs") && Contains("not a string"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"__metadata__":["x"]})", 0)), Contains("__metadata__"));
    }
    SECTION("truncated data") {
        const std::vector<std::uint8_t> good = safetensors_serialize(sample_file());
        for (std::size_t cut : {std::size_t{1}, std::size_t{5}, std::size_t{16}}) {
            const std::vector<std::uint8_t> bytes(good.begin(), good.end() - static_cast<std::ptrdiff_t>(cut));
            REQUIRE_THROWS_WITH(parse(bytes), Contains("bad.safetensors") && Contains("truncated"));
        }
        // Cutting into the header itself.
        const std::vector<std::uint8_t> bytes(good.begin(), good.begin() + 20);
        REQUIRE_THROWS_WITH(parse(bytes), Contains("header length"));
    }
    SECTION("a truncated file on disk") {
        const std::vector<std::uint8_t> good = safetensors_serialize(sample_file());
        const std::string path = temp_path("truncated");
        {
            std::ofstream out(path, std::ios::binary);
            out.write(reinterpret_cast<const char*>(good.data()), static_cast<std::streamsize>(good.size() - 3));
        }
        REQUIRE_THROWS_WITH(safetensors_read(path), Contains(path) && Contains("truncated"));
        std::filesystem::remove(path);
    }
}

TEST_CASE("hostile files the fuzzer found accepted are rejected (issue 16)", "[safetensors][errors]") {
    SECTION("bytes after a NUL inside the header") {
        const std::string header("{}\0garbage", 10);
        REQUIRE_THROWS_WITH(parse(raw_file(header, 0)), Contains("bad.safetensors") && Contains("NUL byte at offset 2"));
        CHECK(parse(raw_file("{}      ", 0)).tensors.empty());  // the reference's space padding stays valid
    }
    SECTION("a data buffer the tensors do not cover") {
        // 2 of 856 data bytes used, as found: unused bytes at the end.
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", 856)),
                            Contains("bad.safetensors") && Contains("last 854 bytes") && Contains("856-byte"));
        // A gap at the start and one between two tensors.
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
                            Contains("bytes [0, 4)") && Contains("'w'") && Contains("gaps"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12)),
                            Contains("bytes [4, 8)") && Contains("'b'"));
        // No tensor at all, but data bytes.
        REQUIRE_THROWS_WITH(parse(raw_file("{}", 16)), Contains("last 16 bytes"));
        // Exactly covered, in any order of the header: valid.
        CHECK(parse(raw_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8)).tensors.size() == 2);
    }
    SECTION("duplicate names") {
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                           R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
                            Contains("bad.safetensors") && Contains("'w' twice"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 4)),
                            Contains("'dtype' twice"));
        REQUIRE_THROWS_WITH(parse(raw_file(R"({"__metadata__":{"preset":"seed","preset":"paper"}})", 0)),
                            Contains("'preset' twice"));
        // The same key in different objects is not a duplicate.
        CHECK(parse(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)).tensors.size() == 2);
    }
    SECTION("headers and tensor counts no model file needs") {
        // 1.86 million empty tensors in a 100 MiB header, as found, now stop at the header's length; a
        // header under the 1 MiB limit with 1025 empty tensors stops at the count.
        std::vector<std::uint8_t> big = raw_file("{}", 0);
        const std::uint64_t hundred_mib = 100ull << 20;
        for (int i = 0; i < 8; ++i) big[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(hundred_mib >> (8 * i));
        REQUIRE_THROWS_WITH(parse(big), Contains("header length 104857600") && Contains("limit 1048576"));
        std::string many = "{";
        for (int i = 0; i < 1025; ++i)
            many += (i ? "," : "") + std::string("\"t") + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
        many += "}";
        REQUIRE(many.size() < (1u << 20));
        REQUIRE_THROWS_WITH(parse(raw_file(many, 0)), Contains("1025 tensors") && Contains("1024"));
        // 1024 are allowed (__metadata__ does not count).
        std::string enough = "{\"__metadata__\":{}";
        for (int i = 0; i < 1024; ++i)
            enough += ",\"t" + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
        enough += "}";
        CHECK(parse(raw_file(enough, 0)).tensors.size() == 1024);
    }
}

TEST_CASE("random mutations of a valid file either parse or throw capsnet::Error", "[safetensors][fuzz]") {
    const std::vector<std::uint8_t> good = safetensors_serialize(sample_file());
    const std::size_t header_end = 8 + static_cast<std::size_t>(header_length(good));
    std::mt19937 rng(20171026u);
    int parsed = 0, rejected = 0;
    for (int round = 0; round < 4000; ++round) {
        std::vector<std::uint8_t> bytes = good;
        const int kind = static_cast<int>(rng() % 4);
        if (kind == 0) {  // truncation
            bytes.resize(rng() % bytes.size());
        } else {
            // Mostly hit the length field and the header, where the parser makes its decisions.
            const int mutations = 1 + static_cast<int>(rng() % 4);
            for (int m = 0; m < mutations && !bytes.empty(); ++m) {
                const std::size_t limit = (rng() % 4 == 0) ? bytes.size() : std::min(bytes.size(), header_end);
                const std::size_t at = rng() % limit;
                if (kind == 1) {
                    bytes[at] = static_cast<std::uint8_t>(rng());
                } else if (kind == 2) {
                    static const char tokens[] = "{}[],:\"0123456789-.e ";
                    bytes[at] = static_cast<std::uint8_t>(tokens[rng() % (sizeof tokens - 1)]);
                } else {
                    bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at));
                }
            }
        }
        // Parse from an exactly-sized heap copy so ASan catches any read past the end.
        std::unique_ptr<std::uint8_t[]> exact(new std::uint8_t[bytes.size() ? bytes.size() : 1]);
        if (!bytes.empty()) std::memcpy(exact.get(), bytes.data(), bytes.size());
        try {
            const SafeTensors file = safetensors_parse(exact.get(), bytes.size(), "fuzz");
            for (const auto& entry : file.tensors)
                REQUIRE(entry.second.bytes.size() ==
                        static_cast<std::size_t>(entry.second.element_count()) * dtype_size(entry.second.dtype));
            ++parsed;
        } catch (const Error& e) {
            REQUIRE(std::string(e.what()).rfind("fuzz: ", 0) == 0);
            ++rejected;
        }
    }
    INFO("parsed " << parsed << ", rejected " << rejected);
    CHECK(rejected > 1000);
    CHECK(parsed > 0);
}
