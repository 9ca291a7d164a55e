// CUDA device discovery. Safe to call on machines without a GPU or driver: it reports zero devices
// and the reason instead of failing.
#pragma once

#include <string>
#include <vector>

namespace capsnet::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;
    int compute_major = 0, compute_minor = 0;
    std::size_t memory_bytes = 0;
};

struct DeviceList {
    std::vector<DeviceInfo> devices;
    std::string error;  // why no device is usable (no driver, no GPU...), empty when devices were found
};

DeviceList list_devices();

}  // namespace capsnet::cuda
