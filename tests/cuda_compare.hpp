// Comparing GPU results with the CPU core: the relative error norm |gpu - cpu| / |cpu| over a whole
// tensor, the measure every CUDA test states its tolerance in.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace capsnet_test {

inline double relative_error_norm(const float* gpu, const float* cpu, std::size_t count) {
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < count; ++i) {
        diff += (double(gpu[i]) - double(cpu[i])) * (double(gpu[i]) - double(cpu[i]));
        norm += double(cpu[i]) * double(cpu[i]);
    }
    return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

inline double relative_error_norm(const std::vector<float>& gpu, const float* cpu) {
    return relative_error_norm(gpu.data(), cpu, gpu.size());
}

}  // namespace capsnet_test
