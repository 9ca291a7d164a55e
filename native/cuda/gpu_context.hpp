// One GPU, one stream, one cuBLAS handle bound to that stream: every kernel launcher takes the context
// and enqueues on its stream, so a whole training step runs without host synchronisation until the
// caller asks for a result.
#pragma once

#include "cuda_check.hpp"

namespace capsnet::cuda {

class GpuContext {
public:
    explicit GpuContext(int device = 0);  // cudaSetDevice, a non-blocking stream, a cuBLAS handle on it
    ~GpuContext();
    GpuContext(const GpuContext&) = delete;
    GpuContext& operator=(const GpuContext&) = delete;

    int device() const { return device_; }
    cudaStream_t stream() const { return stream_; }
    cublasHandle_t cublas() const { return cublas_; }
    void synchronize() const;  // waits for the stream; surfaces asynchronous kernel errors

private:
    int device_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
};

}  // namespace capsnet::cuda
