// Every CUDA runtime and cuBLAS call goes through these checks: a failure throws capsnet::Error naming
// the call, the file and line, and the library's own error text, instead of computing on garbage.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace capsnet::cuda {

void check_cuda(cudaError_t status, const char* expression, const char* file, int line);
void check_cublas(cublasStatus_t status, const char* expression, const char* file, int line);

}  // namespace capsnet::cuda

#define CAPSNET_CUDA_CHECK(call) ::capsnet::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CAPSNET_CUBLAS_CHECK(call) ::capsnet::cuda::check_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here (execution errors at the next sync).
#define CAPSNET_CUDA_CHECK_LAUNCH() CAPSNET_CUDA_CHECK(cudaGetLastError())
