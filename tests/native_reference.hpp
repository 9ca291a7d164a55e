// The wasm-against-native comparisons: the native run of a test writes its outputs to a reference file,
// the wasm run (under node, after the native one in scripts/test.sh) reads it back.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/common.hpp"

namespace capsnet_test {

// Native: writes `outputs` to `path`, returns nothing. Wasm: the worst |output - reference| over all
// values, or nothing (FAIL when CAPSNET_REQUIRE_DATA=1, else WARN) when the native run has not written
// the file; the sizes must agree. `native_test` names the test that writes it.
inline std::optional<float> compare_with_native_reference(const std::string& path, const std::vector<float>& outputs,
                                                          const char* native_test) {
#ifndef __EMSCRIPTEN__
    std::vector<std::uint8_t> bytes(outputs.size() * sizeof(float));
    std::memcpy(bytes.data(), outputs.data(), bytes.size());
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    capsnet::write_whole_file_atomically(path, bytes);
    SUCCEED("wrote " << outputs.size() << " reference values to " << path);
    (void)native_test;
    return std::nullopt;
#else
    if (!std::filesystem::exists(path)) {
        const char* require = std::getenv("CAPSNET_REQUIRE_DATA");
        if (require && std::string(require) == "1") FAIL("no native reference at " << path << ": run the native tests first");
        WARN("no native reference at " << path << " (run the native " << native_test << " first): nothing compared");
        return std::nullopt;
    }
    const std::vector<std::uint8_t> bytes = capsnet::read_whole_file(path);
    REQUIRE(bytes.size() == outputs.size() * sizeof(float));
    std::vector<float> reference(outputs.size());
    std::memcpy(reference.data(), bytes.data(), bytes.size());
    float worst = 0;
    for (std::size_t i = 0; i < outputs.size(); ++i) worst = std::max(worst, std::abs(outputs[i] - reference[i]));
    return worst;
#endif
}

}  // namespace capsnet_test
