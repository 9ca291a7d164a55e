#include "gpu_context.hpp"

namespace capsnet::cuda {

GpuContext::GpuContext(int device) : device_(device) {
    CAPSNET_CUDA_CHECK(cudaSetDevice(device));
    CAPSNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CAPSNET_CUBLAS_CHECK(cublasCreate(&cublas_));
    CAPSNET_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
}

GpuContext::~GpuContext() {
    // Destructors must not throw: errors here are ignored (the process is tearing the GPU state down).
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
}

void GpuContext::synchronize() const { CAPSNET_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace capsnet::cuda
