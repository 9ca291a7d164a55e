// Tests of the IDX reader and the MNIST loader: synthetic buffers and temp files for every error the
// reader reports, plus a check of the real MNIST files (tagged [mnist]) when they have been fetched.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/idx.hpp"
#include "mnist_fixture.hpp"

using namespace capsnet;
using Catch::Contains;

namespace {

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::vector<std::uint8_t> images_file(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
    std::vector<std::uint8_t> out;
    put_u32(out, 0x00000803);
    put_u32(out, count);
    put_u32(out, rows);
    put_u32(out, cols);
    for (std::uint32_t i = 0; i < count * rows * cols; ++i) out.push_back(static_cast<std::uint8_t>(i * 7));
    return out;
}

std::vector<std::uint8_t> labels_file(const std::vector<std::uint8_t>& labels) {
    std::vector<std::uint8_t> out;
    put_u32(out, 0x00000801);
    put_u32(out, static_cast<std::uint32_t>(labels.size()));
    out.insert(out.end(), labels.begin(), labels.end());
    return out;
}

IdxImages parse_images(const std::vector<std::uint8_t>& b) { return idx_parse_images(b.data(), b.size(), "imgs.idx"); }
std::vector<std::uint8_t> parse_labels(const std::vector<std::uint8_t>& b) {
    return idx_parse_labels(b.data(), b.size(), "labels.idx");
}

// A unique temp directory, removed with its contents when the test ends.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        static std::atomic<unsigned> counter{0};
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path = std::filesystem::temp_directory_path() /
               ("capsnet_test_idx_" + std::to_string(stamp) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
        const std::string file = (path / name).string();
        std::ofstream out(file, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        return file;
    }
};

std::vector<std::uint8_t> digits(std::size_t n) {
    std::vector<std::uint8_t> labels(n);
    for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    return labels;
}

}  // namespace

TEST_CASE("IDX images and labels parse from valid buffers", "[idx]") {
    const IdxImages images = parse_images(images_file(3, 2, 4));
    CHECK(images.count == 3);
    CHECK(images.rows == 2);
    CHECK(images.cols == 4);
    REQUIRE(images.pixels.size() == 24);
    CHECK(images.pixels[0] == 0);
    CHECK(images.pixels[23] == static_cast<std::uint8_t>(23 * 7));
    CHECK(parse_labels(labels_file({3, 1, 4, 1, 5})) == std::vector<std::uint8_t>{3, 1, 4, 1, 5});
    CHECK(parse_images(images_file(0, 28, 28)).pixels.empty());
    CHECK(parse_labels(labels_file({})).empty());
}

TEST_CASE("IDX errors name the file and the problem", "[idx][errors]") {
    SECTION("wrong magic") {
        REQUIRE_THROWS_WITH(parse_images(labels_file(digits(20))),
                            Contains("imgs.idx") && Contains("wrong magic") && Contains("0x00000801") &&
                                Contains("expected 0x00000803") && Contains("label file"));
        REQUIRE_THROWS_WITH(parse_labels(images_file(1, 2, 2)),
                            Contains("labels.idx") && Contains("wrong magic") && Contains("expected 0x00000801"));
    }
    SECTION("gzip-compressed file") {
        std::vector<std::uint8_t> gz = {0x1f, 0x8b, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x03, 0x74, 0x72, 0x61, 0x69, 0x6e, 0x00, 0x01};
        REQUIRE_THROWS_WITH(parse_images(gz), Contains("wrong magic") && Contains("gzip"));
        REQUIRE_THROWS_WITH(parse_labels(gz), Contains("gzip"));
        gz.resize(10);  // shorter than the image header, still recognisably gzip
        REQUIRE_THROWS_WITH(parse_images(gz), Contains("shorter") && Contains("gzip"));
    }
    SECTION("truncated header") {
        const std::vector<std::uint8_t> images = images_file(1, 2, 2);
        REQUIRE_THROWS_WITH(parse_images({images.begin(), images.begin() + 15}),
                            Contains("imgs.idx") && Contains("15 bytes") && Contains("shorter"));
        REQUIRE_THROWS_WITH(parse_labels({0x00, 0x00, 0x08}), Contains("labels.idx") && Contains("shorter"));
        REQUIRE_THROWS_WITH(idx_parse_images(nullptr, 0, "empty.idx"), Contains("empty.idx") && Contains("0 bytes"));
    }
    SECTION("truncated data") {
        std::vector<std::uint8_t> images = images_file(3, 2, 4);
        images.pop_back();
        REQUIRE_THROWS_WITH(parse_images(images),
                            Contains("truncated") && Contains("need 24 bytes") && Contains("only 23"));
        std::vector<std::uint8_t> labels = labels_file(digits(10));
        labels.resize(labels.size() - 4);
        REQUIRE_THROWS_WITH(parse_labels(labels), Contains("truncated") && Contains("need 10") && Contains("only 6"));
    }
    SECTION("trailing bytes") {
        std::vector<std::uint8_t> images = images_file(3, 2, 4);
        images.push_back(0);
        images.push_back(0);
        REQUIRE_THROWS_WITH(parse_images(images), Contains("trailing") && Contains("2 extra bytes"));
        std::vector<std::uint8_t> labels = labels_file(digits(10));
        labels.push_back(1);
        REQUIRE_THROWS_WITH(parse_labels(labels), Contains("trailing") && Contains("1 extra byte"));
    }
    SECTION("absurd dimensions do not overflow or allocate") {
        std::vector<std::uint8_t> huge;
        for (std::uint32_t v : {0x00000803u, 0xFFFFFFFFu, 0x00010000u, 0x00010000u}) put_u32(huge, v);
        REQUIRE_THROWS_WITH(parse_images(huge), Contains("truncated"));
        huge[8] = 0xFF;
        REQUIRE_THROWS_WITH(parse_images(huge), Contains("implausible image size"));
    }
    SECTION("images without pixels: 0 rows or 0 columns (issue 16)") {
        REQUIRE_THROWS_WITH(parse_images(images_file(3, 0, 28)), Contains("imgs.idx") && Contains("0x28"));
        REQUIRE_THROWS_WITH(parse_images(images_file(3, 28, 0)), Contains("imgs.idx") && Contains("28x0"));
        CHECK(parse_images(images_file(0, 1, 1)).count == 0);  // no images, but 1x1 ones: valid
    }
    SECTION("labels above 9 (issue 16): the parser itself rejects them, not only mnist_load") {
        std::vector<std::uint8_t> labels = digits(10);
        labels[4] = 200;
        REQUIRE_THROWS_WITH(parse_labels(labels_file(labels)),
                            Contains("labels.idx") && Contains("label 200") && Contains("index 4") && Contains("0-9"));
        labels[4] = 9;
        CHECK(parse_labels(labels_file(labels)) == labels);
    }
    SECTION("missing file") {
        TempDir dir;
        const std::string path = (dir.path / "nope-images-idx3-ubyte").string();
        REQUIRE_THROWS_WITH(idx_read_images(path), Contains(path) && Contains("cannot open"));
        REQUIRE_THROWS_WITH(idx_read_labels(path), Contains(path));
        REQUIRE_THROWS_WITH(mnist_load(dir.path.string(), "train"),
                            Contains("train-images-idx3-ubyte") && Contains("not found") && Contains("fetch_mnist.sh"));
        REQUIRE_THROWS_WITH(idx_read_images(dir.path.string()), Contains("directory"));
    }
}

