// PNG bytes of a grayscale picture in [0,1], for the "download PNG" button (stb_image_write, in memory).
#pragma once

#include <cstdint>
#include <vector>

#include "capsnet/common.hpp"

namespace capsnet {

std::vector<std::uint8_t> png_encode_gray(const Tensor<float, 2>& picture);

}  // namespace capsnet
