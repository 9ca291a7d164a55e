// Catch2 main for the CUDA tests: exits with 77 (ctest: SKIPPED) when no GPU is usable, so the tests
// build and report honestly on machines without one.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "cpu/gemm_openblas.hpp"
#include "device.hpp"

int main(int argc, char** argv) {
    const capsnet::cuda::DeviceList gpus = capsnet::cuda::list_devices();
    if (gpus.devices.empty()) {
        std::printf("SKIPPED: no usable CUDA device (%s)\n", gpus.error.c_str());
        return 77;
    }
    std::printf("CUDA device 0: %s\n", gpus.devices[0].name.c_str());
    capsnet::gemm_use_by_shape();  // the CPU backend the CUDA one is compared with runs the native program's GEMM
    return Catch::Session().run(argc, argv);
}