TEST_CASE("mnist_load reads a split and checks it", "[idx]") {
    TempDir dir;
    dir.write("train-images-idx3-ubyte", images_file(10, 28, 28));
    dir.write("train-labels-idx1-ubyte", labels_file(digits(10)));
    SECTION("valid split") {
        const MnistSplit split = mnist_load(dir.path.string(), "train");
        CHECK(split.images.count == 10);
        CHECK(split.images.pixels.size() == 10 * 28 * 28);
        CHECK(split.labels == digits(10));
    }
    SECTION("count mismatch") {
        dir.write("train-labels-idx1-ubyte", labels_file(digits(9)));
        REQUIRE_THROWS_WITH(mnist_load(dir.path.string(), "train"),
                            Contains("count mismatch") && Contains("9 labels") && Contains("10 images"));
    }
    SECTION("label out of range") {
        std::vector<std::uint8_t> labels = digits(10);
        labels[7] = 10;
        dir.write("train-labels-idx1-ubyte", labels_file(labels));
        REQUIRE_THROWS_WITH(mnist_load(dir.path.string(), "train"),
                            Contains("train-labels-idx1-ubyte") && Contains("label 10") && Contains("index 7") &&
                                Contains("out of range"));
    }
    SECTION("images not 28x28") {
        dir.write("train-images-idx3-ubyte", images_file(10, 28, 27));
        REQUIRE_THROWS_WITH(mnist_load(dir.path.string(), "train"), Contains("28x27") && Contains("28x28"));
    }
    SECTION("truncated file on disk") {
        std::vector<std::uint8_t> images = images_file(10, 28, 28);
        images.resize(images.size() - 100);
        const std::string path = dir.write("train-images-idx3-ubyte", images);
        REQUIRE_THROWS_WITH(mnist_load(dir.path.string(), "train"), Contains(path) && Contains("truncated"));
    }
}

TEST_CASE("the real MNIST files load with the known sizes and label counts", "[idx][mnist]") {
    if (!capsnet_test::mnist_available()) return;
    const std::string dir = capsnet_test::mnist_directory();
    const MnistSplit train = mnist_load(dir, "train");
    const MnistSplit test = mnist_load(dir, "t10k");
    CHECK(train.images.count == 60000);
    CHECK(test.images.count == 10000);
    CHECK(train.images.rows == 28);
    CHECK(train.images.cols == 28);
    CHECK(test.images.rows == 28);
    CHECK(test.images.cols == 28);
    CHECK(train.images.pixels.size() == 60000u * 28 * 28);
    CHECK(test.labels.size() == 10000u);
    std::array<int, 10> counts{};
    for (std::uint8_t label : train.labels) ++counts[label];
    CHECK(counts == std::array<int, 10>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
}
