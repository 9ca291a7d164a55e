// Locating the MNIST files for the tests that need them (fetched by scripts/fetch_mnist.sh).
// CAPSNET_DATA_DIR overrides the default <source>/data/mnist. When CAPSNET_REQUIRE_DATA=1 (as in CI)
// missing data fails the test; otherwise the test warns and checks nothing.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

namespace capsnet_test {

inline std::string mnist_directory() {
    if (const char* dir = std::getenv("CAPSNET_DATA_DIR")) return dir;
#ifdef CAPSNET_SOURCE_DIR
    return std::string(CAPSNET_SOURCE_DIR) + "/data/mnist";
#else
    return "data/mnist";
#endif
}

// True when the data is there; otherwise FAILs (CAPSNET_REQUIRE_DATA=1) or WARNs and returns false.
inline bool mnist_available() {
    const std::string dir = mnist_directory();
    bool all = true;
    for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"})
        all = all && std::filesystem::exists(dir + "/" + name);
    if (all) return true;
    const char* require = std::getenv("CAPSNET_REQUIRE_DATA");
    if (require && std::string(require) == "1") FAIL("MNIST not found in " << dir << " (run scripts/fetch_mnist.sh)");
    WARN("MNIST not found in " << dir << ": test not run (run scripts/fetch_mnist.sh)");
    return false;
}

}  // namespace capsnet_test
