// CUDA device discovery through the runtime API; every call's status is checked and reported.
#include "device.hpp"

#include <cuda_runtime.h>

namespace capsnet::cuda {

DeviceList list_devices() {
    DeviceList list;
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        list.error = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return list;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp props{};
        const cudaError_t prop_status = cudaGetDeviceProperties(&props, i);
        if (prop_status != cudaSuccess) {
            list.error = "cudaGetDeviceProperties(" + std::to_string(i) + "): " + cudaGetErrorString(prop_status);
            continue;
        }
        list.devices.push_back({i, props.name, props.major, props.minor, props.totalGlobalMem});
    }
    if (count == 0) list.error = "no CUDA device";
    return list;
}

}  // namespace capsnet::cuda
