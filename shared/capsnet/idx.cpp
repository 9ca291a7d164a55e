// The IDX reader and the MNIST loader on top of it. Sizes are computed in 64-bit unsigned arithmetic
// with overflow checks, so a corrupt header can neither wrap a size nor trigger a huge allocation.
#include "capsnet/idx.hpp"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

namespace capsnet {

namespace {

constexpr std::uint32_t images_magic = 0x00000803;
constexpr std::uint32_t labels_magic = 0x00000801;
// No real IDX image is this wide; the bound keeps rows and cols safely inside int.
constexpr std::uint32_t max_side = 1u << 16;

std::uint32_t big_endian_u32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::string hex32(std::uint32_t value) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08X", static_cast<unsigned>(value));
    return text;
}

bool looks_gzipped(const std::uint8_t* data, std::size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

const char* gzip_hint = " (the file looks gzip-compressed: gunzip it first, or run scripts/fetch_mnist.sh)";

// Checks the header size and the magic number; `kind` names the expected file type in messages.
void check_header(const std::uint8_t* data, std::size_t size, std::size_t header_size, std::uint32_t magic,
                  const char* kind, const std::string& source) {
    if (size < header_size)
        throw Error(source + ": file is " + std::to_string(size) + " bytes, shorter than the " +
                    std::to_string(header_size) + "-byte IDX " + kind + " header" +
                    (looks_gzipped(data, size) ? gzip_hint : ""));
    const std::uint32_t found = big_endian_u32(data);
    if (found == magic) return;
    std::string message = source + ": wrong magic number " + hex32(found) + ", expected " + hex32(magic) + " (IDX " +
                          kind + ")";
    if (looks_gzipped(data, size))
        message += gzip_hint;
    else if (found == images_magic)
        message += "; this is an IDX image file";
    else if (found == labels_magic)
        message += "; this is an IDX label file";
    throw Error(message);
}

// Payload size check shared by images and labels: neither truncated nor followed by extra bytes.
void check_payload(std::size_t size, std::size_t header_size, std::uint64_t expected, const std::string& what,
                   const std::string& source) {
    const std::uint64_t present = size - header_size;
    if (present < expected)
        throw Error(source + ": truncated: " + what + " need " + std::to_string(expected) + " bytes of data, but only " +
                    std::to_string(present) + " are present");
    if (present > expected)
        throw Error(source + ": trailing garbage: " + std::to_string(present - expected) + " extra bytes after the " +
                    std::to_string(expected) + " bytes of data for " + what);
}


}  // namespace

IdxImages idx_parse_images(const std::uint8_t* data, std::size_t size, const std::string& source_name) {
    constexpr std::size_t header_size = 16;
    check_header(data, size, header_size, images_magic, "images", source_name);
    const std::uint32_t count = big_endian_u32(data + 4);
    const std::uint32_t rows = big_endian_u32(data + 8);
    const std::uint32_t cols = big_endian_u32(data + 12);
    if (rows == 0 || cols == 0 || rows > max_side || cols > max_side)
        throw Error(source_name + ": implausible image size " + std::to_string(rows) + "x" + std::to_string(cols) +
                    " (an image has 1 to " + std::to_string(max_side) + " rows and columns)");
    // count * rows * cols < 2^32 * 2^16 * 2^16 = 2^64: cannot overflow.
    const std::uint64_t expected = std::uint64_t{count} * rows * cols;
    check_payload(size, header_size, expected,
                  std::to_string(count) + " images of " + std::to_string(rows) + "x" + std::to_string(cols),
                  source_name);
    IdxImages images;
    images.count = count;
    images.rows = static_cast<int>(rows);
    images.cols = static_cast<int>(cols);
    images.pixels.assign(data + header_size, data + size);
    return images;
}

std::vector<std::uint8_t> idx_parse_labels(const std::uint8_t* data, std::size_t size, const std::string& source_name) {
    constexpr std::size_t header_size = 8;
    check_header(data, size, header_size, labels_magic, "labels", source_name);
    const std::uint32_t count = big_endian_u32(data + 4);
    check_payload(size, header_size, count, std::to_string(count) + " labels", source_name);
    for (std::size_t i = header_size; i < size; ++i)
        if (data[i] > 9)
            throw Error(source_name + ": label " + std::to_string(data[i]) + " at index " +
                        std::to_string(i - header_size) + " is out of range (digit labels are 0-9)");
    return std::vector<std::uint8_t>(data + header_size, data + size);
}

IdxImages idx_read_images(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_whole_file(path);
    return idx_parse_images(bytes.data(), bytes.size(), path);
}

std::vector<std::uint8_t> idx_read_labels(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_whole_file(path);
    return idx_parse_labels(bytes.data(), bytes.size(), path);
}

MnistSplit mnist_load(const std::string& directory, const std::string& prefix) {
    const std::string images_path = directory + "/" + prefix + "-images-idx3-ubyte";
    const std::string labels_path = directory + "/" + prefix + "-labels-idx1-ubyte";
    for (const std::string& path : {images_path, labels_path}) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec))
            throw Error(path + ": file not found (run scripts/fetch_mnist.sh to download MNIST)");
    }
    MnistSplit split;
    split.images = idx_read_images(images_path);
    if (split.images.rows != 28 || split.images.cols != 28)
        throw Error(images_path + ": images are " + std::to_string(split.images.rows) + "x" +
                    std::to_string(split.images.cols) + ", MNIST images are 28x28");
    split.labels = idx_read_labels(labels_path);
    if (static_cast<std::int64_t>(split.labels.size()) != split.images.count)
        throw Error(labels_path + ": count mismatch: " + std::to_string(split.labels.size()) + " labels but " +
                    images_path + " has " + std::to_string(split.images.count) + " images");
    return split;  // idx_parse_labels has checked that every label is a digit 0-9
}

}  // namespace capsnet
