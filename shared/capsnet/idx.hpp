// Reader for the IDX files MNIST is distributed in (big-endian magic number and dimensions, then raw
// unsigned bytes). Every malformed or misplaced file ends in a capsnet::Error naming the file and what
// is wrong with it, including the common mistake of passing the still-gzipped download.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet {

struct IdxImages {
    std::int64_t count = 0;
    int rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels;  // count * rows * cols, row-major
};

// source_name only labels error messages. Images need 1 to 65536 rows and columns; labels must be
// digits 0-9 (the only labels this project reads).
IdxImages idx_parse_images(const std::uint8_t* data, std::size_t size, const std::string& source_name);
std::vector<std::uint8_t> idx_parse_labels(const std::uint8_t* data, std::size_t size, const std::string& source_name);
IdxImages idx_read_images(const std::string& path);
std::vector<std::uint8_t> idx_read_labels(const std::string& path);

struct MnistSplit {
    IdxImages images;
    std::vector<std::uint8_t> labels;
};

// prefix "train" or "t10k": reads <directory>/<prefix>-images-idx3-ubyte and
// <directory>/<prefix>-labels-idx1-ubyte, and checks the images are 28x28 and the counts agree.
MnistSplit mnist_load(const std::string& directory, const std::string& prefix);

}  // namespace capsnet
