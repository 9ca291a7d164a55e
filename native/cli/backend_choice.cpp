// --device parsing and the choice of backend.
#include "cli/backend_choice.hpp"

#include <algorithm>

#include "cpu/cpu_backend.hpp"
#ifdef CAPSNET_HAS_CUDA
#include "cuda_backend.hpp"
#include "device.hpp"
#endif

namespace capsnet {

namespace {

// "cuda" -> 0, "cuda:3" -> 3, anything else -> -1.
int cuda_index(const std::string& device) {
    if (device == "cuda") return 0;
    if (device.rfind("cuda:", 0) != 0 || device.size() == 5) return -1;
    int index = 0;
    for (std::size_t i = 5; i < device.size(); ++i) {
        if (device[i] < '0' || device[i] > '9' || index > 1000) return -1;
        index = index * 10 + (device[i] - '0');
    }
    return index;
}

}  // namespace

std::unique_ptr<TrainingBackend> make_training_backend(const std::string& device, int threads, GpuMatmul matmul,
                                                       int gpu_choice) {
    const int index = cuda_index(device);
    if (device != "cpu" && device != "auto" && index < 0)
        throw Error("--device: unknown device '" + device + "' (use cpu, cuda, cuda:N or auto)");
    auto cpu_backend = [&]() -> std::unique_ptr<TrainingBackend> {
        if (matmul == GpuMatmul::tf32) throw Error("--tf32: TF32 is a GPU mode, and this run would train on the CPU");
        return std::make_unique<CpuBackend>(threads);
    };
    if (device == "cpu") return cpu_backend();
#ifdef CAPSNET_HAS_CUDA
    const bool tf32 = matmul == GpuMatmul::tf32;
    const cuda::DeviceList gpus = cuda::list_devices();
    auto chosen_gpu = [&] {
        const std::size_t n = gpus.devices.size();
        return gpus.devices[static_cast<std::size_t>(std::max(0, gpu_choice)) % n].index;
    };
    if (device == "auto") {
        if (gpus.devices.empty()) return cpu_backend();
        return make_cuda_backend(chosen_gpu(), tf32);
    }
    if (gpus.devices.empty()) throw Error("--device " + device + ": no CUDA device is usable: " + gpus.error);
    if (device == "cuda") return make_cuda_backend(chosen_gpu(), tf32);
    // cuda:N is the runtime's device N, which must be one list_devices found usable.
    for (const cuda::DeviceInfo& gpu : gpus.devices)
        if (gpu.index == index) return make_cuda_backend(index, tf32);
    throw Error("--device " + device + ": this machine has " + std::to_string(gpus.devices.size()) + " CUDA device(s)");
#else
    (void)gpu_choice;
    if (device == "auto") return cpu_backend();
    throw Error("--device " + device + ": this build has no CUDA support (configure with the 'cuda' preset); use --device cpu");
#endif
}

}  // namespace capsnet
