#include "gpu_context.hpp"

namespace capsnet::cuda {

GpuContext::GpuContext(int device, bool tf32) : device_(device) {
    CAPSNET_CUDA_CHECK(cudaSetDevice(device));
    CAPSNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CAPSNET_CUBLAS_CHECK(cublasCreate(&cublas_));
    CAPSNET_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // Said explicitly either way: the default math mode is float32, and TF32 is opt-in.
    CAPSNET_CUBLAS_CHECK(cublasSetMathMode(cublas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

GpuContext::~GpuContext() {
    // Destructors must not throw: errors here are ignored (the process is tearing the GPU state down).
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
}

void GpuContext::synchronize() const { CAPSNET_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace capsnet::cuda
