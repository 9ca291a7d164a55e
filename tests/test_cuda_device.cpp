// CUDA device discovery. Exits with 77, which ctest reports as SKIPPED, when no GPU is usable: the
// CUDA tests compile everywhere but can only run on a GPU machine.
#include <cstdio>

#include "device.hpp"

int main() {
    const capsnet::cuda::DeviceList list = capsnet::cuda::list_devices();
    if (list.devices.empty()) {
        std::printf("SKIPPED: no usable CUDA device (%s)\n", list.error.c_str());
        return 77;
    }
    int failures = 0;
    for (const auto& d : list.devices) {
        std::printf("device %d: %s, compute %d.%d, %.1f GiB\n", d.index, d.name.c_str(), d.compute_major,
                    d.compute_minor, d.memory_bytes / 1073741824.0);
        if (d.name.empty() || d.compute_major < 1 || d.memory_bytes == 0) ++failures;
    }
    std::printf("%d passed, %d failed\n", failures == 0 ? 1 : 0, failures == 0 ? 0 : 1);
    return failures == 0 ? 0 : 1;
}
