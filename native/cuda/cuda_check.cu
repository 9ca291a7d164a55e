#include "cuda_check.hpp"

#include <string>

#include "capsnet/error.hpp"

namespace capsnet::cuda {

void check_cuda(cudaError_t status, const char* expression, const char* file, int line) {
    if (status == cudaSuccess) return;
    throw Error(std::string(file) + ":" + std::to_string(line) + ": " + expression + " failed: " +
                cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

void check_cublas(cublasStatus_t status, const char* expression, const char* file, int line) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    throw Error(std::string(file) + ":" + std::to_string(line) + ": " + expression + " failed: " +
                cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
}

}  // namespace capsnet::cuda
