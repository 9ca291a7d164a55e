// One GPU, one stream, one cuBLAS handle bound to that stream: every kernel launcher takes the context
// and enqueues on its stream, so a whole training step runs without host synchronisation until the
// caller asks for a result.
#pragma once

#include "cuda_check.hpp"

namespace capsnet::cuda {

class GpuContext {
public:
    // cudaSetDevice, a non-blocking stream, a cuBLAS handle on it. tf32: the handle may round the
    // products' inputs to TF32 on tensor cores; otherwise its products are plain float32.
    explicit GpuContext(int device = 0, bool tf32 = false);
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
